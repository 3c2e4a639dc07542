// The write ledger: what the store acknowledged, checked against what it returns.
//
// Every save the harness attempts is recorded with its outcome. An acknowledged write must
// be readable at its version (or a later one the harness also attempted); a timed-out write
// may or may not have landed, so it is "unknown", never "lost". Memory is per run, not per
// write (a few dozen bytes plus the id), so a 24 h soak fits. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agentstate/model.hpp"
#include "agentstate/state_store.hpp"

namespace agentstate::load {

enum class WriteOutcome {
  kAcked,    // the store returned a version: it must be there
  kFailed,   // the store refused it definitely (conflict, invalid): it must not be there
  kUnknown,  // timeout / connection lost mid-call: it may or may not be there
};

// An acknowledged write the read-back did not find: which run, its durability class, and
// when the store acknowledged it (so a report can tell which fault window lost it).
struct LostWrite {
  std::string run_id;
  CheckpointType durability = CheckpointType::kAuto;
  std::chrono::steady_clock::time_point acked_at;
};

struct LedgerVerdict {
  uint64_t runs_checked = 0;
  uint64_t acked_writes = 0;
  uint64_t unknown_writes = 0;
  uint64_t lost = 0;  // an acknowledged version is missing or was rolled back
  uint64_t corrupted =
      0;                 // a read failed its checksum, or returned other bytes at the acked version
  uint64_t phantom = 0;  // a version newer than anything acked, with no unknown write to explain it
  uint64_t out_of_order = 0;  // acknowledgements whose versions went backwards for one run
  uint64_t unverifiable = 0;  // runs whose read-back itself failed (timeout, unavailable)
  uint64_t resurrected =
      0;  // runs read back after an acknowledged delete, with no write in doubt to explain it
  // Of `lost`: runs whose newest acknowledged write was `auto`, and those written with a
  // durable class (manual, critical: acknowledged only after the durable commit).
  uint64_t lost_auto = 0, lost_durable_class = 0;
  std::vector<LostWrite> lost_writes;  // the first kMaxLostListed of `lost`
  static constexpr std::size_t kMaxLostListed = 1000;
  bool clean() const {
    return lost == 0 && corrupted == 0 && phantom == 0 && out_of_order == 0 && resurrected == 0;
  }
};

class Ledger {
 public:
  void Record(const std::string& run_id, WriteOutcome outcome, int64_t version, uint64_t checksum,
              CheckpointType durability);
  // `n` writes of the run recorded kUnknown are settled: an idempotent retry of them (the
  // same key) was acknowledged, so they made at most the version it acknowledged.
  void Settle(const std::string& run_id, uint32_t n);
  // A delete of the run: acknowledged, the run must read back empty until a later save is
  // acknowledged; in doubt, either is right.
  void RecordDelete(const std::string& run_id, WriteOutcome outcome);

  // The newest acknowledged (version, checksum) of a run, if any: what a read must see.
  std::optional<std::pair<int64_t, uint64_t>> LastAck(const std::string& run_id) const;
  // Whether any write of the run is in doubt so far: a version newer than the acknowledged
  // one is then explained (it may land late, after a later acknowledged write).
  bool HasUnknown(const std::string& run_id) const;

  // What the harness found when it read a run back; Verify calls this per run, tests may too.
  void Judge(const std::string& run_id, const Result<std::optional<StateRecord>>& read,
             LedgerVerdict& verdict) const;

  // Reads back every recorded run (at most `concurrency` reads at once, each with its own
  // `per_read` deadline) and counts the verdicts.
  Awaitable<LedgerVerdict> Verify(StateStore& store, std::chrono::milliseconds per_read,
                                  int concurrency) const;

  std::size_t runs() const;

 private:
  struct RunEntry {
    int64_t acked_version = 0;  // highest acknowledged
    uint64_t acked_checksum = 0;
    uint32_t acked = 0;
    uint32_t unknown = 0;
    uint32_t out_of_order = 0;
    CheckpointType durability = CheckpointType::kAuto;
    std::chrono::steady_clock::time_point acked_at{};  // of the highest acknowledged version
    bool deleted = false;          // the last acknowledged operation was a delete
    bool delete_in_doubt = false;  // a delete since the last acknowledged save is in doubt
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, RunEntry> runs_;
};

}  // namespace agentstate::load
