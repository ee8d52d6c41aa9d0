#!/usr/bin/env bash
# berth's benchmark suite (a benchmark, not a test: tests/run.sh never runs it). As root:
#
#   tests/bench.sh                 everything: install, build, fixtures, every comparison, table
#   tests/bench.sh runtime run     only some sections: runtime run serve console memory pull load
#
# 1. installs what it compares against and needs (Debian: runc crun podman skopeo umoci
#    docker-registry hyperfine jq busybox-static tmux python3 openssl curl; a docker CLI if none),
# 2. builds berth (release) and its criterion benches,
# 3. builds the fixtures offline (a busybox image, a ~200 MB two-layer image, an OCI bundle)
#    and serves them from a docker-registry on 127.0.0.1 (port BENCH_REGISTRY_PORT, 5077),
# 4. runs every comparison, tools interleaved run by run, with warm-up runs,
# 5. prints a Markdown table: min / median / max per tool and each median relative to berth's.
#
# Knobs: RUNS (fast things, 50), SLOW_RUNS (engine runs, 20), PULL_RUNS (5), COOLDOWN (s, 370),
# BENCH_DIR (/var/tmp/berth-bench), BERTH (a prebuilt binary; skips the build),
# CONSOLE_CONTAINERS (1000), SERVE_CONTAINERS (200), LOAD_CONTAINERS (200), LOAD_CLIENTS (50),
# LOAD_SECS (API soak, 120), LOAD_KEY_ROUNDS (20), DOCKER_CLI (a docker CLI; default /usr/local/bin/docker or `docker`).
# Results: $BENCH_DIR/results/{table.md,commands.md,summary.tsv,metrics.tsv,env.txt,raw/}.
# Everything it starts (registry, berth serve, console, containers) is stopped on exit; the
# hugetlb mount crun needs and the CNI bridge podman creates are undone.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
BENCH_HERE=$REPO/tests/bench
# shellcheck source=bench/lib.sh
. "$BENCH_HERE/lib.sh"
# shellcheck source=bench/fixtures.sh
. "$BENCH_HERE/fixtures.sh"

[ "$(id -u)" = 0 ] || { echo "tests/bench.sh: run as root (containers, mounts, cgroups)" >&2; exit 1; }
RUNS=${RUNS:-50}
SLOW_RUNS=${SLOW_RUNS:-20}
PULL_RUNS=${PULL_RUNS:-5}
COOLDOWN=${COOLDOWN:-370}
CONSOLE_CONTAINERS=${CONSOLE_CONTAINERS:-1000}
LOAD_CONTAINERS=${LOAD_CONTAINERS:-200}
LOAD_CLIENTS=${LOAD_CLIENTS:-50}
LOAD_SECS=${LOAD_SECS:-120}
LOAD_KEY_ROUNDS=${LOAD_KEY_ROUNDS:-20}
SECTIONS=${*:-runtime run serve console memory pull load}
SMALL=$REG/bench/small:latest
BIG=$REG/bench/big:latest
B=$BENCH_DIR/bundles/true
mkdir -p "$BENCH_DIR" "$RESULTS/raw"

# ---- 1. packages ----------------------------------------------------------------------------------
PKGS=(runc crun podman skopeo umoci docker-registry hyperfine jq busybox-static tmux python3 openssl curl)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
DOCKER_CLI=${DOCKER_CLI:-$( [ -x /usr/local/bin/docker ] && echo /usr/local/bin/docker || command -v docker || true)}
[ -z "$DOCKER_CLI" ] && missing+=(docker.io)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # keep package scripts from starting services (dockerd, the registry)
  ours=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; ours=1; fi
  apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null || { log "apt-get install failed"; exit 1; }
  [ -n "$ours" ] && rm -f /usr/sbin/policy-rc.d
  [ -z "$DOCKER_CLI" ] && DOCKER_CLI=$(command -v docker)
fi

