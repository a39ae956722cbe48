#!/usr/bin/env bash
# The zone signer on a zone of N RRsets (../shared/bench/gen-zone.py, NSEC,
# ECDSAP256SHA256, a fresh SoftHSM2 token): the first full signing (time,
# RRSIGs/s, peak RSS of keymasterd), then one RRset changed in the source:
# how long until the new serial is served, and how many RRSIGs were made
# and records journalled for IXFR. Also the token's raw rate in the same
# run (keymasterctl bench, direct PKCS#11). A benchmark, not a test; 127.0.0.1
# only, everything stopped by PID at the end.
#   scripts/bench-zone-signer.sh [N]        (GEN=path/to/gen-zone.py)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
gen=${GEN:-../shared/bench/gen-zone.py}
cargo build --release --quiet
bin=target/release
dir=$(mktemp -d /tmp/km-bench-signer.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && { kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
eval "$(softhsm/new-token.sh "$dir/token" bench)"
python3 "$gen" "$n" --origin example.test -o "$dir/zone" >/dev/null
dns=127.0.0.1:$(free_port)
"$bin/keymasterd" --node-id bench --listen 127.0.0.1:0 --address-file "$dir/addr" \
  --token-label bench --pin-file "$dir/token/pin" --store "sqlite:$dir/km.db" \
  --insecure-plaintext --dns-listen "$dns" --log "${LOG:-info}" 2> "$dir/keymasterd.log" &
pid=$!
for _ in $(seq 100); do [ -s "$dir/addr" ] && break; sleep 0.1; done
export KEYMASTER_SERVER="http://$(cat "$dir/addr")"
ctl="$bin/keymasterctl"
serial() { $ctl zone status example.test --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["Serial"] if s["Published"] else "")'; }
$ctl zone add example.test --denial nsec >/dev/null
raw=$($ctl bench example.test --rrsets 60000 --token-label bench --pin-file "$dir/token/pin" 2>&1 | grep -i direct | head -1 || true)
t0=$(now)
$ctl zone source example.test --file "$dir/zone" >/dev/null
until [ -n "$(serial)" ]; do sleep 0.2; done
t1=$(now)
first=$(grep -o 'rrsigs_made=[0-9]*' "$dir/keymasterd.log" | tail -1 | cut -d= -f2)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
s1=$(serial)
# One RRset changed: the first A record of a host.
line=$(grep -n -m1 -E '^h[0-9]+ .*A ' "$dir/zone" | cut -d: -f1)
sed -i "${line}s/[0-9.]*\$/203.0.113.77/" "$dir/zone"
t2=$(now)
until [ "$(serial)" != "$s1" ]; do sleep 0.05; done
t3=$(now)
sleep 0.5
made=$(grep -o 'rrsigs_made=[0-9]*' "$dir/keymasterd.log" | tail -1 | cut -d= -f2)
journal=$(grep -o 'journal_records=[0-9]*' "$dir/keymasterd.log" | tail -1 | cut -d= -f2)
hwm2=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
python3 - "$t0" "$t1" "$t2" "$t3" "$first" "$made" "${journal:-?}" "$hwm" "$hwm2" "$n" "$raw" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
first, made, journal, hwm, hwm2, n, raw = sys.argv[5:12]
print(f"zone: {n} RRsets (gen-zone.py), NSEC, ECDSAP256SHA256, SoftHSM2")
print(f"token, direct PKCS#11 (keymasterctl bench): {raw.strip()}")
print(f"first signing: {int(first)} RRSIGs in {t1 - t0:.2f} s = {int(first) / (t1 - t0):.0f}/s "
      f"(source set to serial served, status polled every 0.2 s)")
print(f"peak RSS keymasterd: {int(hwm) / 1024:.0f} MiB after the first signing, {int(hwm2) / 1024:.0f} MiB after the change")
print(f"one RRset changed: new serial served {t3 - t2:.2f} s after the file was written "
      f"(the file is looked at every 1 s); {made} RRSIGs made; {journal} records in the IXFR journal entry")
PY
# With LOG=info,keymaster=debug: where the time of each publication went.
grep -h "phases" "$dir/keymasterd.log" | sed 's/^.*zone signer: //' || true
