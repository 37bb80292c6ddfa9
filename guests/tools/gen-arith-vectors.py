#!/usr/bin/env python3
"""Generates kernels/cpu-arith-vectors.h: inputs and expected results for cpu-arith.c.

The expected values are computed here with Python's arbitrary-precision integers, following
C semantics (wrap-around for unsigned, truncating division, arithmetic right shift for signed),
independently of gcc and of any x86 CPU. Each OPS entry must match an OP(...) line in
kernels/cpu-arith.c, which computes the same expression in C from the same inputs.

Usage: python3 tools/gen-arith-vectors.py > kernels/cpu-arith-vectors.h
"""

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
M16 = (1 << 16) - 1
M8 = (1 << 8) - 1
M128 = (1 << 128) - 1

INPUTS = [
    (0, 0),
    (1, 1),
    (M64, 1),
    (M64, M64),
    (0x8000000000000000, M64),
    (0x7FFFFFFFFFFFFFFF, 2),
    (0x8000000000000000, 0x8000000000000000),
    (0x00000000FFFFFFFF, 0x00000000FFFFFFFF),
    (0x0000000080000000, 0x000000007FFFFFFF),
    (0x123456789ABCDEF0, 0x0FEDCBA987654321),
    (0xDEADBEEFCAFEBABE, 0x000000000000003F),
    (0xFFFFFFFFFFFFFF85, 0x0000000000000007),  # -123, 7
    (0x0000000000000064, 0xFFFFFFFFFFFFFFF9),  # 100, -7
    (0xF0F0F0F0F0F0F0F0, 0x0000000000000040),
    (0x0123456789ABCDEF, 0x0000000000000021),
    (0x8000000000000001, 0x0000000000000001),
    (0x00000000000000FF, 0x0000000000008000),
    (0x7FFF8000FFFF0001, 0xFFFFFFFF00000000),
]


def s64(x):
    x &= M64
    return x - (1 << 64) if x >> 63 else x


def s32(x):
    x &= M32
    return x - (1 << 32) if x >> 31 else x


def s16(x):
    x &= M16
    return x - (1 << 16) if x >> 15 else x


def s8(x):
    x &= M8
    return x - (1 << 8) if x >> 7 else x


def s128(x):
    x &= M128
    return x - (1 << 128) if x >> 127 else x


