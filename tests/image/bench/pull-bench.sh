#!/usr/bin/env bash
# Pull + unpack of the ~200 MB two-layer "big" image from the local registry:
# berth vs `podman pull` vs `skopeo copy` + `umoci unpack`, in one run, each into a fresh
# directory per run (deletions afterwards, untimed), as /work/shared/bench/RESULTS.md does.
#
# Needs: the big image in a registry on 127.0.0.1 (REG, default 127.0.0.1:5055, repo bench/big),
# e.g. built with /work/shared/bench/build-images.sh (ANCHOR_DIR=…) and pushed with
#   skopeo copy --dest-tls-verify=false --preserve-digests oci:$ANCHOR_DIR/oci/big:latest docker://$REG/bench/big:latest
# Debian packages: podman skopeo umoci jq (and a release build of the image test target).
set -euo pipefail
REG=${REG:-127.0.0.1:5055}
REF=$REG/bench/big:latest
RUNS=${RUNS:-5}
W=${W:-/var/tmp/berth-pull-bench}
# ext4 here creates files slowly for a minute after mass deletes (see shared/bench/RESULTS.md):
# wait that long after cleaning up a previous run before timing anything.
COOLDOWN=${COOLDOWN:-65}
cd "$(dirname "$0")/../../.."
if [ -e "$W" ]; then rm -rf "$W"; sync; echo "waiting ${COOLDOWN}s after deleting the previous run" >&2; sleep "$COOLDOWN"; fi
mkdir -p "$W"

cargo test --release -p berth-ui --test image --no-run 2>&1 | tail -1
BIN=$(ls -t target/release/deps/image-* | grep -v '\.d$' | head -1)

# podman: its own storage per run, overlay driver (as the shared bench's storage.conf), no registries.conf lookups
PC=$W/podman-etc; mkdir -p "$PC"
printf '[storage]\ndriver = "overlay"\nrunroot = "%s/podman-run"\ngraphroot = "%s/podman-unused"\n' "$W" "$W" > "$PC/storage.conf"
printf 'unqualified-search-registries = []\n' > "$PC/registries.conf"
export CONTAINERS_STORAGE_CONF=$PC/storage.conf CONTAINERS_REGISTRIES_CONF=$PC/registries.conf

ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", (b-a)*1000}'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A T
run() { # run NAME I COMMAND...
  local name=$1 i=$2; shift 2
  sync
  local t0=$EPOCHREALTIME
  "$@" > "$W/$name-$i.log" 2>&1 || { echo "FAILED: $*" >&2; tail -5 "$W/$name-$i.log" >&2; exit 1; }
  local t1=$EPOCHREALTIME
  T[$name]+="$(ms "$t0" "$t1") "
  printf '%-14s run %d: %6d ms\n' "$name" "$i" "$(ms "$t0" "$t1")"
}
berth_pull() { BERTH_BENCH_REF=$REF BERTH_BENCH_ROOT=$W/berth-$1 "$BIN" --ignored --exact bench::bench_pull_once --nocapture; }
podman_pull() { mkdir -p "$W/podman-$1"; podman --root "$W/podman-$1" --runroot "/run/bpb-$1" pull -q --tls-verify=false "$REF"; }
skopeo_umoci() { skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$W/oci-$1:latest" && umoci unpack --image "$W/oci-$1:latest" "$W/umoci-$1"; }

# one untimed warm-up of each (registry and page cache warm)
berth_pull w >/dev/null 2>&1; podman_pull w >/dev/null 2>&1; skopeo_umoci w >/dev/null 2>&1
for i in $(seq 1 "$RUNS"); do
  # podman needs its storage initialised untimed first, as in the shared bench
  mkdir -p "$W/podman-$i"; podman --root "$W/podman-$i" --runroot "/run/bpb-$i" images >/dev/null
  run berth "$i" berth_pull "$i"
  run podman "$i" podman_pull "$i"
  run skopeo+umoci "$i" skopeo_umoci "$i"
done
bytes=$(skopeo inspect --raw --tls-verify=false "docker://$REF" | jq '[.layers[].size] | add')
echo
printf '%-14s %10s %10s\n' tool median_ms MB/s
for n in berth podman skopeo+umoci; do
  m=$(echo "${T[$n]}" | tr ' ' '\n' | grep . | median)
  printf '%-14s %10s %10.1f\n' "$n" "$m" "$(awk -v b="$bytes" -v m="$m" 'BEGIN {print b/1e6/(m/1000)}')"
done
bm=$(echo "${T[berth]}" | tr ' ' '\n' | grep . | median); pm=$(echo "${T[podman]}" | tr ' ' '\n' | grep . | median)
awk -v b="$bm" -v p="$pm" 'BEGIN {printf "berth is %.2fx faster than podman pull\n", p/b}'
# clean up (untimed): podman's overlay mounts first
for d in "$W"/podman-*/overlay; do [ -d "$d" ] && grep -o " $d[^ ]*" /proc/mounts | xargs -r -n1 umount 2>/dev/null || true; done
for d in /run/bpb-*; do umount -R "$d" 2>/dev/null || true; rm -rf "$d"; done
# $W stays: deleting it now would slow whatever creates files next; the next run deletes it.
echo "results in $W (deleted by the next run)"
