// Reading JSON that someone else wrote (a report file, a shard's output): every lookup is
// total. nlohmann's const operator[] of a missing key is undefined behaviour and value()
// throws on a non-object; these never do either. A missing or mistyped field reads as the
// fallback, and Require* say which field was wrong in words a person can act on.
#pragma once

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace agentstate::load::json_read {

using nlohmann::json;

// The value at `path` (object keys, outermost first), or null when a step is missing or
// not an object.
inline const json& At(const json& j, std::initializer_list<std::string_view> path) {
  static const json kNull;
  const json* at = &j;
  for (std::string_view key : path) {
    if (!at->is_object()) return kNull;
    auto it = at->find(key);
    if (it == at->end()) return kNull;
    at = &*it;
  }
  return *at;
}

inline double Num(const json& j, std::initializer_list<std::string_view> path, double fallback) {
  const json& v = At(j, path);
  return v.is_number() ? v.get<double>() : fallback;
}

inline std::string Str(const json& j, std::initializer_list<std::string_view> path,
                       std::string fallback = "") {
  const json& v = At(j, path);
  return v.is_string() ? v.get<std::string>() : fallback;
}

inline bool Bool(const json& j, std::initializer_list<std::string_view> path,
                 bool fallback = false) {
  const json& v = At(j, path);
  return v.is_boolean() ? v.get<bool>() : fallback;
}

// The array (or object) at `path`, or an empty one: safe to iterate whatever the file held.
inline const json& Arr(const json& j, std::initializer_list<std::string_view> path) {
  static const json kEmpty = json::array();
  const json& v = At(j, path);
  return v.is_array() ? v : kEmpty;
}
inline const json& Obj(const json& j, std::initializer_list<std::string_view> path) {
  static const json kEmpty = json::object();
  const json& v = At(j, path);
  return v.is_object() ? v : kEmpty;
}

// The dotted name of `path`, for messages: "additional_data.seed".
inline std::string Dotted(std::initializer_list<std::string_view> path) {
  std::string out;
  for (std::string_view key : path) {
    if (!out.empty()) out += '.';
    out += key;
  }
  return out;
}

// A field that must be there with its type; nullopt (and `*missing` names it) otherwise.
inline std::optional<std::string> RequireStr(const json& j,
                                             std::initializer_list<std::string_view> path,
                                             std::string* missing) {
  const json& v = At(j, path);
  if (v.is_string()) return v.get<std::string>();
  if (missing->empty()) *missing = Dotted(path) + " (a string)";
  return std::nullopt;
}
inline std::optional<int64_t> RequireInt(const json& j,
                                         std::initializer_list<std::string_view> path,
                                         std::string* missing) {
  const json& v = At(j, path);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (missing->empty()) *missing = Dotted(path) + " (an integer)";
  return std::nullopt;
}

// nlohmann's exception text without its "[json.exception.type_error.302] " prefix.
inline std::string Plain(const json::exception& e) {
  std::string_view what = e.what();
  if (what.rfind("[json.exception.", 0) == 0) {
    if (auto close = what.find("] "); close != std::string_view::npos)
      what.remove_prefix(close + 2);
  }
  return std::string(what);
}

}  // namespace agentstate::load::json_read
