#!/bin/sh
# Dependency audit for CI: licenses, banned crates and sources (crates.io only) per deny.toml.
# Needs cargo-deny (`cargo install --locked cargo-deny`). Advisories are left out: see deny.toml.
set -eu
cd "$(dirname "$0")/.."
command -v cargo-deny >/dev/null 2>&1 || cargo install --locked cargo-deny
cargo deny --workspace check bans licenses sources
