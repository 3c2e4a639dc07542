// A higher layer (load) that includes a lower one (core): allowed.
#include "core/fine.hpp"
#include "load/engine.hpp"
