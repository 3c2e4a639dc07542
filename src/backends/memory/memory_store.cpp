#include "backends/memory/memory_store.hpp"

#include <fmt/format.h>

#include "core/record.hpp"
#include "core/validate.hpp"

namespace agentstate::backends::memory {

using core::CheckDeadline;

MemoryStore::MemoryStore(StoreOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<StateStore>> MemoryStore::Open(const core::ParsedUri& uri,
                                                      const StoreOptions& options) {
  if (!uri.body.empty()) {
    return Error(
        StatusCode::kInvalidArgument,
        fmt::format("memory:// takes no host or path (got '{}'); use memory://", uri.body));
  }
  if (Status s = core::CheckKnownParams(uri, {}); !s.ok()) return Error(s);
  return std::make_unique<MemoryStore>(options);
}

MemoryStore::Stored* MemoryStore::FindLive(const std::string& run_id, int64_t now_ms) {
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return nullptr;
  if (it->second.expires_ms <= now_ms) {  // expired: gone, as if a TTL had removed it
    runs_.erase(it);
    return nullptr;
  }
  return &it->second;
}

Result<StateRecord> MemoryStore::Decode(const Stored& s) const {
  auto payload =
      core::DecodeVerified(s.body.encoding, s.body.bytes, s.meta.checksum,
                           options_.max_payload_bytes, fmt::format("run {}", s.meta.run_id));
  if (!payload) return Error(payload.error());
  StateRecord r = s.meta;
  r.payload = std::move(*payload);
  return r;
}

std::vector<MemoryStore::StoredCheckpoint>& MemoryStore::LiveHistory(const std::string& run_id,
                                                                     int64_t now_ms) {
  auto& history = checkpoints_[run_id];
  std::erase_if(history, [&](const StoredCheckpoint& c) { return c.expires_ms <= now_ms; });
  return history;
}

int64_t MemoryStore::CurrentVersion(const std::string& run_id, int64_t now_ms) {
  if (Stored* cur = FindLive(run_id, now_ms)) return cur->meta.version;
  auto& history = LiveHistory(run_id, now_ms);
  return history.empty() ? 0 : history.back().info.version;
}

void MemoryStore::AppendCheckpoint(const Stored& s, CheckpointType type, int64_t now_ms) {
  auto& history = LiveHistory(s.meta.run_id, now_ms);
  if (!history.empty() && history.back().info.version == s.meta.version) return;  // one per version
  StoredCheckpoint c;
  c.info.checkpoint_id = core::CheckpointId(s.meta.version);
  c.info.run_id = s.meta.run_id;
  c.info.version = s.meta.version;
  c.info.type = type;
  c.info.is_recovery_point = s.meta.is_recovery_point || type == CheckpointType::kRecovery;
  c.info.created_at = core::FromUnixMillis(now_ms);
  c.info.checksum = s.meta.checksum;
  c.info.payload_bytes = s.payload_bytes;
  c.snapshot = s;
  c.expires_ms = core::ExpiryMillis(options_.ttl, RunStatus::kActive, c.info.is_recovery_point,
                                    core::FromUnixMillis(now_ms));
  history.push_back(std::move(c));
}

SaveAck MemoryStore::Write(Stored next, bool keep_checkpoint, CheckpointType type, SystemTime now) {
  const int64_t now_ms = core::ToUnixMillis(now);
  StoredThread& t = threads_[next.meta.thread_id];
  t.ctx = {next.meta.thread_id, next.meta.run_id, next.meta.version, now};
  t.expires_ms = core::ExpiryMillis(options_.ttl, RunStatus::kActive, false, now);
  SaveAck ack{next.meta.version, next.meta.checksum};
  Stored& slot = runs_[next.meta.run_id];
  slot = std::move(next);
  if (keep_checkpoint) AppendCheckpoint(slot, type, now_ms);
  return ack;
}

Awaitable<Result<SaveAck>> MemoryStore::Save(SaveRequest req, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "save"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateSave(req, options_); !s.ok()) co_return Error(s);
  // Encode outside the lock: it is the expensive part and touches no shared state.
  Stored next;
  next.meta.checksum = core::Checksum(req.payload);
  next.payload_bytes = req.payload.size();
  next.body = core::Encode(
      req.payload, options_.compress_threshold_bytes.value_or(core::kDefaultCompressThreshold));
  const SystemTime now = core::Now(options_);
  std::lock_guard lock(mu_);
  const int64_t now_ms = core::ToUnixMillis(now);
  const int64_t current = CurrentVersion(req.run_id, now_ms);
  Stored* cur = FindLive(req.run_id, now_ms);
  if (cur) {
    if (auto replay =
            core::Replay(req.run_id, req.idempotency_key, next.meta.checksum,
                         cur->meta.idempotency_key, cur->meta.version, cur->meta.checksum)) {
      co_return std::move(*replay);
    }
  }
  if (req.expected_version && *req.expected_version != current) {
    ++conflicts_;
    co_return Error(StatusCode::kConflict, fmt::format("run {} is at version {}, expected {}",
                                                       req.run_id, current, *req.expected_version));
  }
  if (cur && cur->meta.status == RunStatus::kCompleted) {
    ++conflicts_;
    co_return Error(StatusCode::kConflict,
                    fmt::format("run {} is completed; restore it or start a new run", req.run_id));
  }
  const bool keep = KeepsCheckpoint(req.checkpoint_type, req.is_recovery_point);
  const CheckpointType type = req.checkpoint_type;
  next.meta = core::RecordOf(std::move(req), current + 1, next.meta.checksum, now);
  next.expires_ms =
      core::ExpiryMillis(options_.ttl, RunStatus::kActive, next.meta.is_recovery_point, now);
  ++saves_;
  co_return Write(std::move(next), keep, type, now);
}

Awaitable<Result<bool>> MemoryStore::Put(StateRecord record, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "put"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidatePut(record, options_); !s.ok()) co_return Error(s);
  Stored next;
  next.payload_bytes = record.payload.size();
  next.body = core::Encode(
      record.payload, options_.compress_threshold_bytes.value_or(core::kDefaultCompressThreshold));
  record.payload.clear();
  const SystemTime at = record.saved_at;
  std::lock_guard lock(mu_);
  const int64_t now_ms = core::ToUnixMillis(core::Now(options_));
  if (record.version <= CurrentVersion(record.run_id, now_ms)) co_return false;
  record.status = RunStatus::kActive;
  next.expires_ms =
      core::ExpiryMillis(options_.ttl, RunStatus::kActive, record.is_recovery_point, at);
  next.meta = std::move(record);
  const bool keep = KeepsCheckpoint(next.meta.checkpoint_type, next.meta.is_recovery_point);
  const CheckpointType type = next.meta.checkpoint_type;
  ++saves_;
  Write(std::move(next), keep, type, at);
  co_return true;
}

