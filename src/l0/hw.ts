/** The one door from L0 to the machine: hw/index.ts (enforced by eslint.config.js), plus common. */
export * from '../hw/index.js';
export { UserError } from '../common/index.js';
export { EXIT_REASON_NAME } from '../spec/vmx/exit-reasons.js';
