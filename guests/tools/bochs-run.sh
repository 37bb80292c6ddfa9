#!/bin/bash
# Run one guest kernel on Bochs (a second VMX implementation, with EPT), headless.
#   tools/bochs-run.sh build/vmx-tests.elf [ARGS]
# Needs Debian's bochs, bochsbios, vgabios, grub-pc-bin, grub-common, xorriso, mtools:
#   apt-get install -y bochs bochsbios vgabios grub-pc-bin grub-common xorriso mtools
#
# The kernel is booted by GRUB ("multiboot" command; GRUB loads our ELF32 images) from an ISO
# made by grub-mkrescue. COM1 goes to a file, which this script prints. Bochs has no
# isa-debug-exit device, so the kernel's exit() just halts: the script stops Bochs when the
# serial output shows "SUMMARY:" (or a FATAL line), or after BOCHS_TIMEOUT seconds.
# Exit status: 0 = summary with 0 failed, 1 = summary with failures, 2 = no summary.
#
# Environment:
#   BOCHS_CPU      Bochs CPU model (default corei7_haswell_4770; see `bochs -help cpu`)
#   BOCHS_TIMEOUT  seconds (default 900)
#   BOCHS_MEGS     guest RAM in MiB (default 256)
#   BOCHS_WORK     work directory to keep (default: a temporary one, removed afterwards)
set -u
kernel=$1
shift
args="$*"
cpu=${BOCHS_CPU:-corei7_haswell_4770}
timeout=${BOCHS_TIMEOUT:-900}
megs=${BOCHS_MEGS:-256}
for t in bochs grub-mkrescue xorriso script; do
	command -v $t >/dev/null 2>&1 || { echo "bochs-run: $t not found (see the comment at the top)" >&2; exit 2; }
done
[ -f "$kernel" ] || { echo "bochs-run: no such kernel: $kernel" >&2; exit 2; }

if [ -n "${BOCHS_WORK:-}" ]; then
	work=$BOCHS_WORK
	rm -rf "$work"
	mkdir -p "$work"
	keep=1
else
	work=$(mktemp -d)
	keep=0
fi

mkdir -p "$work/iso/boot/grub"
cp "$kernel" "$work/iso/boot/kernel.elf"
cat >"$work/iso/boot/grub/grub.cfg" <<EOF
set timeout=0
set default=0
menuentry "kernel" {
	multiboot /boot/kernel.elf $args
	boot
}
EOF
grub-mkrescue -o "$work/boot.iso" "$work/iso" >"$work/grub-mkrescue.log" 2>&1 || {
	echo "bochs-run: grub-mkrescue failed:" >&2
	cat "$work/grub-mkrescue.log" >&2
	exit 2
}

cat >"$work/bochsrc" <<EOF
megs: $megs
cpu: model=$cpu, count=1, ips=100000000, reset_on_triple_fault=0
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata0-master: type=cdrom, path=$work/boot.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$work/serial.txt
display_library: term
log: $work/bochs.log
panic: action=warn
error: action=report
info: action=ignore
clock: sync=none
EOF
# Debian's bochs is built with the internal debugger: "c" continues from the first prompt.
# A Bochs PANIC (e.g. "not implemented yet" paths) stops in the debugger: continue from up to
# 50 of them, so one such case does not end the run (each is in bochs.log, and printed below).
for _ in $(seq 51); do echo c; done >"$work/dbg.rc"
: >"$work/serial.txt"

# Bochs' term display wants a terminal: run it under script(1). The inner shell records its
# pid and execs Bochs, so exactly the processes started here can be stopped by their ids.
: >"$work/bochs.pid"
TERM=xterm script -qec "echo \$\$ >$work/bochs.pid; exec bochs -q -f $work/bochsrc -rc $work/dbg.rc" /dev/null \
	</dev/null >"$work/console.txt" 2>&1 &
spid=$!

status=2
elapsed=0
while :; do
	if grep -q '^SUMMARY:' "$work/serial.txt" 2>/dev/null; then
		if grep -q '^SUMMARY: .* 0 failed' "$work/serial.txt"; then status=0; else status=1; fi
		break
	fi
	grep -q '^FATAL' "$work/serial.txt" 2>/dev/null && break
	kill -0 $spid 2>/dev/null || break
	[ $elapsed -ge $timeout ] && { echo "bochs-run: timeout after ${timeout}s" >&2; break; }
	sleep 1
	elapsed=$((elapsed + 1))
done
sleep 1
bpid=$(cat "$work/bochs.pid" 2>/dev/null)
# Bochs ignores SIGTERM while it runs: SIGKILL it; script(1) then ends by itself.
[ -n "$bpid" ] && kill -KILL "$bpid" 2>/dev/null
for _ in 1 2 3 4 5; do kill -0 $spid 2>/dev/null || break; sleep 1; done
kill -KILL $spid 2>/dev/null
wait $spid 2>/dev/null

tr -d '\r' <"$work/serial.txt"
grep -a '>>PANIC<<' "$work/bochs.log" | sed 's/^/bochs-run: /' >&2
if [ $status = 2 ]; then
	echo "bochs-run: no SUMMARY line; last lines of the Bochs log:" >&2
	grep -v '^\s*$' "$work/bochs.log" | tail -15 >&2
fi
[ $keep = 1 ] || rm -rf "$work"
exit $status
