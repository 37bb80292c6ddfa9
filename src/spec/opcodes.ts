/**
 * The x86-64 opcode map as data (Intel SDM Vol. 2, Appendix A), limited to what
 * the machine implements. One table feeds the decoder (operand forms decide
 * whether a ModRM byte and which immediates follow) and the CPU's dispatch (the
 * mnemonic and form select a handler).
 *
 * Operand notation follows Appendix A.2: E = ModRM r/m, G = ModRM reg, M = memory
 * only, R = register only, I = immediate, J = relative offset, O = moffs, S = segment
 * register in ModRM.reg, C/D = control/debug register, Z = register in opcode bits
 * 2:0, A = far pointer; sizes b/w/d/q/v/z/y/p as in the SDM. Registers that are
 * fixed by the opcode are written by name (AL, rAX, DX, CL, 1).
 *
 * Attributes: d64 = operand size defaults to 64 bits in 64-bit mode; f64 = forced to
 * 64 bits; i64 = invalid in 64-bit mode (#UD); o64 = valid only in 64-bit mode.
 */

export interface OpcodeEntry {
  /** 0x00-0xff for one-byte opcodes, 0x0f00-0x0fff for two-byte, 0x0f3800.. for three-byte. */
  readonly opcode: number;
  /** For group opcodes: the ModRM.reg value this entry applies to, else -1. */
  readonly reg: number;
  /** Mandatory prefix this entry requires (0x66, 0xf2, 0xf3), 0 for none. */
  readonly prefix: number;
  /** 'mem' or 'reg' when the entry applies to only one ModRM.mod class. */
  readonly modClass: '' | 'mem' | 'reg';
  /** For 0F 01 style entries chosen by the full ModRM byte (mod=3), the rm value, else -1. */
  readonly rm: number;
  readonly mnemonic: string;
  readonly operands: string;
  readonly attrs: string;
}

