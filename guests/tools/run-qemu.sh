#!/bin/sh
# Run one guest kernel on QEMU as the platform contract describes (see README.md).
#   tools/run-qemu.sh build/hello.elf [ARGS] ; exit status follows isa-debug-exit: (code << 1) | 1
# QEMU_CPU overrides the CPU model (default: max), QEMU_SMP the number of CPUs (default: 2, which
# platform-tests.elf and bench-smp.elf need; the other kernels leave the second CPU waiting for SIPI).
kernel=$1
shift
exec timeout 60 qemu-system-x86_64 -machine pc -smp "${QEMU_SMP:-2}" -kernel "$kernel" -serial stdio \
	-display none -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 -cpu "${QEMU_CPU:-max}" -m 128 \
	-append "$*"
