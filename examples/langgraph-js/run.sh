#!/usr/bin/env bash
# The LangGraph.js example, stopped at its interrupt and resumed after a restart of both the
# program and agentstated (examples/resume_after_restart.sh).
# Usage: run.sh PATH/TO/agentstated
set -euo pipefail
bin=$(realpath "${1:?usage: run.sh PATH/TO/agentstated}")
cd "$(dirname "${BASH_SOURCE[0]}")"
../resume_after_restart.sh "$bin" '"question":"publish?"' \
  '{"draft":"Why the tides turn twice a day","approved":true}' node graph.mjs
