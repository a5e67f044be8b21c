#!/usr/bin/env bash
# The dashboard's browser tests: builds `converge`, then drives the page in Debian's chromium
# (playwright-core, no downloaded browser) against real `converge serve` processes.
#
#   ./run.sh                          the tests
#   ./run.sh --screenshot FILE.png    the tests, then the README's screenshot
#
# CONVERGE_BIN names a converge binary to use instead of building one (e.g. a release
# build for the screenshot); CHROMIUM names the browser (default /usr/bin/chromium).
# A missing browser, node, python3 (its sqlite3 module writes poison events) or
# playwright-core fails: these tests never skip.
set -euo pipefail
cd "$(dirname "$0")"

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "error: no browser at $CHROMIUM: apt-get install -y chromium (or set CHROMIUM)" >&2
  exit 1
fi
if ! command -v node >/dev/null; then
  echo "error: node is missing: apt-get install -y nodejs npm" >&2
  exit 1
fi
# The dead-letter test writes a poison event into a service's SQLite file behind its back.
if ! python3 -c 'import sqlite3' 2>/dev/null; then
  echo "error: python3 with its sqlite3 module is missing: apt-get install -y python3" >&2
  exit 1
fi
if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi

if [ -z "${CONVERGE_BIN:-}" ]; then
  (cd ../../.. && cargo build -p converge)
  target_dir=$(cd ../../.. && cargo metadata --format-version 1 --no-deps |
    node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).target_directory))')
  CONVERGE_BIN="$target_dir/debug/converge"
fi
export CONVERGE_BIN CHROMIUM

# One file at a time: each starts its own systems, and the machine may have two cores.
node --test --test-concurrency=1 dashboard.test.mjs processes.test.mjs

if [ "${1:-}" = "--screenshot" ]; then
  node screenshot.mjs "${2:?--screenshot needs a file name}"
fi