// mnemonic, operands, attributes. Written compactly; parsed once at load.
// Format: 'opcode[/reg][ prefix=XX][ mem|reg][ rm=N]: MNEMONIC operands [attrs]'
const ONE_BYTE = `
00: ADD Eb,Gb
01: ADD Ev,Gv
02: ADD Gb,Eb
03: ADD Gv,Ev
04: ADD AL,Ib
05: ADD rAX,Iz
06: PUSH ES i64
07: POP ES i64
08: OR Eb,Gb
09: OR Ev,Gv
0a: OR Gb,Eb
0b: OR Gv,Ev
0c: OR AL,Ib
0d: OR rAX,Iz
0e: PUSH CS i64
10: ADC Eb,Gb
11: ADC Ev,Gv
12: ADC Gb,Eb
13: ADC Gv,Ev
14: ADC AL,Ib
15: ADC rAX,Iz
16: PUSH SS i64
17: POP SS i64
18: SBB Eb,Gb
19: SBB Ev,Gv
1a: SBB Gb,Eb
1b: SBB Gv,Ev
1c: SBB AL,Ib
1d: SBB rAX,Iz
1e: PUSH DS i64
1f: POP DS i64
20: AND Eb,Gb
21: AND Ev,Gv
22: AND Gb,Eb
23: AND Gv,Ev
24: AND AL,Ib
25: AND rAX,Iz
27: DAA - i64
28: SUB Eb,Gb
29: SUB Ev,Gv
2a: SUB Gb,Eb
2b: SUB Gv,Ev
2c: SUB AL,Ib
2d: SUB rAX,Iz
2f: DAS - i64
30: XOR Eb,Gb
31: XOR Ev,Gv
32: XOR Gb,Eb
33: XOR Gv,Ev
34: XOR AL,Ib
35: XOR rAX,Iz
37: AAA - i64
38: CMP Eb,Gb
39: CMP Ev,Gv
3a: CMP Gb,Eb
3b: CMP Gv,Ev
3c: CMP AL,Ib
3d: CMP rAX,Iz
3f: AAS - i64
40: INC Zv i64
48: DEC Zv i64
50: PUSH Zv d64
58: POP Zv d64
60: PUSHA - i64
61: POPA - i64
62: BOUND Gv,Ma i64
63: MOVSXD Gv,Ed
68: PUSH Iz d64
69: IMUL3 Gv,Ev,Iz
6a: PUSH Ib d64
6b: IMUL3 Gv,Ev,Ib
6c: INS Yb,DX
6d: INS Yz,DX
6e: OUTS DX,Xb
6f: OUTS DX,Xz
70: JCC Jb f64
80/0: ADD Eb,Ib
80/1: OR Eb,Ib
80/2: ADC Eb,Ib
80/3: SBB Eb,Ib
80/4: AND Eb,Ib
80/5: SUB Eb,Ib
80/6: XOR Eb,Ib
80/7: CMP Eb,Ib
81/0: ADD Ev,Iz
81/1: OR Ev,Iz
81/2: ADC Ev,Iz
81/3: SBB Ev,Iz
81/4: AND Ev,Iz
81/5: SUB Ev,Iz
81/6: XOR Ev,Iz
81/7: CMP Ev,Iz
82/0: ADD Eb,Ib i64
82/1: OR Eb,Ib i64
82/2: ADC Eb,Ib i64
82/3: SBB Eb,Ib i64
82/4: AND Eb,Ib i64
82/5: SUB Eb,Ib i64
82/6: XOR Eb,Ib i64
82/7: CMP Eb,Ib i64
83/0: ADD Ev,Ib
83/1: OR Ev,Ib
83/2: ADC Ev,Ib
83/3: SBB Ev,Ib
83/4: AND Ev,Ib
83/5: SUB Ev,Ib
83/6: XOR Ev,Ib
83/7: CMP Ev,Ib
84: TEST Eb,Gb
85: TEST Ev,Gv
86: XCHG Eb,Gb
87: XCHG Ev,Gv
88: MOV Eb,Gb
89: MOV Ev,Gv
8a: MOV Gb,Eb
8b: MOV Gv,Ev
8c: MOVSEG Ew,Sw
8d: LEA Gv,M
8e: MOVSEG Sw,Ew
8f/0: POP Ev d64
90: XCHG Zv,rAX
98: CBW -
99: CWD -
9a: CALLF Ap i64
9b: FWAIT -
9c: PUSHF - d64
9d: POPF - d64
9e: SAHF -
9f: LAHF -
a0: MOV AL,Ob
a1: MOV rAX,Ov
a2: MOV Ob,AL
a3: MOV Ov,rAX
a4: MOVS Yb,Xb
a5: MOVS Yv,Xv
a6: CMPS Xb,Yb
a7: CMPS Xv,Yv
a8: TEST AL,Ib
a9: TEST rAX,Iz
aa: STOS Yb,AL
ab: STOS Yv,rAX
ac: LODS AL,Xb
ad: LODS rAX,Xv
ae: SCAS AL,Yb
af: SCAS rAX,Yv
b0: MOV Zb,Ib
b8: MOV Zv,Iv
c0/0: ROL Eb,Ib
c0/1: ROR Eb,Ib
c0/2: RCL Eb,Ib
c0/3: RCR Eb,Ib
c0/4: SHL Eb,Ib
c0/5: SHR Eb,Ib
c0/6: SHL Eb,Ib
c0/7: SAR Eb,Ib
c1/0: ROL Ev,Ib
c1/1: ROR Ev,Ib
c1/2: RCL Ev,Ib
c1/3: RCR Ev,Ib
c1/4: SHL Ev,Ib
c1/5: SHR Ev,Ib
c1/6: SHL Ev,Ib
c1/7: SAR Ev,Ib
c2: RET Iw f64
c3: RET - f64
c4: LES Gz,Mp i64
c5: LDS Gz,Mp i64
c6/0: MOV Eb,Ib
c7/0: MOV Ev,Iz
c8: ENTER Iw,Ib d64
c9: LEAVE - d64
ca: RETF Iw
cb: RETF -
cc: INT3 -
cd: INT Ib
ce: INTO - i64
cf: IRET -
d0/0: ROL Eb,1
d0/1: ROR Eb,1
d0/2: RCL Eb,1
d0/3: RCR Eb,1
d0/4: SHL Eb,1
d0/5: SHR Eb,1
d0/6: SHL Eb,1
d0/7: SAR Eb,1
d1/0: ROL Ev,1
d1/1: ROR Ev,1
d1/2: RCL Ev,1
d1/3: RCR Ev,1
d1/4: SHL Ev,1
d1/5: SHR Ev,1
d1/6: SHL Ev,1
d1/7: SAR Ev,1
d2/0: ROL Eb,CL
d2/1: ROR Eb,CL
d2/2: RCL Eb,CL
d2/3: RCR Eb,CL
d2/4: SHL Eb,CL
d2/5: SHR Eb,CL
d2/6: SHL Eb,CL
d2/7: SAR Eb,CL
d3/0: ROL Ev,CL
d3/1: ROR Ev,CL
d3/2: RCL Ev,CL
d3/3: RCR Ev,CL
d3/4: SHL Ev,CL
d3/5: SHR Ev,CL
d3/6: SHL Ev,CL
d3/7: SAR Ev,CL
d4: AAM Ib i64
d5: AAD Ib i64
d6: SALC - i64
d7: XLAT -
d8: X87 Ex
d9: X87 Ex
da: X87 Ex
db: X87 Ex
dc: X87 Ex
dd: X87 Ex
de: X87 Ex
df: X87 Ex
e0: LOOPNE Jb f64
e1: LOOPE Jb f64
e2: LOOP Jb f64
e3: JRCXZ Jb f64
e4: IN AL,Ib
e5: IN eAX,Ib
e6: OUT Ib,AL
e7: OUT Ib,eAX
e8: CALL Jz f64
e9: JMP Jz f64
ea: JMPF Ap i64
eb: JMP Jb f64
ec: IN AL,DX
ed: IN eAX,DX
ee: OUT DX,AL
ef: OUT DX,eAX
f1: INT1 -
f4: HLT -
f5: CMC -
f6/0: TEST Eb,Ib
f6/1: TEST Eb,Ib
f6/2: NOT Eb
f6/3: NEG Eb
f6/4: MUL Eb
f6/5: IMUL Eb
f6/6: DIV Eb
f6/7: IDIV Eb
f7/0: TEST Ev,Iz
f7/1: TEST Ev,Iz
f7/2: NOT Ev
f7/3: NEG Ev
f7/4: MUL Ev
f7/5: IMUL Ev
f7/6: DIV Ev
f7/7: IDIV Ev
f8: CLC -
f9: STC -
fa: CLI -
fb: STI -
fc: CLD -
fd: STD -
fe/0: INC Eb
fe/1: DEC Eb
ff/0: INC Ev
ff/1: DEC Ev
ff/2: CALLN Ev f64
ff/3: CALLF Mp
ff/4: JMPN Ev f64
ff/5: JMPF Mp
ff/6: PUSH Ev d64
`;

