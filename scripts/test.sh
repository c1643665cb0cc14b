#!/usr/bin/env bash
# The one command that runs every test: installs what the tests need, builds
# in release, then runs each test target in its own process, one after the
# other (namespace tests included when run as root).
#
# One process per target keeps suites that drive real peers, namespaces and
# child processes from starving each other on a 2-core machine, and a crash
# in one target cannot hide the results of the others. Within a target,
# Swift Testing still runs tests in parallel. Pass a target name (or several)
# to run only those: scripts/test.sh MeshTests DERPTests
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh || exit 1
swift build -c release --build-tests || exit 1

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(ls Tests)
fi
failed=()
for target in "${targets[@]}"; do
    echo "=== $target"
    if ! swift test -c release --skip-build --filter "^${target}\."; then
        failed+=("$target")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "all test targets passed: ${targets[*]}"
