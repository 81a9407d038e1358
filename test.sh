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
