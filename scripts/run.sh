#!/usr/bin/env bash
# The main job. Until `tether server` exists this builds the CLI and exercises
# the most complete thing there is: key generation and derivation.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
swift build -c release --product tether
bin=$(swift build -c release --show-bin-path)/tether
key=$("$bin" genkey)
echo "private key: (generated, not shown)"
echo "public key:  $(echo "$key" | "$bin" pubkey)"
