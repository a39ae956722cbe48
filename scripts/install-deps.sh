#!/usr/bin/env bash
# Installs the Debian packages keymaster's demo and tests need, if missing:
# SoftHSM2 (the token), OpenSC's pkcs11-tool, ldns and BIND tools (the
# independent validators), protoc (to build the gRPC code), etcd (the
# cluster store the tests run a real one of).
set -euo pipefail
pkgs=(softhsm2 opensc ldnsutils bind9-utils protobuf-compiler openssl etcd-server)
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
