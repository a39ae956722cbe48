#!/usr/bin/env bash
# The zone signer on a zone of N RRsets (../shared/bench/gen-zone.py, NSEC,
# ECDSAP256SHA256, a fresh SoftHSM2 token): the first full signing (time,
# RRSIGs/s, peak RSS of keymasterd), then one RRset changed in the source:
# how long until the new serial is served, how many RRSIGs were made, and
# what an IXFR from the last serial carries. Also the token's raw rate in
# the same run (keymasterctl bench, direct PKCS#11). A benchmark, not a
# test; 127.0.0.1 only, everything stopped by PID at the end.
#   scripts/bench-zone-signer.sh [N]        (GEN=path/to/gen-zone.py)
# SOURCE=file (the default): the source is a file, changed in place (it is
# looked at every second). SOURCE=primary: Knot DNS serves the unsigned
# zone as a hidden primary; the change is a knotc transaction, which Knot
# journals and NOTIFYs, and keymaster takes by IXFR.
# VALIDITY=300s (for example): signatures of that validity, and after the
# change the first refresh round is waited for: how it was made, how long
# it took, and the peak RSS after it. LOG=info,keymaster=debug adds where
# each publication's time went, its check's included.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
gen=${GEN:-../shared/bench/gen-zone.py}
cargo build --release --quiet
bin=target/release
dir=$(mktemp -d /tmp/km-bench-signer.XXXXXX)
pid=""
knot=""
source_kind=${SOURCE:-file}
cleanup() {
  for p in $pid $knot; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
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
# The serial keymaster serves, as a secondary asks for it.
serial() { dig +short +norecurse -p "${dns##*:}" @127.0.0.1 example.test SOA 2>/dev/null | awk '{print $3}'; }
validity=()
[ -n "${VALIDITY:-}" ] && validity=(--signature-validity "$VALIDITY" --dnskey-signature-validity "$VALIDITY")
$ctl zone add example.test --denial nsec "${validity[@]}" >/dev/null
raw=$($ctl bench example.test --rrsets 60000 --token-label bench --pin-file "$dir/token/pin" 2>&1 | grep -i direct | head -1 || true)
# dig asks for the IXFR below as a secondary (nothing answers its NOTIFY).
secondary="127.0.0.1:$(free_port)"
if [ "$source_kind" = primary ]; then
  kport=$(free_port)
  mkdir -p "$dir/knot/db"
  cp "$dir/zone" "$dir/knot/example.test.zone"
  cat > "$dir/knot/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$kport
    rundir: $dir/knot
control:
    listen: $dir/knot/knot.sock
database:
    storage: $dir/knot/db
remote:
  - id: signer
    address: ${dns/:/@}
acl:
  - id: xfr
    address: 127.0.0.0/8
    action: transfer
template:
  - id: default
    storage: $dir/knot
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    semantic-checks: off
    notify: signer
    acl: xfr
zone:
  - domain: example.test.
EOF
  knotd -c "$dir/knot/knot.conf" > "$dir/knotd.log" 2>&1 &
  knot=$!
  for _ in $(seq 600); do
    [ -n "$(dig +short -p "$kport" @127.0.0.1 example.test SOA 2>/dev/null)" ] && break
    sleep 0.5
  done
  t0=$(now)
  $ctl zone source example.test --primary "127.0.0.1:$kport" --secondary "$secondary" >/dev/null
else
  t0=$(now)
  $ctl zone source example.test --file "$dir/zone" --secondary "$secondary" >/dev/null
fi
until [ -n "$(serial)" ]; do sleep 0.2; done
t1=$(now)
first=$(grep -o 'rrsigs_made=[0-9]*' "$dir/keymasterd.log" | tail -1 | cut -d= -f2)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
s1=$(serial)
# One RRset changed: the first A record of a host.
line=$(grep -n -m1 -E '^h[0-9]+ .*A ' "$dir/zone" | cut -d: -f1)
if [ "$source_kind" = primary ]; then
  # gen-zone.py writes "OWNER IN A ADDRESS" under $TTL 3600.
  read -r owner old <<<"$(sed -n "${line}p" "$dir/zone" | awk '{print $1, $NF}')"
  ttl=3600
  kc() { knotc -c "$dir/knot/knot.conf" "$@" >/dev/null; }
  kc zone-begin example.test
  kc zone-unset example.test "$owner" A "$old"
  kc zone-set example.test "$owner" "$ttl" A 203.0.113.77
  t2=$(now)
  kc zone-commit example.test
else
  sed -i "${line}s/[0-9.]*\$/203.0.113.77/" "$dir/zone"
  t2=$(now)
fi
until [ "$(serial)" != "$s1" ]; do sleep 0.01; done
t3=$(now)
ixfr=$(dig +tcp +noall +answer -p "${dns##*:}" @127.0.0.1 example.test "IXFR=$s1" | grep -vc '^;' || true)
sleep 0.5
made=$(grep -o 'rrsigs_made=[0-9]*' "$dir/keymasterd.log" | tail -1 | cut -d= -f2)
journal=$(grep -o 'journal_records=[0-9]*' "$dir/keymasterd.log" | tail -1 | cut -d= -f2)
hwm2=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
refresh=""
if [ -n "${VALIDITY:-}" ]; then
  r0=$(now)
  for _ in $(seq 1200); do
    grep -q 'reason="signatures refreshed' "$dir/keymasterd.log" && break
    sleep 0.5
  done
  r1=$(now)
  line=$(grep -m1 'reason="signatures refreshed' "$dir/keymasterd.log" || true)
  hwm3=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  refresh="first refresh round (published $(python3 -c "print(f'{$r1 - $r0:.0f}')") s after the change was served): $(grep -o 'rrsigs_made=[0-9]*' <<<"$line") $(grep -o 'how=.*chunks[^ ]*' <<<"$line" | cut -c1-80); peak RSS keymasterd after it: $((hwm3 / 1024)) MiB"
fi
python3 - "$t0" "$t1" "$t2" "$t3" "$first" "$made" "${journal:-?}" "$hwm" "$hwm2" "$n" "$raw" "$source_kind" "$ixfr" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
first, made, journal, hwm, hwm2, n, raw, kind, ixfr = sys.argv[5:14]
print(f"zone: {n} RRsets (gen-zone.py), NSEC, ECDSAP256SHA256, SoftHSM2")
print(f"token, direct PKCS#11 (keymasterctl bench): {raw.strip()}")
print(f"first signing: {int(first)} RRSIGs in {t1 - t0:.2f} s = {int(first) / (t1 - t0):.0f}/s "
      f"(source set to serial served, its SOA asked every 0.2 s)")
print(f"peak RSS keymasterd: {int(hwm) / 1024:.0f} MiB after the first signing, {int(hwm2) / 1024:.0f} MiB after the change")
how = ("after the file was written (it is looked at every 1 s)" if kind == "file"
       else "after the primary's commit (NOTIFY, then IXFR from it)")
print(f"one RRset changed ({kind}): new serial served {t3 - t2:.2f} s {how}; {made} RRSIGs made; "
      f"{journal} records in the journal entry; IXFR from the last serial: {ixfr} records")
PY
[ -n "$refresh" ] && echo "$refresh"
# With LOG=info,keymaster=debug: where the time of each publication went,
# and each version's check before it was served (chunks and RRSIGs read).
grep -h "phases" "$dir/keymasterd.log" | sed 's/^.*zone signer: //' || true
grep -h "passed its check" "$dir/keymasterd.log" | grep -o 'chunks=.*check_s=[0-9.]*' || true
