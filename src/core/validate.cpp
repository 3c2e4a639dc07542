#include "core/validate.hpp"

#include "core/codec.hpp"

#include <fmt/format.h>

#include <simdjson.h>

namespace agentstate::core {

Status ValidateId(std::string_view what, std::string_view id, std::size_t max_bytes) {
  if (id.empty()) {
    return Status(StatusCode::kInvalidArgument, fmt::format("{} is empty; give a non-empty id", what));
  }
  if (id.size() > max_bytes) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} is {} bytes; the limit is {} bytes", what, id.size(), max_bytes));
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("{} contains control byte 0x{:02x}; ids must be printable text",
                                what, static_cast<unsigned>(c)));
    }
  }
  return Status();
}

bool IsWellFormedJson(std::string_view text) {
  // simdjson's DOM parse validates the whole document (structure, UTF-8, numbers) at
  // GB/s; the parser is reused per thread so its buffers are allocated once.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  return parser.parse(text.data(), text.size(), /*realloc_if_needed=*/true).get(doc) == simdjson::SUCCESS;
}

Status ValidateSave(const SaveRequest& r, const StoreOptions& options) {
  for (auto [what, id] : {std::pair<std::string_view, std::string_view>{"run_id", r.run_id},
                          {"thread_id", r.thread_id},
                          {"user_id", r.user_id},
                          {"agent_type", r.agent_type}}) {
    if (Status s = ValidateId(what, id, options.max_id_bytes); !s.ok()) return s;
  }
  // Free text, but text every store can keep: PostgreSQL's text type refuses NUL.
  if (r.phase.size() > kMaxPhaseBytes) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("phase of run {} is {} bytes; the limit is {}", r.run_id, r.phase.size(), kMaxPhaseBytes));
  }
  if (r.phase.find('\0') != std::string::npos) {
    return Status(StatusCode::kInvalidArgument, fmt::format("phase of run {} holds a NUL byte", r.run_id));
  }
  if (options.max_payload_bytes != 0 && r.payload.size() > options.max_payload_bytes) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("payload of run {} is {} bytes; the limit is {} bytes", r.run_id,
                              r.payload.size(), options.max_payload_bytes));
  }
  if (r.expected_version && *r.expected_version < 0) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("expected_version {} is negative", *r.expected_version));
  }
  if (options.validate_json && !IsWellFormedJson(r.payload)) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("payload of run {} is not well-formed JSON", r.run_id));
  }
  return Status();
}

Status ValidatePut(const StateRecord& r, const StoreOptions& options) {
  for (auto [what, id] : {std::pair<std::string_view, std::string_view>{"run_id", r.run_id},
                          {"thread_id", r.thread_id},
                          {"user_id", r.user_id},
                          {"agent_type", r.agent_type}}) {
    if (Status s = ValidateId(what, id, options.max_id_bytes); !s.ok()) return s;
  }
  if (r.phase.size() > kMaxPhaseBytes || r.phase.find('\0') != std::string::npos) {
    return Status(StatusCode::kInvalidArgument, fmt::format("phase of run {} is not storable text", r.run_id));
  }
  if (r.version < 1) return Status(StatusCode::kInvalidArgument, fmt::format("run {}: version {} < 1", r.run_id, r.version));
  if (Checksum(r.payload) != r.checksum) {
    return Status(StatusCode::kCorruption, fmt::format("run {} v{}: payload does not match its checksum", r.run_id, r.version));
  }
  return Status();
}

SystemTime Now(const StoreOptions& options) {
  return options.clock ? options.clock->Now() : std::chrono::system_clock::now();
}

int64_t ToUnixMillis(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

SystemTime FromUnixMillis(int64_t ms) {
  return SystemTime(std::chrono::duration_cast<SystemTime::duration>(std::chrono::milliseconds(ms)));
}

int64_t ExpiryMillis(const TtlPolicy& ttl, RunStatus status, bool is_recovery_point,
                     SystemTime now) {
  std::chrono::seconds d = status == RunStatus::kCompleted ? ttl.completed
                           : is_recovery_point             ? ttl.recovery_point
                                                           : ttl.active;
  if (d.count() <= 0) return kNever;
  return ToUnixMillis(now) + std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

Status CheckDeadline(Deadline deadline, std::string_view operation) {
  if (std::chrono::steady_clock::now() >= deadline) {
    return Status(StatusCode::kTimeout, fmt::format("{}: deadline passed before it could run", operation));
  }
  return Status();
}

}  // namespace agentstate::core

namespace agentstate::core {

std::string CheckpointId(int64_t version) { return fmt::format("v{:012}", version); }

Status ValidateActiveRunsQuery(const ActiveRunsQuery& query, std::size_t max_id_bytes) {
  if (query.limit < 1 || query.limit > 10000) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("ActiveRuns limit {} is outside 1..10000", query.limit));
  }
  if (query.thread_id) {
    if (Status s = ValidateId("thread_id", *query.thread_id, max_id_bytes); !s.ok()) return s;
  }
  // The cursor is the last run_id of the previous page; it must look like one.
  if (!query.cursor.empty()) {
    if (Status s = ValidateId("cursor", query.cursor, max_id_bytes); !s.ok()) {
      return Status(StatusCode::kInvalidArgument, "malformed ActiveRuns cursor; pass back next_cursor as given");
    }
  }
  return Status();
}

}  // namespace agentstate::core
