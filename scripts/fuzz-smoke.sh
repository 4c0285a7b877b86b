#!/bin/sh
# A short fuzz run (issue #7): each cargo-fuzz target in fuzz/ for FUZZ_RUNS inputs (default
# 400000, about 20 s for the slower target here) from the committed seeds, with a fixed FUZZ_SEED
# (default 1) so that a commit's run is repeatable: a red run is a bug in that commit, not bad luck.
# FUZZ_SECONDS caps each target's time (default 120; 0 skips the run). `./dev test` (and so
# .ci/run) runs it after the test suite; the GitHub workflow's fuzz job explores with random seeds.
#
# With a nightly toolchain it runs under AddressSanitizer. Without one (the development machines and
# .ci/run have stable only) it builds with RUSTC_BOOTSTRAP=1 and no sanitizer: libFuzzer still drives
# the targets and every panic, abort, timeout or out-of-memory fails the run. The product is safe
# Rust, so a panic is what this run is there to find.
#
# New inputs go to a temporary directory, not into fuzz/corpus: only the seeds are kept. A crash
# leaves its input in fuzz/artifacts/<target>/ and fails the run.
set -eu
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-120}"
runs="${FUZZ_RUNS:-400000}"
seed="${FUZZ_SEED:-1}"
[ "$seconds" -gt 0 ] || { echo "fuzz smoke skipped (FUZZ_SECONDS=0)"; exit 0; }
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz --version 0.13.2

if cargo +nightly --version >/dev/null 2>&1; then
    set -- +nightly fuzz run
else
    export RUSTC_BOOTSTRAP=1
    set -- fuzz run --sanitizer none
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in path values_edit; do
    mkdir -p "$work/$target"
    echo "fuzzing $target: $runs inputs, seed $seed, at most ${seconds}s"
    if ! cargo "$@" "$target" "$work/$target" "corpus/$target" -- \
        -runs="$runs" -seed="$seed" -max_total_time="$seconds" \
        -max_len=4096 -rss_limit_mb=1024 -print_final_stats=1 \
        >"$work/$target.log" 2>&1; then
        # The panic message first: libFuzzer's stack trace after it fills the tail.
        grep -A3 "panicked" "$work/$target.log" >&2 || true
        tail -n 30 "$work/$target.log" >&2
        echo "fuzz: $target failed; a crashing input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(Done|stat::peak_rss_mb)' "$work/$target.log" || true
done
