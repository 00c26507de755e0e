#!/usr/bin/env bash
# One command from a fresh machine to a running Sortie on the demo catalog:
# installs what is missing, builds, and starts the server (local runner + SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "Sortie: open http://localhost:${SORTIE_PORT:-8080}"
exec npm start --silent
