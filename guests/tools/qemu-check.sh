#!/bin/sh
# Runs every kernel in build/ on QEMU (tools/run-qemu.sh) and checks the result: exit status 1
# (debug-exit code 0; l0-scribble.elf: 185, its code 0x5C), no FAIL line, and for test kernels a
# "SUMMARY: N passed, 0 failed" line.
# Usage: tools/qemu-check.sh [kernel.elf...]    (QEMU_CPU overrides the CPU model)
cd "$(dirname "$0")/.." || exit 2
[ $# -gt 0 ] || set -- build/*.elf
bad=0
for k in "$@"; do
	out=$(tools/run-qemu.sh "$k" 2>&1)
	status=$?
	name=$(basename "$k")
	summary=$(printf '%s\n' "$out" | grep '^SUMMARY:')
	fails=$(printf '%s\n' "$out" | grep -c '^FAIL')
	skips=$(printf '%s\n' "$out" | grep -c '^PASS .*(skipped:')
	case "$name" in
	cpu-* | platform-*) want_summary=1 ;;
	*) want_summary=0 ;;
	esac
	case "$name" in
	l0-scribble.elf) want_status=185 ;;
	*) want_status=1 ;;
	esac
	if [ $status -ne $want_status ] || [ "$fails" -ne 0 ] || { [ $want_summary = 1 ] && [ -z "$summary" ]; }; then
		echo "BAD  $name: status=$status ${summary:-no summary}"
		printf '%s\n' "$out" | grep -E '^(FAIL|FATAL)' | sed 's/^/       /'
		bad=1
	else
		echo "OK   $name: status=$status ${summary:-$(printf '%s\n' "$out" | tail -n 1)} (skipped: $skips)"
	fi
done
exit $bad
