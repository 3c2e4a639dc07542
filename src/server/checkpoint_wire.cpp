#include "server/checkpoint_wire.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/base64.hpp"

namespace agentstate::server {
namespace {

namespace od = simdjson::ondemand;

Status Bad(std::string_view what, std::string_view why) {
  return Status(StatusCode::kInvalidArgument, fmt::format("malformed {}: {}", what, why));
}

// The fields of one JSON object, each handed to `field(key, value)`, which returns why it
// refuses the field ("" : taken). Returns where and why the object is refused, or "".
template <typename Field>
std::string EachField(od::value& v, std::string_view where, Field field) {
  od::object object;
  if (v.get_object().get(object)) return fmt::format("{} is not a JSON object", where);
  for (auto f : object) {
    std::string_view key;
    od::value value;
    if (f.unescaped_key().get(key) || f.value().get(value))
      return fmt::format("{} is not well-formed JSON", where);
    const std::string k(key);
    if (std::string why = field(k, value); !why.empty())
      return fmt::format("{}.{}{}{}", where, k, why[0] == '[' ? "" : " ", why);
  }
  return "";
}

std::string Text(od::value& v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s)) return "must be a string";
  out.assign(s);
  return "";
}

std::string Bytes(od::value& v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s)) return "must be a base64 string";
  auto bytes = core::Base64Decode(s);
  if (!bytes) return "is not base64 (RFC 4648, the standard alphabet, padded)";
  out = std::move(*bytes);
  return "";
}

// A typed value's fields, "type" and "bytes": why one is refused ("" : taken), or nullopt
// for another key.
std::optional<std::string> Typed(const std::string& key, od::value& v, TypedValue& out) {
  if (key == "type") return Text(v, out.type);
  if (key == "bytes") return Bytes(v, out.bytes);
  return std::nullopt;
}

std::string Object(od::value& v, std::string& out) {
  od::object object;
  std::string_view raw;
  if (v.get_object().get(object)) return "must be a JSON object";
  if (object.raw_json().get(raw)) return "is not well-formed JSON";
  out.assign(raw);
  return "";
}

// An array of objects: each element's fields into a fresh T by `field(t, key, value)`;
// each element must hold every `required` field.
template <typename T, typename Field>
std::string Array(od::value& v, std::vector<T>& out,
                  std::initializer_list<std::string_view> required, Field field) {
  od::array array;
  if (v.get_array().get(array)) return "must be an array";
  std::size_t i = 0;
  for (auto element : array) {
    od::value e;
    if (element.get(e)) return "is not well-formed JSON";
    T t;
    std::vector<bool> seen(required.size());
    std::string why =
        EachField(e, fmt::format("[{}]", i), [&](const std::string& key, od::value& value) {
          const auto at = std::find(required.begin(), required.end(), key);
          if (at != required.end()) seen[static_cast<std::size_t>(at - required.begin())] = true;
          return field(t, key, value);
        });
    if (!why.empty()) return why;
    for (std::size_t r = 0; r < required.size(); ++r)
      if (!seen[r]) return fmt::format("[{}].{} is required", i, required.begin()[r]);
    out.push_back(std::move(t));
    ++i;
  }
  return "";
}

template <typename Parse>
Status Document(std::string_view body, std::string_view what, Parse parse) {
  const simdjson::padded_string padded(body);
  od::parser parser;
  od::document doc;
  od::value root;
  if (parser.iterate(padded).get(doc) || doc.get_value().get(root))
    return Bad(what, "the body is not JSON");
  if (std::string why = parse(root); !why.empty()) return Bad(what, why);
  if (const char* more = nullptr; !doc.current_location().get(more))
    return Bad(what, "the body holds more than one JSON value");
  return Status();
}

void Quote(std::string_view s, std::string& out) {
  out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void AppendValue(const TypedValue& v, std::string& out) {
  out += ",\"type\":";
  Quote(v.type, out);
  out += ",\"bytes\":\"";
  out += core::Base64Encode(v.bytes);
  out += "\"}";
}

}  // namespace

