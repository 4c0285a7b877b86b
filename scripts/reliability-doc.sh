#!/bin/sh
# Regenerates docs/reliability.md: runs the fault matrix (tests/e2e/faults.rs, ~3 min on 2 cores),
# which records each case to target/tmp/fault-matrix.json and renders the doc from it.
set -eu
cd "$(dirname "$0")/.."
WRITE_RELIABILITY_DOC=1 cargo test --test e2e faults::fault_matrix -- --exact "$@"
