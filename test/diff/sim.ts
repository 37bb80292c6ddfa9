// The simulator side of the differential tests: runSnippet64 from
// test/support/snippet.ts (written with the CPU core). A static re-export, so
// the compiler checks that it matches DiffCase -> DiffResult.
import type { DiffCase, DiffResult } from './types.js';
import { runSnippet64 as impl } from '../support/snippet.js';

/** Runs one case in the simulator. */
export const runSnippet64: (c: DiffCase) => DiffResult = impl;

/** Kept for callers that probe for the simulator side: it is linked statically. */
export const simAvailable = true;
export const simUnavailableReason = '';
