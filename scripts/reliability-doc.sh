#!/bin/sh
# Regenerates docs/reliability.md: runs the fault matrix (tests/e2e/faults.rs, ~3 min on 2 cores),
# which records each case to target/tmp/fault-matrix.json, then renders the doc from that file.
set -eu
cd "$(dirname "$0")/.."
cargo test --test e2e faults::fault_matrix -- --exact
cargo test --test e2e faults::git_faults -- --exact
cargo test --test e2e faults::prometheus_faults -- --exact
cargo test --test e2e faults::render_reliability_doc -- --exact --ignored