def tdiv(a, b):
    """C division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def tmod(a, b):
    return a - tdiv(a, b) * b


def sdivisor(a, b, smin):
    """Mirror of fix_sdiv() in cpu-arith.c: avoid division by zero and INT_MIN / -1."""
    if b == 0:
        return 7
    if b == -1 and a == smin:
        return 3
    return b


def udivisor(b):
    return b if b else 7


def rol(x, n, bits):
    m = (1 << bits) - 1
    n %= bits
    return ((x << n) | (x >> ((bits - n) % bits))) & m


def ror(x, n, bits):
    return rol(x, (bits - n % bits) % bits, bits)


def clz(x, bits):
    return bits - x.bit_length()


def ctz(x):
    return (x & -x).bit_length() - 1


def bswap(x, nbytes):
    return int.from_bytes(x.to_bytes(nbytes, "little"), "big")


def clrsb(x):
    """Leading redundant sign bits of a signed 64-bit value."""
    v = s64(x)
    if v < 0:
        v = ~v
    return 63 - v.bit_length()


def ovf(v, lo, hi):
    return 1 if v < lo or v > hi else 0


def u128(a, b):
    return ((a << 64) | b) & M128


# name -> function(a, b) returning the expected value as uint64 (C cast to uint64_t)
OPS = {
    "add64": lambda a, b: (a + b) & M64,
    "sub64": lambda a, b: (a - b) & M64,
    "mul64": lambda a, b: (a * b) & M64,
    "neg64": lambda a, b: (-a) & M64,
    "umulhi64": lambda a, b: (a * b) >> 64,
    "smulhi64": lambda a, b: ((s64(a) * s64(b)) >> 64) & M64,
    "udiv64": lambda a, b: a // udivisor(b),
    "umod64": lambda a, b: a % udivisor(b),
    "sdiv64": lambda a, b: tdiv(s64(a), sdivisor(s64(a), s64(b), -(1 << 63))) & M64,
    "smod64": lambda a, b: tmod(s64(a), sdivisor(s64(a), s64(b), -(1 << 63))) & M64,
    "shl64": lambda a, b: (a << (b & 63)) & M64,
    "shr64": lambda a, b: a >> (b & 63),
    "sar64": lambda a, b: (s64(a) >> (b & 63)) & M64,
    "rol64": lambda a, b: rol(a, b & 63, 64),
    "ror64": lambda a, b: ror(a, b & 63, 64),
    "mul32": lambda a, b: ((a & M32) * (b & M32)) & M32,
    "udiv32": lambda a, b: (a & M32) // udivisor(b & M32),
    "sdiv32": lambda a, b: tdiv(s32(a), sdivisor(s32(a), s32(b), -(1 << 31))) & M64,
    "smod32": lambda a, b: tmod(s32(a), sdivisor(s32(a), s32(b), -(1 << 31))) & M64,
    "shl32": lambda a, b: ((a & M32) << (b & 31)) & M32,
    "sar32": lambda a, b: (s32(a) >> (b & 31)) & M64,
    "rol32": lambda a, b: rol(a & M32, b & 31, 32),
    "mul16": lambda a, b: ((a & M16) * (b & M16)) & M16,
    "udiv16": lambda a, b: (a & M16) // udivisor(b & M16),
    "sdiv8": lambda a, b: tdiv(s8(a), sdivisor(s8(a), s8(b), -128)) & M64,
    "umod8": lambda a, b: (a & M8) % udivisor(b & M8),
    "sext8": lambda a, b: s8(a) & M64,
    "sext16": lambda a, b: s16(a) & M64,
    "sext32": lambda a, b: s32(a) & M64,
    "zext32": lambda a, b: a & M32,
    "cmp": lambda a, b: (1 if s64(a) < s64(b) else 0)
    | (2 if a < b else 0)
    | (4 if s64(a) <= s64(b) else 0)
    | (8 if a >= b else 0)
    | (16 if a == b else 0),
    "smax": lambda a, b: max(s64(a), s64(b)) & M64,
    "umin": lambda a, b: min(a, b),
    "popcount": lambda a, b: bin(a).count("1"),
    "parity": lambda a, b: bin(a).count("1") & 1,
    "clz": lambda a, b: clz(a | 1, 64),
    "ctz": lambda a, b: ctz(a | 0x8000000000000000),
    "ffs": lambda a, b: ctz(a) + 1 if a else 0,
    "clrsb": lambda a, b: clrsb(a),
    "clz32": lambda a, b: clz((a & M32) | 1, 32),
    "bswap64": lambda a, b: bswap(a, 8),
    "bswap32": lambda a, b: bswap(a & M32, 4),
    "bswap16": lambda a, b: bswap(a & M16, 2),
    "sadd_ovf": lambda a, b: ovf(s64(a) + s64(b), -(1 << 63), (1 << 63) - 1),
    "uadd_carry": lambda a, b: 1 if a + b > M64 else 0,
    "ssub_ovf": lambda a, b: ovf(s64(a) - s64(b), -(1 << 63), (1 << 63) - 1),
    "usub_borrow": lambda a, b: 1 if a < b else 0,
    "smul_ovf": lambda a, b: ovf(s64(a) * s64(b), -(1 << 63), (1 << 63) - 1),
    "umul_ovf": lambda a, b: 1 if a * b > M64 else 0,
    "add128_hi": lambda a, b: ((u128(a, b) + u128(b, a)) & M128) >> 64,
    "sub128_hi": lambda a, b: ((u128(a, b) - u128(b, a)) & M128) >> 64,
    "mul128_lo_hi": lambda a, b: ((u128(a, b) * u128(b, a)) & M128) >> 64,
    "shl128_hi": lambda a, b: ((u128(a, b) << (b & 127)) & M128) >> 64,
    "shr128_lo": lambda a, b: (u128(a, b) >> (b & 127)) & M64,
    "sar128_lo": lambda a, b: (s128(u128(a, b)) >> (b & 127)) & M64,
}


def main():
    print("/* Generated by tools/gen-arith-vectors.py: do not edit. */")
    print("/* clang-format off */")
    print(f"#define ARITH_N {len(INPUTS)}")
    print("static const uint64_t arith_in[ARITH_N][2] = {")
    for a, b in INPUTS:
        print(f"\t{{ 0x{a:016X}ull, 0x{b:016X}ull }},")
    print("};")
    for name, fn in OPS.items():
        vals = [fn(a, b) & M64 for a, b in INPUTS]
        print(f"static const uint64_t want_{name}[ARITH_N] = {{")
        for i in range(0, len(vals), 3):
            print("\t" + " ".join(f"0x{v:016X}ull," for v in vals[i : i + 3]))
        print("};")


if __name__ == "__main__":
    main()
