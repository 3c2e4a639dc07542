#include "core/validate.hpp"

#include "core/codec.hpp"

#include <fmt/format.h>

#include <simdjson.h>
#include <algorithm>

namespace agentstate::core {

Status ValidateId(std::string_view what, std::string_view id, std::size_t max_bytes) {
  if (id.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} is empty; give a non-empty id", what));
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
  // Every store must be able to keep what one of them accepts: PostgreSQL's text refuses
  // invalid UTF-8, so no store takes it.
  if (!simdjson::validate_utf8(id.data(), id.size())) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} is not valid UTF-8; ids must be printable UTF-8 text", what));
  }
  return Status();
}

Status ValidatePhase(std::string_view run_id, std::string_view phase) {
  if (phase.size() > kMaxPhaseBytes) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("phase of run {} is {} bytes; the limit is {}", run_id, phase.size(),
                              kMaxPhaseBytes));
  }
  // Free text, but text every store can keep: PostgreSQL's text type refuses NUL and
  // invalid UTF-8.
  if (phase.find('\0') != std::string_view::npos) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("phase of run {} holds a NUL byte", run_id));
  }
  if (!simdjson::validate_utf8(phase.data(), phase.size())) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("phase of run {} is not valid UTF-8", run_id));
  }
  return Status();
}

static_assert(simdjson::DEFAULT_MAX_DEPTH == kMaxJsonDepth);

namespace {

// What simdjson could not hold, said as the limit a caller can act on.
std::string JsonProblem(simdjson::error_code e) {
  switch (e) {
    case simdjson::DEPTH_ERROR:
      return fmt::format("nests deeper than {} levels (the limit; flatten the document)",
                         kMaxJsonDepth);
    case simdjson::NUMBER_OUT_OF_RANGE:
      return "holds a number outside the stored range (integers from -2^63 to 2^64-1, finite "
             "doubles; send larger "
             "numbers as strings)";
    case simdjson::UTF8_ERROR: return "is not valid UTF-8";
    case simdjson::CAPACITY: return "is larger than the JSON parser can hold (4 GiB)";
    case simdjson::EMPTY: return "is empty: not well-formed JSON";
    default: return fmt::format("is not well-formed JSON ({})", simdjson::error_message(e));
  }
}

}  // namespace

namespace {

// simdjson answers NUMBER_ERROR both for a malformed number ("01", "1.") and for one out
// of its range (2^64, 1e400). On that error path only, the number tokens are checked
// against RFC 8259's grammar: all grammatical means the range was the problem.
bool NumbersAreGrammatical(std::string_view text) {
  auto digits = [&](std::size_t& i) {
    const std::size_t from = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    return i > from;
  };
  bool in_string = false;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        i += 2;
      else {
        in_string = c != '"';
        ++i;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      ++i;
      continue;
    }
    if (c != '-' && (c < '0' || c > '9')) {
      ++i;
      continue;
    }
    // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    if (text[i] == '-') ++i;
    if (i < text.size() && text[i] == '0') {
      ++i;
    } else if (!digits(i)) {
      return false;
    }
    if (i < text.size() && text[i] == '.' && !digits(++i)) return false;
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
      ++i;
      if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
      if (!digits(i)) return false;
    }
    if (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.'))
      return false;  // "01", "1.2.3"
  }
  return true;
}

}  // namespace

Status CheckJson(std::string_view text) {
  // simdjson's DOM parse validates the whole document (structure, UTF-8, numbers) at
  // GB/s; the parser is reused per thread so its buffers are allocated once.
  // Its nesting limit is simdjson's default, kMaxJsonDepth (asserted below).
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const auto e = parser.parse(text.data(), text.size(), /*realloc_if_needed=*/true).get(doc);
  if (e == simdjson::SUCCESS) return Status();
  if (e == simdjson::NUMBER_ERROR && NumbersAreGrammatical(text)) {
    return Status(StatusCode::kInvalidArgument, JsonProblem(simdjson::NUMBER_OUT_OF_RANGE));
  }
  return Status(StatusCode::kInvalidArgument, JsonProblem(e));
}

