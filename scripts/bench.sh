#!/usr/bin/env bash
# Runs every benchmark in Benchmarks/ and prints, for each pair measured in
# the same run, our figure beside the reference's and the ratio.
# Extra arguments go to `swift package benchmark` (e.g. --target CryptoBenchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# The DERP benchmarks run the relay as its own process, as socat runs.
swift build -c release --product tether
TETHER_BIN="$(swift build -c release --show-bin-path)/tether"
export TETHER_BIN
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The plugin treats every folder under Benchmarks/Benchmarks as its own, so
# name the package-benchmark targets (those importing Benchmark); the plain
# executables run below, each on its own.
targets=()
if [[ " $* " != *" --target "* ]]; then
    for dir in $(grep -l '^import Benchmark$' Benchmarks/Benchmarks/*/*.swift | xargs -n1 dirname | sort -u); do
        targets+=(--target "$(basename "$dir")")
    done
fi
(cd Benchmarks && swift package --disable-sandbox benchmark --format jmh --path "$out" --no-progress "${targets[@]}" "$@")
python3 scripts/bench_ratios.py "$out"/*.json

# Whole-process figures of tether server / tether agent (issue 8), each
# beside its goal: agent idle memory, start-to-ready, 1,000 simulated agents;
# ReferenceProcess (a minimal Swift program linking Foundation) is measured
# beside the agent.
swift build -c release --package-path Benchmarks --product ReferenceProcess
TETHER_BIN="$TETHER_BIN" \
    swift run -c release --package-path Benchmarks ControlPlaneBenchmarks

# DERP relay vs socat (throughput, relay CPU per packet) and memory per idle
# client with 10,000 clients (issue 5); the relay runs as its own process.
swift run -c release --package-path Benchmarks DERPBenchmarks

# Netstack (issue 4): a plain executable with fixed-length runs and a
# watchdog; each line is ours, the reference from the same run, the ratio
# and the load average. The TUN/veth lines need root and iperf3.
swift run -c release --package-path Benchmarks NetstackBenchmarks

# Mesh node-to-node figures (issue 7) beside plain kernel TCP on loopback.
swift run -c release --package-path Benchmarks MeshBenchmarks

# WireGuardCore (issue 3): transport seal+open vs raw libsodium, handshakes
# vs the X25519 bound, in alternating slices.
swift run -c release --package-path Benchmarks WireGuardBenchmarks

# WireGuard devices on TUN (issue 3): iperf3 through a pair of ours vs a pair
# of wireguard-go on the same namespaces, and the mixed pair. Needs root.
if [ "$(id -u)" = 0 ]; then
    scripts/interop/iperf.sh "$TETHER_BIN" 10
else
    echo "skipping the WireGuard iperf3 pairs: they need root (network namespaces, TUN)"
fi
