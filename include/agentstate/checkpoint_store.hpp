// CheckpointStore: LangGraph's checkpoint model in the engine, beside StateStore (issue 17).
//
// A thread holds checkpoints in namespaces ("" is the root graph's). A checkpoint has an id
// (LangGraph's are time-ordered UUIDv6 strings, compared as bytes), an optional parent, a
// document (the checkpoint's JSON object without its channel_values, kept verbatim) and
// metadata (a JSON object, kept verbatim). Channel values are opaque typed bytes, stored once
// per (thread, namespace, channel, version) and rebuilt on read by joining the document's
// channel_versions against them, so a checkpoint costs only the channels it changed.
// Pending writes belong to a checkpoint and a task, read back in (task_id, idx) order.
//
// Beyond LangGraph's reference savers: an optional head check (a put whose parent is not
// the thread's newest checkpoint is refused, so two runs cannot fork a thread silently),
// copy thread, prune, retention (keep the last N, a TTL per thread) with orphaned values
// and writes purged, a checksum on every stored value, zstd for large ones.
//
// Thread-safety and lifetime as StateStore. Every call takes an absolute deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agentstate/asio.hpp"
#include "agentstate/model.hpp"
#include "agentstate/status.hpp"

namespace agentstate {

// A serialised value as the saver's serde made it: its type tag and its bytes.
struct TypedValue {
  std::string type;   // "empty" marks a channel listed as new without a value
  std::string bytes;  // opaque
  bool operator==(const TypedValue&) const = default;
};

struct ChannelValue {
  std::string channel;
  std::string version;  // the version as a string: JSON numbers as written, strings as is
  TypedValue value;
  bool operator==(const ChannelValue&) const = default;
};

struct PendingWrite {
  std::string task_id;
  std::string task_path;
  std::string channel;
  int64_t idx = 0;  // position in the task's batch, or the special channel's fixed index
  TypedValue value;
  bool operator==(const PendingWrite&) const = default;
};

struct CheckpointPut {
  std::string thread_id;
  std::string ns;  // "" is the root namespace
  std::string checkpoint_id;
  std::string parent_id;  // "" for the first checkpoint of a branch
  // The checkpoint document without channel_values: a JSON object with channel_versions.
  std::string checkpoint;
  std::string metadata;  // a JSON object
  // The values of the channels that changed (LangGraph's newVersions), each at its version;
  // written only where (thread, ns, channel, version) has none yet.
  std::vector<ChannelValue> values;
  // Refuse with kConflict unless parent_id is the (thread, ns) newest checkpoint ("" when
  // it has none). Off by default, as LangGraph's savers.
  bool check_head = false;
};

// A checkpoint as read: the document and metadata verbatim, the values of its
// channel_versions joined ("empty" ones left out), its pending writes.
struct CheckpointTuple {
  std::string thread_id;
  std::string ns;
  std::string checkpoint_id;
  std::string parent_id;  // "" when none
  std::string checkpoint;
  std::string metadata;
  std::vector<ChannelValue> values;  // by channel name
  std::vector<PendingWrite> writes;  // by (task_id, idx)
};

struct CheckpointListQuery {
  std::optional<std::string> thread_id;      // nullopt: every thread under thread_prefix
  std::string thread_prefix;                 // with no thread_id: ids beginning so ("" : all)
  std::optional<std::string> ns;             // nullopt: every namespace
  std::optional<std::string> checkpoint_id;  // that one only
  std::optional<std::string> before;         // ids less than this, in byte order
  // Each (key, JSON value) must equal the metadata's top-level value of that key.
  std::vector<std::pair<std::string, std::string>> metadata_filter;
  std::size_t limit = 1000;  // 1..10000; page on with `before`
};

// What retention keeps: the last N checkpoints of each namespace of a thread (0: all), and
// threads touched within the TTL (0: forever); or nothing (delete_all, LangGraph's "delete"
// strategy of prune).
struct RetentionPolicy {
  std::size_t keep_last = 0;
  std::chrono::milliseconds thread_ttl{0};
  bool delete_all = false;
};

struct PurgeReport {
  uint64_t checkpoints = 0;  // removed
  uint64_t values = 0;       // channel values no remaining checkpoint joins
  uint64_t writes = 0;       // pending writes of removed checkpoints
  uint64_t threads = 0;      // threads left with nothing
  bool operator==(const PurgeReport&) const = default;
};

class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;

