// The harness (load) including a backend's own header: below it in the layers, but past the
// public API. scripts/check_layers.sh must refuse it. Never built.
#include "agentstate/registry.hpp"
#include "backends/redis/client.hpp"
