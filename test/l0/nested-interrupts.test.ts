/**
 * L1's interrupts while its vCPU runs L2 (src/l0/nested/interrupts.ts): vmx-intr.elf is a small
 * VMX hypervisor whose guest spins, halts or enables interrupts while the hypervisor's own LAPIC
 * timer or PIT fires; with and without external-interrupt exiting and "acknowledge interrupt on
 * exit", interrupt windows, event injection before an interrupt exit, and the VMX-preemption
 * timer. As L1 under L0 (--l0 --nested) it must print what it prints on the bare machine, as
 * must the events group of the VMX conformance suite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKernel } from '../support/run-kernel.js';

const results = (out: string): string[] => out.split('\n').filter((l) => /^(PASS|FAIL|SUMMARY)/.test(l));

test('vmx-intr.elf as L1: interrupts for L1 while L2 runs, same results as bare', () => {
  const bare = runKernel('vmx-intr');
  assert.equal(bare.status, 1, bare.stdout + bare.stderr);
  assert.ok(!/skipped|FAIL/.test(bare.stdout), bare.stdout);
  const stats = join(mkdtempSync(join(tmpdir(), 'turtles-nested-intr-')), 's.json');
  const l1 = runKernel('vmx-intr', ['--l0', '--nested', '--stats', stats]);
  assert.equal(l1.status, 1, l1.stderr + l1.stdout);
  assert.deepEqual(results(l1.stdout), results(bare.stdout));
  const s = JSON.parse(readFileSync(stats, 'utf8')) as {
    exits: { level: string; reason: string; handledBy: string; count: number }[];
  };
  const count = (reason: string, by: string): number =>
    s.exits.find((e) => e.level === 'L2' && e.reason === reason && e.handledBy === by)?.count ?? 0;
  // Interrupt exits L0 synthesized for L1, and L0's own interrupt window for delivering to L2.
  assert.ok(count('EXTERNAL_INTERRUPT', 'L1') >= 24, JSON.stringify(s.exits));
  assert.ok(count('INTERRUPT_WINDOW', 'L0') >= 1, JSON.stringify(s.exits));
  assert.ok(count('PREEMPTION_TIMER', 'L1') >= 5, JSON.stringify(s.exits));
});

test('vmx-tests.elf group=events as L1: same results as bare', () => {
  const bare = runKernel('vmx-tests', ['--append', 'group=events']);
  const l1 = runKernel('vmx-tests', ['--l0', '--nested', '--append', 'group=events']);
  assert.equal(l1.status, bare.status, l1.stderr + l1.stdout);
  assert.deepEqual(results(l1.stdout), results(bare.stdout));
});
