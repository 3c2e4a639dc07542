#include "core/record.hpp"

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

}  // namespace agentstate::core