const TWO_BYTE = `
0f00/0: SLDT Ew
0f00/1: STR Ew
0f00/2: LLDT Ew
0f00/3: LTR Ew
0f00/4: VERR Ew
0f00/5: VERW Ew
0f01/0 mem: SGDT Ms
0f01/1 mem: SIDT Ms
0f01/2 mem: LGDT Ms
0f01/3 mem: LIDT Ms
0f01/4: SMSW Ew
0f01/6: LMSW Ew
0f01/7 mem: INVLPG Mb
0f01/0 reg rm=1: VMCALL -
0f01/0 reg rm=2: VMLAUNCH -
0f01/0 reg rm=3: VMRESUME -
0f01/0 reg rm=4: VMXOFF -
0f01/1 reg rm=0: MONITOR -
0f01/1 reg rm=1: MWAIT -
0f01/1 reg rm=2: CLAC -
0f01/1 reg rm=3: STAC -
0f01/2 reg rm=0: XGETBV -
0f01/2 reg rm=1: XSETBV -
0f01/2 reg rm=4: VMFUNC -
0f01/7 reg rm=0: SWAPGS - o64
0f01/7 reg rm=1: RDTSCP -
0f02: LAR Gv,Ew
0f03: LSL Gv,Ew
0f05: SYSCALL -
0f06: CLTS -
0f07: SYSRET -
0f08: INVD -
0f09: WBINVD -
0f0b: UD2 -
0f0d: NOPM Ev
0f18: NOPM Ev
0f19: NOPM Ev
0f1a: NOPM Ev
0f1b: NOPM Ev
0f1c: NOPM Ev
0f1d: NOPM Ev
0f1e: NOPM Ev
0f1f: NOPM Ev
0f20: MOVCR Rd,Cd f64
0f21: MOVDR Rd,Dd f64
0f22: MOVCR Cd,Rd f64
0f23: MOVDR Dd,Rd f64
0f30: WRMSR -
0f31: RDTSC -
0f32: RDMSR -
0f33: RDPMC -
0f34: SYSENTER -
0f35: SYSEXIT -
0f37: GETSEC -
0f40: CMOVCC Gv,Ev
0f80: JCC Jz f64
0f90: SETCC Eb
0fa0: PUSH FS d64
0fa1: POP FS d64
0fa2: CPUID -
0fa3: BT Ev,Gv
0fa4: SHLD Ev,Gv,Ib
0fa5: SHLD Ev,Gv,CL
0fa8: PUSH GS d64
0fa9: POP GS d64
0faa: RSM -
0fab: BTS Ev,Gv
0fac: SHRD Ev,Gv,Ib
0fad: SHRD Ev,Gv,CL
0fae/0 mem: FXSAVE M
0fae/1 mem: FXRSTOR M
0fae/2 mem: LDMXCSR M
0fae/3 mem: STMXCSR M
0fae/4 mem: XSAVE M
0fae/5 mem: XRSTOR M
0fae/7 mem: CLFLUSH Mb
0fae/5 reg: FENCE -
0fae/6 reg: FENCE -
0fae/7 reg: FENCE -
0faf: IMUL2 Gv,Ev
0fb0: CMPXCHG Eb,Gb
0fb1: CMPXCHG Ev,Gv
0fb2: LSS Gv,Mp
0fb3: BTR Ev,Gv
0fb4: LFS Gv,Mp
0fb5: LGS Gv,Mp
0fb6: MOVZX Gv,Eb
0fb7: MOVZX Gv,Ew
0fb8 prefix=f3: POPCNT Gv,Ev
0fb9: UD1 Gv,Ev
0fba/4: BT Ev,Ib
0fba/5: BTS Ev,Ib
0fba/6: BTR Ev,Ib
0fba/7: BTC Ev,Ib
0fbb: BTC Ev,Gv
0fbc: BSF Gv,Ev
0fbc prefix=f3: TZCNT Gv,Ev
0fbd: BSR Gv,Ev
0fbd prefix=f3: LZCNT Gv,Ev
0fbe: MOVSX Gv,Eb
0fbf: MOVSX Gv,Ew
0fc0: XADD Eb,Gb
0fc1: XADD Ev,Gv
0fc7/1 mem: CMPXCHG8B Mq
0fc7/6 mem: VMPTRLD Mq
0fc7/6 mem prefix=f3: VMXON Mq
0fc7/6 mem prefix=66: VMCLEAR Mq
0fc7/7 mem: VMPTRST Mq
0fc7/6 reg: RDRAND Rv
0fc7/7 reg: RDSEED Rv
0fc8: BSWAP Zv
0fff: UD0 Gv,Ev
0f78: VMREAD Ey,Gy f64
0f79: VMWRITE Gy,Ey f64
0f3882 prefix=66: INVPCID Gy,M f64
0f3880 prefix=66: INVEPT Gy,M f64
0f3881 prefix=66: INVVPID Gy,M f64
0f38f0: MOVBE Gv,Mv
0f38f1: MOVBE Mv,Gv
`;

