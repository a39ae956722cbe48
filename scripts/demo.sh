#!/usr/bin/env bash
# Brings keymaster up on the embedded store with a fresh SoftHSM2 token and
# shows its main job: a zone's keys generated in the token, the zone signed
# over gRPC, the result checked by ldns-verify-zone and BIND's dnssec-verify.
# Everything lives in ${DEMO_DIR:-/tmp/keymaster-demo}; keymasterd listens on
# 127.0.0.1 only and is stopped when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --quiet
bin=target/release
dir=${DEMO_DIR:-/tmp/keymaster-demo}
rm -rf "$dir"; mkdir -p "$dir"
eval "$(softhsm/new-token.sh "$dir/token" demo)"   # exports SOFTHSM2_CONF
softhsm/dev-pki.sh "$dir/pki" operator              # CA, server and client certificates
printf '[[grant]]\nname = "operator"\nroles = ["admin"]\n' > "$dir/access.toml"

"$bin/keymasterd" --node-id demo-1 --listen 127.0.0.1:0 --address-file "$dir/addr" \
  --token-label demo --pin-file "$dir/token/pin" --store "sqlite:$dir/keymaster.db" \
  --tls-cert "$dir/pki/server.pem" --tls-key "$dir/pki/server.key" \
  --tls-client-ca "$dir/pki/ca.pem" --access-file "$dir/access.toml" \
  2> "$dir/keymasterd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$dir/addr" ] && break; sleep 0.1; done
export KEYMASTER_SERVER="https://$(cat "$dir/addr")" KEYMASTER_CA="$dir/pki/ca.pem" \
  KEYMASTER_CERT="$dir/pki/operator.pem" KEYMASTER_KEY="$dir/pki/operator.key"
ctl="$bin/keymasterctl"

set -x
$ctl zone add example.test
$ctl zone show example.test
$ctl key list example.test
$ctl ds example.test
awk 'BEGIN {
  print "$ORIGIN example.test.\n$TTL 3600"
  print "@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n@ NS ns2\n@ MX 10 mail"
  print "ns1 A 192.0.2.1\nns2 A 192.0.2.2\nmail AAAA 2001:db8::25"
  print "sub NS ns.sub\nns.sub A 192.0.2.53"
  for (i = 0; i < 10000; i++) printf "h%d A 198.51.100.%d\n", i, i % 250
}' > "$dir/example.test.zone"
$ctl zone sign example.test --in "$dir/example.test.zone" --out "$dir/example.test.signed"
ldns-verify-zone "$dir/example.test.signed"
dnssec-verify -o example.test "$dir/example.test.signed"
$ctl audit
$ctl audit verify
{ set +x; } 2>/dev/null
echo "signed zone: $dir/example.test.signed  (keymasterd log: $dir/keymasterd.log)"
