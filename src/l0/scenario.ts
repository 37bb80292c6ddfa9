/**
 * Scenario files (`turtles up FILE`, docs/CLI.md "Scenario files"): a stack of VMs for L0
 * described as data. This module is the schema and its validation, on already parsed data
 * (JSON or YAML: the CLI parses and reads files). Every problem is one line that names the
 * file and the path of the offending value, e.g.
 *   `stack.yaml: vms[1].memMiB: must be an integer between 2 and 3040 (got "x")`.
 */
import { UserError, LOW_RAM_LIMIT } from './hw.js';
import { GUEST_RAM_HPA } from './l0.js';

export interface ScenarioModule {
  /** Path as written in the file (the CLI resolves it against the file's directory). */
  file: string;
  args: string;
}
/** An L2 guest of an L1 hypervisor: a multiboot module of its VM (`FILE ARGS`). */
export interface ScenarioGuest {
  /** Path as written in the file (the CLI resolves it against the file's directory). */
  image: string;
  args: string;
}
export interface ScenarioVm {
  name: string;
  image: string;
  /** Kernel command line after the image name (`turtles run --append`). */
  args: string;
  modules: ScenarioModule[];
  memMiB: number;
  cpus: number;
  mmu: 'ept' | 'shadow';
  /** Expose VMX to the VM (an L1 hypervisor), as `turtles run --l0 --nested`. */
  nested: boolean;
  /** With `nested`: the options of `run --l0 --nested` (undefined: the CLI's default). */
  nestedMmu?: 'ept' | 'shadow';
  drw?: boolean;
  dirtyMerge?: boolean;
  bulkCopy?: boolean;
  /** The L1 hypervisor's L2 guests: multiboot modules after `modules`, in this order. */
  guests: ScenarioGuest[];
}
export interface Scenario {
  description: string;
  vms: ScenarioVm[];
}

/** Guest RAM L0 can hand out: host RAM below the PCI hole, minus L0's own region (l0.ts). */
export const MAX_TOTAL_MEM_MIB = (LOW_RAM_LIMIT - GUEST_RAM_HPA) / 1048576;
export const MAX_CPUS = 8;
export const DEFAULT_MEM_MIB = 128;
/** A VM name: used as the `[name] ` prefix of its serial lines and in reports. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

const TOP_KEYS = ['description', 'vms'] as const;
const VM_KEYS = [
  'name',
  'image',
  'args',
  'modules',
  'memMiB',
  'cpus',
  'mmu',
  'nested',
  'nestedMmu',
  'drw',
  'dirtyMerge',
  'bulkCopy',
  'guests',
] as const;
const MODULE_KEYS = ['file', 'args'] as const;
const GUEST_KEYS = ['image', 'args'] as const;
/** Keys that only mean something for a nested VM (nested: true). */
const NESTED_ONLY = ['nestedMmu', 'drw', 'dirtyMerge', 'bulkCopy', 'guests'] as const;

/** A short rendering of a bad value for messages (strings quoted, long values cut). */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 40 ? s.slice(0, 37) + '...' : s;
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

class Checker {
  constructor(readonly file: string) {}
  fail(path: string, msg: string): never {
    throw new UserError(`${this.file}: ${path ? path + ': ' : ''}${msg}`);
  }
  mapping(v: unknown, path: string, keys: readonly string[]): Record<string, unknown> {
    if (!isMapping(v)) this.fail(path, `must be a mapping (got ${show(v)})`);
    for (const k of Object.keys(v))
      if (!keys.includes(k))
        this.fail(path ? `${path}.${k}` : k, `unknown key (expected one of: ${keys.join(', ')})`);
    return v;
  }
  string(v: unknown, path: string, opts: { optional?: boolean; nonEmpty?: boolean } = {}): string {
    if (v === undefined && opts.optional) return '';
    if (v === undefined) this.fail(path, 'is required');
    if (typeof v !== 'string') this.fail(path, `must be a string (got ${show(v)})`);
    if (opts.nonEmpty && v.trim() === '') this.fail(path, 'must not be empty');
    if (v.includes('\0')) this.fail(path, 'must not contain NUL characters');
    return v;
  }
  bool(v: unknown, path: string): boolean | undefined {
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') this.fail(path, `must be true or false (got ${show(v)})`);
    return v;
  }
  mmu(v: unknown, path: string): 'ept' | 'shadow' | undefined {
    if (v === undefined) return undefined;
    if (v !== 'ept' && v !== 'shadow') this.fail(path, `must be "ept" or "shadow" (got ${show(v)})`);
    return v;
  }
  int(v: unknown, path: string, min: number, max: number, dflt: number): number {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      this.fail(path, `must be an integer between ${min} and ${max} (got ${show(v)})`);
    return v;
  }
}

/**
 * Validate parsed scenario data. `file` is the name used in messages (the path as the user
 * gave it). Throws UserError with one line on the first problem found.
 */
