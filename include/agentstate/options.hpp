// Options shared by every backend. Plain structs: every field says its unit, its
// default and what 0 means. Backends parse their own extra settings from the URI.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>

#include "agentstate/model.hpp"

namespace agentstate {

// The wall clock a store stamps records and evaluates TTLs with. Tests inject a manual one.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual SystemTime Now() const = 0;
};

// How long records live (DESIGN §5). 0 means "never expires".
struct TtlPolicy {
  std::chrono::seconds active{std::chrono::hours(24)};    // latest state of an active run
  std::chrono::seconds completed{std::chrono::hours(1)};  // a run after Complete()
  std::chrono::seconds recovery_point{
      std::chrono::hours(24 * 7)};  // recovery-point state and checkpoints
};

struct StoreOptions {
  TtlPolicy ttl;
  // Largest accepted payload in bytes; larger saves fail with kInvalidArgument. 0 = no limit.
  std::size_t max_payload_bytes = 16 * 1024 * 1024;
  // Largest accepted id (run, thread, user, agent type) in bytes. Must be > 0.
  std::size_t max_id_bytes = 256;
  // Payloads at least this large are stored zstd-compressed (level 1). 0 = never compress.
  // Unset = the backend's own default: 64 KiB for sqlite, redis and memory (zstd costs
  // ~35 µs per 20 KB document, which halved the embedded store's throughput at 16 KiB), and
  // 1 KiB for postgresql, where WAL volume limits commits and compression raised critical
  // saves from 2.3 k/s to 4.0 k/s (docs/benchmarks.md).
  std::optional<std::size_t> compress_threshold_bytes;
  // Reject payloads that are not well-formed JSON (kInvalidArgument). Default on.
  bool validate_json = true;
  // Wall clock for saved_at and TTLs; null = the system clock.
  std::shared_ptr<const Clock> clock;
};

}  // namespace agentstate