Awaitable<Result<std::optional<StateRecord>>> MemoryStore::Load(std::string run_id,
                                                                Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "load"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  ++loads_;
  std::lock_guard lock(mu_);
  Stored* cur = FindLive(run_id, core::ToUnixMillis(core::Now(options_)));
  if (!cur) co_return std::optional<StateRecord>();
  auto rec = Decode(*cur);
  if (!rec) {
    ++corruptions_;
    co_return Error(rec.error());
  }
  co_return std::optional<StateRecord>(std::move(*rec));
}

Awaitable<Result<bool>> MemoryStore::Delete(std::string run_id, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "delete"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  std::lock_guard lock(mu_);
  Stored* cur = FindLive(run_id, core::ToUnixMillis(core::Now(options_)));
  checkpoints_.erase(run_id);
  if (!cur) co_return false;
  auto t = threads_.find(cur->meta.thread_id);
  if (t != threads_.end() && t->second.ctx.run_id == run_id) threads_.erase(t);
  runs_.erase(run_id);
  co_return true;
}

Awaitable<Done> MemoryStore::Complete(std::string run_id, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "complete"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const SystemTime now = core::Now(options_);
  std::lock_guard lock(mu_);
  Stored* cur = FindLive(run_id, core::ToUnixMillis(now));
  if (!cur) co_return Error(StatusCode::kNotFound, fmt::format("run {} does not exist", run_id));
  if (cur->meta.status == RunStatus::kCompleted) co_return Done();
  cur->meta.status = RunStatus::kCompleted;
  cur->expires_ms = core::ExpiryMillis(options_.ttl, RunStatus::kCompleted, false, now);
  co_return Done();
}

Awaitable<Result<CheckpointInfo>> MemoryStore::Checkpoint(std::string run_id, CheckpointType type,
                                                          Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "checkpoint"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const int64_t now_ms = core::ToUnixMillis(core::Now(options_));
  std::lock_guard lock(mu_);
  Stored* cur = FindLive(run_id, now_ms);
  if (!cur) co_return Error(StatusCode::kNotFound, fmt::format("run {} does not exist", run_id));
  if (auto rec = Decode(*cur); !rec) {  // never snapshot damaged bytes as if they were good
    ++corruptions_;
    co_return Error(rec.error());
  }
  AppendCheckpoint(*cur, type, now_ms);
  co_return LiveHistory(run_id, now_ms).back().info;
}

Awaitable<Result<std::vector<CheckpointInfo>>> MemoryStore::ListCheckpoints(std::string run_id,
                                                                            Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "list_checkpoints"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const int64_t now_ms = core::ToUnixMillis(core::Now(options_));
  std::lock_guard lock(mu_);
  std::vector<CheckpointInfo> out;
  for (const auto& c : LiveHistory(run_id, now_ms)) out.push_back(c.info);
  co_return out;
}

