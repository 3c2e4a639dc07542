// The rules of the checkpoint model (agentstate/checkpoint_store.hpp) that every backend
// applies the same way: what a put or a write batch must carry, which index a write takes,
// how a document names its channel versions, how metadata matches a filter, how a list is
// ordered, and how a value is stored (encoded, checksummed) and read back.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agentstate/checkpoint_store.hpp"
#include "core/codec.hpp"

namespace agentstate::core {

// The largest value bytes, document or metadata one checkpoint call may carry.
inline constexpr std::size_t kMaxCheckpointValueBytes = 16 * 1024 * 1024;

// The (channel, version) pairs of a stored checkpoint document's channel_versions object,
// by channel. A version is a JSON string (kept as is) or number (kept as written). The
// document was checked by ValidatePut when it was stored, so it is only parsed here;
// kCorruption when it no longer reads as one.
Result<std::vector<std::pair<std::string, std::string>>> ChannelVersions(
    std::string_view checkpoint);

// Checks a put: ids (thread_id and checkpoint_id required; ns and parent_id may be empty),
// a document with channel_versions, metadata a JSON object, each value's channel and
// version among the document's, sizes. Returns the document's channel versions.
Result<std::vector<std::pair<std::string, std::string>>> ValidatePut(const CheckpointPut& put,
                                                                     std::size_t max_id_bytes);

// Checks a get's ids: thread_id required; ns and checkpoint_id ("the newest") may be empty.
Status ValidateGet(std::string_view thread_id, std::string_view ns, std::string_view checkpoint_id,
                   std::size_t max_id_bytes);

// Checks a write batch's ids (thread_id, checkpoint_id and task_id required), its channels
// and value sizes.
Status ValidateWrites(std::string_view thread_id, std::string_view ns,
                      std::string_view checkpoint_id, std::string_view task_id,
                      const std::vector<std::pair<std::string, TypedValue>>& writes,
                      std::size_t max_id_bytes);

// LangGraph's index of a write: the special channel's fixed negative index, else its
// position in the batch.
int64_t WriteIndex(std::string_view channel, std::size_t position);
// Whether every channel of the batch is special: then the batch replaces what is stored at
// its indexes; otherwise stored writes are kept.
bool ReplacesWrites(const std::vector<std::pair<std::string, TypedValue>>& writes);

// A list's metadata filter, its values parsed once: metadata (a JSON object) matches when,
// for each (key, JSON value), its top-level value of that key is equal. Empty: everything.
class MetadataFilter {
 public:
  bool Matches(std::string_view metadata) const;

 private:
  friend Result<MetadataFilter> ValidateListQuery(const CheckpointListQuery&, std::size_t);
  struct Parsed;
  std::shared_ptr<const Parsed> parsed_;  // null: no filter
};

// Checks a selection of threads: one thread id (checked as an id), or with none, every
// thread whose id begins with thread_prefix ("" : every thread).
Status ValidateThreads(std::string_view thread_id, std::string_view thread_prefix,
                       std::size_t max_id_bytes);
// Whether thread_id is among the threads thread_prefix selects.
bool InThreads(std::string_view thread_id, std::string_view thread_prefix);

// Checks delete_for_runs' arguments (each run id an id, at most kMaxRunIds; the prefix as
// ValidateThreads) and returns the run ids sorted, without duplicates.
Result<std::vector<std::string>> ValidateRunIds(std::vector<std::string> run_ids,
                                                std::string_view thread_prefix,
                                                std::size_t max_id_bytes);
// Whether metadata's top-level "run_id" is a string among run_ids (sorted).
bool OfRuns(std::string_view metadata, const std::vector<std::string>& run_ids);

// Checks a list query (its ids, its limit 1..10000, its filter values) and returns its
// filter, parsed.
Result<MetadataFilter> ValidateListQuery(const CheckpointListQuery& query,
                                         std::size_t max_id_bytes);

// List order: the newest checkpoint id first, then thread, then namespace.
struct CheckpointKeyView {
  std::string_view thread_id, ns, checkpoint_id;
};
bool ListsBefore(CheckpointKeyView a, CheckpointKeyView b);

// A value as a backend keeps it: the type, the bytes encoded (zstd when large), and the
// checksum of the bytes as given.
struct StoredValue {
  std::string type;
  Encoded body;
  uint64_t checksum = 0;
};
StoredValue StoreValue(const TypedValue& value);
// The value again, verified. kCorruption naming `what` when the bytes do not match.
Result<TypedValue> LoadValue(std::string type, Encoding encoding, std::string_view bytes,
                             uint64_t checksum, std::string_view what);

}  // namespace agentstate::core
