/** Bad input to the CLI: one line on stderr, a non-zero status, never a stack trace. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = 'dist/src/cli/main.js';
function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function oneCleanLine(stderr: string): void {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  assert.doesNotMatch(stderr, /\n\s+at /, 'stack trace on stderr');
}

const dir = mkdtempSync(join(tmpdir(), 'turtles-cli-'));
const junk = join(dir, 'junk.elf');
writeFileSync(junk, 'this is not an ELF file at all');
const empty = join(dir, 'empty.elf');
writeFileSync(empty, '');

const cases: [string, string[], RegExp][] = [
  ['missing image', ['run', join(dir, 'nope.elf')], /no such file/],
  ['not an ELF', ['run', junk], /multiboot|ELF/i],
  ['empty file', ['run', empty], /multiboot|ELF|empty|truncated/i],
  ['a directory', ['run', dir], /directory/],
  ['bad --mem', ['run', 'guests/build/hello.elf', '--mem', 'lots'], /--mem/],
  ['too small --mem', ['run', 'guests/build/hello.elf', '--mem', '1'], /--mem/],
  ['bad --max-cycles', ['run', 'guests/build/hello.elf', '--max-cycles', '-5'], /max-cycles|unknown option/],
  ['unknown option', ['run', 'guests/build/hello.elf', '--frobnicate'], /unknown option/],
  ['missing module', ['run', 'guests/build/hello.elf', '--module', join(dir, 'nomod.elf')], /module/],
  ['no command', ['frob'], /unknown command/],
];
for (const [name, args, re] of cases) {
  test(`bad input: ${name}`, () => {
    const r = cli(...args);
    assert.notEqual(r.status, 0);
    assert.notEqual(r.status, 1);
    oneCleanLine(r.stderr);
    assert.match(r.stderr, re);
  });
}

test('--max-cycles stops a runaway guest with a message and status 6', () => {
  const r = cli(
    'run',
    'guests/build/bench-loop.elf',
    '--append',
    'iters=1000000000',
    '--max-cycles',
    '200000',
  );
  assert.equal(r.status, 6, r.stderr);
  assert.match(r.stderr, /max-cycles/);
});

test('--help lists the run command', () => {
  const r = cli('run', '--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--max-cycles/);
});

test('--trace writes one line per instruction', () => {
  const file = join(dir, 'trace.txt');
  const r = cli('run', 'guests/build/hello.elf', '--trace', file);
  assert.equal(r.status, 1, r.stderr);
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  assert.ok(lines.length > 1000, `only ${lines.length} trace lines`);
  assert.match(lines[0], /^0 [0-9a-f]{16} \S+/);
});
