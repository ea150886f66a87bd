#!/usr/bin/env bash
# Sets up this machine (idempotent), builds agent-assist and runs the demo:
# the built-in Genesys Cloud simulator, the sample knowledge base, and the
# operator console. Extra arguments go to `agent-assist demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --locked --quiet
exec ./target/debug/agent-assist demo "$@"
