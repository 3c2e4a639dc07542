#include "core/record.hpp"

#include <fmt/format.h>

#include <utility>

namespace agentstate::core {
namespace {

template <typename Request>
StateRecord Build(Request&& r, int64_t version, uint64_t checksum, SystemTime saved_at) {
  StateRecord m;
  m.run_id = std::forward<Request>(r).run_id;
  m.thread_id = std::forward<Request>(r).thread_id;
  m.user_id = std::forward<Request>(r).user_id;
  m.agent_type = std::forward<Request>(r).agent_type;
  m.phase = std::forward<Request>(r).phase;
  m.idempotency_key = std::forward<Request>(r).idempotency_key;
  m.version = version;
  m.step_count = r.step_count;
  m.checkpoint_type = r.checkpoint_type;
  m.is_recovery_point = r.is_recovery_point;
  m.status = RunStatus::kActive;
  m.saved_at = saved_at;
  m.checksum = checksum;
  return m;
}

}  // namespace

StateRecord RecordOf(SaveRequest&& request, int64_t version, uint64_t checksum,
                     SystemTime saved_at) {
  return Build(std::move(request), version, checksum, saved_at);
}

StateRecord RecordOf(const SaveRequest& request, int64_t version, uint64_t checksum,
                     SystemTime saved_at) {
  return Build(request, version, checksum, saved_at);
}

std::optional<Result<SaveAck>> Replay(std::string_view run_id, std::string_view key,
                                      uint64_t checksum, std::string_view stored_key,
                                      int64_t stored_version, uint64_t stored_checksum) {
  if (key.empty() || stored_key != key) return std::nullopt;
  if (stored_checksum != checksum) {
    return Error(StatusCode::kConflict,
                 fmt::format("run {}: idempotency key '{}' already saved other bytes as version "
                             "{}; use a new key for a new state",
                             run_id, key, stored_version));
  }
  return SaveAck{stored_version, stored_checksum, /*replayed=*/true};
}

}  // namespace agentstate::core
