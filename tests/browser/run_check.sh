#!/usr/bin/env bash
# The browser test: a real quick run on the embedded store writes index.html, then
# Debian's Chromium renders it (tests/browser/check_report.mjs). Needs `chromium` and
# `npm ci --prefix tests/browser` (scripts/test.sh does both).
#   run_check.sh AGENTLOAD OUTPUT_DIR
set -euo pipefail
agentload=$1 out=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$out" && mkdir -p "$out"
# Gates may fail or hold: this test is about the page, so any verdict (0 or 1) will do.
"$agentload" --quick --store "sqlite://$out/store.db" --report-dir "$out/reports" > "$out/agentload.log" || [[ $? -eq 1 ]]
node "$here/check_report.mjs" "$out/reports" "$out/index.png"
