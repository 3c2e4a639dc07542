// The one place a save request becomes the record it writes.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "agentstate/model.hpp"
#include "agentstate/status.hpp"

namespace agentstate::core {

// The record a save of `request` writes at `version`: ids, step count, phase and durability
// class from the request (moved out of an rvalue, copied from an lvalue), status active,
// the given checksum and saved_at. The payload is left where it is: backends store it
// encoded beside the record, and a caller that keeps it in the record moves it in itself.
StateRecord RecordOf(SaveRequest&& request, int64_t version, uint64_t checksum,
                     SystemTime saved_at);
StateRecord RecordOf(const SaveRequest& request, int64_t version, uint64_t checksum,
                     SystemTime saved_at);

// The one idempotency rule (SaveRequest::idempotency_key, `key`), for every backend to apply inside
// the commit that reads the run's latest version: nullopt when the request has no key or the
// latest version was written with another one (a new write); else that version's
// acknowledgement again, marked replayed, or kConflict when the key came with other bytes
// (`checksum` is the request's payload's; `run_id` names the run in the error).
std::optional<Result<SaveAck>> Replay(std::string_view run_id, std::string_view key,
                                      uint64_t checksum, std::string_view stored_key,
                                      int64_t stored_version, uint64_t stored_checksum);

}  // namespace agentstate::core
