// The state model (DESIGN §3): what a store keeps for each run, thread and checkpoint.
//
// Payloads are opaque bytes to the engine (a JSON document chosen by the agent); the
// engine validates, checksums and optionally compresses them, never interprets them.
// All types here are plain values: copyable, no hidden sharing, safe to move across threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentstate {

using SystemTime = std::chrono::system_clock::time_point;
// Every store call takes an absolute deadline on the steady clock.
using Deadline = std::chrono::steady_clock::time_point;

inline Deadline DeadlineIn(std::chrono::steady_clock::duration d) {
  return std::chrono::steady_clock::now() + d;
}

// How durable a write must be before it is acknowledged (DESIGN §5). On a single store
// every class is acknowledged after that store commits (on sqlite://, all but a plain auto
// save after the commit is on disk, safe from a power cut); the tiered store makes them differ.
enum class CheckpointType { kAuto, kManual, kCritical, kRecovery };
enum class RunStatus { kActive, kCompleted };

std::string_view Name(CheckpointType type);  // "auto" | "manual" | "critical" | "recovery"
std::string_view Name(RunStatus status);     // "active" | "completed"
std::optional<CheckpointType> ParseCheckpointType(std::string_view name);

// True when a save of this kind also appends to the run's checkpoint history: every type but
// a plain `auto` save, and any save flagged as a recovery point.
bool KeepsCheckpoint(CheckpointType type, bool is_recovery_point);

// One Save call. Ids are 1..StoreOptions::max_id_bytes bytes of printable text.
struct SaveRequest {
  std::string run_id;
  std::string thread_id;
  std::string user_id;
  std::string agent_type;
  int64_t step_count = 0;
  std::string phase;  // free text chosen by the agent ("planning", "tool_call", ...)
  CheckpointType checkpoint_type = CheckpointType::kAuto;
  bool is_recovery_point = false;
  std::string payload;  // a JSON document, at most StoreOptions::max_payload_bytes
  // When set, the save succeeds only if the run is at exactly this version (0 = the run
  // must not exist yet); otherwise it fails with kConflict and nothing is written.
  std::optional<int64_t> expected_version;
  // When set (1..255 bytes, 0x21..0x7e), the save is idempotent: if the run's latest version
  // was written with this key, the save writes nothing and returns that version's
  // acknowledgement again (SaveAck::replayed); with other bytes than that version's, it
  // fails with kConflict. So a caller whose save timed out retries it with the same key and
  // never creates a second version. The key is kept with the latest version only: a retry
  // made after another write of the run is a new write (with expected_version, a conflict).
  std::string idempotency_key;
};

// What a successful Save acknowledges: the version the store assigned and the payload's
// checksum, which is what the load harness's ledger records.
struct SaveAck {
  int64_t version = 0;
  uint64_t checksum = 0;
  bool replayed = false;  // an idempotent retry: this is the first save's acknowledgement
};

// The latest state of a run.
struct StateRecord {
  std::string run_id;
  std::string thread_id;
  std::string user_id;
  std::string agent_type;
  int64_t version = 0;  // monotonic per run, starts at 1, assigned by the store
  int64_t step_count = 0;
  std::string phase;
  CheckpointType checkpoint_type = CheckpointType::kAuto;
  bool is_recovery_point = false;
  RunStatus status = RunStatus::kActive;
  SystemTime saved_at{};
  std::string payload;          // the document as saved (decompressed)
  uint64_t checksum = 0;        // XXH3-64 of payload, verified on every read
  std::string idempotency_key;  // the key of the save that wrote this version, or ""
};

// A thread's current run.
struct ThreadContextRecord {
  std::string thread_id;
  std::string run_id;
  int64_t version = 0;
  SystemTime updated_at{};
};

// A durable snapshot of a run at one version. A run's checkpoints form its history,
// ordered by version; checkpoint_id is unique within the run.
struct CheckpointInfo {
  std::string checkpoint_id;
  std::string run_id;
  int64_t version = 0;
  CheckpointType type = CheckpointType::kManual;
  bool is_recovery_point = false;
  SystemTime created_at{};
  uint64_t payload_bytes = 0;
  uint64_t checksum = 0;
};

// One page of active runs; pass next_cursor back to continue, empty means the end.
struct ActiveRunsQuery {
  std::optional<std::string> thread_id;  // only runs of this thread when set
  std::string cursor;                    // "" starts from the beginning
  uint32_t limit = 100;                  // 1..10000 runs per page
};
struct RunSummary {
  std::string run_id;
  std::string thread_id;
  std::string user_id;
  std::string agent_type;
  int64_t version = 0;
  SystemTime saved_at{};
};
struct ActiveRunsPage {
  std::vector<RunSummary> runs;
  std::string next_cursor;
};

struct TierHealth {
  std::string tier;     // "hot" | "durable" | "analytics"
  std::string backend;  // the store's URI with any password removed
  bool healthy = false;
  std::string detail;  // why not, when not healthy
  std::chrono::microseconds latency{0};
};
struct HealthReport {
  std::vector<TierHealth> tiers;
  bool healthy() const;
};

// A snapshot of a store's counters. Keys are stable snake_case names; each backend
// documents its own ("in_flight", "saves", "conflicts", "pool_waits", ...).
struct StoreStats {
  std::string backend;
  std::map<std::string, double> values;
};

}  // namespace agentstate
