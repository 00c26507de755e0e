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
# Then the integration tests again on PostgreSQL (SORTIE_TEST_DATABASE=postgres): one throwaway
# cluster for the pass, a database per test Sortie. Which: those in server/test/ that give Sortie
# the harness's database (startTestSortie) or open it (openTestDatabase, testDatabaseLocation),
# but the browser tests and the three whose subject is the desktop itself (a stream kept open behind
# an idle proxy, typing on foreign keyboards, the clipboard's directions; the app's clipboard
# setting is stored and read on both in database.test.ts): they add minutes and no query the API tests do not
# make. The cluster
# and deploy tests (in subfolders) run once. The database layer's own tests run on both in the
# first pass.
mapfile -t postgres_files < <(grep -l -E 'startTestSortie|openTestDatabase|testDatabaseLocation' server/test/*.test.ts | grep -v -E 'browser|stream-keepalive|desktop-keyboard|desktop-vnc' | sort)
test_run=(node --import tsx --test --test-concurrency=1 --test-timeout=600000 --test-reporter=spec --test-reporter-destination=stdout)
tap=$(mktemp)
postgres_tap=$(mktemp)
# Each file's seconds, for the slowest files printed at the end (see scripts/test-file-times.mjs).
times=$(mktemp)
postgres_times=$(mktemp)
file_times=--test-reporter=./scripts/test-file-times.mjs
status=0
"${test_run[@]}" --test-reporter=tap --test-reporter-destination="$tap" "$file_times" --test-reporter-destination="$times" "${files[@]}" || status=$?
echo "again on PostgreSQL: ${#postgres_files[@]} integration test files"
started=$SECONDS
node --import tsx server/test/support/with-postgres.ts \
  "${test_run[@]}" --test-reporter=tap --test-reporter-destination="$postgres_tap" "$file_times" --test-reporter-destination="$postgres_times" "${postgres_files[@]}" || status=$?
echo "the PostgreSQL pass took $((SECONDS - started)) s"
# One plain closing line, whatever the reporter prints.
count() {
  local sqlite postgres
  sqlite=$(sed -n "s/^# $1 //p" "$tap" | tail -1)
  postgres=$(sed -n "s/^# $1 //p" "$postgres_tap" | tail -1)
  echo $((${sqlite:-0} + ${postgres:-0}))
}
passed=$(count pass)
failed=$(count fail)
skipped=$(count skipped)
rm -f "$tap" "$postgres_tap"
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
# Where the time goes: the slowest files of each pass, each with its whole time (process, hooks,
# tests). Printing it never changes the status.
slowest() {
  echo "slowest test files, $1 (s; all files: $(awk '{ s += $1 } END { printf "%d", s }' "$2") s):"
  sort -rn "$2" | head -15 | awk -F '\t' '{ printf "%7.1f  %s\n", $1, $2 }'
}
slowest "SQLite pass" "$times" || true
slowest "PostgreSQL pass" "$postgres_times" || true
rm -f "$times" "$postgres_times"
if [[ ${skipped:-0} != 0 ]]; then echo "a skipped test is not a passing test" >&2; status=1; fi
exit "$status"
