#!/usr/bin/env bash
# Installs the Debian packages keymaster's build, demo and tests need, if
# missing. The one list of them: .ci/run and both README commands use it.
#   gcc libc6-dev                the C parts of the build (SQLite, ring)
#   protobuf-compiler            protoc, for the gRPC code
#   libprotobuf-dev              the well-known .proto files etcd-client's
#                                build imports (google/protobuf/*.proto)
#   softhsm2 opensc              the token, and pkcs11-tool to look into it
#   ldnsutils bind9-utils        independent validators: ldns-verify-zone,
#   knot-dnssecutils             dnssec-verify, named-checkzone, kzonecheck
#   openssl                      certificates for the demo
#   etcd-server                  the cluster store the tests run a real one of
#   knot nsd unbound             real DNS servers for the rollover and zone signer
#                                tests: Knot and NSD serve what keymaster signs
#                                (as its secondaries too), Unbound validates
#   bind9-dnsutils               delv, which validates with the trust anchors
#                                keymasterctl prints for BIND; dig, which the
#                                tests send TSIG transfers and NOTIFY(CDS) with
#   prometheus                   promtool, which checks the metrics keymasterd
#                                serves (Debian has it in the server's package)
set -euo pipefail
pkgs=(gcc libc6-dev protobuf-compiler libprotobuf-dev softhsm2 opensc ldnsutils bind9-utils
      knot-dnssecutils openssl etcd-server knot nsd unbound prometheus
      bind9-dnsutils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
