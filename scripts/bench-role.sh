#!/usr/bin/env bash
# Times a manual seize and an automatic failover of the Key Master role
# between keymasterd nodes sharing one SoftHSM2 token and one store: SQLite,
# or with STORE=etcd a one-member etcd started here (plaintext development
# mode, 127.0.0.1 only). A benchmark, not a test.
#   [STORE=sqlite|etcd] scripts/bench-role.sh [LEASE_SECS] [FAILOVER_SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
lease=${1:-2}; failover=${2:-2}
cargo build --release --quiet
bin=target/release
dir=$(mktemp -d /tmp/km-bench-role.XXXXXX)
eval "$(softhsm/new-token.sh "$dir/token" bench)"
pids=()
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
store="sqlite:$dir/km.db"
if [ "${STORE:-sqlite}" = etcd ]; then
  cport=$(free_port); pport=$(free_port)
  etcd --name bench --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "bench=http://127.0.0.1:$pport" 2> "$dir/etcd.log" &
  etcd_pid=$!
  until curl -s "http://127.0.0.1:$cport/health" 2>/dev/null | grep -q '"health":"true"'; do sleep 0.1; done
  store="etcd:http://127.0.0.1:$cport"
fi
cleanup() {
  for p in "${pids[@]}" ${etcd_pid:-}; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
start() { # node-id
  "$bin/keymasterd" --node-id "$1" --listen 127.0.0.1:0 --address-file "$dir/$1.addr" \
    --token-label bench --pin-file "$dir/token/pin" --store "$store" \
    --insecure-plaintext --lease-secs "$lease" 2> "$dir/$1.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$dir/$1.addr" ] && break; sleep 0.05; done
}
ctl() { local n=$1; shift; "$bin/keymasterctl" --server "http://$(cat "$dir/$n.addr")" "$@"; }
km() { ctl n3 role show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["KeyMasterServer"])'; }
now() { date +%s.%N; }
for n in n1 n2 n3; do start $n; done
ctl n1 zone add manual.test >/dev/null
ctl n1 zone add auto.test --auto-failover "${failover}s" >/dev/null

kill -9 "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; killed=$(now)
# Manual seize: as soon as the lease is gone, one call.
until ctl n2 role show manual.test --json | grep -q '"offline"'; do sleep 0.05; done
t0=$(now); ctl n2 role seize manual.test --to n2 >/dev/null; t1=$(now)
until [ "$(km auto.test)" != n1 ]; do sleep 0.05; done; t2=$(now)
awk -v s="${STORE:-sqlite}" -v k="$killed" -v a="$t0" -v b="$t1" -v c="$t2" -v l="$lease" -v f="$failover" 'BEGIN {
  printf "store %s, lease %d s, failover after %d s\n", s, l, f
  printf "lease expiry seen after kill -9: %.2f s\n", a - k
  printf "manual seize call: %.3f s\n", b - a
  printf "automatic failover after kill -9: %.2f s\n", c - k }'
