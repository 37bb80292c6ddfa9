#!/usr/bin/env node
/** The `turtles` command (the CLI contract of DESIGN.md; details in docs/CLI.md). */
import { Command, InvalidArgumentError, CommanderError } from 'commander';
import { UserError } from '../common/index.js';
import { runCommand } from './run.js';
import { upCommand } from './up.js';
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
  .option(
    '--mmu <ept|shadow>',
    'how L0 virtualizes L1 memory (with --l0; default ept when the machine has EPT)',
  )
  .option('--nested', 'give the L1 guest a virtual VT-x (with --l0): L1 may be a hypervisor')
  .option(
    '--nested-mmu <ept|shadow>',
    'with --nested: EPT for L1 (ept02 = ept12 ∘ ept01) or none (L1 shadows L2; always with L0 on shadow paging)',
  )
  .option('--drw', 'with --nested: serve L1 VMREAD/VMWRITE from a shadow VMCS without exits (the default)')
  .option('--no-drw', 'with --nested: trap L1 VMREAD/VMWRITE instead of serving them from a shadow VMCS')
  .option('--no-dirty-merge', 'with --nested: copy every vmcs12 guest field into vmcs02 at each nested entry')
  .option('--no-bulk-copy', 'with --nested: charge VMCS copies per field instead of per group')
  .option('--no-ept', 'VT-x without EPT (and so without unrestricted guest and EPTP switching)')
  .option('--no-vpid', 'VT-x without VPID')
  .option('--no-unrestricted-guest', 'VT-x without unrestricted guest')
  .option('--no-vmcs-shadowing', 'VT-x without VMCS shadowing')
  .action((image: string, opts) => {
    process.exitCode = runCommand(image, opts);
  });

program
  .command('up')
  .description('run the stack of VMs a scenario file (JSON or YAML) describes, each an L1 guest of L0')
  .argument('<file>', 'scenario file (docs/CLI.md "Scenario files")')
  .option('--stats <file.json>', 'write statistics as JSON (totals and per VM)')
  .option(
    '--max-cycles <n>',
    'stop every VM still running after this many simulated cycles (of the whole machine)',
    intArg('--max-cycles', 1, Number.MAX_SAFE_INTEGER),
    20_000_000_000,
  )
  .action((file: string, opts) => {
    process.exitCode = upCommand(file, opts);
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
