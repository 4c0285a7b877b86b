#!/bin/sh
# A short fuzz run for CI (issue #7): each cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 60)
# from the seed corpus. Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the step.
set -eu
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
for target in path values_edit; do
    mkdir -p "corpus/$target"
    cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024
done
