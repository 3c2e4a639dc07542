// The one place a save request becomes the record it writes.
#pragma once

#include <cstdint>

#include "agentstate/model.hpp"

namespace agentstate::core {

// The record a save of `request` writes at `version`: ids, step count, phase and durability
// class from the request (moved out of an rvalue, copied from an lvalue), status active,
// the given checksum and saved_at. The payload is left where it is: backends store it
// encoded beside the record, and a caller that keeps it in the record moves it in itself.
StateRecord RecordOf(SaveRequest&& request, int64_t version, uint64_t checksum,
                     SystemTime saved_at);
StateRecord RecordOf(const SaveRequest& request, int64_t version, uint64_t checksum,
                     SystemTime saved_at);

}  // namespace agentstate::core
