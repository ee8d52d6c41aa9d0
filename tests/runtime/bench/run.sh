#!/usr/bin/env bash
# Benchmark (not a test): start-to-exit of /bin/true in a busybox bundle, berth vs runc vs crun,
# on the very same bundle, in one hyperfine run.
#
#   tests/runtime/bench/run.sh [BERTH_BINARY]   (default: target/release/berth)
#
# Needs root, busybox-static, runc, crun, hyperfine, jq. crun 1.8 refuses cgroup "hybrid" mode
# while /sys/fs/cgroup/unified offers a controller (here: hugetlb), so for the duration of the
# run a v1 hugetlb hierarchy is mounted (as /work/shared/bench/lib.sh does) and then removed.
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
BERTH=${1:-$(dirname "$0")/../../../target/release/berth}
BERTH=$(readlink -f "$BERTH")
RUNS=${RUNS:-100}
W=${BENCH_DIR:-/tmp/berth-bench}
B=$W/true
rm -rf "$W"; mkdir -p "$B/rootfs/bin" "$B/rootfs/proc" "$B/rootfs/sys" "$B/rootfs/dev" "$B/rootfs/tmp"
cp /bin/busybox "$B/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$B/rootfs/bin/$a"; done
(cd "$B" && runc spec && mv config.json config.orig.json)
jq '.process.terminal=false | .process.args=["/bin/true"] | .root.readonly=true | .hostname="bench"' \
  "$B/config.orig.json" > "$B/config.json"
rm "$B/config.orig.json"

HUGETLB_V1=/sys/fs/cgroup/hugetlb
mounted=0
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && grep -qx hugetlb /sys/fs/cgroup/unified/cgroup.controllers \
   && ! mountpoint -q "$HUGETLB_V1"; then
  mkdir -p "$HUGETLB_V1" && mount -t cgroup -o hugetlb cgroup "$HUGETLB_V1" && mounted=1
fi
cleanup() {
  if [ "$mounted" = 1 ]; then
    # As lib.sh's hugetlb_detach: the hierarchy only dies once its (dying) children are gone.
    for try in 1 2 3; do
      find "$HUGETLB_V1" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
      sleep "$try"
      umount "$HUGETLB_V1" || break
      for i in $(seq 1 20); do
        [ "$(awk '$1=="hugetlb" {print $2}' /proc/cgroups)" = 0 ] && break 2
        sleep 0.5
      done
      mount -t cgroup -o hugetlb cgroup "$HUGETLB_V1" || break
    done
    [ "$(awk '$1=="hugetlb" {print $2}' /proc/cgroups)" = 0 ] || echo "WARNING: v1 hugetlb hierarchy still alive" >&2
    rmdir "$HUGETLB_V1" 2>/dev/null || true
  fi
}
trap cleanup EXIT

cd "$B"
echo "== interleaved loop (berth, crun, runc alternating, order rotating), $RUNS runs each"
"$HERE/interleaved.sh" "$B" "$BERTH" "$RUNS" berth crun runc
# runc's teardown leaves the kernel slow for its successor for a few ms (an RCU grace period
# the next cgroup v1 join waits for), so also compare berth and crun without runc in the mix.
echo "== interleaved loop (berth, crun only), $RUNS runs each"
"$HERE/interleaved.sh" "$B" "$BERTH" "$RUNS" berth crun
echo "== hyperfine"
# Foreground `run` removes the container at exit, so each runtime can reuse one id.
hyperfine -N --warmup 10 --runs "$RUNS" --export-markdown "$W/results.md" --export-json "$W/results.json" \
  -n berth "$BERTH runtime --root /run/berth-bench run --bundle $B bench-b" \
  -n crun "crun --root /run/crun-bench run --bundle $B bench-c" \
  -n runc "runc --root /run/runc-bench run --bundle $B bench-r"
jq -r '.results[] | "\(.command)\tmedian \(.median*1000 | floor) ms\tmean \(.mean*1000 | floor) ms\tmin \(.min*1000 | floor) ms"' "$W/results.json"
