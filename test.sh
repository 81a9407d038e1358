#!/usr/bin/env bash
# Runs every test: unit tests, then the integration tests that build sites in network namespaces
# (needs root, iproute2 and the programs .ci/install-deps.sh installs). Prints "N passed, M failed" last.
set -uo pipefail
cd "$(dirname "$0")"
config=${CONFIGURATION:-Release}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

dotnet build Isthmus.slnx -c "$config" -nologo -clp:ErrorsOnly || { echo "0 passed, 1 failed"; exit 1; }
status=0
for project in tests/Isthmus.Core.Tests tests/Isthmus.Router.Tests tests/Isthmus.Node.Tests tests/Isthmus.IntegrationTests; do
    echo "== $project"
    dotnet test "$project" -c "$config" --no-build -nologo --logger "console;verbosity=normal" "$@" 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done

# The NativeAOT build (what `dotnet publish` makes and `isthmus up` ships): publish it and run the router and
# agent tests against it, so a change that AOT cannot compile, or that breaks only without the JIT, fails here.
aot_tests() {
    local out rc
    out=$(mktemp -d)
    echo "== NativeAOT: dotnet publish, then WanTrunkTests and ApplicationTests against the published isthmus"
    if ! dotnet publish src/Isthmus.Cli -c "$config" -nologo -clp:ErrorsOnly -o "$out"; then
        echo "  Failed NativeAOT publish" | tee -a "$log"
        rm -rf "$out"
        return 1
    fi
    ISTHMUS_TEST_BIN_DIR=$out dotnet test tests/Isthmus.IntegrationTests -c "$config" --no-build -nologo \
        --logger "console;verbosity=normal" --filter "FullyQualifiedName~WanTrunkTests|FullyQualifiedName~ApplicationTests" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    rm -rf "$out"
    return "$rc"
}

# Only in a full run: arguments (a --filter) are meant for the JIT runs above.
if [ "$#" -eq 0 ]; then
    aot_tests || status=1
fi

passed=$(grep -Eo 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
skipped=$(grep -Eo 'Skipped: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ "$failed" -gt 0 ]; then
    # Repeat each failure's name and message at the end, where a truncated CI log still shows them.
    echo "== failures"
    grep -E -A8 '^  Failed |^\s+Error Message:' "$log" | grep -v -E '^ +[0-9:.]+ (dbug|info|warn|fail):' | head -60
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
