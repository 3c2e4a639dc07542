#!/usr/bin/env bash
# The layer rule of docs/architecture.md, checked on every build (the `layers` target): a
# file may include the public API, its own component and the layers below its own, never a
# layer above nor another component of its own layer. Exit 1 naming each offending line.
#
#   0 include/agentstate      the public API
#   1 src/core                status, codec, URIs, admission, shared helpers
#   2 src/backends/<name>     one component per backend, and the ClickHouse analytics sink
#   3 src/tiered              the tiered store
#   4 src/compose             the composition root: OpenStore, OpenTieredStore
#   5 src/load, src/server    the load harness and the service
#   6 apps/<program>          the programs
# and one rule more: the harness, the service and the programs (layers 5 and 6) reach stores
# through the public API alone (OpenStore, OpenTieredStore, TieredStore): they include no
# backend, tiered or compose header. What only a composed store can answer comes in through
# an interface (load::StoreChecks), supplied by the program that opened it.
set -euo pipefail
cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}"

# The component a path belongs to ("backends/redis", "core", ...) and its layer.
component() {
  case "$1" in
    include/agentstate/* | agentstate/*) echo "agentstate 0" ;;
    src/core/* | core/*) echo "core 1" ;;
    src/backends/*/* | backends/*/*) local p=${1#src/}; p=${p#backends/}; echo "backends/${p%%/*} 2" ;;
    src/tiered/* | tiered/*) echo "tiered 3" ;;
    src/compose/* | compose/*) echo "compose 4" ;;
    src/load/* | load/*) echo "load 5" ;;
    src/server/* | server/*) echo "server 5" ;;
    apps/*/*) local p=${1#apps/}; echo "apps/${p%%/*} 6" ;;
    *) echo "? -1" ;;
  esac
}

bad=0
while IFS= read -r file; do
  read -r own own_layer < <(component "$file")
  if ((own_layer < 0)); then
    echo "layers: $file lies in no layer; put it in the folder of the layer it belongs to" >&2
    bad=1
    continue
  fi
  while IFS=: read -r line inc; do
    inc=${inc#*\"}
    inc=${inc%%\"*}
    [[ "$inc" == */* ]] || continue  # a header beside the file (apps' own, say)
    read -r dep dep_layer < <(component "$inc")
    ((dep_layer < 0)) && continue    # not one of ours
    [[ "$dep" == "$own" ]] && continue
    if ((own_layer >= 5)) && [[ "$dep" == backends/* || "$dep" == tiered || "$dep" == compose ]]; then
      echo "layers: $file:$line includes \"$inc\" ($dep): above the composition root a store is" \
           "reached through the public API (include/agentstate), never a backend's own header" >&2
      bad=1
      continue
    fi
    if ((dep_layer >= own_layer)); then
      echo "layers: $file:$line includes \"$inc\" ($dep, layer $dep_layer) from $own (layer $own_layer): a layer" \
           "may use only the layers below it" >&2
      bad=1
    fi
  done < <(grep -n '^#include "' "$file" || true)
done < <(for d in include src apps; do [[ -d $d ]] && find "$d" -name '*.hpp' -o -name '*.cpp'; done | sort)
exit $bad
