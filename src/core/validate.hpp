// Request checks and policy helpers every backend applies the same way, at its entry,
// before anything is sent or written.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agentstate/model.hpp"
#include "agentstate/options.hpp"
#include "agentstate/status.hpp"

namespace agentstate::core {

// kInvalidArgument when `id` is empty, longer than max_bytes, or holds control bytes
// (NUL among them: PostgreSQL text rejects it). `what` is "run_id", "thread_id", ...
Status ValidateId(std::string_view what, std::string_view id, std::size_t max_bytes);

// True when `text` is one well-formed JSON document (RFC 8259, valid UTF-8).
bool IsWellFormedJson(std::string_view text);

// The longest phase a save may carry, in bytes.
inline constexpr std::size_t kMaxPhaseBytes = 1024;

// Ids, phase (at most kMaxPhaseBytes, no NUL), payload size, JSON well-formedness (when
// enabled) and expected_version >= 0.
Status ValidateSave(const SaveRequest& request, const StoreOptions& options);

// What Put checks before it writes: the ids, the phase, and that the payload matches the
// record's checksum (a replica never stores bytes its source did not acknowledge).
Status ValidatePut(const StateRecord& record, const StoreOptions& options);

// The store's notion of now (options.clock, or the system clock).
SystemTime Now(const StoreOptions& options);

// Wall-clock milliseconds since the Unix epoch, the unit stores persist times in.
int64_t ToUnixMillis(SystemTime t);
SystemTime FromUnixMillis(int64_t ms);

// When a record written at `now` expires, as Unix milliseconds; kNever when its TTL is 0.
inline constexpr int64_t kNever = INT64_MAX;
int64_t ExpiryMillis(const TtlPolicy& ttl, RunStatus status, bool is_recovery_point,
                     SystemTime now);

// kTimeout when the deadline has passed; used at every point a call may start work.
Status CheckDeadline(Deadline deadline, std::string_view operation);

}  // namespace agentstate::core

namespace agentstate::core {

// A run's checkpoint at `version` has this id ("v000000000042"): one per version, and ids
// sort in version order.
std::string CheckpointId(int64_t version);

// Limits on ActiveRuns pages, checked the same way by every backend.
Status ValidateActiveRunsQuery(const ActiveRunsQuery& query, std::size_t max_id_bytes);

}  // namespace agentstate::core
