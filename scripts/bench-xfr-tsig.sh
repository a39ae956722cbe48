#!/usr/bin/env bash
# Zone transfers of a large NSEC3 zone with and without TSIG (RFC 8945):
# keymaster keeps a zone of N RRsets (../shared/bench/gen-zone.py) signed
# and serves it to a Knot DNS and an NSD secondary, both signing their
# requests with a TSIG key and checking every message of each answer; then
# a change of many records goes out by IXFR with TSIG. dig -y checks and
# counts the TSIG of every message. The same zone without a TSIG key gives
# the AXFR time without it. Last, keymaster takes a zone of the same size
# from a Knot hidden primary that serves it only to TSIG-signed transfers.
# A benchmark, not a test: 127.0.0.1 only, everything stopped by PID.
#   scripts/bench-xfr-tsig.sh [N]        (GEN=path/to/gen-zone.py)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
gen=${GEN:-../shared/bench/gen-zone.py}
cargo build --release --quiet
bin=target/release
dir=$(mktemp -d /tmp/km-bench-xfr.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
secret=zlCZbVJPIhobIs1gJNQfrsS3xCxxsR9pMUrGwG8OgG8=
tsig="hmac-sha256:xfr-key:$secret"
echo "xfr-key hmac-sha256 $secret" > "$dir/tsig.keys"
chmod 600 "$dir/tsig.keys"
eval "$(softhsm/new-token.sh "$dir/token" bench)"
python3 "$gen" "$n" --origin example.test -o "$dir/zone" >/dev/null
sed 's/example\.test\./plain.test./g' "$dir/zone" > "$dir/plain"
dns=127.0.0.1:$(free_port)
"$bin/keymasterd" --node-id bench --listen 127.0.0.1:0 --address-file "$dir/addr" \
  --token-label bench --pin-file "$dir/token/pin" --store "sqlite:$dir/km.db" \
  --state-dir "$dir/state" --insecure-plaintext --dns-listen "$dns" \
  --tsig-keys "$dir/tsig.keys" 2> "$dir/keymasterd.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/addr" ] && break; sleep 0.1; done
