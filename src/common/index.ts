export * from './errors.js';
export * from './u64.js';
export * from './types.js';
