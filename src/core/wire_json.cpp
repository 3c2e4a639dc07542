#include "core/wire_json.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "core/codec.hpp"
#include "core/validate.hpp"

namespace agentstate::core {

std::string ChecksumHex(uint64_t checksum) { return fmt::format("{:016x}", checksum); }

std::optional<uint64_t> ParseChecksumHex(std::string_view hex) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
  if (hex.empty() || ec != std::errc() || end != hex.data() + hex.size()) return std::nullopt;
  return v;
}

std::string RecordJson(const StateRecord& r) {
  using nlohmann::json;
  json meta = {{"run_id", r.run_id},
               {"thread_id", r.thread_id},
               {"user_id", r.user_id},
               {"agent_type", r.agent_type},
               {"version", r.version},
               {"step_count", r.step_count},
               {"phase", r.phase},
               {"checkpoint_type", Name(r.checkpoint_type)},
               {"is_recovery_point", r.is_recovery_point},
               {"status", Name(r.status)},
               {"saved_at_ms", ToUnixMillis(r.saved_at)},
               {"checksum", ChecksumHex(r.checksum)}};
  if (!r.idempotency_key.empty()) meta["idempotency_key"] = r.idempotency_key;
  std::string out = meta.dump(-1, ' ', false, json::error_handler_t::replace);
  out.pop_back();  // the closing brace
  out += ",\"state\":";
  out += r.payload.empty() ? "null" : r.payload;
  out += '}';
  return out;
}

Result<StateRecord> ParseRecordJson(std::string_view body) {
  namespace od = simdjson::ondemand;
  auto bad = [](std::string_view why) {
    return Error(StatusCode::kInvalidArgument, fmt::format("malformed record: {}", why));
  };
  // The state runs to the document's closing brace: find it before parsing.
  std::size_t last = body.find_last_not_of(" \t\r\n");
  if (last == std::string_view::npos || body[last] != '}') return bad("it is not a JSON object");
  const simdjson::padded_string padded(body);
  thread_local od::parser parser;
  od::document doc;
  if (parser.iterate(padded).get(doc)) return bad("it is not JSON");
  od::object object;
  if (doc.get_object().get(object)) return bad("it is not a JSON object");
  StateRecord r;
  bool have_version = false, have_checksum = false, have_state = false;
  for (auto field : object) {
    std::string_view key;
    od::value value;
    if (field.unescaped_key().get(key) || field.value().get(value)) return bad("bad field");
    auto text = [&](std::string& out) {
      std::string_view v;
      if (value.get_string().get(v)) return false;
      out.assign(v);
      return true;
    };
    auto integer = [&](int64_t& out) { return !value.get_int64().get(out); };
    bool ok = true;
    if (key == "run_id") {
      ok = text(r.run_id);
    } else if (key == "thread_id") {
      ok = text(r.thread_id);
    } else if (key == "user_id") {
      ok = text(r.user_id);
    } else if (key == "agent_type") {
      ok = text(r.agent_type);
    } else if (key == "phase") {
      ok = text(r.phase);
    } else if (key == "idempotency_key") {
      ok = text(r.idempotency_key);
    } else if (key == "version") {
      ok = have_version = integer(r.version);
    } else if (key == "step_count") {
      ok = integer(r.step_count);
    } else if (key == "saved_at_ms") {
      // A time this machine's clock can hold (found by fuzz/fuzz_json.cpp: a far-future
      // one overflowed the conversion to nanoseconds).
      int64_t ms = 0;
      ok = integer(ms) && ms >= 0 && ms <= kMaxUnixMillis;
      r.saved_at = FromUnixMillis(ms);
    } else if (key == "is_recovery_point") {
      ok = !value.get_bool().get(r.is_recovery_point);
    } else if (key == "checkpoint_type" || key == "status") {
      std::string name;
      ok = text(name);
      if (ok && key == "status") {
        ok = name == "active" || name == "completed";
        r.status = name == "completed" ? RunStatus::kCompleted : RunStatus::kActive;
      } else if (ok) {
        auto type = ParseCheckpointType(name);
        ok = type.has_value();
        if (ok) r.checkpoint_type = *type;
      }
    } else if (key == "checksum") {
      std::string hex;
      auto sum = text(hex) ? ParseChecksumHex(hex) : std::nullopt;
      ok = have_checksum = sum.has_value();
      if (ok) r.checksum = *sum;
    } else if (key == "state") {
      // Where the state's first token starts in `body`, with any whitespace the saved
      // document began with; it runs, whitespace and all, to the closing brace.
      std::string_view token = value.raw_json_token();
      auto start = static_cast<std::size_t>(token.data() - padded.data());
      while (start > 0 &&
             std::string_view(" \t\r\n").find(body[start - 1]) != std::string_view::npos) {
        --start;
      }
      if (start >= last) return bad("the state is empty");
      r.payload.assign(body.substr(start, last - start));
      have_state = true;
      break;  // the last field by the wire's rule
    }
    if (!ok) return bad(fmt::format("field {} has the wrong type or value", key));
  }
  if (!have_version || !have_checksum || !have_state || r.run_id.empty())
    return bad("run_id, version, checksum and state are required, the state last");
  // RecordJson writes an empty payload as null; its checksum tells the two apart.
  if (r.payload == "null" && r.checksum == Checksum("")) r.payload.clear();
  return r;
}

}  // namespace agentstate::core