  // Stores a checkpoint. Errors: kInvalidArgument (a missing or oversize id, a document or
  // metadata that is not a JSON object, a document without channel_versions, a value whose
  // channel or version is not in them), kConflict (check_head, and the parent is not the
  // head). Putting an existing id again replaces its document and metadata, as LangGraph's
  // savers do; values already stored at their version are kept.
  virtual Awaitable<Status> PutCheckpoint(CheckpointPut put, Deadline deadline) = 0;

  // Stores a task's writes to a checkpoint. Each write's idx is its channel's fixed index
  // when special (__error__ -1, __scheduled__ -2, __interrupt__ -3, __resume__ -4), else its
  // position in `writes`. A batch of only special channels replaces what is stored at those
  // indexes; any other batch keeps what is stored. Errors: kInvalidArgument (missing ids),
  // kNotFound (no such checkpoint: a deleted thread takes no writes).
  virtual Awaitable<Status> PutWrites(std::string thread_id, std::string ns,
                                      std::string checkpoint_id, std::string task_id,
                                      std::string task_path,
                                      std::vector<std::pair<std::string, TypedValue>> writes,
                                      Deadline deadline) = 0;

  // That checkpoint of (thread, ns), or its newest when checkpoint_id is empty; nullopt when
  // there is none. Errors: kCorruption when a value fails its checksum.
  virtual Awaitable<Result<std::optional<CheckpointTuple>>> GetCheckpoint(std::string thread_id,
                                                                          std::string ns,
                                                                          std::string checkpoint_id,
                                                                          Deadline deadline) = 0;

  // Matching checkpoints, newest id first (then thread, then namespace), at most limit.
  virtual Awaitable<Result<std::vector<CheckpointTuple>>> ListCheckpoints(CheckpointListQuery query,
                                                                          Deadline deadline) = 0;

  // Removes the thread's checkpoints, values and writes in every namespace. Returns how
  // many checkpoints it removed.
  virtual Awaitable<Result<uint64_t>> DeleteThread(std::string thread_id, Deadline deadline) = 0;

  // Copies every checkpoint, value and write of `from` into `to`, which must hold nothing.
  // Errors: kNotFound (from has none), kConflict (to is not empty).
  virtual Awaitable<Result<uint64_t>> CopyThread(std::string from, std::string to,
                                                 Deadline deadline) = 0;

  // Applies a policy to one thread, or (thread_id "") to every thread whose id begins with
  // thread_prefix ("" : every thread), and purges the values and writes that no remaining
  // checkpoint uses.
  virtual Awaitable<Result<PurgeReport>> Prune(std::string thread_id, std::string thread_prefix,
                                               RetentionPolicy policy, Deadline deadline) = 0;
  // LangGraph's delete_for_runs: removes every checkpoint of the threads thread_prefix
  // selects ("" : every thread) whose metadata's top-level "run_id" is a JSON string equal to
  // one of run_ids, with its writes, and purges the values no remaining checkpoint uses.
  // Errors: kInvalidArgument (an empty or oversize run id, more than kMaxRunIds of them).
  static constexpr std::size_t kMaxRunIds = 1000;
  virtual Awaitable<Result<PurgeReport>> DeleteForRuns(std::vector<std::string> run_ids,
                                                       std::string thread_prefix,
                                                       Deadline deadline) = 0;
};

}  // namespace agentstate
