/**
 * Reading a scenario file for `turtles up` (docs/CLI.md "Scenario files"): JSON (`.json`) or
 * YAML (anything else; YAML 1.2 also accepts JSON), validated by src/l0/scenario.ts, then
 * every image and module read, relative paths resolved against the file's directory.
 * Every problem is one line naming the file and the path of the value in it.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { UserError } from '../common/index.js';
import { validateScenario, type Scenario, type ScenarioVm } from '../l0/index.js';
import { findMultibootHeader } from '../hw/boot/multiboot-header.js';
import { readImage } from './run.js';

export interface LoadedVm extends ScenarioVm {
  /** The image path as shown to the guest and in messages (relative to the working directory when possible). */
  imagePath: string;
  kernel: Uint8Array;
  /** The multiboot modules: `modules`, then the L2 guests (`guests`), in file order. */
  loadedModules: { name: string; data: Uint8Array; args: string }[];
}
export interface LoadedScenario extends Scenario {
  file: string;
  vms: LoadedVm[];
}

/** Parse the text of a scenario file: JSON for `.json`, YAML otherwise. */
export function parseScenarioText(text: string, file: string): unknown {
  if (/\.json$/i.test(file)) {
    try {
      return JSON.parse(text);
    } catch (e) {
      const msg = (e as Error).message;
      const pos = /at position (\d+)/.exec(msg);
      if (!pos) throw new UserError(`${file}: not valid JSON: ${msg}`);
      const before = text.slice(0, Number(pos[1])).split('\n');
      const where = `line ${before.length}, column ${before[before.length - 1].length + 1}`;
      throw new UserError(
        `${file}: ${where}: not valid JSON: ${msg.replace(/\s*(in JSON )?at position \d+.*$/, '')}`,
      );
    }
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const err = doc.errors[0];
  if (err) {
    const at = err.linePos?.[0];
    const msg = err.message.split('\n')[0].replace(/\s*at line \d+, column \d+:?$/, '');
    throw new UserError(`${file}: ${at ? `line ${at.line}, column ${at.col}: ` : ''}not valid YAML: ${msg}`);
  }
  return doc.toJS({ maxAliasCount: 1000 });
}

/** How a path is shown: relative to the working directory when it is below it. */
function shown(abs: string): string {
  const r = relative(process.cwd(), abs);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : abs;
}

/** Read, parse and validate a scenario file, and read every image and module it names. */
export function loadScenario(file: string): LoadedScenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String(code ?? e);
    throw new UserError(`cannot read scenario file ${file}: ${why}`);
  }
  const sc = validateScenario(parseScenarioText(text, file), file);
  const dir = dirname(resolve(file));
  const read = (p: string, path: string, what: string): { shown: string; data: Uint8Array } => {
    const s = shown(resolve(dir, p));
    try {
      return { shown: s, data: readImage(s, what) };
    } catch (e) {
      if (e instanceof UserError) throw new UserError(`${file}: ${path}: ${e.message}`);
      throw e;
    }
  };
  const vms = sc.vms.map((vm, i): LoadedVm => {
    const img = read(vm.image, `vms[${i}].image`, 'image');
    return {
      ...vm,
      imagePath: img.shown,
      kernel: img.data,
      loadedModules: [
        ...vm.modules.map((m, k) => {
          const f = read(m.file, `vms[${i}].modules[${k}]`, 'module');
          return { name: f.shown, data: f.data, args: m.args };
        }),
        ...vm.guests.map((g, k) => {
          const path = `vms[${i}].guests[${k}]`;
          const f = read(g.image, path, 'image');
          // L1 loads it, not L0: a guest that is no kernel is caught here, before anything runs.
          try {
            findMultibootHeader(f.data);
          } catch (e) {
            if (e instanceof UserError) throw new UserError(`${file}: ${path}: ${f.shown}: ${e.message}`);
            throw e;
          }
          return { name: f.shown, data: f.data, args: g.args };
        }),
      ],
    };
  });
  return { ...sc, file, vms };
}
