#!/usr/bin/env bash
# Runs berth's whole test suite on a fresh Debian machine (as root):
#   1. installs what the tests need when it is missing (apt-get),
#   2. starts a docker-registry on 127.0.0.1 for the image tests (stopped on exit),
#   3. runs `cargo test --workspace` (extra arguments are passed on to it).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(tmux busybox-static docker-registry skopeo umoci curl python3 iproute2 iptables openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # keep package scripts from starting services (the registry is started below, on loopback)
  ours=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; ours=1; fi
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  [ -n "$ours" ] && rm -f /usr/sbin/policy-rc.d
fi

# The registry the image tests pull from and push to.
PORT=${BERTH_TEST_REGISTRY_PORT:-5055}
export BERTH_TEST_REGISTRY=127.0.0.1:$PORT
work=$(mktemp -d /tmp/berth-tests.XXXXXX)
reg_pid=""
cleanup() {
  local rc=$?
  # A state root's bridges and NAT chains stay up while it exists; what the tests' deleted
  # roots left goes at any engine's next sweep: run one (on a root of its own, deleted below).
  if [ -x target/debug/berth ]; then target/debug/berth --root "$work/sweep" network ls >/dev/null 2>&1 || true; fi
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
if curl -fsS "http://$BERTH_TEST_REGISTRY/v2/" >/dev/null 2>&1; then
  echo "tests/run.sh: using the registry already on $BERTH_TEST_REGISTRY" >&2
else
  sed -e "s#@DATA@#$work/registry#" -e "s#@PORT@#$PORT#" tests/registry.yml > "$work/registry.yml"
  docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
  reg_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://$BERTH_TEST_REGISTRY/v2/" >/dev/null 2>&1 && break
    kill -0 "$reg_pid" 2>/dev/null || { cat "$work/registry.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -fsS "http://$BERTH_TEST_REGISTRY/v2/" >/dev/null || { echo "registry did not start" >&2; cat "$work/registry.log" >&2; exit 1; }
fi

cargo test --workspace "$@"
