// A lower layer (core) that includes a higher one (load): scripts/check_layers.sh must
// refuse it. Never built; the `layers.*` test runs the check on this folder.
#include "core/fine.hpp"
#include "load/engine.hpp"
