#include "core/checkpoint_rules.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <tuple>

#include "core/validate.hpp"

namespace agentstate::core {
namespace {

using Json = nlohmann::json;

// Values of at least this size are stored compressed (zstd); below it, zstd saves little
// and the row overhead is most of a value's cost.
constexpr std::size_t kCompressValueBytes = 1024;

constexpr std::array<std::pair<std::string_view, int64_t>, 4> kSpecialWrites{{
    {"__error__", -1},
    {"__scheduled__", -2},
    {"__interrupt__", -3},
    {"__resume__", -4},
}};

Result<Json> ParseObject(std::string_view text, std::string_view what) {
  if (text.size() > kMaxCheckpointValueBytes)
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("{} is {} bytes, over the limit of {}", what, text.size(),
                             kMaxCheckpointValueBytes));
  if (Status s = CheckJson(text); !s.ok())
    return Error(StatusCode::kInvalidArgument, fmt::format("{}: {}", what, s.message()));
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object())
    return Error(StatusCode::kInvalidArgument, fmt::format("{} must be a JSON object", what));
  return j;
}

Status CheckValueSize(std::string_view what, const TypedValue& v) {
  if (v.bytes.size() > kMaxCheckpointValueBytes || v.type.size() > 255)
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}: a value is {} bytes (limit {}) or its type name over 255 "
                              "bytes",
                              what, v.bytes.size(), kMaxCheckpointValueBytes));
  return Status();
}

// The channel_versions of a parsed document, by channel.
Result<std::vector<std::pair<std::string, std::string>>> VersionsOf(const Json& doc) {
  const auto it = doc.is_object() ? doc.find("channel_versions") : doc.end();
  if (it == doc.end() || !it->is_object())
    return Error(StatusCode::kInvalidArgument,
                 "checkpoint must hold a channel_versions object (channel to version)");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(it->size());
  for (const auto& [channel, version] : it->items()) {
    if (version.is_string()) {
      out.emplace_back(channel, version.get<std::string>());
    } else if (version.is_number()) {
      out.emplace_back(channel, version.dump());
    } else {
      return Error(StatusCode::kInvalidArgument,
                   fmt::format("checkpoint: the version of channel '{}' must be a string or "
                               "a number",
                               channel));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> ChannelVersions(
    std::string_view checkpoint) {
  const Json doc = Json::parse(checkpoint, nullptr, false);
  auto versions = VersionsOf(doc);
  if (!versions)
    return Error(StatusCode::kCorruption,
                 fmt::format("a stored checkpoint document no longer reads: {}",
                             versions.error().message()));
  return versions;
}

Result<std::vector<std::pair<std::string, std::string>>> ValidatePut(const CheckpointPut& put,
                                                                     std::size_t max_id_bytes) {
  for (const auto& [what, id] :
       {std::pair{"thread_id", &put.thread_id}, std::pair{"checkpoint_id", &put.checkpoint_id}}) {
    if (Status s = ValidateId(what, *id, max_id_bytes); !s.ok()) return Error(s);
  }
  for (const auto& [what, id] :
       {std::pair{"checkpoint_ns", &put.ns}, std::pair{"parent checkpoint_id", &put.parent_id}}) {
    if (id->empty()) continue;
    if (Status s = ValidateId(what, *id, max_id_bytes); !s.ok()) return Error(s);
  }
  if (put.parent_id == put.checkpoint_id)
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("checkpoint {} names itself as its parent", put.checkpoint_id));
  auto doc = ParseObject(put.checkpoint, "checkpoint");
  if (!doc) return Error(doc.error());
  auto versions = VersionsOf(*doc);
  if (!versions) return Error(versions.error());
  if (auto meta = ParseObject(put.metadata, "metadata"); !meta) return Error(meta.error());
  for (const auto& v : put.values) {
    if (Status s = ValidateId("channel", v.channel, max_id_bytes); !s.ok()) return Error(s);
    const auto at =
        std::lower_bound(versions->begin(), versions->end(), std::pair{v.channel, std::string()});
    if (at == versions->end() || at->first != v.channel)
      return Error(StatusCode::kInvalidArgument,
                   fmt::format("checkpoint {}: a value for channel '{}', which its "
                               "channel_versions does not list",
                               put.checkpoint_id, v.channel));
    if (at->second != v.version)
      return Error(StatusCode::kInvalidArgument,
                   fmt::format("checkpoint {}: the value of channel '{}' is at version '{}', "
                               "its channel_versions say '{}'",
                               put.checkpoint_id, v.channel, v.version, at->second));
    if (Status s = CheckValueSize(put.checkpoint_id, v.value); !s.ok()) return Error(s);
  }
  return versions;
}

Status ValidateGet(std::string_view thread_id, std::string_view ns, std::string_view checkpoint_id,
                   std::size_t max_id_bytes) {
  if (Status s = ValidateId("thread_id", thread_id, max_id_bytes); !s.ok()) return s;
  for (const auto& [what, id] :
       {std::pair{"checkpoint_ns", ns}, std::pair{"checkpoint_id", checkpoint_id}}) {
    if (id.empty()) continue;
    if (Status s = ValidateId(what, id, max_id_bytes); !s.ok()) return s;
  }
  return Status();
}

Status ValidateWrites(std::string_view thread_id, std::string_view ns,
                      std::string_view checkpoint_id, std::string_view task_id,
                      const std::vector<std::pair<std::string, TypedValue>>& writes,
                      std::size_t max_id_bytes) {
  for (const auto& [what, id] :
       {std::pair{"thread_id", thread_id}, std::pair{"checkpoint_id", checkpoint_id},
        std::pair{"task_id", task_id}}) {
    if (Status s = ValidateId(what, id, max_id_bytes); !s.ok()) return s;
  }
  if (!ns.empty()) {
    if (Status s = ValidateId("checkpoint_ns", ns, max_id_bytes); !s.ok()) return s;
  }
  if (writes.size() > 10000)
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("task {}: {} writes in one batch, over the limit of 10000", task_id,
                              writes.size()));
  for (const auto& [channel, value] : writes) {
    if (Status s = ValidateId("channel", channel, max_id_bytes); !s.ok()) return s;
    if (Status s = CheckValueSize(task_id, value); !s.ok()) return s;
  }
  return Status();
}

int64_t WriteIndex(std::string_view channel, std::size_t position) {
  for (const auto& [name, idx] : kSpecialWrites) {
    if (name == channel) return idx;
  }
  return static_cast<int64_t>(position);
}

bool ReplacesWrites(const std::vector<std::pair<std::string, TypedValue>>& writes) {
  return !writes.empty() && std::all_of(writes.begin(), writes.end(),
                                        [](const auto& w) { return WriteIndex(w.first, 0) < 0; });
}

struct MetadataFilter::Parsed {
  std::vector<std::pair<std::string, Json>> want;
};

bool MetadataFilter::Matches(std::string_view metadata) const {
  if (!parsed_) return true;
  const Json meta = Json::parse(metadata, nullptr, false);
  if (!meta.is_object()) return false;
  for (const auto& [key, value] : parsed_->want) {
    const auto it = meta.find(key);
    if (it == meta.end() || *it != value) return false;
  }
  return true;
}

Status ValidateThreads(std::string_view thread_id, std::string_view thread_prefix,
                       std::size_t max_id_bytes) {
  if (!thread_id.empty()) return ValidateId("thread_id", thread_id, max_id_bytes);
  if (thread_prefix.size() > max_id_bytes)
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("thread_prefix is {} bytes; the limit is {}", thread_prefix.size(),
                              max_id_bytes));
  return Status();
}

