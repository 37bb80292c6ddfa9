/** The VMX specification as data (SDM Vol. 3C chapters 23-30, Appendices A-C). */
export * from './bitfield.js';
export * from './vmcs-fields.js';
export * from './exit-reasons.js';
export * from './controls.js';
export * from './ept.js';
export * from './capabilities.js';
