#!/usr/bin/env bash
# Interleaved start-to-exit timing (berth, crun, runc alternating run by run, so that load
# changes on a shared machine hit all three alike). The order rotates every round: each
# runtime's asynchronous teardown (e.g. the kernel's network-namespace cleanup) otherwise
# always lands on the same successor. Used by run.sh; expects the bundle at $B
# and the hugetlb workaround in place. Prints name, n, min, median, mean (ms).
set -euo pipefail
B=$1; BERTH=$2; RUNS=${3:-100}; shift 3 || true
declare -A T
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(berth crun runc)
k_n=${#names[@]}
cmd() {
  case $1 in
    berth) "$BERTH" runtime --root /run/berth-bench run --bundle "$B" bench-b ;;
    crun) crun --root /run/crun-bench run --bundle "$B" bench-c ;;
    runc) runc --root /run/runc-bench run --bundle "$B" bench-r ;;
  esac
}
for ((i = 0; i < RUNS + 10; i++)); do
  for ((k = 0; k < k_n; k++)); do
    n=${names[$(((i + k) % k_n))]}
    t0=$EPOCHREALTIME
    cmd "$n" >/dev/null
    t1=$EPOCHREALTIME
    ((i >= 10)) && T[$n]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b-a)*1000}') "
  done
done
for n in "${names[@]}"; do
  echo "${T[$n]}" | tr ' ' '\n' | grep . | sort -n | awk -v n="$n" '{a[NR]=$1; s+=$1} END {
    m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
    printf "%-6s n=%d  min=%.2f  median=%.2f  mean=%.2f ms\n", n, NR, a[1], m, s/NR }'
done
