#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, brings up the
# local Kubernetes cluster (cached after the first run), then runs every test with
# node's test runner. One runner, one process at a time: the integration tests start
# real desktops and pods, and the machine has two cores.
set -Eeuo pipefail
# Never stop silently: say which command failed, where.
trap 'printf "[%s] error: \"%s\" failed with status %s at %s:%s\n" "test" "$BASH_COMMAND" "$?" "${BASH_SOURCE[0]}" "$LINENO" >&2' ERR
cd "$(dirname "$0")/.."
bash scripts/setup.sh

npm run --silent typecheck

bash scripts/local-cluster.sh up
eval "$(bash scripts/local-cluster.sh env)"

mapfile -t files < <(
  find server/src -name '*.test.ts' | sort   # unit tests, next to the code
  find web/src -name '*.test.ts' | sort      # the web UI's pure helpers
  find server/test -name '*.test.ts' | sort  # integration: real DB, runner, browser, cluster
)
tap=$(mktemp)
status=0
node --import tsx --test --test-concurrency=1 --test-timeout=600000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  "${files[@]}" || status=$?
# One plain closing line, whatever the reporter prints.
passed=$(sed -n 's/^# pass //p' "$tap" | tail -1)
failed=$(sed -n 's/^# fail //p' "$tap" | tail -1)
skipped=$(sed -n 's/^# skipped //p' "$tap" | tail -1)
rm -f "$tap"
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
if [[ ${skipped:-0} != 0 ]]; then echo "a skipped test is not a passing test" >&2; status=1; fi
exit "$status"
