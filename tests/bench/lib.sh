# shellcheck shell=bash
# Helpers for tests/bench.sh (adapted from the project's peer benchmarks in shared/bench/lib.sh):
# timing loops, statistics, the result table, the local registry, podman's configuration and
# the cgroup-v1 hugetlb workaround crun needs on this kind of host. Nothing here talks to any
# address other than 127.0.0.1.

BENCH_DIR=${BENCH_DIR:-/var/tmp/berth-bench}
RESULTS=${RESULTS:-$BENCH_DIR/results}
SUMMARY=$RESULTS/summary.tsv
REG=127.0.0.1:${BENCH_REGISTRY_PORT:-5077}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ---- statistics and results -------------------------------------------------------------------
# stats: numbers (ms), one a line -> "n min median max mean"
stats() {
  sort -g | awk '{a[NR]=$1; s+=$1} END {
    if (NR==0) {print "0 - - - -"; exit}
    med = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2;
    printf "%d %.2f %.2f %.2f %.2f\n", NR, a[1], med, a[NR], s/NR }'
}

summary_init() {
  mkdir -p "$RESULTS/raw"
  [ -f "$SUMMARY" ] || printf 'group\ttool\tn\tmin_ms\tmedian_ms\tmax_ms\tmean_ms\tload1\tmethod\tcommand\n' > "$SUMMARY"
}

# summary_add GROUP TOOL n min med max mean METHOD COMMAND (a row of the same group+tool is replaced)
summary_add() {
  summary_init
  local group=$1 tool=$2 n=$3 mn=$4 md=$5 mx=$6 me=$7 method=$8 cmd=$9 load tmp
  load=$(cut -d' ' -f1 /proc/loadavg)
  tmp=$(mktemp)
  awk -F'\t' -v g="$group" -v t="$tool" '!($1==g && $2==t)' "$SUMMARY" > "$tmp" && cat "$tmp" > "$SUMMARY"; rm -f "$tmp"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$group" "$tool" "$n" "$mn" "$md" "$mx" "$me" "$load" "$method" "$cmd" >> "$SUMMARY"
  printf '  %-28s %-22s n=%-3s min=%-9s median=%-9s max=%-9s (ms)  load1=%s\n' "$group" "$tool" "$n" "$mn" "$md" "$mx" "$load" >&2
}

# add_raw GROUP TOOL METHOD COMMAND < raw times (ms)
add_raw() {
  local raw; raw=$(mktemp); cat > "$raw"
  # shellcheck disable=SC2046
  summary_add "$1" "$2" $(stats < "$raw") "$3" "$4"
  rm -f "$raw"
}

# metric GROUP NAME VALUE UNIT TARGET NOTE: non-timing figures (RSS, CPU, frame time)
metric() {
  mkdir -p "$RESULTS"
  local f=$RESULTS/metrics.tsv tmp
  [ -f "$f" ] || printf 'group\tname\tvalue\tunit\ttarget\tnote\n' > "$f"
  tmp=$(mktemp); awk -F'\t' -v g="$1" -v n="$2" '!($1==g && $2==n)' "$f" > "$tmp" && cat "$tmp" > "$f"; rm -f "$tmp"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >> "$f"
  printf '  %-28s %-30s %s %s  (%s)\n' "$1" "$2" "$3" "$4" "$6" >&2
}