export KEYMASTER_SERVER="http://$(cat "$dir/addr")"
ctl="$bin/keymasterctl"
port=${dns##*:}
serial_at() { dig +short +norecurse -p "${1##*:}" @127.0.0.1 "$2" SOA 2>/dev/null | awk '{print $3}'; }

knot_port=$(free_port)
nsd_port=$(free_port)
# Both zones signed and served before the secondaries start, so that their
# first load is the transfer alone.
$ctl zone add example.test >/dev/null
$ctl zone add plain.test >/dev/null
$ctl zone source example.test --file "$dir/zone" --tsig xfr-key \
  --secondary "127.0.0.1:$knot_port" --secondary "127.0.0.1:$nsd_port" >/dev/null
$ctl zone source plain.test --file "$dir/plain" --secondary "127.0.0.1:$knot_port" >/dev/null
until [ -n "$(serial_at "$dns" example.test)" ] && [ -n "$(serial_at "$dns" plain.test)" ]; do sleep 0.5; done
s1=$(serial_at "$dns" example.test)

# dig: (seconds, messages, TSIG records, records).
dig_xfr() {
  local t0 t1 out
  t0=$(now)
  out=$(dig +nocmd -p "$port" @127.0.0.1 "$@")
  t1=$(now)
  local msgs recs tsigs
  msgs=$(grep -o 'messages [0-9]*' <<<"$out" | awk '{print $2}')
  recs=$(grep -o 'XFR size: [0-9]*' <<<"$out" | awk '{print $3}')
  tsigs=$(awk '$4 == "TSIG"' <<<"$out" | wc -l)
  if grep -q "Transfer failed\|Couldn't verify" <<<"$out"; then msgs="FAILED"; fi
  echo "$(secs "$t0" "$t1") ${msgs:-?} $tsigs ${recs:-?}"
}
read -r axfr_tsig msgs tsigs recs <<<"$(dig_xfr -y "$tsig" example.test AXFR)"
read -r axfr_plain msgs_plain _ recs_plain <<<"$(dig_xfr plain.test AXFR)"

mkdir -p "$dir/knot/db" "$dir/nsd"
cat > "$dir/knot/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$knot_port
    rundir: $dir/knot
control:
    listen: $dir/knot/knot.sock
database:
    storage: $dir/knot/db
key:
  - id: xfr-key
    algorithm: hmac-sha256
    secret: $secret
remote:
  - id: km
    address: ${dns/:/@}
    key: xfr-key
  - id: km-plain
    address: ${dns/:/@}
acl:
  - id: notify
    address: 127.0.0.0/8
    action: notify
template:
  - id: default
    storage: $dir/knot
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
    acl: notify
zone:
  - domain: example.test.
    master: km
EOF
cat > "$dir/nsd/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$nsd_port
  zonesdir: "$dir/nsd"
  database: ""
  pidfile: "$dir/nsd/nsd.pid"
  xfrdfile: "$dir/nsd/xfrd.state"
  zonelistfile: "$dir/nsd/zone.list"
  xfrdir: "$dir/nsd"
  username: ""
  chroot: ""
  logfile: "$dir/nsd/nsd.log"
  server-count: 1
remote-control:
  control-enable: no
key:
  name: "xfr-key"
  algorithm: hmac-sha256
  secret: "$secret"
zone:
  name: "example.test"
  zonefile: "example.test.zone"
  request-xfr: 127.0.0.1@$port xfr-key
  allow-notify: 127.0.0.1 NOKEY
EOF
t0=$(now)
knotd -c "$dir/knot/knot.conf" > "$dir/knotd.log" 2>&1 &
pids+=($!)
nsd -d -c "$dir/nsd/nsd.conf" > "$dir/nsd.err" 2>&1 &
pids+=($!)
knot_at="" nsd_at=""
for _ in $(seq 1200); do
  [ -z "$knot_at" ] && [ "$(serial_at "127.0.0.1:$knot_port" example.test)" = "$s1" ] && knot_at=$(now)
  [ -z "$nsd_at" ] && [ "$(serial_at "127.0.0.1:$nsd_port" example.test)" = "$s1" ] && nsd_at=$(now)
  [ -n "$knot_at" ] && [ -n "$nsd_at" ] && break
  sleep 0.1
done

# A change of 2,000 addresses: an IXFR of many messages.
python3 - "$dir/zone" <<'PY'
import sys
path = sys.argv[1]
lines = open(path).read().split("\n")
changed = 0
for i, l in enumerate(lines):
    f = l.split()
    if changed < 2000 and len(f) >= 4 and f[-2] == "A" and f[0].startswith("h"):
        lines[i] = " ".join(f[:-1] + ["203.0.113.%d" % (changed % 250)])
        changed += 1
open(path + ".new", "w").write("\n".join(lines))
PY
mv "$dir/zone.new" "$dir/zone"
t2=$(now)
until [ -n "$(serial_at "$dns" example.test)" ] && [ "$(serial_at "$dns" example.test)" != "$s1" ]; do sleep 0.05; done
t3=$(now)
s2=$(serial_at "$dns" example.test)
knot2="" nsd2=""
for _ in $(seq 600); do
  [ -z "$knot2" ] && [ "$(serial_at "127.0.0.1:$knot_port" example.test)" = "$s2" ] && knot2=$(now)
  [ -z "$nsd2" ] && [ "$(serial_at "127.0.0.1:$nsd_port" example.test)" = "$s2" ] && nsd2=$(now)
  [ -n "$knot2" ] && [ -n "$nsd2" ] && break
  sleep 0.05
done
read -r ixfr_s ixfr_msgs ixfr_tsigs ixfr_recs <<<"$(dig_xfr -y "$tsig" example.test "IXFR=$s1")"
knot_ixfr=$(grep -c "IXFR, incoming" "$dir/knotd.log" || true)

# From a Knot primary that serves the zone only to TSIG-signed transfers.
pri_port=$(free_port)
mkdir -p "$dir/pri/db"
sed 's/example\.test\./pri.test./g' "$dir/zone" > "$dir/pri/pri.test.zone"
cat > "$dir/pri/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$pri_port
    rundir: $dir/pri
control:
    listen: $dir/pri/knot.sock
database:
    storage: $dir/pri/db
key:
  - id: xfr-key
    algorithm: hmac-sha256
    secret: $secret
acl:
  - id: xfr
    address: 127.0.0.0/8
    key: xfr-key
    action: transfer
template:
  - id: default
    storage: $dir/pri
    file: "%s.zone"
    zonefile-sync: -1
    semantic-checks: off
    acl: xfr
zone:
  - domain: pri.test.
EOF
knotd -c "$dir/pri/knot.conf" > "$dir/pri.log" 2>&1 &
pids+=($!)
until [ -n "$(serial_at "127.0.0.1:$pri_port" pri.test)" ]; do sleep 0.2; done
$ctl zone add pri.test >/dev/null
t4=$(now)
$ctl zone source pri.test --primary "127.0.0.1:$pri_port" --primary-tsig xfr-key >/dev/null
until [ -n "$(serial_at "$dns" pri.test)" ]; do sleep 0.2; done
t5=$(now)
pri_err=$($ctl zone status pri.test --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["LastError"] or "none")')

echo "zone: $n RRsets (gen-zone.py), NSEC3, ECDSAP256SHA256, SoftHSM2; $recs records signed"
echo "AXFR by dig -y (TSIG): ${axfr_tsig} s, $msgs messages, $tsigs TSIG records"
echo "AXFR by dig (no TSIG, the same zone under another name): ${axfr_plain} s, $msgs_plain messages, $recs_plain records"
echo "secondaries loading it by AXFR with TSIG: Knot $(secs "$t0" "$knot_at") s, NSD $(secs "$t0" "$nsd_at") s (from their start)"
echo "2,000 addresses changed: keymaster served the new serial $(secs "$t2" "$t3") s after the write; Knot had it $(secs "$t3" "$knot2") s later, NSD $(secs "$t3" "$nsd2") s later"
echo "IXFR by dig -y from serial $s1: ${ixfr_s} s, $ixfr_msgs messages, $ixfr_tsigs TSIG records, $ixfr_recs records; Knot logged $knot_ixfr incoming IXFR"
echo "from a Knot primary with TSIG: $(secs "$t4" "$t5") s from zone source to the signed zone served; last error: $pri_err"
