#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs test dependencies, then runs
# every test: unit tests of the pure core and integration tests that drive the real
# binary with real processes, sockets on 127.0.0.1 and signals.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
# The examples' own binaries (tests run them as programs built on the library).
cargo build --examples --quiet
cargo test --all-targets --no-fail-fast "$@"
