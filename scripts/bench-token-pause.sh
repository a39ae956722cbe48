#!/usr/bin/env bash
# Two keymasterd nodes on one SoftHSM2 token: node B adds keys in a loop
# (token writes) and is stopped (SIGSTOP) for half a second at random
# moments; meanwhile node A adds a key to its own zone and signs a zone
# that it has not signed before (key lookups and copies in the token). A
# call of A that waits for B counts as held. Run once per object-store
# backend: Debian's SoftHSM2 (file) by default; MODULE=path/to/a
# libsofthsm2.so built with the db backend and BACKEND=db for that one
# (Debian's is built without it). A benchmark, not a test: 127.0.0.1 only,
# everything stopped by PID.
#   scripts/bench-token-pause.sh [ROUNDS]   (MODULE=… BACKEND=file|db)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-30}
module=${MODULE:-/usr/lib/softhsm/libsofthsm2.so}
backend=${BACKEND:-file}
util=${UTIL:-softhsm2-util}
cargo build --release --quiet
bin=target/release
dir=$(mktemp -d /tmp/km-bench-pause.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
mkdir -p "$dir/tokens"
cat > "$dir/softhsm2.conf" <<EOF
directories.tokendir = $dir/tokens
objectstore.backend = $backend
log.level = ERROR
slots.removable = false
EOF
export SOFTHSM2_CONF=$dir/softhsm2.conf
$util --init-token --free --label pause --pin 1234 --so-pin 56785678 >/dev/null
printf '1234\n' > "$dir/pin"; chmod 600 "$dir/pin"
start() {
  "$bin/keymasterd" --node-id "$1" --listen 127.0.0.1:0 --address-file "$dir/$1.addr" \
    --pkcs11-module "$module" --token-label pause --pin-file "$dir/pin" \
    --store "sqlite:$dir/km.db" --state-dir "$dir/$1" --insecure-plaintext \
    --token-timeout "${BOUND:-2s}" 2> "$dir/$1.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$dir/$1.addr" ] && break; sleep 0.1; done
}
start a
start b
pid_b=${pids[1]}
ctl_a() { KEYMASTER_SERVER="http://$(cat "$dir/a.addr")" "$bin/keymasterctl" "$@"; }
ctl_b() { KEYMASTER_SERVER="http://$(cat "$dir/b.addr")" "$bin/keymasterctl" "$@"; }
ctl_a zone add a.test >/dev/null
ctl_b zone add b.test >/dev/null
zone() { printf '$ORIGIN %s\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n' "$1"; }
( while true; do ctl_b key add b.test --role zsk >/dev/null 2>&1 || true; done ) &
writer=$!
pids+=($writer)
held=0 failed=0 worst=0 addfail=0
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
for r in $(seq "$rounds"); do
  sleep "0.$((RANDOM % 9 + 1))"
  if ! ctl_a zone add "r$r.a.test" > "$dir/add.out" 2>&1; then
    # Not under a pause: what the backend does with two writers at once.
    echo "round $r: zone add failed: $(tail -c 200 "$dir/add.out")" >&2
    addfail=$((addfail + 1))
    continue
  fi
  zone "r$r.a.test." > "$dir/in.zone"
  kill -STOP "$pid_b"
  t0=$(date +%s%N)
  ( s=$(date +%s%N); ctl_a key add a.test --role zsk >/dev/null 2>&1 && rc=0 || rc=1
    echo "key $rc $(ms "$s")" ) > "$dir/op1" &
  o1=$!
  ( s=$(date +%s%N); ctl_a zone sign "r$r.a.test." --in "$dir/in.zone" --out "$dir/out.zone" >/dev/null 2>&1 && rc=0 || rc=1
    echo "sign $rc $(ms "$s")" ) > "$dir/op2" &
  o2=$!
  sleep 0.5
  kill -CONT "$pid_b"
  wait "$o1" "$o2" || true
  round_held=0
  for f in op1 op2; do
    read -r _ rc took < "$dir/$f"
    [ "$took" -gt "$worst" ] && worst=$took
    [ "$rc" != 0 ] && failed=$((failed + 1))
    [ "$took" -gt 400 ] && round_held=1
  done
  held=$((held + round_held))
done
echo "backend $backend: in $held of $rounds half-second pauses of node B, a call of node A waited for it; $failed calls failed (Unavailable at the ${BOUND:-2s} bound); longest $worst ms; $addfail zone additions (B writing, not paused) failed"
