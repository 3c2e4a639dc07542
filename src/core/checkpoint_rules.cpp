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

// Values of at least this size are stored compressed.
constexpr std::size_t kCompressValueBytes = 16 * 1024;

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

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> ChannelVersions(
    std::string_view checkpoint) {
  auto doc = ParseObject(checkpoint, "checkpoint");
  if (!doc) return Error(doc.error());
  const auto it = doc->find("channel_versions");
  if (it == doc->end() || !it->is_object())
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
  auto versions = ChannelVersions(put.checkpoint);
  if (!versions) return Error(versions.error());
  if (auto meta = ParseObject(put.metadata, "metadata"); !meta) return Error(meta.error());
  for (const auto& v : put.values) {
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

Result<bool> MetadataMatches(std::string_view metadata,
                             const std::vector<std::pair<std::string, std::string>>& filter) {
  if (filter.empty()) return true;
  const Json meta = Json::parse(metadata, nullptr, false);
  if (!meta.is_object()) return false;
  for (const auto& [key, value] : filter) {
    const Json want = Json::parse(value, nullptr, false);
    if (want.is_discarded())
      return Error(StatusCode::kInvalidArgument,
                   fmt::format("filter: the value of '{}' is not JSON", key));
    const auto it = meta.find(key);
    if (it == meta.end() || *it != want) return false;
  }
  return true;
}

Status ValidateListQuery(const CheckpointListQuery& q, std::size_t max_id_bytes) {
  for (const auto& [what, id] :
       {std::pair{"thread_id", &q.thread_id}, std::pair{"checkpoint_id", &q.checkpoint_id},
        std::pair{"before", &q.before}}) {
    if (!id->has_value()) continue;
    if (Status s = ValidateId(what, **id, max_id_bytes); !s.ok()) return s;
  }
  if (q.limit < 1 || q.limit > 10000)
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("limit must be 1..10000 checkpoints, not {}; page on with "
                              "before",
                              q.limit));
  for (const auto& [key, value] : q.metadata_filter) {
    if (!IsWellFormedJson(value))
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("filter: the value of '{}' is not JSON", key));
  }
  return Status();
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
