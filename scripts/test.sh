#!/usr/bin/env bash
# Runs the whole test suite: unit tests and integration tests against real
# keymasterd processes, SoftHSM2 tokens and the ldns/BIND validators.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --all-targets
