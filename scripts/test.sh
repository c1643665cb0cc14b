#!/usr/bin/env bash
# The one command that runs every test: installs what the tests need, builds,
# then runs the whole suite (namespace tests included when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
swift build -c release --build-tests
swift test -c release --skip-build "$@"
