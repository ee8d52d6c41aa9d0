#!/usr/bin/env bash
# Coverage-guided fuzzing of berth's parsers of hostile input, bounded in time:
#   tests/fuzz.sh [SECONDS] [TARGET...]
# runs each target (default: all of reference dockerfile policy unpack api) for SECONDS
# (default 30) with libFuzzer through `cargo fuzz`, on the stable toolchain, and fails when a
# target finds an input that crashes it (a panic, an assertion of the target, a timeout, or
# running out of memory). The input is left in fuzz/artifacts/<target>/; once the bug is fixed,
# keep it in fuzz/regressions/<target>/, where the normal suite replays it (tests/fuzz).
#
# Installs what it needs when missing: cargo-fuzz (crates.io) and a C++ compiler (Debian's g++,
# for libFuzzer itself). No nightly toolchain is needed: the coverage instrumentation cargo-fuzz
# asks for (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*) is stable, and the
# targets are built without a sanitizer (`-s none`; berth and its parsers have no unsafe code,
# and a panic is what we look for). FUZZ_SANITIZER=address builds with AddressSanitizer
# instead, which needs -Zsanitizer: the script then sets RUSTC_BOOTSTRAP=1 so that the stable
# compiler accepts it.
#
# The working corpus (fuzz/corpus/<target>/, not committed) starts from the committed seeds
# (fuzz/seeds/<target>/) and keeps what earlier runs found. Environment: FUZZ_JOBS (processes:
# libFuzzer -fork; default one, in process), FUZZ_ARGS (more libFuzzer options).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-30}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(reference dockerfile policy unpack api)
CARGO_FUZZ_VERSION=0.13.2
SAN=${FUZZ_SANITIZER:-none}

if ! command -v g++ >/dev/null 2>&1; then
  echo "tests/fuzz.sh: installing g++" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends g++ >/dev/null
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "tests/fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
if [ "$SAN" != none ]; then
  export RUSTC_BOOTSTRAP=1
fi

build_start=$(date +%s)
# The same options for build and run (a difference would rebuild). 16 codegen units instead of
# cargo-fuzz's 1: a faster cold build (CI builds cold), for somewhat fewer executions a second.
OPTS=(-s "$SAN" --codegen-units "${FUZZ_CODEGEN_UNITS:-16}")
# All targets in one build: they share every compiled crate.
(cd fuzz && cargo fuzz build "${OPTS[@]}")
echo "tests/fuzz.sh: built in $(($(date +%s) - build_start)) s" >&2

summary=()
failed=()
for t in "${TARGETS[@]}"; do
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  log=$(mktemp /tmp/berth-fuzz-log-"$t".XXXXXX)
  echo "tests/fuzz.sh: $t for ${SECONDS_EACH} s" >&2
  rc=0
  dict=""
  [ -f "fuzz/dicts/$t.dict" ] && dict="-dict=dicts/$t.dict"
  # -timeout: one input taking longer is a finding; -rss_limit_mb: so is using more memory.
  # shellcheck disable=SC2086
  (cd fuzz && cargo fuzz run "${OPTS[@]}" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=3072 -print_final_stats=1 \
    ${FUZZ_JOBS:+-fork=$FUZZ_JOBS} $dict ${FUZZ_ARGS:-}) >"$log" 2>&1 || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  [ -n "$runs" ] || runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  files=$(find "$corpus" -type f | wc -l)
  summary+=("$(printf '%-10s %10s execs  cov %6s  ft %6s  corpus %5s  rc %s' "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$files" "$rc")")
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    echo "---- $t failed (rc $rc); the end of its log ($log):" >&2
    tail -60 "$log" >&2
    ls -1 "fuzz/artifacts/$t" >&2 || true
  else
    rm -f "$log"
  fi
done

echo "fuzzing, ${SECONDS_EACH} s per target (sanitizer: $SAN):"
printf '  %s\n' "${summary[@]}"
echo "fuzz: $((${#TARGETS[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "tests/fuzz.sh: crashes in: ${failed[*]} (inputs in fuzz/artifacts/<target>/;" \
    "replay with: cd fuzz && cargo fuzz run ${OPTS[*]} <target> <input>)" >&2
  exit 1
fi
