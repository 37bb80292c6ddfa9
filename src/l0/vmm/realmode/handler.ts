/** An instruction's semantics: run by the step loop (exec.ts) after decoding, EIP already past it. */
import type { Emu } from './emu.js';

export type Handler = (e: Emu) => void;
