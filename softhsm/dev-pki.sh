#!/usr/bin/env bash
# Makes a small development PKI with openssl: a CA, a server certificate for
# 127.0.0.1/localhost and one client certificate per name given.
#   softhsm/dev-pki.sh DIR CLIENT_NAME...
# Files: DIR/ca.pem, DIR/server.pem + server.key, DIR/NAME.pem + NAME.key.
# Keys are EC P-256 and mode 600. For production, use your own CA (README).
set -euo pipefail
dir=${1:?usage: dev-pki.sh DIR CLIENT_NAME...}; shift
mkdir -p "$dir"; cd "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=keymaster development CA" -keyout ca.key -out ca.pem 2>/dev/null
issue() { # name subjectAltName
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue server "IP:127.0.0.1,DNS:localhost"
for name in "$@"; do issue "$name" "DNS:$name"; done
