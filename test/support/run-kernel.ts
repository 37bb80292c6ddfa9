/** Run a guest kernel image through the CLI (dist/src/cli/main.js) and capture its output and status. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const CLI = 'dist/src/cli/main.js';

export function runKernel(
  name: string,
  args: string[] = [],
): { status: number | null; stdout: string; stderr: string } {
  const image = `guests/build/${name}.elf`;
  assert.ok(existsSync(image), `${image} is missing: run make -C guests`);
  const r = spawnSync(process.execPath, [CLI, 'run', image, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
