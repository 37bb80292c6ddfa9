#!/usr/bin/env node
/** The `turtles` command (the CLI contract of DESIGN.md; details in docs/CLI.md). */
import { Command, InvalidArgumentError, CommanderError } from 'commander';
import { UserError } from '../common/index.js';
import { runCommand } from './run.js';
import { EXIT_BAD_INPUT, EXIT_INTERNAL } from './exit-codes.js';

function intArg(name: string, min: number, max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be a whole number`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}`);
    return n;
  };
}
const collect = (v: string, prev: string[]): string[] => [...prev, v];

const program = new Command();
program
  .name('turtles')
  .description('x86-64 machine with VT-x, and nested virtualization all the way down')
  .exitOverride()
  .configureOutput({ outputError: (s, write) => write(s.split('\n')[0] + '\n') });

program
  .command('run')
  .description('boot a multiboot kernel (ELF32/ELF64) on the simulated machine')
  .argument('<image>', 'multiboot kernel image')
  .option('--append <args>', 'kernel command line arguments')
  .option('--module <file[=args]>', 'multiboot module (repeatable)', collect, [])
  .option('--mem <MiB>', 'guest RAM in MiB', intArg('--mem', 2, 4096), 128)
  .option('--cpus <n>', 'number of CPUs', intArg('--cpus', 1, 8), 1)
  .option('--stats <file.json>', 'write run statistics as JSON')
  .option(
    '--max-cycles <n>',
    'stop after this many simulated cycles',
    intArg('--max-cycles', 1, Number.MAX_SAFE_INTEGER),
    20_000_000_000,
  )
  .option('--trace <file>', 'write a per-instruction trace to FILE (slow)')
  .option('--l0', 'run IMAGE as an L1 guest of the TypeScript hypervisor L0')
  .option('--mmu <ept|shadow>', 'how L0 virtualizes L1 memory (with --l0; ept so far)')
  .option('--nested', 'expose VMX to the L1 guest (with --l0; not implemented yet)')
  .option('--no-ept', 'VT-x without EPT (and so without unrestricted guest and EPTP switching)')
  .option('--no-vpid', 'VT-x without VPID')
  .option('--no-unrestricted-guest', 'VT-x without unrestricted guest')
  .option('--no-vmcs-shadowing', 'VT-x without VMCS shadowing')
  .action((image: string, opts) => {
    process.exitCode = runCommand(image, opts);
  });

try {
  program.parse(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? 0 : EXIT_BAD_INPUT;
  } else if (e instanceof UserError) {
    process.stderr.write(`turtles: ${e.message}\n`);
    process.exitCode = EXIT_BAD_INPUT;
  } else {
    const err = e as Error;
    process.stderr.write(
      `turtles: internal error: ${err.message} (please report; run with TURTLES_DEBUG=1 for details)\n`,
    );
    if (process.env.TURTLES_DEBUG) process.stderr.write(`${err.stack}\n`);
    process.exitCode = EXIT_INTERNAL;
  }
}