function parse(text: string): OpcodeEntry[] {
  const out: OpcodeEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const [head, body] = line.split(':').map((s) => s.trim());
    const hp = head.split(/\s+/);
    const [opText, regText] = hp[0].split('/');
    let prefix = 0;
    let modClass: '' | 'mem' | 'reg' = '';
    let rm = -1;
    for (const h of hp.slice(1)) {
      if (h.startsWith('prefix=')) prefix = parseInt(h.slice(7), 16);
      else if (h === 'mem' || h === 'reg') modClass = h;
      else if (h.startsWith('rm=')) rm = parseInt(h.slice(3), 10);
    }
    const bp = body.split(/\s+/);
    out.push({
      opcode: parseInt(opText, 16),
      reg: regText === undefined ? -1 : parseInt(regText, 10),
      prefix,
      modClass,
      rm,
      mnemonic: bp[0],
      operands: bp[1] === '-' || bp[1] === undefined ? '' : bp[1],
      attrs: bp.slice(2).join(' '),
    });
  }
  return out;
}

/**
 * SSE/MMX opcode space: the CPU does not implement these (CPUID does not advertise them) but
 * decodes their ModRM so that the #UD/#NM they raise is the architectural one.
 */
function sseRows(): string {
  const ranges: [number, number][] = [
    [0x10, 0x17],
    [0x28, 0x2f],
    [0x50, 0x77],
    [0x7c, 0x7f],
    [0xc2, 0xc6],
    [0xd0, 0xfe],
  ];
  const lines: string[] = [];
  for (const [a, b] of ranges)
    for (let k = a; k <= b; k++) lines.push(`0f${k.toString(16).padStart(2, '0')}: SSE Ev`);
  return lines.join('\n');
}

export const OPCODES: readonly OpcodeEntry[] = [...parse(ONE_BYTE), ...parse(TWO_BYTE), ...parse(sseRows())];

/** Opcodes whose low 3 bits encode a register or condition (Zv forms and cc families). */
export const OPCODE_RANGES: Readonly<Record<number, number>> = {
  0x40: 8,
  0x48: 8,
  0x50: 8,
  0x58: 8,
  0x70: 16,
  0x90: 8,
  0xb0: 8,
  0xb8: 8,
  0x0f40: 16,
  0x0f80: 16,
  0x0f90: 16,
  0x0fc8: 8,
};