bool IsWellFormedJson(std::string_view text) { return CheckJson(text).ok(); }

namespace {

// What Save and Put both check of the fields a caller chose.
Status ValidateFields(std::string_view run_id, std::string_view thread_id, std::string_view user_id,
                      std::string_view agent_type, std::string_view phase,
                      std::size_t payload_bytes, const StoreOptions& options) {
  for (auto [what, id] : {std::pair<std::string_view, std::string_view>{"run_id", run_id},
                          {"thread_id", thread_id},
                          {"user_id", user_id},
                          {"agent_type", agent_type}}) {
    if (Status s = ValidateId(what, id, options.max_id_bytes); !s.ok()) return s;
  }
  if (Status s = ValidatePhase(run_id, phase); !s.ok()) return s;
  if (options.max_payload_bytes != 0 && payload_bytes > options.max_payload_bytes) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("payload of run {} is {} bytes; the limit is {} bytes", run_id,
                              payload_bytes, options.max_payload_bytes));
  }
  return Status();
}

}  // namespace

Status ValidateIdempotencyKey(std::string_view run_id, std::string_view key) {
  if (key.size() > kMaxIdempotencyKeyBytes) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("run {}: idempotency key is {} bytes; the limit is {} bytes", run_id,
                              key.size(), kMaxIdempotencyKeyBytes));
  }
  for (unsigned char c : key) {
    if (c < 0x21 || c > 0x7e) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("run {}: idempotency key holds byte 0x{:02x}; use visible ASCII "
                                "(0x21..0x7e), such as a UUID",
                                run_id, c));
    }
  }
  return Status();
}

Status ValidateDeletePrefix(std::string_view prefix) {
  if (prefix.empty())
    return Status(StatusCode::kInvalidArgument,
                  "DeletePrefix needs a non-empty prefix: an empty one would remove every run");
  return Status();
}

Status ValidateSave(const SaveRequest& r, const StoreOptions& options) {
  if (Status s = ValidateFields(r.run_id, r.thread_id, r.user_id, r.agent_type, r.phase,
                                r.payload.size(), options);
      !s.ok()) {
    return s;
  }
  if (Status s = ValidateIdempotencyKey(r.run_id, r.idempotency_key); !s.ok()) return s;
  if (r.expected_version && *r.expected_version < 0) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("expected_version {} is negative", *r.expected_version));
  }
  if (options.validate_json) {
    if (Status s = CheckJson(r.payload); !s.ok()) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("payload of run {} {}", r.run_id, s.message()));
    }
  }
  return Status();
}

Status ValidatePut(const StateRecord& r, const StoreOptions& options) {
  if (Status s = ValidateFields(r.run_id, r.thread_id, r.user_id, r.agent_type, r.phase,
                                r.payload.size(), options);
      !s.ok()) {
    return s;
  }
  if (Status s = ValidateIdempotencyKey(r.run_id, r.idempotency_key); !s.ok()) return s;
  if (r.version < 1)
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("run {}: version {} < 1", r.run_id, r.version));
  if (Checksum(r.payload) != r.checksum) {
    return Status(
        StatusCode::kCorruption,
        fmt::format("run {} v{}: payload does not match its checksum", r.run_id, r.version));
  }
  return Status();
}

SystemTime Now(const StoreOptions& options) {
  return options.clock ? options.clock->Now() : std::chrono::system_clock::now();
}

int64_t ToUnixMillis(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

int64_t NowMs(const StoreOptions& options) { return ToUnixMillis(Now(options)); }

SystemTime FromUnixMillis(int64_t ms) {
  ms = std::clamp<int64_t>(ms, -kMaxUnixMillis, kMaxUnixMillis);
  return SystemTime(
      std::chrono::duration_cast<SystemTime::duration>(std::chrono::milliseconds(ms)));
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
    return Status(StatusCode::kTimeout,
                  fmt::format("{}: deadline passed before it could run", operation));
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
      return Status(StatusCode::kInvalidArgument,
                    "malformed ActiveRuns cursor; pass back next_cursor as given");
    }
  }
  return Status();
}

}  // namespace agentstate::core
