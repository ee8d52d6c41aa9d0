#!/usr/bin/env bash
# Builds the benchmark fixtures offline (nothing is downloaded) and pushes the images to the
# local registry (started by the caller):
#   $BENCH_DIR/oci/small  busybox-static + its applet links: one layer, ~1 MB
#   $BENCH_DIR/oci/big    two layers, ~200 MB gzip / ~270 MB unpacked / ~6,900 entries:
#                         1. busybox + a generated distribution-like tree (gen-tree.py, ~125 MB)
#                         2. /opt/bench-data: 96 MiB incompressible + 48 MiB base64 text
#   $BENCH_DIR/bundles/true  an OCI bundle (busybox rootfs, `runc spec`, /bin/true) for the
#                         runtime comparison
# An image whose build finished is kept (FORCE=1 rebuilds). Sourced by tests/bench.sh.

OCI=$BENCH_DIR/oci
BUILD=$BENCH_DIR/build
BIG_DATA_RANDOM_MB=${BIG_DATA_RANDOM_MB:-96}
BIG_DATA_TEXT_MB=${BIG_DATA_TEXT_MB:-48}

# deterministic pseudo-random stream (AES-CTR keystream of a passphrase), never ends by itself
prng() { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$1" < /dev/zero 2>/dev/null || true; }

busybox_rootfs() { # DIR
  local r=$1 a
  mkdir -p "$r"/{bin,etc,proc,sys,dev,tmp,root,usr,var}
  chmod 1777 "$r/tmp"
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
  ln -s bin "$r/sbin"; ln -s ../bin "$r/usr/bin"; ln -s ../bin "$r/usr/sbin"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
  echo bench > "$r/etc/hostname"
}

# new_image NAME: an empty OCI layout with one tag, unpacked into $BUILD/NAME-bundle
new_image() {
  local img=$OCI/$1 bundle=$BUILD/$1-bundle
  rm -rf "$img" "$img.complete" "$bundle"
  umoci init --layout "$img"
  umoci new --image "$img:latest"
  umoci unpack --image "$img:latest" "$bundle" >/dev/null
}

finish_image() { # NAME CMD
  local img=$OCI/$1
  umoci config --image "$img:latest" --config.cmd "$2" \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.workingdir / --author berth-bench
  umoci gc --layout "$img"
  rm -rf "$BUILD/$1-bundle"
  touch "$img.complete"
}

build_small() {
  log "building the small image (busybox)"
  new_image small
  busybox_rootfs "$BUILD/small-bundle/rootfs"
  umoci repack --image "$OCI/small:latest" "$BUILD/small-bundle"
  finish_image small /bin/sh
}

build_big() {
  log "building the big image (generated tree + 144 MiB of data; takes a minute)"
  new_image big
  local r=$BUILD/big-bundle/rootfs i
  busybox_rootfs "$r"
  python3 "$BENCH_HERE/gen-tree.py" "$r" 6400
  umoci repack --refresh-bundle --image "$OCI/big:latest" "$BUILD/big-bundle"   # layer 1
  mkdir -p "$r/opt/bench-data"
  for i in $(seq 1 $((BIG_DATA_RANDOM_MB / 8))); do
    head -c $((8 << 20)) < <(prng "bench-random-$i") > "$r/opt/bench-data/random-$i.bin"
  done
  for i in $(seq 1 $((BIG_DATA_TEXT_MB / 8))); do
    head -c $((6 << 20)) < <(prng "bench-text-$i") | base64 -w 76 > "$r/opt/bench-data/text-$i.txt"
  done
  umoci repack --image "$OCI/big:latest" "$BUILD/big-bundle"                     # layer 2
  finish_image big /bin/sh
}

build_bundle() {
  local b=$BENCH_DIR/bundles/true
  [ -f "$b/config.json" ] && [ "${FORCE:-0}" != 1 ] && return 0
  log "preparing the runtime bundle $b"
  rm -rf "$b"; mkdir -p "$b"
  busybox_rootfs "$b/rootfs"
  (cd "$b" && runc spec && mv config.json config.orig.json)
  jq '.process.terminal=false | .process.args=["/bin/true"] | .root.readonly=true | .hostname="bench"' \
    "$b/config.orig.json" > "$b/config.json"
  rm "$b/config.orig.json"
}

fixtures() {
  mkdir -p "$OCI" "$BUILD"
  local img
  for img in small big; do
    if [ "${FORCE:-0}" = 1 ] || [ ! -f "$OCI/$img.complete" ]; then "build_$img"; else log "$img image present"; fi
  done
  build_bundle
  for img in small big; do
    # blobs already in the registry are skipped; a rebuilt image replaces the tag
    skopeo copy -q --dest-tls-verify=false "oci:$OCI/$img:latest" "docker://$REG/bench/$img:latest"
  done
  log "fixtures ready: $(du -sh --apparent-size "$OCI/big/blobs" | cut -f1) of big blobs, pushed to $REG/bench/{small,big}:latest"
}
