// Status and Result<T>: errors as values at every boundary of agentstate.
//
// A Status is a closed code plus a message a person can act on. Result<T> is a T or a
// Status (tl::expected; g++ 12 has no std::expected in C++20). Nothing in the public
// API throws across the store interface; every call returns one of these.
#pragma once

#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace agentstate {

// The closed set of error codes (DESIGN §4). kOk appears only in a default Status.
enum class StatusCode {
  kOk = 0,
  kNotFound,         // the run / checkpoint / thread does not exist (or has expired)
  kConflict,         // expected_version was stale, or the run no longer accepts writes
  kInvalidArgument,  // the request is malformed: bad id, bad JSON, payload too large
  kTimeout,          // the call's deadline passed; a write may or may not have landed
  kUnavailable,      // the store cannot be reached or refused the operation
  kPoolExhausted,    // admission control: too many operations in flight for too long
  kCorruption,       // stored bytes fail their checksum or cannot be decoded
  kInternal,         // a bug or an unexpected reply; the message says what was seen
};

// Stable lower-case name of a code ("not_found", "conflict", ...), used in logs and reports.
std::string_view CodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "conflict: run r1 is at version 3, expected 2"
  std::string ToString() const;

  friend bool operator==(const Status&, const Status&) = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
using Result = tl::expected<T, Status>;

// Result<void> spelled for readability: success carries nothing.
using Done = Result<void>;

// `return Error(StatusCode::kNotFound, "...");` from any function returning Result<T>.
inline tl::unexpected<Status> Error(StatusCode code, std::string message) {
  return tl::unexpected<Status>(Status(code, std::move(message)));
}
inline tl::unexpected<Status> Error(Status status) {
  return tl::unexpected<Status>(std::move(status));
}

}  // namespace agentstate