# ---- cleanup on exit ------------------------------------------------------------------------------
SERVE_PID="" CONSOLE_SESSION=bb-console-$$
PRE_LINKS=$(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1)
PRE_CHAINS=$(for t in filter nat; do iptables -t "$t" -S 2>/dev/null | awk -v t="$t" '$1=="-N" {print t" "$2}'; done)
on_exit() {
  tmux kill-session -t "$CONSOLE_SESSION" 2>/dev/null
  [ -n "$SERVE_PID" ] && { serve_clear; kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null; }
  [ -n "${CONTAINERS_CONF:-}" ] && podman_cleanup
  for rt in runc crun; do
    for id in $($rt --root "/run/$rt-bench" list -q 2>/dev/null); do $rt --root "/run/$rt-bench" delete -f "$id" >/dev/null 2>&1; done
  done
  # podman's CNI bridge: the link and iptables chains it left, if they were not there before
  if ip link show cni-podman0 >/dev/null 2>&1 && ! grep -qx cni-podman0 <<< "$PRE_LINKS"; then ip link del cni-podman0; fi
  local t c
  for t in filter nat; do
    for c in $(iptables -t "$t" -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^CNI-/ {print $2}'); do
      grep -qx "$t $c" <<< "$PRE_CHAINS" && continue
      iptables -t "$t" -S 2>/dev/null | grep -E "^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) .*-j $c( |$)" \
        | sed 's/^-A /-D /' | while read -r rule; do eval "iptables -t $t $rule" 2>/dev/null; done
      iptables -t "$t" -F "$c" 2>/dev/null; iptables -t "$t" -X "$c" 2>/dev/null
    done
  done
  # the pulls' results (kept until now: see section_pull)
  [ -d "$BENCH_DIR/pull" ] && { log "removing the pulls' results"; pull_cleanup; }
  hugetlb_v1_umount
  registry_stop
  table_md; commands_md
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---- 2. build -----------------------------------------------------------------------------------
if [ -z "${BERTH:-}" ]; then
  log "building berth (release)"
  cargo build --release -p berth-ui --bin berth 2>&1 | tail -1
  BERTH=$REPO/target/release/berth
fi
BERTH=$(readlink -f "$BERTH")
[ -x "$BERTH" ] || { log "no berth binary at $BERTH"; exit 1; }

section_env() {
  {
    echo "date: $(date -u +%FT%TZ)"
    echo "berth: $("$BERTH" version 2>/dev/null | head -1) ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet 2>/dev/null || echo -dirty))"
    echo "kernel: $(uname -r); $(. /etc/os-release; echo "$PRETTY_NAME")"
    echo "cpus: $(nproc) ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)); mem: $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "cgroup: $(stat -fc %T /sys/fs/cgroup); $BENCH_DIR on $(findmnt -no FSTYPE -T "$BENCH_DIR")"
    echo "loadavg at start: $(cat /proc/loadavg)"
    for p in runc crun podman skopeo umoci docker-registry hyperfine; do
      printf '%s %s; ' "$p" "$(dpkg-query -W -f '${Version}' "$p" 2>/dev/null || echo -)"
    done
    echo; echo "docker CLI: $DOCKER_CLI ($("$DOCKER_CLI" --version 2>/dev/null))"
  } > "$RESULTS/env.txt"
  cat "$RESULTS/env.txt" >&2
}

# ---- sections -------------------------------------------------------------------------------------
# start to exit of /bin/true on one OCI bundle
section_runtime() {
  log "== runtime: start-to-exit on one bundle"
  hugetlb_v1_mount
  local bcmd="$BERTH runtime --root /run/berth-bench run --bundle $B bench-b"
  local ccmd="crun --root /run/crun-bench run --bundle $B bench-c"
  local rcmd="runc --root /run/runc-bench run --bundle $B bench-r"
  interleave "start-to-exit (bundle)" "$RUNS" 10 berth "$bcmd" crun "$ccmd" runc "$rcmd"
  # runc's teardown slows its successor (an RCU grace period on the next cgroup v1 join): the
  # pair that the target is about, without runc in the mix
  interleave "start-to-exit, berth vs crun" "$RUNS" 10 berth "$bcmd" crun "$ccmd"
}

BR=$BENCH_DIR/berth-root
section_run() {
  log "== run --rm IMAGE true: berth vs podman"
  "$BERTH" --root "$BR" pull "$SMALL" >/dev/null || { log "berth pull failed"; return 1; }
  hugetlb_v1_mount; podman_env crun
  podman pull -q --tls-verify=false "$SMALL" >/dev/null || { log "podman pull failed"; return 1; }
  interleave "run --rm true, --network=none" "$SLOW_RUNS" 3 \
    berth "$BERTH --root $BR run --rm --network=none $SMALL true" \
    podman "podman run --rm --network=none $SMALL true"
  interleave "run --rm true, default network" "$SLOW_RUNS" 3 \
    berth "$BERTH --root $BR run --rm $SMALL true" \
    podman "podman run --rm $SMALL true"
  podman_cleanup
}

SR=$BENCH_DIR/serve-root SOCK=$BENCH_DIR/berth.sock
dk() { DOCKER_CONFIG=$BENCH_DIR/docker-config "$DOCKER_CLI" -H "unix://$SOCK" "$@"; }
serve_start() {
  [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null && return 0
  mkdir -p "$BENCH_DIR/docker-config"
  "$BERTH" --root "$SR" serve --socket "$SOCK" > "$BENCH_DIR/serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 100); do dk version >/dev/null 2>&1 && return 0; sleep 0.05; done
  log "berth serve did not answer: $(tail -3 "$BENCH_DIR/serve.log")"; return 1
}
SERVE_CONTAINERS=${SERVE_CONTAINERS:-200}
section_serve() {
  log "== docker CLI through berth serve"
  serve_start || return 1
  dk pull -q "$SMALL" >/dev/null || { log "docker pull through berth serve failed"; return 1; }
  local D="env DOCKER_CONFIG=$BENCH_DIR/docker-config $DOCKER_CLI -H unix://$SOCK"
  serve_clear
  hf "docker ps (berth serve)" berth -N --warmup 5 --runs "$RUNS" -- "$D ps"
  # what the docker CLI itself costs (it starts no connection for --version)
  hf "docker ps (berth serve)" "docker --version (CLI floor)" -N --warmup 5 --runs "$RUNS" -- "$DOCKER_CLI --version"
  hf "docker run --rm true (berth serve)" berth -N --warmup 3 --runs "$SLOW_RUNS" -- "$D run --rm --network none $SMALL true"
  hf "docker run --rm true (berth serve)" "berth, default network" -N --warmup 3 --runs "$SLOW_RUNS" -- "$D run --rm $SMALL true"
  # `docker ps` with SERVE_CONTAINERS running containers (`sleep`, no network: their count, not
  # their networking, is what is measured), and `ps -a` with as many more created ones
  local i t0
  log "starting $SERVE_CONTAINERS containers through berth serve"
  t0=$EPOCHREALTIME
  for ((i = 0; i < SERVE_CONTAINERS; i++)); do
    dk run -d --network none --name "bench-up-$i" "$SMALL" sleep 86400 >/dev/null \
      || { log "docker run -d failed: $(tail -2 "$BENCH_DIR/serve.log")"; serve_clear; return 1; }
  done
  metric serve "docker run -d, $SERVE_CONTAINERS in a row" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" -v n="$SERVE_CONTAINERS" 'BEGIN {printf "%.1f", (b-a)*1000/n}')" "ms each" "–" \
    "mean wall time of one 'docker run -d --network none IMAGE sleep 86400' while filling the engine"
  hf "docker ps, $SERVE_CONTAINERS running (berth serve)" berth -N --warmup 5 --runs "$RUNS" -- "$D ps"
  for ((i = 0; i < SERVE_CONTAINERS; i++)); do
    dk create --network none --name "bench-created-$i" "$SMALL" true >/dev/null \
      || { log "docker create failed"; serve_clear; return 1; }
  done
  hf "docker ps -a, $SERVE_CONTAINERS running + $SERVE_CONTAINERS created (berth serve)" berth -N --warmup 5 --runs "$RUNS" -- "$D ps -a"
  hf "docker run --rm true, $SERVE_CONTAINERS running (berth serve)" berth -N --warmup 3 --runs "$SLOW_RUNS" -- "$D run --rm --network none $SMALL true"
  serve_clear
}
# remove the serve section's containers (also what an interrupted run left); by name, as
# berth's container list has no label filter
serve_clear() {
  local ids
  ids=$(dk ps -aq --filter name=bench-)
  [ -z "$ids" ] && return 0
  log "removing $(wc -w <<< "$ids") containers"
  DOCKER_CONFIG=$BENCH_DIR/docker-config xargs -r -n 50 "$DOCKER_CLI" -H "unix://$SOCK" rm -f <<< "$ids" >/dev/null
}

# criterion: the console's frame with 1,000 containers; then the live console's idle CPU
CR=$BENCH_DIR/console-root
section_console() {
  log "== console: frame time (criterion) and idle CPU"
  cargo bench -p berth-ui --bench console -- --noplot > "$RESULTS/raw/criterion-console.txt" 2>&1 \
    || { log "cargo bench failed: $(tail -5 "$RESULTS/raw/criterion-console.txt")"; }
  local id
  for id in frame_1000_containers_160x48 refresh_1000_containers_160x48 frame_1000_containers_80x24; do
    local s=$REPO/target/criterion/console/$id/new/sample.json
    [ -f "$s" ] || { log "no criterion sample for $id"; continue; }
    # per-iteration time of each sample, in ms
    jq -r '[.iters, .times] | transpose[] | (.[1] / .[0] / 1e6)' "$s" \
      | add_raw "console frame" "berth $id" "criterion (cargo bench -p berth-ui --bench console), per-iteration time of each sample" "ui/benches/console.rs: $id"
  done
  console_root_fill || return 1
  console_start "$CR" || return 1
  sleep 5   # let the first list settle before counting
  local pid t0 t1 secs=${IDLE_SECS:-20} hz
  pid=$(console_pid); hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$pid"); sleep "$secs"; t1=$(cpu_ticks "$pid")
  metric console "idle CPU, $CONSOLE_CONTAINERS containers" "$(awk -v a="$t0" -v b="$t1" -v s="$secs" -v h="$hz" 'BEGIN {printf "%.2f", (b-a)/h/s*100}')" "% of one CPU" "~0" \
    "utime+stime of the console over ${secs} s with nothing happening (160x48 tmux pane)"
  metric memory "idle console + engine RSS, $CONSOLE_CONTAINERS containers" "$(( $(rss_kb "$pid") / 1024 ))" MB "≤ 20 MB" "VmRSS of the console process (the engine runs inside it)"
  console_stop
  # a created container keeps its monitor and waiting init alive: remove them all again
  log "removing the $CONSOLE_CONTAINERS containers"
  "$BERTH" --root "$CR" ps -aq | xargs -r -n 100 "$BERTH" --root "$CR" rm -f >/dev/null
}
console_root_fill() {
  "$BERTH" --root "$CR" pull "$SMALL" >/dev/null || return 1
  local have; have=$("$BERTH" --root "$CR" ps -aq | wc -l)
  [ "$have" -ge "$CONSOLE_CONTAINERS" ] && return 0
  log "creating $((CONSOLE_CONTAINERS - have)) containers in $CR"
  local i
  for ((i = have; i < CONSOLE_CONTAINERS; i++)); do
    "$BERTH" --root "$CR" create --network=none --name "bench-$i" "$SMALL" true >/dev/null || { log "create failed"; return 1; }
  done
}
console_pid() { tmux list-panes -t "$CONSOLE_SESSION" -F '#{pane_pid}' 2>/dev/null | head -1; }
console_start() {
  tmux kill-session -t "$CONSOLE_SESSION" 2>/dev/null
  tmux new-session -d -s "$CONSOLE_SESSION" -x 160 -y 48 "exec $BERTH --root $1"
  local _
  for _ in $(seq 1 100); do
    tmux capture-pane -p -t "$CONSOLE_SESSION" 2>/dev/null | grep -q 'bench-\|Containers' && return 0
    sleep 0.1
  done
  log "the console did not draw: $(tmux capture-pane -p -t "$CONSOLE_SESSION" | head -5)"; return 1
}
console_stop() { tmux kill-session -t "$CONSOLE_SESSION" 2>/dev/null; }

section_memory() {
  log "== memory: idle console, berth serve, a container's monitor"
  local ER=$BENCH_DIR/empty-root pid
  mkdir -p "$ER"
  console_start "$ER" || return 1
  sleep 5; pid=$(console_pid)
  metric memory "idle console + engine RSS, no containers" "$(( $(rss_kb "$pid") / 1024 ))" MB "≤ 20 MB" "VmRSS of the console process, 5 s after start"
  console_stop
  serve_start || return 1
  sleep 2
  metric memory "idle berth serve RSS" "$(( $(rss_kb "$SERVE_PID") / 1024 ))" MB "–" "VmRSS of berth serve (the engine) after the serve section; dockerd+containerd idle here: 117 MB"
  local id mon
  id=$("$BERTH" --root "$BR" run -d --network=none "$SMALL" sleep 600) || return 1
  sleep 1
  mon=$(pgrep -f "^[^ ]*berth .*$id" | head -1)
  [ -z "$mon" ] && mon=$(ps -eo pid=,args= | awk -v id="${id:0:12}" 'index($0, id) && $0 !~ /awk/ {print $1; exit}')
  if [ -n "$mon" ]; then
    metric memory "monitor RSS (one running container)" "$(( $(rss_kb "$mon") ))" kB "–" "VmRSS of the container's monitor process (pid $mon); conmon does the same job for podman"
  else
    log "no monitor process found for $id"
  fi
  "$BERTH" --root "$BR" rm -f "$id" >/dev/null
}

# pull + unpack: each run into a fresh place; nothing is deleted until the bench ends. On this
# machine's ext4 (no journal), creating files is slow for minutes after a mass delete: with no
# journal, ext4's inode allocator skips inodes freed less than 60 s ago, or 360 s ago while their
# inode table block is dirty (fs/ext4/ialloc.c, recently_deleted), and the creates themselves dirty
# those blocks; every create scans past them again from its group's start. A pull then pays
# seconds of sys time for whatever was deleted before it, whoever deleted it (measured: berth
# 0.7 -> 3.3 s, podman 2.2 -> 5+ s). So the section deletes nothing between runs, and starts after
# COOLDOWN (370 s) with no deletes: earlier sections (memory's 1,000 containers) delete a lot.
PW=$BENCH_DIR/pull
pull_cleanup() {
  unmount_under "$PW"
  local d; for d in /run/bbp-*; do [ -e "$d" ] && { unmount_under "$d"; rm -rf "$d"; }; done
  rm -rf "$PW"
}
pull_group() { # GROUP REF RUNS
  local group=$1 ref=$2 runs=$3 i k j n c id t0 t1
  local names=(berth podman skopeo+umoci) cmds=(
    "$BERTH --root $PW/b-@ID@ pull $ref"
    "podman --root $PW/p-@ID@ --runroot /run/bbp-@ID@ pull -q --tls-verify=false $ref"
    "skopeo copy -q --src-tls-verify=false docker://$ref oci:$PW/o-@ID@:latest && umoci unpack --image $PW/o-@ID@:latest $PW/u-@ID@")
  # podman's storage is initialised untimed first, as in shared/bench
  local prep="mkdir -p $PW/p-@ID@ && podman --root $PW/p-@ID@ --runroot /run/bbp-@ID@ images >/dev/null"
  for n in "${names[@]}"; do : > "$RESULTS/raw/$group.$n.txt"; done
  for ((i = 0; i <= runs; i++)); do   # round 0 is the warm-up
    for ((k = 0; k < 3; k++)); do
      j=$(((i + k) % 3)); n=${names[$j]}; id=$group-$j-$i; id=${id// /-}
      if [ "$n" = podman ]; then eval "${prep//@ID@/$id}" || { log "podman storage init failed"; return 1; }; fi
      c=${cmds[$j]//@ID@/$id}
      sync
      t0=$EPOCHREALTIME
      eval "$c" >/dev/null 2>>"$RESULTS/raw/$group.$n.err" || { log "FAILED ($group/$n): $c"; tail -3 "$RESULTS/raw/$group.$n.err" >&2; return 1; }
      t1=$EPOCHREALTIME
      ((i > 0)) && ms_between "$t0" "$t1" >> "$RESULTS/raw/$group.$n.txt"
    done
  done
  for ((k = 0; k < 3; k++)); do
    n=${names[$k]}
    add_raw "$group" "$n" "interleaved, order rotating; a fresh directory per run, nothing deleted in between; 1 warm-up round; after ${COOLDOWN}s without deletes" \
      "${cmds[$k]}" < "$RESULTS/raw/$group.$n.txt"
  done
}
section_pull() {
  log "== pull + unpack: berth vs podman vs skopeo+umoci"
  podman_env crun
  pull_cleanup; mkdir -p "$PW"
  # every run's results stay until the end: about 1.3 GB per round of the big image (3 tools)
  local need=$(( (PULL_RUNS + 1) * 1400 + 11 * 3 * 20 )) avail
  avail=$(df -Pm "$PW" | awk 'NR==2 {print $4}')
  if ((avail < need + 2048)); then
    log "pull: ${avail} MB free on $PW, the runs need ~${need} MB (lower PULL_RUNS)"; return 1
  fi
  sync; log "waiting ${COOLDOWN}s with no deletes before the pulls (ext4 recently_deleted, see above)"; sleep "$COOLDOWN"
  pull_group "pull small" "$SMALL" 10 || return 1
  pull_group "pull big" "$BIG" "$PULL_RUNS" || return 1
}

# load (issue #11): tests/load/main.rs run longer, release build: LOAD_CONTAINERS containers at
# once under the console (key latency, frame times), LOAD_CLIENTS API clients doing run/rm loops
# against berth serve for LOAD_SECS. The tests assert no error and no leak; their `LOAD name
# figures` lines become metrics.
section_load() {
  log "== load: $LOAD_CONTAINERS containers under the console; $LOAD_CLIENTS API clients for ${LOAD_SECS}s"
  local out=$RESULTS/raw/load.txt rc=0
  BERTH_TEST_REGISTRY=$REG BERTH_LOAD_CONTAINERS=$LOAD_CONTAINERS BERTH_LOAD_CLIENTS=$LOAD_CLIENTS \
    BERTH_LOAD_SECS=$LOAD_SECS BERTH_LOAD_KEY_ROUNDS=$LOAD_KEY_ROUNDS \
    cargo test --release -p berth-ui --test load -- --nocapture --test-threads 1 > "$out" 2>&1 || rc=$?
  local name value
  while read -r name value; do
    metric load "$name" "$value" "" "" "tests/load (release), $RESULTS/raw/load.txt"
  done < <(sed -n 's/^LOAD //p' "$out")
  if [ "$rc" != 0 ]; then
    log "load tests failed: $(grep -m5 -E 'panicked|failed|left behind' "$out")"
    return 1
  fi
}

# ---- run ------------------------------------------------------------------------------------------
section_env
registry_start || exit 1
fixtures || { log "building the fixtures failed"; exit 1; }
for s in $SECTIONS; do
  "section_$s" || log "section $s failed (continuing)"
  table_md
done
table_md; commands_md
echo
echo "## berth benchmarks, $(date -u '+%F %H:%M UTC'), $(nproc) CPUs, load at start $(cut -d' ' -f1-3 < <(sed -n 's/^loadavg at start: //p' "$RESULTS/env.txt"))"
echo
cat "$RESULTS/table.md"
echo
echo "Exact commands: $RESULTS/commands.md; machine: $RESULTS/env.txt"
