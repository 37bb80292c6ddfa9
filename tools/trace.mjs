// Debug helper: run an image one instruction at a time, printing RIP (and serial output).
// usage: node tools/trace.mjs IMAGE [maxInsns] [args]
import { readFileSync } from 'node:fs';
import { Machine } from '../dist/src/hw/index.js';
const [image, max = '2000000', args = ''] = process.argv.slice(2);
const m = new Machine({ memMiB: 128, serial: (b) => process.stdout.write(`[serial ${b} '${String.fromCharCode(b)}']\n`) });
m.loadMultiboot(new Uint8Array(readFileSync(image)), image, args, []);
const cpu = m.cpus[0];
for (let k = 0; k < Number(max); k++) {
  const r = cpu.rip;
  process.stdout.write(`${r.toString(16)} rax=${(cpu.rlo[0]>>>0).toString(16)} rcx=${(cpu.rlo[1]>>>0).toString(16)} rdx=${(cpu.rlo[2]>>>0).toString(16)} rsi=${(cpu.rlo[6]>>>0).toString(16)} rdi=${(cpu.rlo[7]>>>0).toString(16)} rsp=${(cpu.rlo[4]>>>0).toString(16)} f=${cpu.getFlags().toString(16)}\n`);
  try { cpu.run(1); } catch (e) { console.log('stop', e); break; }
}
