#!/usr/bin/env bash
# The abuse suite (tests/abuse/abuse.py) against a release build: the sketch bomb, a
# cardinality flood, stream floods, a slowloris, unreadable forwarding hops and token
# guessing, each checked against the bounds docs/limits.md promises.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --bin tally
python3 tests/abuse/abuse.py target/release/tally "$@"
