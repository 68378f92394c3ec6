#!/usr/bin/env bash
# From a fresh Debian 12 machine: install what the build needs, build, and serve
# the bundled watchlist example (fixtures/watchlist) on 127.0.0.1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --no-tests
"$ROOT/scripts/build.sh"
exec "$ROOT/build/sluice" serve "$ROOT/fixtures/watchlist/sluice.yaml" "$@"
