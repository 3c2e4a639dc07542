#!/usr/bin/env bash
# The house style, checked: exit 1 naming every C++ file that clang-format (Debian's, with
# the repo's .clang-format) would change; `clang-format -i FILE` fixes one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v clang-format >/dev/null || { echo "check_format: clang-format is missing; run scripts/install-deps.sh" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
bad=$(clang-format --dry-run "${files[@]}" 2>&1 | grep -oE '^[^: ]+\.(cpp|hpp):[0-9]+:' | cut -d: -f1 | sort -u || true)
if [[ -n "$bad" ]]; then
  echo "check_format: these files are not formatted (clang-format -i FILE):" >&2
  echo "$bad" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files formatted"
