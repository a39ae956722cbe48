#!/usr/bin/env bash
# Proves the README's two commands on a fresh machine: builds a minimal
# Debian 12 root with debootstrap (--variant=minbase: no compiler, no
# protoc, no SoftHSM2), binds this machine's Rust toolchain into it
# read-only, clones the repository there and runs scripts/demo.sh and
# scripts/test.sh inside it, as a newcomer would. Everything else those
# scripts need, they must install themselves.
#
# Needs root (debootstrap, chroot, bind mounts), the Debian mirror, and
# about 10-20 minutes on 2 cores. Not run in CI.
#   sudo scripts/fresh-check.sh [ROOT_DIR]        (default /tmp/km-fresh-root)
# MIRROR=http://… picks the Debian mirror; KEEP_ROOT=1 keeps the root after.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-/tmp/km-fresh-root}
mirror=${MIRROR:-http://deb.debian.org/debian}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_bin=$(dirname "$(command -v cargo)")
[ "$(id -u)" -eq 0 ] || { echo "run as root (debootstrap and chroot need it)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "install debootstrap first" >&2; exit 1; }

mounts=()
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
  [ -n "${KEEP_ROOT:-}" ] || rm -rf "$root"
}
trap cleanup EXIT
bind() { # SOURCE TARGET [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"; mounts+=("$2")
  [ "${3:-}" != ro ] || mount -o remount,bind,ro "$2"
}
phase() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%T)"; }
t0=$(date +%s)

phase "debootstrap --variant=minbase bookworm into $root"
rm -rf "$root"
# ca-certificates: whoever installed the Rust toolchain had them (rustup
# and crates.io are reached over HTTPS).
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
  || { tail -20 "$root.debootstrap.log" >&2; exit 1; }
t1=$(date +%s)
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Local CAs of this host's network (an egress proxy, say) are the
# network's, not the project's: the fresh root trusts them too.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1
fi
bind /proc "$root/proc"
bind /dev "$root/dev"
bind /dev/pts "$root/dev/pts"
bind "$rustup_home" "$root/opt/rustup" ro
bind "$cargo_bin" "$root/opt/cargo-bin" ro

phase "git clone of the repository"
git clone --quiet "$repo" "$root/home/newcomer/keymaster"

in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb \
    PATH=/opt/cargo-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUSTUP_HOME=/opt/rustup CARGO_HOME=/root/.cargo \
    /bin/bash -c "cd /home/newcomer/keymaster && $1"
}

phase "scripts/demo.sh (README, first command)"
in_root scripts/demo.sh
t2=$(date +%s)
phase "scripts/test.sh (README, second command)"
in_root scripts/test.sh
t3=$(date +%s)
printf '\nfresh-check passed: debootstrap %d s, demo.sh %d s (with the build), test.sh %d s, all %d s\n' \
  $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) $((t3 - t0))
