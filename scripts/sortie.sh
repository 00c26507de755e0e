#!/usr/bin/env bash
# One command from a fresh machine to a running Sortie on the demo catalog:
# installs what is missing, builds, and starts the server (local runner + SQLite).
set -Eeuo pipefail
# Never stop silently: say which command failed, where.
trap 'printf "[%s] error: \"%s\" failed with status %s at %s:%s\n" "sortie" "$BASH_COMMAND" "$?" "${BASH_SOURCE[0]}" "$LINENO" >&2' ERR
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "Sortie: open http://localhost:${SORTIE_PORT:-8080}"
exec npm start --silent
