#!/usr/bin/env bash
# Peak memory (maximum resident set) of a whole promotion, against the git CLI's clone and push of
# the same repo in the same run, on the sandbox. Not a test: it prints a Markdown table.
#
#   bench/memory.sh            release build; BENCH_RUNS (default 5) runs per case, medians
#
# Needs GNU time (/usr/bin/time, Debian's `time`) and what ./dev test needs.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${BENCH_RUNS:-5}"
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }
cargo build -q --locked --release --workspace --bins
target="${CARGO_TARGET_DIR:-target}/release"
work=$(mktemp -d)
trap 'kill "$serve" 2>/dev/null || true; rm -rf "$work"' EXIT
"$target/sandbox" serve > "$work/env" &
serve=$!
until grep -q SANDBOX_READY "$work/env" 2>/dev/null; do sleep 0.1; done
set -a; . "$work/env"; set +a
host=${GITHUB_SERVER_URL#http://}
# Fan-out: 49 more apps on the same chart, all with one label, for the 50-app case.
for i in $(seq 1 49); do
  curl -sf -X POST "$SANDBOX_CONTROL/argocd/apps" -H 'content-type: application/json' \
    -d "{\"name\":\"fan-$i\",\"labels\":{\"bench\":\"fan\"}}" > /dev/null
done
curl -sf -X POST "$SANDBOX_CONTROL/argocd/apps" -H 'content-type: application/json' \
  -d '{"name":"fan-0","labels":{"bench":"fan"}}' > /dev/null

kb() { /usr/bin/time -f %M -o "$work/rss" "$@" > /dev/null 2>&1 || { cat "$work/rss" >&2; return 1; }; tail -1 "$work/rss"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cli=(); one=(); fifty=()
for n in $(seq 1 "$runs"); do
  rm -rf "$work/c"
  c=$(kb git clone -q --depth 1 --single-branch --branch main "http://x-access-token:$GITHUB_TOKEN@$host/acme/deploy.git" "$work/c")
  sed -i "s/tag: \"[^\"]*\"/tag: \"cli-$n\"/" "$work/c/charts/app/values.yaml"
  git -C "$work/c" -c user.name=bench -c user.email=b@x commit -qam "cli $n"
  p=$(kb git -C "$work/c" push -q origin "HEAD:refs/heads/cli-$n")
  cli+=($(( c > p ? c : p )))
  promote() {
    env -i PATH="$PATH" HOME="$work" GITHUB_API_URL="$GITHUB_API_URL" GITHUB_SERVER_URL="$GITHUB_SERVER_URL" \
      GITHUB_RUN_ID="$1" "INPUT_GITHUB-TOKEN=$GITHUB_TOKEN" INPUT_REPOSITORY=acme/deploy \
      INPUT_FILE=charts/app/values.yaml "INPUT_SET=image.tag=$2" "INPUT_ARGOCD-SERVER=$ARGOCD_SERVER" \
      "INPUT_ARGOCD-TOKEN=$ARGOCD_AUTH_TOKEN" "${@:3}" /usr/bin/time -f %M -o "$work/rss" "$target/gitops-promote" > "$work/log" 2>&1 \
      || { echo "the promotion failed; its log:" >&2; cat "$work/log" >&2; exit 1; }
    tail -1 "$work/rss"
  }
  one+=($(promote "1$n" "one-$n" "INPUT_ARGOCD-APP=app"))
  fifty+=($(promote "5$n" "fifty-$n" "INPUT_ARGOCD-SELECTOR=bench=fan"))
done
m_cli=$(printf '%s\n' "${cli[@]}" | median)
m_one=$(printf '%s\n' "${one[@]}" | median)
m_fifty=$(printf '%s\n' "${fifty[@]}" | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f MB", k / 1024}'; }
echo "### Peak memory (max RSS, medians of $runs runs)"
echo
echo "| what | peak RSS | against the git CLI |"
echo "|---|---|---|"
echo "| git CLI: clone --depth 1 + push (the larger of the two) | $(mb "$m_cli") | 1.00x |"
echo "| gitops-promote: whole promotion, 1 app | $(mb "$m_one") | $(ratio "$m_one" "$m_cli") |"
echo "| gitops-promote: whole promotion, 50 apps | $(mb "$m_fifty") | $(ratio "$m_fifty" "$m_cli") |"