bool InThreads(std::string_view thread_id, std::string_view thread_prefix) {
  return thread_id.substr(0, thread_prefix.size()) == thread_prefix;
}

Result<std::vector<std::string>> ValidateRunIds(std::vector<std::string> run_ids,
                                                std::string_view thread_prefix,
                                                std::size_t max_id_bytes) {
  if (run_ids.size() > CheckpointStore::kMaxRunIds)
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("{} run ids in one delete; the limit is {}, delete in batches",
                             run_ids.size(), CheckpointStore::kMaxRunIds));
  for (const auto& id : run_ids)
    if (Status s = ValidateId("run_id", id, max_id_bytes); !s.ok()) return Error(s);
  if (Status s = ValidateThreads("", thread_prefix, max_id_bytes); !s.ok()) return Error(s);
  std::sort(run_ids.begin(), run_ids.end());
  run_ids.erase(std::unique(run_ids.begin(), run_ids.end()), run_ids.end());
  return run_ids;
}

bool OfRuns(std::string_view metadata, const std::vector<std::string>& run_ids) {
  const Json meta = Json::parse(metadata, nullptr, false);
  if (!meta.is_object()) return false;
  const auto it = meta.find("run_id");
  return it != meta.end() && it->is_string() &&
         std::binary_search(run_ids.begin(), run_ids.end(), it->get_ref<const std::string&>());
}

Result<MetadataFilter> ValidateListQuery(const CheckpointListQuery& q, std::size_t max_id_bytes) {
  for (const auto& [what, id] :
       {std::pair{"thread_id", &q.thread_id}, std::pair{"checkpoint_id", &q.checkpoint_id},
        std::pair{"before", &q.before}}) {
    if (!id->has_value()) continue;
    if (Status s = ValidateId(what, **id, max_id_bytes); !s.ok()) return Error(s);
  }
  if (q.ns && !q.ns->empty()) {
    if (Status s = ValidateId("checkpoint_ns", *q.ns, max_id_bytes); !s.ok()) return Error(s);
  }
  if (Status s = ValidateThreads(q.thread_id.value_or(""), q.thread_prefix, max_id_bytes); !s.ok())
    return Error(s);
  if (q.limit < 1 || q.limit > 10000)
    return Error(
        StatusCode::kInvalidArgument,
        fmt::format("limit must be 1..10000 checkpoints, not {}; page on with before", q.limit));
  MetadataFilter filter;
  if (q.metadata_filter.empty()) return filter;
  auto parsed = std::make_shared<MetadataFilter::Parsed>();
  for (const auto& [key, value] : q.metadata_filter) {
    Json want = Json::parse(value, nullptr, false);
    if (want.is_discarded())
      return Error(StatusCode::kInvalidArgument,
                   fmt::format("filter: the value of '{}' is not JSON", key));
    parsed->want.emplace_back(key, std::move(want));
  }
  filter.parsed_ = std::move(parsed);
  return filter;
}

bool ListsBefore(CheckpointKeyView a, CheckpointKeyView b) {
  return std::tie(b.checkpoint_id, a.thread_id, a.ns) <
         std::tie(a.checkpoint_id, b.thread_id, b.ns);
}

StoredValue StoreValue(const TypedValue& value) {
  return StoredValue{value.type, Encode(value.bytes, kCompressValueBytes), Checksum(value.bytes)};
}

Result<TypedValue> LoadValue(std::string type, Encoding encoding, std::string_view bytes,
                             uint64_t checksum, std::string_view what) {
  auto decoded = DecodeVerified(encoding, bytes, checksum, kMaxCheckpointValueBytes, what);
  if (!decoded) return Error(decoded.error());
  return TypedValue{std::move(type), std::move(*decoded)};
}

}  // namespace agentstate::core
