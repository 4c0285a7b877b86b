#!/usr/bin/env bash
# Runs the performance benches of issue #8 and prints one Markdown report (machine, date, medians,
# ratios) to paste into docs/performance.md. Run by hand, or by the manual `bench` job of ci.yml.
# Not a test: nothing here passes or fails on a time.
#
#   bench/run.sh [git|promote|values|memory]...    default: git promote memory
#
# BENCH_RUNS sets the runs per case (git: 7, promote: 5). Needs what ./dev test needs (git, lighttpd).
set -euo pipefail
cd "$(dirname "$0")/.."
benches=("$@")
((${#benches[@]})) || benches=(git promote memory)

echo "## Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1e6}' /proc/meminfo), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- $(rustc --version), $(git --version), commit $(git rev-parse --short HEAD)"
echo
for b in "${benches[@]}"; do
  case "$b" in
    git | promote) cargo bench --locked --bench "$b" 2> >(grep -v '^\s*\(Compiling\|Finished\|Running\)' >&2) ;;
    values) bench/values.sh ;;
    memory) bench/memory.sh ;;
    *) echo "unknown bench $b (git, promote, values, memory)" >&2; exit 2 ;;
  esac
  echo
done
