#!/usr/bin/env bash
# Makes a fresh SoftHSM2 token in its own directory.
#   softhsm/new-token.sh DIR [LABEL] [PIN]
# Writes DIR/softhsm2.conf, DIR/tokens/ and DIR/pin (mode 600), and prints
# the line to export SOFTHSM2_CONF. The SO PIN is random and not kept: a
# development token needs no SO operations after initialisation.
set -euo pipefail
dir=${1:?usage: new-token.sh DIR [LABEL] [PIN]}
label=${2:-keymaster}
pin=${3:-1234}
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
cat > "$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
so_pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free \
  --label "$label" --pin "$pin" --so-pin "$so_pin" >/dev/null
umask 077
printf '%s\n' "$pin" > "$dir/pin"
chmod 600 "$dir/pin"
echo "export SOFTHSM2_CONF=$dir/softhsm2.conf"
