#include "load/engine/ledger.hpp"

#include <fmt/format.h>

#include <vector>

#include "core/asio.hpp"
#include "core/wait_group.hpp"

namespace agentstate::load {

void Ledger::Record(const std::string& run_id, WriteOutcome outcome, int64_t version,
                    uint64_t checksum, CheckpointType durability) {
  std::lock_guard lock(mu_);
  RunEntry& e = runs_[run_id];
  switch (outcome) {
    case WriteOutcome::kAcked:
      ++e.acked;
      // Only a delete starts a run's versions again: with one in doubt, a version at or
      // below the last acknowledged one says it took effect (agentstated killed while
      // answering it), not that acknowledgements came out of order.
      if (version <= e.acked_version && !e.delete_in_doubt) {
        ++e.out_of_order;
        // One line each (at most 20 a process): the count alone does not say which run or
        // how far back, which is what a diagnosis needs.
        static int lines = 0;  // under mu_
        if (lines++ < 20) {
          fmt::print(stderr,
                     "agentload: acknowledgement out of order: run {} acknowledged v{} {:016x} "
                     "after v{} {:016x}{}\n",
                     run_id, version, checksum, e.acked_version, e.acked_checksum,
                     e.unknown ? fmt::format(" ({} writes of the run in doubt)", e.unknown)
                               : std::string());
        }
      } else {
        e.deleted = false;
        e.delete_in_doubt = false;
        e.acked_version = version;
        e.acked_checksum = checksum;
        e.durability = durability;
        e.acked_at = std::chrono::steady_clock::now();
      }
      break;
    case WriteOutcome::kUnknown: ++e.unknown; break;
    case WriteOutcome::kFailed: break;
  }
}

void Ledger::Settle(const std::string& run_id, uint32_t n) {
  std::lock_guard lock(mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return;
  it->second.unknown -= std::min(n, it->second.unknown);
}

void Ledger::RecordDelete(const std::string& run_id, WriteOutcome outcome) {
  std::lock_guard lock(mu_);
  RunEntry& e = runs_[run_id];
  if (outcome == WriteOutcome::kAcked) {
    // The run starts afresh: its next save is version 1 again.
    e.deleted = true;
    e.delete_in_doubt = false;
    e.acked_version = 0;
    e.acked_checksum = 0;
  } else if (outcome == WriteOutcome::kUnknown) {
    e.delete_in_doubt = true;
  }
}

void Ledger::Judge(const std::string& run_id, const Result<std::optional<StateRecord>>& read,
                   LedgerVerdict& v) const {
  RunEntry e;
  {
    std::lock_guard lock(mu_);
    auto it = runs_.find(run_id);
    if (it == runs_.end()) return;
    e = it->second;
  }
  ++v.runs_checked;
  v.acked_writes += e.acked;
  v.unknown_writes += e.unknown;
  v.out_of_order += e.out_of_order;
  if (!read) {
    if (read.error().code() == StatusCode::kCorruption) {
      ++v.corrupted;
    } else {
      ++v.unverifiable;
    }
    return;
  }
  auto lost = [&] {
    ++v.lost;
    ++(e.durability == CheckpointType::kAuto ? v.lost_auto : v.lost_durable_class);
    if (v.lost_writes.size() < LedgerVerdict::kMaxLostListed)
      v.lost_writes.push_back({run_id, e.durability, e.acked_at});
  };
  const auto& rec = *read;
  if (!rec) {
    if (e.acked_version > 0 && !e.delete_in_doubt) lost();
    return;
  }
  if (e.deleted) {
    // A save in doubt may still land after the delete; without one, the run came back.
    if (e.unknown == 0) ++v.resurrected;
    return;
  }
  if (rec->version < e.acked_version) {
    lost();
  } else if (rec->version == e.acked_version) {
    if (e.acked > 0 && rec->checksum != e.acked_checksum) ++v.corrupted;
  } else if (e.unknown == 0) {
    ++v.phantom;  // newer than every ack, and no write in doubt could have produced it
  }
}

Awaitable<LedgerVerdict> Ledger::Verify(StateStore& store, std::chrono::milliseconds per_read,
                                        int concurrency) const {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    ids.reserve(runs_.size());
    for (const auto& [id, e] : runs_) ids.push_back(id);
  }
  LedgerVerdict verdict;
  // Reads go in batches of `concurrency`, each batch awaited as a group.
  const std::size_t batch = static_cast<std::size_t>(std::max(1, concurrency));
  for (std::size_t i = 0; i < ids.size(); i += batch) {
    std::size_t end = std::min(ids.size(), i + batch);
    std::vector<std::pair<std::string, Result<std::optional<StateRecord>>>> results;
    results.reserve(end - i);
    auto ex = co_await asio::this_coro::executor;
    core::WaitGroup group(ex);
    for (std::size_t j = i; j < end; ++j)
      results.emplace_back(ids[j], std::optional<StateRecord>());
    group.Add(results.size());
    for (auto& slot : results) {
      asio::co_spawn(
          ex,
          [&store, &slot, &group, per_read]() -> Awaitable<void> {
            slot.second = co_await store.Load(slot.first, DeadlineIn(per_read));
            group.Done();
          },
          asio::detached);
    }
    co_await group.Wait();
    for (const auto& [id, r] : results) Judge(id, r, verdict);
  }
  co_return verdict;
}

std::optional<std::pair<int64_t, uint64_t>> Ledger::LastAck(const std::string& run_id) const {
  std::lock_guard lock(mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end() || it->second.acked == 0) return std::nullopt;
  return std::pair<int64_t, uint64_t>(it->second.acked_version, it->second.acked_checksum);
}

bool Ledger::HasUnknown(const std::string& run_id) const {
  std::lock_guard lock(mu_);
  auto it = runs_.find(run_id);
  return it != runs_.end() && it->second.unknown > 0;
}

std::size_t Ledger::runs() const {
  std::lock_guard lock(mu_);
  return runs_.size();
}

}  // namespace agentstate::load
