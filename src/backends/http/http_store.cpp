#include "backends/http/http_store.hpp"

#include <fmt/format.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

#include "core/asio.hpp"
#include "core/codec.hpp"
#include "core/validate.hpp"
#include "core/wire_json.hpp"

namespace agentstate::backends::http {
namespace {

using core::PercentEncode;
using nlohmann::json;

// The engine's code for a problem document's `code`, else for its HTTP status.
StatusCode CodeOf(std::string_view name, unsigned status) {
  for (StatusCode c : {StatusCode::kNotFound, StatusCode::kConflict, StatusCode::kInvalidArgument,
                       StatusCode::kTimeout, StatusCode::kUnavailable, StatusCode::kPoolExhausted,
                       StatusCode::kCorruption, StatusCode::kInternal}) {
    if (CodeName(c) == name) return c;
  }
  switch (status) {
    case 400:
    case 413:
    case 415:
    case 431: return StatusCode::kInvalidArgument;
    case 404: return StatusCode::kNotFound;
    case 409: return StatusCode::kConflict;
    case 429: return StatusCode::kPoolExhausted;
    case 401:  // a token the server refuses: this client cannot use the store
    case 403:
    case 503: return StatusCode::kUnavailable;
    case 504: return StatusCode::kTimeout;
  }
  return StatusCode::kInternal;
}

// The Status a non-2xx answer stands for, its message the server's detail.
Status ProblemOf(const HttpAnswer& a, std::string_view endpoint) {
  std::string code, detail;
  auto doc = json::parse(a.body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object()) {
    if (auto it = doc.find("code"); it != doc.end() && it->is_string()) code = *it;
    if (auto it = doc.find("detail"); it != doc.end() && it->is_string()) detail = *it;
  }
  if (detail.empty()) detail = fmt::format("HTTP {} from {}", a.status, endpoint);
  if (a.status == 401 || a.status == 403) {
    detail = fmt::format(
        "agentstated at {} refused the request: {} (give the token as "
        "http://TOKEN@HOST:PORT or in AGENTSTATE_TOKEN)",
        endpoint, detail);
  }
  return Status(CodeOf(code, a.status), std::move(detail));
}

// What `read` makes of the JSON body of a 2xx answer; kInternal naming what the server sent
// when the body is not JSON or lacks a field `read` needs (nlohmann's at() and get() throw,
// and so do the readers below on a bad value).
template <typename Read>
auto Decode(const HttpAnswer& a, std::string_view endpoint, Read read)
    -> Result<decltype(read(std::declval<const json&>()))> {
  auto doc = json::parse(a.body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return Error(
        StatusCode::kInternal,
        fmt::format("{} answered {} with a body that is not a JSON object", endpoint, a.status));
  try {
    return read(doc);
  } catch (const std::exception& e) {  // json::exception, or the readers' invalid_argument
    return Error(StatusCode::kInternal,
                 fmt::format("{} answered {} with a body this client cannot read: {}", endpoint,
                             a.status, e.what()));
  }
}

uint64_t ChecksumField(const json& j) {
  auto sum = core::ParseChecksumHex(j.at("checksum").get<std::string>());
  if (!sum) throw std::invalid_argument("checksum is not 16 hex digits");
  return *sum;
}

CheckpointInfo CheckpointOf(const json& j) {
  auto type = ParseCheckpointType(j.at("type").get<std::string>());
  if (!type) throw std::invalid_argument("unknown checkpoint type");
  return {j.at("checkpoint_id").get<std::string>(),
          j.at("run_id").get<std::string>(),
          j.at("version").get<int64_t>(),
          *type,
          j.at("is_recovery_point").get<bool>(),
          core::FromUnixMillis(j.at("created_at_ms").get<int64_t>()),
          j.at("payload_bytes").get<uint64_t>(),
          ChecksumField(j)};
}

}  // namespace

Result<std::unique_ptr<StateStore>> HttpStore::Open(const core::ParsedUri& uri,
                                                    const StoreOptions& options) {
  (void)options;  // the server's store has its own options
  auto o = ParseHttpUri(uri);
  if (!o) return Error(o.error());
  auto store = std::make_unique<HttpStore>(std::move(*o));
  const std::string endpoint = store->Describe();
  const Deadline deadline =
      DeadlineIn(store->client_->options().connect_timeout + std::chrono::seconds(5));
  asio::io_context io(1);
  auto health = asio::co_spawn(io, store->client_->Send("GET", "/v1/health", {}, {}, deadline),
                               asio::use_future);
  io.run();
  auto h = health.get();
  if (!h) {
    // Nothing answered (ConnectTcp's "cannot connect"/"cannot resolve"): say how to start it.
    const std::string& why = h.error().message();
    const bool absent = why.starts_with("cannot connect") || why.starts_with("cannot resolve");
    return Error(StatusCode::kUnavailable,
                 fmt::format("cannot use agentstated at {}: {}{}", endpoint, why,
                             absent ? "; is it running? It starts with `build/agentstated` "
                                      "(docs/http-api.md)"
                                    : ""));
  }
  // 200, or 503 from a server whose store has a tier down: it is there, and Health says
  // the rest. Anything else (a refused token, say) is why the store cannot be used.
  if (h->status != 200 && h->status != 503) return Error(ProblemOf(*h, endpoint));
  return std::unique_ptr<StateStore>(std::move(store));
}

HttpStore::HttpStore(HttpOptions options)
    : client_(std::make_unique<HttpClient>(std::move(options))) {}

HttpStore::~HttpStore() = default;

std::string HttpStore::Describe() const { return client_->options().redacted_uri; }

Awaitable<Result<HttpAnswer>> HttpStore::Call(std::string_view method, std::string target,
                                              std::string_view body,
                                              std::vector<HttpClient::Header> headers,
                                              Deadline deadline) {
  ++requests_;
  auto a = co_await client_->Send(method, target, body, std::move(headers), deadline);
  if (!a) co_return Error(a.error());
  if (a->status >= 200 && a->status < 300) co_return std::move(*a);
  ++problems_;
  co_return Error(ProblemOf(*a, Describe()));
}

Awaitable<Result<SaveAck>> HttpStore::Save(SaveRequest r, Deadline deadline) {
  std::string target =
      fmt::format("/v1/runs/{}?thread_id={}&user_id={}&agent_type={}&step={}",
                  PercentEncode(r.run_id), PercentEncode(r.thread_id), PercentEncode(r.user_id),
                  PercentEncode(r.agent_type), r.step_count);
  if (!r.phase.empty()) target += "&phase=" + PercentEncode(r.phase);
  if (r.checkpoint_type != CheckpointType::kAuto)
    target += fmt::format("&checkpoint={}", Name(r.checkpoint_type));
  if (r.is_recovery_point) target += "&recovery_point=true";
  std::string etag;
  std::vector<HttpClient::Header> headers;
  if (r.expected_version && *r.expected_version == 0) {
    headers.push_back({"If-None-Match", "*"});
  } else if (r.expected_version) {  // a negative one too: the store refuses it, naming it
    etag = fmt::format("\"{}\"", *r.expected_version);
    headers.push_back({"If-Match", etag});
  }
  if (!r.idempotency_key.empty()) headers.push_back({"Idempotency-Key", r.idempotency_key});
  // An empty body is still a save: of a document that is not JSON, which the server refuses.
  auto a = co_await Call("POST", std::move(target), r.payload, std::move(headers), deadline);
  if (!a) co_return Error(a.error());
  ++saves_;
  co_return Decode(*a, Describe(), [](const json& j) {
    return SaveAck{j.at("version").get<int64_t>(), ChecksumField(j), j.value("replayed", false)};
  });
}

Awaitable<Result<bool>> HttpStore::Put(StateRecord record, Deadline deadline) {
  // A record travels as JSON, which carries UTF-8 text alone: a field that is not would
  // arrive changed. The store's own checks (and messages), before it is sent; the server
  // checks the rest, its limits included.
  constexpr auto kAny = std::numeric_limits<std::size_t>::max();
  for (auto [what, id] : {std::pair{"run_id", &record.run_id},
                          {"thread_id", &record.thread_id},
                          {"user_id", &record.user_id},
                          {"agent_type", &record.agent_type}}) {
    if (id->empty()) continue;  // whether one may be empty is the store's to say
    if (Status s = core::ValidateId(what, *id, kAny); !s.ok()) co_return Error(s);
  }
  if (Status s = core::ValidatePhase(record.run_id, record.phase); !s.ok()) co_return Error(s);
  const std::string target = "/v1/runs/" + PercentEncode(record.run_id);
  auto a = co_await Call("PUT", target, core::RecordJson(record), {}, deadline);
  if (!a) co_return Error(a.error());
  co_return Decode(*a, Describe(), [](const json& j) { return j.at("applied").get<bool>(); });
}

namespace {

// A record the server sent, its state checked against its checksum.
Result<StateRecord> RecordOf(const HttpAnswer& a, std::string_view endpoint,
                             std::atomic<uint64_t>& corruptions) {
  auto r = core::ParseRecordJson(a.body);
  if (!r)
    return Error(StatusCode::kInternal, fmt::format("{} answered a record that does not parse: {}",
                                                    endpoint, r.error().message()));
  if (core::Checksum(r->payload) != r->checksum) {
    ++corruptions;
    return Error(
        StatusCode::kCorruption,
        fmt::format("run {} from {}: the state does not match its checksum", r->run_id, endpoint));
  }
  return r;
}

}  // namespace

Awaitable<Result<std::optional<StateRecord>>> HttpStore::Load(std::string run_id,
                                                              Deadline deadline) {
  ++loads_;
  auto a = co_await Call("GET", "/v1/runs/" + PercentEncode(run_id), {}, {}, deadline);
  if (!a && a.error().code() == StatusCode::kNotFound) co_return std::nullopt;
  if (!a) co_return Error(a.error());
  auto r = RecordOf(*a, Describe(), corruptions_);
  if (!r) co_return Error(r.error());
  co_return std::optional<StateRecord>(std::move(*r));
}

Awaitable<Result<bool>> HttpStore::Delete(std::string run_id, Deadline deadline) {
  auto a = co_await Call("DELETE", "/v1/runs/" + PercentEncode(run_id), {}, {}, deadline);
  if (!a) co_return Error(a.error());
  co_return Decode(*a, Describe(), [](const json& j) { return j.at("deleted").get<bool>(); });
}

Awaitable<Done> HttpStore::Complete(std::string run_id, Deadline deadline) {
  auto a = co_await Call("POST", fmt::format("/v1/runs/{}/complete", PercentEncode(run_id)), {}, {},
                         deadline);
  if (!a) co_return Error(a.error());
  co_return Done();
}

Awaitable<Result<CheckpointInfo>> HttpStore::Checkpoint(std::string run_id, CheckpointType type,
                                                        Deadline deadline) {
  auto a = co_await Call(
      "POST", fmt::format("/v1/runs/{}/checkpoints?type={}", PercentEncode(run_id), Name(type)), {},
      {}, deadline);
  if (!a) co_return Error(a.error());
  co_return Decode(*a, Describe(), CheckpointOf);
}

Awaitable<Result<std::vector<CheckpointInfo>>> HttpStore::ListCheckpoints(std::string run_id,
                                                                          Deadline deadline) {
  auto a = co_await Call("GET", fmt::format("/v1/runs/{}/checkpoints", PercentEncode(run_id)), {},
                         {}, deadline);
  if (!a) co_return Error(a.error());
  co_return Decode(*a, Describe(), [](const json& j) {
    std::vector<CheckpointInfo> out;
    for (const auto& c : j.at("checkpoints")) out.push_back(CheckpointOf(c));
    return out;
  });
}

Awaitable<Result<StateRecord>> HttpStore::Restore(std::string run_id,
                                                  std::optional<std::string> checkpoint_id,
                                                  Deadline deadline) {
  std::string target = fmt::format("/v1/runs/{}/restore", PercentEncode(run_id));
  if (checkpoint_id) target += "?checkpoint_id=" + PercentEncode(*checkpoint_id);
  auto a = co_await Call("POST", std::move(target), {}, {}, deadline);
  if (!a) co_return Error(a.error());
  co_return RecordOf(*a, Describe(), corruptions_);
}

Awaitable<Result<std::optional<ThreadContextRecord>>> HttpStore::ThreadContext(
    std::string thread_id, Deadline deadline) {
  auto a = co_await Call("GET", "/v1/threads/" + PercentEncode(thread_id), {}, {}, deadline);
  if (!a && a.error().code() == StatusCode::kNotFound) co_return std::nullopt;
  if (!a) co_return Error(a.error());
  auto t = Decode(*a, Describe(), [](const json& j) {
    return ThreadContextRecord{j.at("thread_id").get<std::string>(),
                               j.at("run_id").get<std::string>(), j.at("version").get<int64_t>(),
                               core::FromUnixMillis(j.at("updated_at_ms").get<int64_t>())};
  });
  if (!t) co_return Error(t.error());
  co_return std::optional<ThreadContextRecord>(std::move(*t));
}

Awaitable<Result<uint64_t>> HttpStore::DeletePrefix(std::string, Deadline) {
  co_return Error(StatusCode::kUnavailable,
                  fmt::format("{}: the http:// store does not delete by prefix; drop a tenant "
                              "with DELETE /v1/admin/tenants/{{tenant}} (an admin token)",
                              Describe()));
}

Awaitable<Result<ActiveRunsPage>> HttpStore::ActiveRuns(ActiveRunsQuery q, Deadline deadline) {
  std::string target = fmt::format("/v1/runs?limit={}", q.limit);
  if (!q.cursor.empty()) target += "&cursor=" + PercentEncode(q.cursor);
  if (q.thread_id) target += "&thread_id=" + PercentEncode(*q.thread_id);
  auto a = co_await Call("GET", std::move(target), {}, {}, deadline);
  if (!a) co_return Error(a.error());
  co_return Decode(*a, Describe(), [](const json& j) {
    ActiveRunsPage page;
    page.next_cursor = j.at("next_cursor").get<std::string>();
    for (const auto& r : j.at("runs")) {
      page.runs.push_back({r.at("run_id").get<std::string>(), r.at("thread_id").get<std::string>(),
                           r.at("user_id").get<std::string>(),
                           r.at("agent_type").get<std::string>(), r.at("version").get<int64_t>(),
                           core::FromUnixMillis(r.at("saved_at_ms").get<int64_t>())});
    }
    return page;
  });
}

Awaitable<Result<HealthReport>> HttpStore::Health(Deadline deadline) {
  const auto t0 = std::chrono::steady_clock::now();
  auto a = co_await client_->Send("GET", "/v1/health", {}, {}, deadline);
  const auto took =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  HealthReport report;
  auto unhealthy = [&](std::string why) {
    report.tiers.push_back({"server", Describe(), false, std::move(why), took});
    return report;
  };
  if (!a && a.error().code() == StatusCode::kTimeout) co_return Error(a.error());
  if (!a) co_return unhealthy(a.error().message());
  // 200, or 503 with the tiers that are down: both carry the tiers.
  auto doc = json::parse(a->body, nullptr, false);
  if ((a->status != 200 && a->status != 503) || !doc.is_object() || !doc.contains("tiers"))
    co_return unhealthy(ProblemOf(*a, Describe()).message());
  for (const auto& t : doc["tiers"]) {
    TierHealth h;
    h.tier = t.value("tier", "");
    h.backend = fmt::format("{} ({} tier)", Describe(), h.tier);
    h.healthy = t.value("healthy", false);
    h.detail = t.value("detail", "");
    h.latency = std::chrono::microseconds(t.value("latency_us", int64_t{0}));
    report.tiers.push_back(std::move(h));
  }
  if (report.tiers.empty()) co_return unhealthy("the server named no tier");
  co_return report;
}

StoreStats HttpStore::Stats() const {
  StoreStats s;
  s.backend = Describe();
  s.values["saves"] = static_cast<double>(saves_.load());
  s.values["loads"] = static_cast<double>(loads_.load());
  s.values["requests"] = static_cast<double>(requests_.load());
  s.values["problems"] = static_cast<double>(problems_.load());
  s.values["corruptions"] = static_cast<double>(corruptions_.load());
  const auto c = client_->stats();
  s.values["connections"] = static_cast<double>(c.connections);
  s.values["reconnects"] = static_cast<double>(c.reconnects);
  s.values["sent"] = static_cast<double>(c.sent);
  c.AppendTo(s.values);
  return s;
}

uint64_t HttpStore::Generation() const { return client_->stats().reconnects; }

}  // namespace agentstate::backends::http
