#!/usr/bin/env bash
# Times our edit (criterion) and ruamel.yaml on the same 5 MB file with the same 100 sets, and
# counts the lines each one changed. Needs python3 with ruamel.yaml (pip install ruamel.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${CARGO_TARGET_DIR:-target}/bench-values"

cargo bench --bench values -- --noplot
rust_ns=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mean"]["point_estimate"])' \
  "${CARGO_TARGET_DIR:-target}/criterion/values/apply_5mb_100_sets/new/estimates.json")
ruamel_s=$(python3 bench/values_ruamel.py "$dir" "${RUAMEL_RUNS:-3}")

# Lines changed: lines of the original that differ in the output (diff's `<` lines).
changed() { diff "$dir/values.yaml" "$1" | grep -c '^<' || true; }
rust_lines=$(changed "$dir/rust-out.yaml")
ruamel_lines=$(changed "$dir/ruamel-out.yaml")

python3 - "$rust_ns" "$ruamel_s" "$rust_lines" "$ruamel_lines" "$(wc -c <"$dir/values.yaml")" <<'PY'
import sys
ns, rs, rl, yl, size = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
print(f"file: {size} bytes, 100 sets")
print(f"| tool | time | lines changed |")
print(f"|---|---|---|")
print(f"| gitops-promote (values::apply, incl. re-parse check) | {ns/1e6:.0f} ms | {rl} |")
print(f"| ruamel.yaml round trip (load, set, dump) | {rs*1000:.0f} ms | {yl} |")
print(f"ratio: ruamel / ours = {rs*1e9/ns:.1f}x")
PY

echo
echo "Lines changed on the fixtures (same sets; ruamel.yaml with preserve_quotes, default indentation):"
python3 bench/values_ruamel.py --fixtures tests/fixtures/values