Result<CheckpointPut> ParseCheckpointPut(std::string_view body) {
  constexpr std::string_view kWhat = "checkpoint put";
  CheckpointPut put;
  bool have_checkpoint = false, have_metadata = false;
  Status s = Document(body, kWhat, [&](od::value& root) {
    return EachField(root, "body", [&](const std::string& key, od::value& v) -> std::string {
      if (key == "parent_id") {
        bool null = false;
        if (!v.is_null().get(null) && null) return "";
        return Text(v, put.parent_id);
      }
      if (key == "checkpoint") {
        have_checkpoint = true;
        return Object(v, put.checkpoint);
      }
      if (key == "metadata") {
        have_metadata = true;
        return Object(v, put.metadata);
      }
      if (key == "check_head")
        return v.get_bool().get(put.check_head) ? "must be true or false" : "";
      if (key == "values") {
        return Array(v, put.values, {"channel", "version", "type", "bytes"},
                     [](ChannelValue& c, const std::string& k, od::value& e) -> std::string {
                       if (k == "channel") return Text(e, c.channel);
                       if (k == "version") return Text(e, c.version);
                       if (auto why = Typed(k, e, c.value)) return *why;
                       return "is not a field of a value (channel, version, type, bytes)";
                     });
      }
      return "is not a field of a put (parent_id, checkpoint, metadata, values, check_head)";
    });
  });
  if (!s.ok()) return Error(s);
  if (!have_checkpoint || !have_metadata)
    return Error(Bad(kWhat, "checkpoint and metadata are required"));
  return put;
}

Result<WritesBody> ParseCheckpointWrites(std::string_view body) {
  constexpr std::string_view kWhat = "checkpoint writes";
  WritesBody out;
  bool have_writes = false;
  Status s = Document(body, kWhat, [&](od::value& root) {
    return EachField(root, "body", [&](const std::string& key, od::value& v) -> std::string {
      if (key == "task_path") return Text(v, out.task_path);
      if (key == "writes") {
        have_writes = true;
        return Array(v, out.writes, {"channel", "type", "bytes"},
                     [](std::pair<std::string, TypedValue>& w, const std::string& k,
                        od::value& e) -> std::string {
                       if (k == "channel") return Text(e, w.first);
                       if (auto why = Typed(k, e, w.second)) return *why;
                       return "is not a field of a write (channel, type, bytes)";
                     });
      }
      return "is not a field of a write batch (task_path, writes)";
    });
  });
  if (!s.ok()) return Error(s);
  if (!have_writes) return Error(Bad(kWhat, "writes is required"));
  return out;
}

Result<std::vector<std::string>> ParseRunIds(std::string_view body) {
  constexpr std::string_view kWhat = "delete for runs";
  std::vector<std::string> run_ids;
  bool have_runs = false;
  Status s = Document(body, kWhat, [&](od::value& root) {
    return EachField(root, "body", [&](const std::string& key, od::value& v) -> std::string {
      if (key != "run_ids") return "is not a field of a delete for runs (run_ids)";
      have_runs = true;
      od::array array;
      if (v.get_array().get(array)) return "must be an array of strings";
      std::size_t i = 0;
      for (auto element : array) {
        od::value e;
        if (element.get(e)) return "is not well-formed JSON";
        if (std::string why = Text(e, run_ids.emplace_back()); !why.empty())
          return fmt::format("[{}] {}", i, why);
        ++i;
      }
      return "";
    });
  });
  if (!s.ok()) return Error(s);
  if (!have_runs) return Error(Bad(kWhat, "run_ids is required"));
  return run_ids;
}

void AppendTupleJson(const CheckpointTuple& t, std::string& out) {
  out += "{\"thread_id\":";
  Quote(t.thread_id, out);
  out += ",\"ns\":";
  Quote(t.ns, out);
  out += ",\"checkpoint_id\":";
  Quote(t.checkpoint_id, out);
  out += ",\"parent_id\":";
  if (t.parent_id.empty()) {
    out += "null";
  } else {
    Quote(t.parent_id, out);
  }
  // Stored as the client sent them, checked as JSON objects when they were put.
  out += ",\"checkpoint\":";
  out += t.checkpoint;
  out += ",\"metadata\":";
  out += t.metadata;
  out += ",\"values\":[";
  for (std::size_t i = 0; i < t.values.size(); ++i) {
    const ChannelValue& v = t.values[i];
    out += i ? ",{\"channel\":" : "{\"channel\":";
    Quote(v.channel, out);
    out += ",\"version\":";
    Quote(v.version, out);
    AppendValue(v.value, out);
  }
  out += "],\"writes\":[";
  for (std::size_t i = 0; i < t.writes.size(); ++i) {
    const PendingWrite& w = t.writes[i];
    out += i ? ",{\"task_id\":" : "{\"task_id\":";
    Quote(w.task_id, out);
    out += ",\"task_path\":";
    Quote(w.task_path, out);
    out += ",\"channel\":";
    Quote(w.channel, out);
    out += fmt::format(",\"idx\":{}", w.idx);
    AppendValue(w.value, out);
  }
  out += "]}";
}

}  // namespace agentstate::server
