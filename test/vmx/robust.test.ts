/**
 * Bad input to VT-x never breaks the host: random VMCS contents, random EPT tables and
 * random guest code give an architectural outcome (VMfail, entry failure, an exit, or
 * the guest still running at the cycle budget), never a JavaScript exception or a hang.
 * Seeded, so a failure is reproducible.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine, VMCS_FIELD as F } from '../../src/hw/index.js';
import { simpleGuest, SG } from '../../src/hw/vmx/simple-guest.js';
import { SUPPORTED_FIELDS } from '../../src/hw/vmx/fields.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}
const writable = SUPPORTED_FIELDS.filter((f) => f.type !== 'readOnly');

test('random VMCS fields: every VM entry ends architecturally', () => {
  const r = rng(1234);
  const kinds = new Map<string, number>();
  for (let k = 0; k < 300; k++) {
    const m = new Machine({ memMiB: 16, serial: () => {} });
    const h = simpleGuest(m, new Uint8Array([0x0f, 0xa2, 0xf4]));
    const n = 1 + (r() % 3);
    for (let j = 0; j < n; j++) {
      const f = writable[r() % writable.length];
      // Mostly flip one bit of the valid value, sometimes write garbage.
      const cur = h.vmread(f.encoding) as bigint;
      const v = r() % 4 === 0 ? (BigInt(r()) << 32n) | BigInt(r()) : cur ^ (1n << BigInt(r() % 64));
      h.vmwrite(f.encoding, v);
    }
    const out = h.vmlaunch(200_000);
    kinds.set(out.kind, (kinds.get(out.kind) ?? 0) + 1);
    assert.ok(['exit', 'entry-failure', 'vmfail', 'timeout'].includes(out.kind));
  }
  // The mutations must actually reach the checks: several kinds of outcome occur.
  assert.ok(
    (kinds.get('vmfail') ?? 0) > 0 && (kinds.get('entry-failure') ?? 0) > 0 && (kinds.get('exit') ?? 0) > 0,
    JSON.stringify([...kinds]),
  );
});

test('random EPT tables and guest code: exits or the budget, never a host exception', () => {
  const r = rng(99);
  for (let k = 0; k < 150; k++) {
    const m = new Machine({ memMiB: 16, serial: () => {} });
    const code = new Uint8Array(64).map(() => r() & 0xff);
    const h = simpleGuest(m, code);
    h.vmwrite(F.EXCEPTION_BITMAP, 0xffffffff); // every exception exits
    // Corrupt a few EPT entries.
    for (let j = 0; j < 3; j++) {
      const at = [SG.EPT_PML4, SG.EPT_PDPT, SG.EPT_PD][r() % 3] + 8 * (r() % 4);
      m.mem.write32(at, r());
      m.mem.write32(at + 4, r() & 0x800fffff);
    }
    let out = h.vmlaunch(100_000);
    for (let j = 0; j < 5 && out.kind === 'exit'; j++) out = h.vmresume(100_000);
    assert.ok(['exit', 'entry-failure', 'vmfail', 'timeout'].includes(out.kind));
  }
});
