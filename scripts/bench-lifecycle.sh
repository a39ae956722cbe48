#!/usr/bin/env bash
# The rollover engine at scale: examples/lifecycle_scale.rs with N zones on
# SQLite, or with STORE=etcd on a three-member etcd cluster started here
# (plaintext, 127.0.0.1 only, stopped by PID at the end). A benchmark, not
# a test.
#   [STORE=sqlite|etcd] scripts/bench-lifecycle.sh [ZONES] [DAYS]
set -euo pipefail
cd "$(dirname "$0")/.."
zones=${1:-10000}; days=${2:-7}
cargo build --release --quiet --example lifecycle_scale
dir=$(mktemp -d /tmp/km-bench-lifecycle.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
store="sqlite:$dir/km.db"
if [ "${STORE:-sqlite}" = etcd ]; then
  declare -a client peer
  cluster=""
  for i in 0 1 2; do
    client[i]=$(free_port); peer[i]=$(free_port)
    cluster+="${cluster:+,}m$i=http://127.0.0.1:${peer[i]}"
  done
  for i in 0 1 2; do
    etcd --name "m$i" --data-dir "$dir/etcd$i" \
      --listen-client-urls "http://127.0.0.1:${client[i]}" --advertise-client-urls "http://127.0.0.1:${client[i]}" \
      --listen-peer-urls "http://127.0.0.1:${peer[i]}" --initial-advertise-peer-urls "http://127.0.0.1:${peer[i]}" \
      --initial-cluster "$cluster" --initial-cluster-state new 2> "$dir/etcd$i.log" &
    pids+=($!)
  done
  for i in 0 1 2; do
    until curl -s "http://127.0.0.1:${client[i]}/health" 2>/dev/null | grep -q '"health":"true"'; do sleep 0.1; done
  done
  store="etcd:http://127.0.0.1:${client[0]},http://127.0.0.1:${client[1]},http://127.0.0.1:${client[2]}"
fi
target/release/examples/lifecycle_scale "$zones" "$store" "$days"