export function validateScenario(data: unknown, file: string): Scenario {
  const c: Checker = new Checker(file);
  if (data === undefined || data === null)
    c.fail('', 'the file is empty (expected a mapping with a "vms" list)');
  const top = c.mapping(data, '', TOP_KEYS);
  const description = c.string(top.description, 'description', { optional: true });
  if (top.vms === undefined) c.fail('vms', 'is required (a list of VMs)');
  if (!Array.isArray(top.vms)) c.fail('vms', `must be a list of VMs (got ${show(top.vms)})`);
  if (top.vms.length === 0) c.fail('vms', 'must list at least one VM');
  const names = new Map<string, number>();
  const vms = top.vms.map((raw, i): ScenarioVm => {
    const p = `vms[${i}]`;
    const v = c.mapping(raw, p, VM_KEYS);
    const name = c.string(v.name, `${p}.name`);
    if (!NAME_RE.test(name))
      c.fail(
        `${p}.name`,
        `must be 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit (got ${show(name)})`,
      );
    const dup = names.get(name);
    if (dup !== undefined) c.fail(`${p}.name`, `duplicate name ${show(name)} (also vms[${dup}].name)`);
    names.set(name, i);
    const image = c.string(v.image, `${p}.image`, { nonEmpty: true });
    const args = c.string(v.args, `${p}.args`, { optional: true });
    let modules: ScenarioModule[] = [];
    if (v.modules !== undefined) {
      if (!Array.isArray(v.modules)) c.fail(`${p}.modules`, `must be a list (got ${show(v.modules)})`);
      modules = v.modules.map((m, k): ScenarioModule => {
        const mp = `${p}.modules[${k}]`;
        if (typeof m === 'string') return { file: c.string(m, mp, { nonEmpty: true }), args: '' };
        const mm = c.mapping(m, mp, MODULE_KEYS);
        return {
          file: c.string(mm.file, `${mp}.file`, { nonEmpty: true }),
          args: c.string(mm.args, `${mp}.args`, { optional: true }),
        };
      });
    }
    const memMiB = c.int(v.memMiB, `${p}.memMiB`, 2, MAX_TOTAL_MEM_MIB, DEFAULT_MEM_MIB);
    const cpus = c.int(v.cpus, `${p}.cpus`, 1, MAX_CPUS, 1);
    const mmu = c.mmu(v.mmu, `${p}.mmu`) ?? 'ept';
    const nested = c.bool(v.nested, `${p}.nested`) ?? false;
    if (!nested)
      for (const key of NESTED_ONLY)
        if (v[key] !== undefined)
          c.fail(
            `${p}.${key}`,
            key === 'guests'
              ? 'L2 guests need an L1 hypervisor: set nested: true (VMX for this VM)'
              : 'applies to nested VMs only: set nested: true (VMX for this VM)',
          );
    const nestedMmu = c.mmu(v.nestedMmu, `${p}.nestedMmu`);
    const drw = c.bool(v.drw, `${p}.drw`);
    const dirtyMerge = c.bool(v.dirtyMerge, `${p}.dirtyMerge`);
    const bulkCopy = c.bool(v.bulkCopy, `${p}.bulkCopy`);
    let guests: ScenarioGuest[] = [];
    if (v.guests !== undefined) {
      if (!Array.isArray(v.guests)) c.fail(`${p}.guests`, `must be a list (got ${show(v.guests)})`);
      guests = v.guests.map((g, k): ScenarioGuest => {
        const gp = `${p}.guests[${k}]`;
        if (typeof g === 'string') return { image: c.string(g, gp, { nonEmpty: true }), args: '' };
        const gg = c.mapping(g, gp, GUEST_KEYS);
        return {
          image: c.string(gg.image, `${gp}.image`, { nonEmpty: true }),
          args: c.string(gg.args, `${gp}.args`, { optional: true }),
        };
      });
    }
    const vm: ScenarioVm = { name, image, args, modules, memMiB, cpus, mmu, nested, guests };
    if (nestedMmu !== undefined) vm.nestedMmu = nestedMmu;
    if (drw !== undefined) vm.drw = drw;
    if (dirtyMerge !== undefined) vm.dirtyMerge = dirtyMerge;
    if (bulkCopy !== undefined) vm.bulkCopy = bulkCopy;
    return vm;
  });
  // L0 gives each VM whole 2 MiB pages (l0.ts); the sum has to fit below the PCI hole.
  const total = vms.reduce((s, v) => s + Math.ceil(v.memMiB / 2) * 2, 0);
  if (total > MAX_TOTAL_MEM_MIB)
    c.fail(
      'vms',
      `the VMs need ${total} MiB of RAM together; L0 can give its VMs at most ${MAX_TOTAL_MEM_MIB} MiB`,
    );
  return { description, vms };
}