Awaitable<Result<StateRecord>> MemoryStore::Restore(std::string run_id,
                                                    std::optional<std::string> checkpoint_id,
                                                    Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "restore"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const SystemTime now = core::Now(options_);
  const int64_t now_ms = core::ToUnixMillis(now);
  std::lock_guard lock(mu_);
  const int64_t current = CurrentVersion(run_id, now_ms);
  const StoredCheckpoint* chosen = nullptr;
  for (const auto& c : LiveHistory(run_id, now_ms)) {
    if (!checkpoint_id || c.info.checkpoint_id == *checkpoint_id) chosen = &c;
  }
  if (!chosen) {
    co_return Error(StatusCode::kNotFound,
                    checkpoint_id
                        ? fmt::format("run {} has no checkpoint {}", run_id, *checkpoint_id)
                        : fmt::format("run {} has no checkpoints", run_id));
  }
  auto rec = Decode(chosen->snapshot);
  if (!rec) {
    ++corruptions_;
    co_return Error(rec.error());
  }
  Stored next = chosen->snapshot;
  next.meta.version = current + 1;
  next.meta.status = RunStatus::kActive;
  next.meta.checkpoint_type = CheckpointType::kRecovery;
  next.meta.is_recovery_point = chosen->info.is_recovery_point;
  next.meta.saved_at = now;
  next.meta.idempotency_key.clear();  // written by the restore, not by that key's save
  next.expires_ms =
      core::ExpiryMillis(options_.ttl, RunStatus::kActive, next.meta.is_recovery_point, now);
  StateRecord out = next.meta;
  out.payload = std::move(rec->payload);
  Write(std::move(next), false, CheckpointType::kRecovery, now);
  co_return out;
}

Awaitable<Result<std::optional<ThreadContextRecord>>> MemoryStore::ThreadContext(
    std::string thread_id, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "thread_context"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("thread_id", thread_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const int64_t now_ms = core::ToUnixMillis(core::Now(options_));
  std::lock_guard lock(mu_);
  auto it = threads_.find(thread_id);
  if (it == threads_.end()) co_return std::optional<ThreadContextRecord>();
  if (it->second.expires_ms <= now_ms) {
    threads_.erase(it);
    co_return std::optional<ThreadContextRecord>();
  }
  co_return std::optional<ThreadContextRecord>(it->second.ctx);
}

Awaitable<Result<uint64_t>> MemoryStore::DeletePrefix(std::string prefix, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "delete_prefix"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateDeletePrefix(prefix); !s.ok()) co_return Error(s);
  const int64_t now_ms = core::ToUnixMillis(core::Now(options_));
  std::lock_guard lock(mu_);
  uint64_t live = 0;
  for (auto it = runs_.lower_bound(prefix); it != runs_.end() && it->first.starts_with(prefix);) {
    live += it->second.expires_ms > now_ms ? 1 : 0;
    it = runs_.erase(it);
  }
  auto erase = [&](auto& map) {
    for (auto it = map.lower_bound(prefix); it != map.end() && it->first.starts_with(prefix);)
      it = map.erase(it);
  };
  erase(checkpoints_);
  erase(threads_);
  co_return live;
}

Awaitable<Result<ActiveRunsPage>> MemoryStore::ActiveRuns(ActiveRunsQuery query,
                                                          Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "active_runs"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateActiveRunsQuery(query, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const int64_t now_ms = core::ToUnixMillis(core::Now(options_));
  std::lock_guard lock(mu_);
  ActiveRunsPage page;
  auto it = query.cursor.empty() ? runs_.begin() : runs_.upper_bound(query.cursor);
  for (; it != runs_.end() && page.runs.size() < query.limit; ++it) {
    const Stored& s = it->second;
    if (s.expires_ms <= now_ms || s.meta.status != RunStatus::kActive) continue;
    if (query.thread_id && s.meta.thread_id != *query.thread_id) continue;
    page.runs.push_back({s.meta.run_id, s.meta.thread_id, s.meta.user_id, s.meta.agent_type,
                         s.meta.version, s.meta.saved_at});
  }
  if (page.runs.size() == query.limit && it != runs_.end())
    page.next_cursor = page.runs.back().run_id;
  co_return page;
}

Awaitable<Result<HealthReport>> MemoryStore::Health(Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "health"); !s.ok()) co_return Error(s);
  HealthReport r;
  r.tiers.push_back({"hot", Describe(), true, "", std::chrono::microseconds(0)});
  co_return r;
}

StoreStats MemoryStore::Stats() const {
  StoreStats s;
  s.backend = Describe();
  s.values["saves"] = static_cast<double>(saves_.load());
  s.values["loads"] = static_cast<double>(loads_.load());
  s.values["conflicts"] = static_cast<double>(conflicts_.load());
  s.values["corruptions"] = static_cast<double>(corruptions_.load());
  std::lock_guard lock(mu_);
  s.values["runs"] = static_cast<double>(runs_.size());
  return s;
}

bool MemoryStore::CorruptForTest(const std::string& run_id) {
  std::lock_guard lock(mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end() || it->second.body.bytes.empty()) return false;
  std::string& b = it->second.body.bytes;
  b[b.size() / 2] = static_cast<char>(b[b.size() / 2] ^ 0x01);
  return true;
}

}  // namespace agentstate::backends::memory
