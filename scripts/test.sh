#!/usr/bin/env bash
# Runs the whole test suite: unit tests and integration tests against real
# keymasterd processes, SoftHSM2 tokens and the ldns/BIND validators.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The end-to-end tests are one binary (tests/e2e) whose tests mostly wait
# on real processes and real TTLs: they run 8 at a time on 2 cores.
cargo test --all-targets -- --test-threads="${KEYMASTER_TEST_THREADS:-8}"