median_of() { awk -F'\t' -v g="$1" -v t="$2" '$1==g && $2==t {print $5}' "$SUMMARY"; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f\n", (b-a)*1000}'; }

# interleave GROUP RUNS WARMUP NAME1 'CMD1' NAME2 'CMD2' ...
# Runs the commands in turn, run by run (the order rotates every round), so that the load of
# this shared machine hits every tool alike. Commands are eval'd in this shell (only the
# command itself forks) and timed with $EPOCHREALTIME; @ID@ becomes a unique id and @N@ the run
# index. If PREP_<NAME> is set (NAME upper-cased, non-alnum as _), it is eval'd untimed first.
interleave() {
  local group=$1 runs=$2 warm=$3; shift 3
  local names=() cmds=() fails=() i k n c t0 t1 id prepvar
  while [ $# -gt 0 ]; do names+=("$1"); cmds+=("$2"); shift 2; done
  local kn=${#names[@]}
  summary_init
  for ((k = 0; k < kn; k++)); do : > "$RESULTS/raw/$group.${names[$k]}.txt"; : > "$RESULTS/raw/$group.${names[$k]}.err"; done
  for ((i = 0; i < warm + runs; i++)); do
    for ((k = 0; k < kn; k++)); do
      local j=$(((i + k) % kn))
      n=${names[$j]}
      id=bb-$$-$j-$i
      prepvar=PREP_$(echo "$n" | tr 'a-z' 'A-Z' | tr -c 'A-Z0-9\n' '_')
      if [ -n "${!prepvar:-}" ]; then
        c=${!prepvar//@ID@/$id}; c=${c//@N@/$i}
        eval "$c" >>"$RESULTS/raw/$group.$n.err" 2>&1 || { log "PREP FAILED for $group/$n: $(tail -2 "$RESULTS/raw/$group.$n.err")"; return 1; }
      fi
      c=${cmds[$j]//@ID@/$id}; c=${c//@N@/$i}
      t0=$EPOCHREALTIME
      if ! eval "$c" >/dev/null 2>>"$RESULTS/raw/$group.$n.err"; then
        # a failed run is not timed but counted, and the table says so (set FAIL_FAST=1 to stop)
        log "FAILED ($group/$n, run $i): $(tail -1 "$RESULTS/raw/$group.$n.err")"
        fails[$j]=$(( ${fails[$j]:-0} + 1 ))
        [ "${FAIL_FAST:-0}" = 1 ] && return 1
        continue
      fi
      t1=$EPOCHREALTIME
      ((i >= warm)) && ms_between "$t0" "$t1" >> "$RESULTS/raw/$group.$n.txt"
    done
  done
  for ((k = 0; k < kn; k++)); do
    n=${names[$k]}
    local how="interleaved with ${names[*]} (order rotating), warmup $warm"
    prepvar=PREP_$(echo "$n" | tr 'a-z' 'A-Z' | tr -c 'A-Z0-9\n' '_')
    [ -n "${!prepvar:-}" ] && how+="; before each (untimed): ${!prepvar}"
    [ "${fails[$k]:-0}" -gt 0 ] && how+="; FAILED ${fails[$k]} of $((warm + runs)) runs (not timed, see raw/$group.$n.err)"
    # shellcheck disable=SC2046
    summary_add "$group" "$n" $(stats < "$RESULTS/raw/$group.$n.txt") "$how" "${cmds[$k]}"
    [ "${fails[$k]:-0}" -gt 0 ] && metric "$group" "$n: failed runs" "${fails[$k]}" "of $((warm + runs))" "0" "$(sort "$RESULTS/raw/$group.$n.err" | uniq -c | sort -rn | head -1 | sed 's/^ *//')"
  done
  return 0   # failed runs are in the table; the last test above must not be the status
}

# hf GROUP TOOL [hyperfine options...] -- COMMAND
hf() {
  local group=$1 tool=$2; shift 2
  local opts=()
  while [ "$1" != "--" ]; do opts+=("$1"); shift; done; shift
  local cmd=$1 json="$RESULTS/raw/$group.$tool.json"
  summary_init
  if ! hyperfine --style basic "${opts[@]}" --export-json "$json" "$cmd" > "$RESULTS/raw/$group.$tool.hyperfine.txt" 2>&1; then
    log "FAILED ($group/$tool): $cmd"; tail -5 "$RESULTS/raw/$group.$tool.hyperfine.txt" >&2; return 1
  fi
  jq -r '.results[0].times[] * 1000' "$json" | add_raw "$group" "$tool" "hyperfine ${opts[*]}" "$cmd"
}

# ---- the result table ---------------------------------------------------------------------------
# One table: per group, each tool's min / median / max and its median relative to berth's
# ("× berth": above 1 means the peer is slower than berth), then the non-timing metrics.
table_md() {
  [ -f "$SUMMARY" ] || return 0
  {
    echo "| benchmark | tool | n | min ms | **median ms** | max ms | × berth | load1 |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    tail -n +2 "$SUMMARY" | awk -F'\t' '
      { g[NR]=$1; t[NR]=$2; n[NR]=$3; mn[NR]=$4; md[NR]=$5; mx[NR]=$6; ld[NR]=$8
        if ($2 ~ /^berth/ && !($1 in base)) base[$1]=$5 }
      END { for (i=1; i<=NR; i++) {
        r = (g[i] in base && base[g[i]] > 0) ? sprintf("%.2f×", md[i]/base[g[i]]) : "–"
        printf "| %s | %s | %s | %s | **%s** | %s | %s | %s |\n", g[i], t[i], n[i], mn[i], md[i], mx[i], r, ld[i] } }'
    if [ -f "$RESULTS/metrics.tsv" ]; then
      echo
      echo "| measure | value | target | note |"
      echo "|---|---:|---|---|"
      tail -n +2 "$RESULTS/metrics.tsv" | awk -F'\t' '{printf "| %s: %s | %s %s | %s | %s |\n", $1,$2,$3,$4,$5,$6}'
    fi
  } > "$RESULTS/table.md"
}

# The exact commands behind the table's rows.
commands_md() {
  [ -f "$SUMMARY" ] || return 0
  {
    echo "| benchmark | tool | method | command |"
    echo "|---|---|---|---|"
    tail -n +2 "$SUMMARY" | awk -F'\t' '{gsub(/\|/,"\\|",$10); printf "| %s | %s | %s | `%s` |\n", $1,$2,$9,$10}'
  } > "$RESULTS/commands.md"
}

# ---- registry ---------------------------------------------------------------------------------
registry_running() { curl -fsS "http://$REG/v2/" >/dev/null 2>&1; }

registry_start() {
  if registry_running; then log "registry already up on $REG"; return 0; fi
  mkdir -p "$BENCH_DIR/registry-data"
  sed -e "s#@DATA@#$BENCH_DIR/registry-data#" -e "s#@ADDR@#$REG#" "$BENCH_HERE/registry.yml" > "$BENCH_DIR/registry.yml"
  setsid docker-registry serve "$BENCH_DIR/registry.yml" > "$BENCH_DIR/registry.log" 2>&1 < /dev/null &
  echo $! > "$BENCH_DIR/registry.pid"
  for _ in $(seq 1 100); do
    registry_running && { log "registry up on $REG (pid $(cat "$BENCH_DIR/registry.pid"))"; return 0; }
    sleep 0.1
  done
  log "registry failed to start:"; cat "$BENCH_DIR/registry.log" >&2; return 1
}

registry_stop() {
  local pf=$BENCH_DIR/registry.pid pid
  [ -f "$pf" ] || return 0
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    log "registry (pid $pid) stopped"
  fi
  rm -f "$pf"
}

# ---- mounts -----------------------------------------------------------------------------------
# unmount_under DIR: lazily unmount every mount point at or below DIR, deepest first.
unmount_under() {
  local d=$1
  [ -e "$d" ] || return 0
  awk -v d="$d" '$5==d || index($5, d"/")==1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

# ---- podman (configured through env vars; the system's /etc/containers stays untouched) --------
podman_env() {
  local rt=${1:-crun} d=$BENCH_DIR/podman/etc nproc
  # podman's own process gets a hard RLIMIT_NPROC of 32768 here, and there is no
  # CAP_SYS_RESOURCE to raise limits: the container may not ask for more than the caller has.
  nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
  mkdir -p "$d" "$BENCH_DIR/podman/run"
  sed -e "s#@BENCH_DIR@#$BENCH_DIR#g" -e "s#@RUNTIME@#$rt#g" -e "s#@NOFILE@#$(ulimit -Hn)#g" -e "s#@NPROC@#$nproc#g" \
    "$BENCH_HERE/podman/containers.conf" > "$d/containers.conf"
  sed -e "s#@BENCH_DIR@#$BENCH_DIR#g" "$BENCH_HERE/podman/storage.conf" > "$d/storage.conf"
  sed -e "s#@REG@#$REG#g" "$BENCH_HERE/podman/registries.conf" > "$d/registries.conf"
  export CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf CONTAINERS_REGISTRIES_CONF=$d/registries.conf
}

podman_cleanup() {
  if [ -n "${CONTAINERS_CONF:-}" ] && command -v podman >/dev/null; then
    podman rm -af >/dev/null 2>&1 || true
    podman system reset -f >/dev/null 2>&1 || true
  fi
  unmount_under "$BENCH_DIR/podman"
}

# ---- crun on a cgroup-v1 hybrid host ------------------------------------------------------------
# crun 1.8 refuses "hybrid" mode while /sys/fs/cgroup/unified still offers a controller (here
# hugetlb, which has no v1 mount). Mounting a v1 hugetlb hierarchy moves it off v2; undone after.
HUGETLB_V1=/sys/fs/cgroup/hugetlb
hugetlb_v1_mount() {
  if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] \
     && grep -qx hugetlb /sys/fs/cgroup/unified/cgroup.controllers && ! mountpoint -q "$HUGETLB_V1"; then
    mkdir -p "$HUGETLB_V1" && mount -t cgroup -o hugetlb cgroup "$HUGETLB_V1" && touch "$BENCH_DIR/hugetlb.mounted"
    log "mounted a cgroup v1 hugetlb hierarchy at $HUGETLB_V1 for crun"
  fi
}

hugetlb_v1_umount() {
  [ -f "$BENCH_DIR/hugetlb.mounted" ] && mountpoint -q "$HUGETLB_V1" || return 0
  local try i
  # the hierarchy only dies once its (dying) child cgroups are gone
  for try in 1 2 3; do
    find "$HUGETLB_V1" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
    sleep "$try"
    umount "$HUGETLB_V1" || break
    for i in $(seq 1 20); do
      [ "$(awk '$1=="hugetlb" {print $2}' /proc/cgroups)" = 0 ] && break 2
      sleep 0.25
    done
    mount -t cgroup -o hugetlb cgroup "$HUGETLB_V1" || break
  done
  mountpoint -q "$HUGETLB_V1" && umount "$HUGETLB_V1"
  rmdir "$HUGETLB_V1" 2>/dev/null
  rm -f "$BENCH_DIR/hugetlb.mounted"
  [ "$(awk '$1=="hugetlb" {print $2}' /proc/cgroups)" = 0 ] || log "WARNING: the v1 hugetlb hierarchy is still alive"
  log "unmounted $HUGETLB_V1"
}

# ---- processes ----------------------------------------------------------------------------------
rss_kb() { local p s=0; for p in "$@"; do [ -r "/proc/$p/status" ] && s=$((s + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done; echo $s; }
# cpu_ticks PID: utime + stime of a process and its reaped children (clock ticks)
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }
