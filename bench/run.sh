#!/usr/bin/env bash
# run.sh: latchkey's load benchmark in one command. Builds the release binary
# and the argon2 baseline, installs wrk (and the sqlite3 CLI, handy for poking
# at the bench databases) from Debian's packages when missing, then runs
# bench/bench.py, which prints a table and writes bench/results/<UTC>.jsonl.
#
#   bench/run.sh                  the full run (about 15 minutes on 2 cores, plus
#                                 about 4 the first time, for the big database)
#   BENCH_QUICK=1 bench/run.sh    a smoke run of about a minute
#
# Settings are environment variables; bench/README.md lists them.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$bench_dir")

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
if ((${#missing[@]})); then
    echo "installing ${missing[*]} from Debian's packages ..." >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v python3 >/dev/null || { echo "run.sh: python3 is required" >&2; exit 1; }

if [ -z "${BENCH_BINARY:-}" ]; then
    echo "building latchkey (release) ..." >&2
    (cd "$root" && cargo build --release --quiet)
fi
echo "building the argon2 baseline (release) ..." >&2
cargo build --release --quiet --manifest-path "$bench_dir/argon2_baseline/Cargo.toml"

exec python3 "$bench_dir/bench.py" "$@"
