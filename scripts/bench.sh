#!/usr/bin/env bash
# Runs every benchmark in Benchmarks/ and prints, for each pair measured in
# the same run, our figure beside the reference's and the ratio.
# Extra arguments go to `swift package benchmark` (e.g. --target CryptoBenchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(cd Benchmarks && swift package --disable-sandbox benchmark --format jmh --path "$out" --no-progress "$@")
python3 scripts/bench_ratios.py "$out"/*.json
