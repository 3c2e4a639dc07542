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

// The rule for ids, the same in every store: printable UTF-8 text. kInvalidArgument when
// `id` is empty, longer than max_bytes, holds control bytes (NUL among them: PostgreSQL
// text rejects it) or is not valid UTF-8. `what` is "run_id", "thread_id", ...
Status ValidateId(std::string_view what, std::string_view id, std::size_t max_bytes);

// The longest phase a save may carry, in bytes.
inline constexpr std::size_t kMaxPhaseBytes = 1024;

// A phase is free text of at most kMaxPhaseBytes, valid UTF-8, without NUL.
Status ValidatePhase(std::string_view run_id, std::string_view phase);

// The deepest nesting a payload may have (arrays and objects).
inline constexpr std::size_t kMaxJsonDepth = 1024;

// OK when `text` is one well-formed JSON document (RFC 8259, valid UTF-8) within what
// the store holds: nesting up to kMaxJsonDepth, integers from -2^63 to 2^64-1, finite
// doubles. Otherwise kInvalidArgument whose message completes "payload ...": which rule or
// limit the document broke.
Status CheckJson(std::string_view text);
bool IsWellFormedJson(std::string_view text);

// The longest idempotency key a save may carry, in bytes.
inline constexpr std::size_t kMaxIdempotencyKeyBytes = 255;

// An idempotency key is empty (none) or 1..kMaxIdempotencyKeyBytes of visible ASCII
// (0x21..0x7e): what an HTTP header carries unescaped, and no quoting question in a store.
Status ValidateIdempotencyKey(std::string_view run_id, std::string_view key);

// Ids, phase, payload size (max_payload_bytes), JSON well-formedness (when enabled),
// expected_version >= 0 and the idempotency key.
Status ValidateSave(const SaveRequest& request, const StoreOptions& options);

// What Put checks before it writes: the same ids, phase and payload size as Save, and that
// the payload matches the record's checksum (a replica never stores bytes its source did
// not acknowledge, nor a record that Load would then refuse).
Status ValidatePut(const StateRecord& record, const StoreOptions& options);

// The store's notion of now (options.clock, or the system clock).
SystemTime Now(const StoreOptions& options);

// Wall-clock milliseconds since the Unix epoch, the unit stores persist times in.
int64_t ToUnixMillis(SystemTime t);
// Now(options) in those milliseconds.
int64_t NowMs(const StoreOptions& options);
// The latest time a record may carry (in 2255): the system clock counts nanoseconds in 64
// bits, so a time past 2262 cannot be held, and converting one would overflow.
inline constexpr int64_t kMaxUnixMillis = 9'000'000'000'000;
// A time from those milliseconds, clamped to +-kMaxUnixMillis (a stored time from outside
// is damage, and must not become undefined behaviour).
SystemTime FromUnixMillis(int64_t ms);

// When a record written at `now` expires, as Unix milliseconds; kNever when its TTL is 0.
inline constexpr int64_t kNever = INT64_MAX;
int64_t ExpiryMillis(const TtlPolicy& ttl, RunStatus status, bool is_recovery_point,
                     SystemTime now);

// DeletePrefix's rule: kInvalidArgument for an empty prefix (it would name every run).
Status ValidateDeletePrefix(std::string_view prefix);

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
