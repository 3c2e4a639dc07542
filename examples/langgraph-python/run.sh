#!/usr/bin/env bash
# The Python LangGraph example, stopped at its interrupt and resumed after a restart of both
# the program and agentstated (examples/resume_after_restart.sh).
# Usage: run.sh PATH/TO/agentstated PATH/TO/python   (a Python with the agentstate package)
set -euo pipefail
bin=$(realpath "${1:?usage: run.sh PATH/TO/agentstated PATH/TO/python}")
python=${2:?usage: run.sh PATH/TO/agentstated PATH/TO/python}
[[ $python == */* ]] && python=$(realpath -s "$python")  # -s: a venv's python is a symlink
cd "$(dirname "${BASH_SOURCE[0]}")"
../resume_after_restart.sh "$bin" '"question": "publish?"' \
  '{"draft": "Why the tides turn twice a day", "approved": true}' "$python" graph.py
