#!/bin/bash
# tvisor on Bochs (a second VMX implementation), headless, booted by GRUB with its guests as
# multiboot modules:
#   guests/tvisor/bochs.sh [-a "TVISOR ARGS"] build/GUEST.elf[=ARGS] ...     (from guests/)
# Needs what tools/bochs-run.sh needs (bochs, bochsbios, vgabios, grub-pc-bin, grub-common,
# xorriso, mtools). Bochs has no isa-debug-exit device, so tvisor's final exit just halts: the
# script stops Bochs once tvisor prints its last report line ("N of M guests ended with code 0")
# or a FATAL line, or after BOCHS_TIMEOUT seconds.
# Exit status: 0 when every guest ended with code 0, 1 when tvisor reported otherwise, 2 when
# there was no report. Environment: BOCHS_CPU (default corei7_haswell_4770), BOCHS_TIMEOUT
# (default 900), BOCHS_MEGS (default 256), BOCHS_WORK (keep the work directory there).
set -u
cd "$(dirname "$0")/.." || exit 2
targs=""
if [ "${1:-}" = "-a" ]; then
	targs=$2
	shift 2
fi
[ $# -ge 1 ] || { echo "usage: tvisor/bochs.sh [-a \"tvisor args\"] build/guest.elf[=args]..." >&2; exit 2; }
cpu=${BOCHS_CPU:-corei7_haswell_4770}
timeout=${BOCHS_TIMEOUT:-900}
megs=${BOCHS_MEGS:-256}
for t in bochs grub-mkrescue xorriso script; do
	command -v $t >/dev/null 2>&1 || { echo "tvisor/bochs.sh: $t not found (see tools/bochs-run.sh)" >&2; exit 2; }
done
[ -f build/tvisor.elf ] || { echo "tvisor/bochs.sh: build/tvisor.elf missing (make)" >&2; exit 2; }

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
cp build/tvisor.elf "$work/iso/boot/tvisor.elf"
{
	echo "set timeout=0"
	echo "set default=0"
	echo "menuentry tvisor {"
	echo "	multiboot /boot/tvisor.elf $targs"
	n=0
	for m in "$@"; do
		file=${m%%=*}
		args=""
		[ "$file" != "$m" ] && args=${m#*=}
		[ -f "$file" ] || { echo "tvisor/bochs.sh: no such guest: $file" >&2; exit 2; }
		cp "$file" "$work/iso/boot/g$n.elf"
		echo "	module /boot/g$n.elf $(basename "$file") $args"
		n=$((n + 1))
	done
	echo "	boot"
	echo "}"
} >"$work/iso/boot/grub/grub.cfg" || exit 2
grub-mkrescue -o "$work/boot.iso" "$work/iso" >"$work/grub-mkrescue.log" 2>&1 || {
	echo "tvisor/bochs.sh: grub-mkrescue failed:" >&2
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
for _ in $(seq 51); do echo c; done >"$work/dbg.rc"
: >"$work/serial.txt"
: >"$work/bochs.pid"
TERM=xterm script -qec "echo \$\$ >$work/bochs.pid; exec bochs -q -f $work/bochsrc -rc $work/dbg.rc" /dev/null \
	</dev/null >"$work/console.txt" 2>&1 &
spid=$!

status=2
elapsed=0
while :; do
	if grep -q 'guests ended with code 0' "$work/serial.txt" 2>/dev/null; then
		if grep -Eq 'tvisor: ([0-9]+) of \1 guests ended with code 0' "$work/serial.txt"; then status=0; else status=1; fi
		break
	fi
	grep -Eq '^(tvisor: )?FATAL' "$work/serial.txt" 2>/dev/null && break
	kill -0 $spid 2>/dev/null || break
	[ $elapsed -ge "$timeout" ] && { echo "tvisor/bochs.sh: timeout after ${timeout}s" >&2; break; }
	sleep 1
	elapsed=$((elapsed + 1))
done
sleep 1
bpid=$(cat "$work/bochs.pid" 2>/dev/null)
[ -n "$bpid" ] && kill -KILL "$bpid" 2>/dev/null
for _ in 1 2 3 4 5; do kill -0 $spid 2>/dev/null || break; sleep 1; done
kill -KILL $spid 2>/dev/null
wait $spid 2>/dev/null

tr -d '\r' <"$work/serial.txt"
grep -a '>>PANIC<<' "$work/bochs.log" | sed 's/^/tvisor\/bochs.sh: /' >&2
if [ $status = 2 ]; then
	echo "tvisor/bochs.sh: no final report; last lines of the Bochs log:" >&2
	grep -v '^\s*$' "$work/bochs.log" | tail -15 >&2
fi
[ $keep = 1 ] || rm -rf "$work"
exit $status
