#!/usr/bin/env bash
# Sets up this machine (idempotent) and runs every check and test:
# formatting, clippy, unit tests, and the integration tests with the real
# model, real FAISS and the built-in Genesys Cloud simulator on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export INSTA_UPDATE=no
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
