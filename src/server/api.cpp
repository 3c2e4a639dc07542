#include "server/api.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/asio.hpp"
#include "core/validate.hpp"
#include "core/wire_json.hpp"
#include "server/checkpoint_wire.hpp"
#include "server/tenant_store.hpp"

namespace agentstate::server {
namespace {

using nlohmann::json;

std::string_view Title(unsigned status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
  }
  return "Error";
}

ApiResponse FromStatus(const Status& s) {
  ApiResponse r = Problem(HttpStatus(s.code()), CodeName(s.code()), s.message());
  if (r.status == 429 || r.status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

ApiResponse Json(unsigned status, const json& body) {
  ApiResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

// %XX escapes decoded. kInvalidArgument for a malformed escape, or a %00: a NUL byte would
// end the id in every C API beneath (other control bytes reach the store's own id check).
Result<std::string> PercentDecode(std::string_view in, std::string_view where) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i] == '+' ? ' ' : in[i];
      continue;
    }
    int v = -1;
    if (i + 2 < in.size()) {
      auto [end, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
      if (ec != std::errc() || end != in.data() + i + 3) v = -1;
    }
    if (v < 0)
      return Error(StatusCode::kInvalidArgument,
                   fmt::format("malformed %-escape in the {}: use %XX with two hex digits", where));
    if (v == 0)
      return Error(
          StatusCode::kInvalidArgument,
          fmt::format("the {} holds control byte 0x00 (%00); ids must be printable text", where));
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

int64_t Millis(SystemTime t) { return core::ToUnixMillis(t); }

// The whole of `text` as a decimal integer, or nullopt.
// A header value as a structured-field string ("K") or bare (K): the value inside the quotes.
std::string_view Unquote(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

std::optional<int64_t> ParseInt(std::string_view text) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

json CheckpointJson(const CheckpointInfo& c) {
  return {{"checkpoint_id", c.checkpoint_id},
          {"run_id", c.run_id},
          {"version", c.version},
          {"type", Name(c.type)},
          {"is_recovery_point", c.is_recovery_point},
          {"created_at_ms", Millis(c.created_at)},
          {"payload_bytes", c.payload_bytes},
          {"checksum", core::ChecksumHex(c.checksum)}};
}

// application/json, with or without parameters (; charset=utf-8).
bool IsJson(std::string_view content_type) {
  return content_type.substr(0, content_type.find(';')) == "application/json";
}

std::string ETag(int64_t version) { return fmt::format("\"{}\"", version); }

}  // namespace

ApiResponse Problem(unsigned status, std::string_view code, std::string_view detail) {
  ApiResponse r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = json{
      {"type", fmt::format("urn:agentstate:problem:{}", code)},
      {"title", Title(status)},
      {"status", status},
      {"detail", detail},
      {"code",
       code}}.dump(-1, ' ', false, json::error_handler_t::replace);
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"agentstated\"");
  return r;
}

namespace {

// 405 with the Allow header RFC 9110 requires: the methods the route does take.
ApiResponse MethodNotAllowed(std::string_view method, std::string_view route,
                             std::string_view allow) {
  ApiResponse r = Problem(405, "method_not_allowed",
                          fmt::format("{} is not allowed on {}; use {}", method, route, allow));
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

}  // namespace

unsigned HttpStatus(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kConflict: return 409;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kTimeout: return 504;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kPoolExhausted: return 429;
    case StatusCode::kCorruption: return 500;
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

// One request on its way through the routes.
struct Api::Call {
  ApiRequest req;
  std::string route = "unmatched";  // the route's pattern, for metrics
  std::vector<std::string> path;    // decoded segments after /v1
  std::map<std::string, std::string> query;
  Principal who;
};

Api::Api(StateStore& store, std::function<std::shared_ptr<const Tokens>()> tokens, Options options)
    : store_(store), tokens_(std::move(tokens)), options_(options) {}

Awaitable<ApiResponse> Api::Handle(ApiRequest request) {
  const auto t0 = std::chrono::steady_clock::now();
  ++in_flight_;
  Call call{std::move(request)};
  const std::size_t request_bytes = call.req.body.size();
  ApiResponse r = co_await Route(call);
  --in_flight_;
  const auto took =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  Count(call.route, r.status, took);
  if (options_.access_log) {
    options_.access_log(json{
        {"ts_ms", core::ToUnixMillis(std::chrono::system_clock::now())},
        {"method", call.req.method},
        {"route", call.route},
        {"status", r.status},
        {"duration_us", took.count()},
        {"tenant", call.who.tenant},
        {"request_bytes", request_bytes},
        {"response_bytes",
         r.body.size()}}.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  co_return r;
}

void Api::Count(const std::string& route, unsigned status, std::chrono::microseconds took) {
  std::lock_guard lock(mu_);
  ++counts_[{route, status}];
  auto& h = latency_[route];
  if (!h) h = std::make_unique<core::Log2Histogram>();
  h->Record(static_cast<uint64_t>(took.count()));
}

Awaitable<ApiResponse> Api::Route(Call& c) {
  // Split the target: path segments (decoded) and query parameters (decoded).
  std::string_view target = c.req.target;
  std::string_view query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  if (target.empty() || target[0] != '/')
    co_return Problem(400, "invalid_argument", "the request target must be a path: /v1/...");
  std::vector<std::string> segments;
  for (std::size_t at = 1; at <= target.size();) {
    auto end = target.find('/', at);
    if (end == std::string_view::npos) end = target.size();
    auto seg = PercentDecode(target.substr(at, end - at), "path");
    if (!seg) co_return FromStatus(seg.error());
    segments.push_back(std::move(*seg));
    at = end + 1;
  }
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    auto key = PercentDecode(kv.substr(0, eq), "query");
    auto value = PercentDecode(eq == std::string_view::npos ? "" : kv.substr(eq + 1), "query");
    if (!key) co_return FromStatus(key.error());
    if (!value) co_return FromStatus(value.error());
    c.query[*key] = *value;
  }

  // Unauthenticated: the process's liveness and readiness.
  const std::string& m = c.req.method;
  if (segments.size() == 1 && segments[0] == "healthz") {
    c.route = "/healthz";
    if (m != "GET" && m != "HEAD") co_return MethodNotAllowed(m, c.route, "GET, HEAD");
    co_return Json(200, {{"status", "ok"}});
  }
  if (segments.size() == 1 && segments[0] == "readyz") {
    c.route = "/readyz";
    if (m != "GET" && m != "HEAD") co_return MethodNotAllowed(m, c.route, "GET, HEAD");
    auto h = co_await store_.Health(DeadlineIn(options_.request_timeout));
    if (!h) co_return FromStatus(h.error());
    json tiers = json::array();
    for (const auto& t : h->tiers) {
      tiers.push_back({{"tier", t.tier}, {"healthy", t.healthy}, {"detail", t.detail}});
    }
    co_return Json(h->healthy() ? 200 : 503, {{"ready", h->healthy()}, {"tiers", tiers}});
  }

  // Everything else needs a bearer token when a token file is in force.
  if (auto tokens = tokens_ ? tokens_() : nullptr) {
    std::string_view auth = c.req.authorization;
    if (auth.empty())
      co_return Problem(401, "unauthenticated",
                        "no Authorization header: send Authorization: Bearer <token>");
    if (auth.substr(0, 7) != "Bearer " || auth.size() == 7)
      co_return Problem(401, "unauthenticated", "the Authorization header must be: Bearer <token>");
    auto who = tokens->Authenticate(auth.substr(7));
    if (!who)
      co_return Problem(401, "unauthenticated",
                        "the token is not valid (unknown or revoked); ask for a new one");
    c.who = std::move(*who);
  } else {
    c.who = Principal{"default", Role::kAdmin};
  }

  if (auto wait = Throttle(c.who.tenant)) {
    ApiResponse r =
        Problem(429, "rate_limited",
                fmt::format("tenant {} is over its rate limit of {} requests/s; retry after {} s",
                            c.who.tenant, options_.rate_limit_per_s, *wait));
    r.headers.emplace_back("Retry-After", std::to_string(*wait));
    co_return r;
  }

  if (segments.size() == 1 && segments[0] == "metrics") {
    c.route = "/metrics";
    if (m != "GET") co_return MethodNotAllowed(m, c.route, "GET");
    if (c.who.role != Role::kAdmin)
      co_return Problem(403, "forbidden", "metrics need a token with the admin role");
    ApiResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = Metrics({});
    co_return r;
  }
  if (segments.empty() || segments[0] != "v1")
    co_return Problem(404, "not_found", "no such route; the API is under /v1 (docs/http-api.md)");
  c.path.assign(segments.begin() + 1, segments.end());
  TenantStore store(store_, c.who.tenant, options_.max_id_bytes);
  const Deadline deadline = DeadlineIn(options_.request_timeout);
  const auto& p = c.path;
  const auto method_not_allowed = [&](std::string_view allow) {
    return MethodNotAllowed(m, c.route, allow);
  };
  auto query_int = [&](const std::string& key, int64_t fallback) -> std::optional<int64_t> {
    auto it = c.query.find(key);
    return it == c.query.end() ? std::optional<int64_t>(fallback) : ParseInt(it->second);
  };
  auto query_str = [&](const std::string& key) {
    auto it = c.query.find(key);
    return it == c.query.end() ? std::string() : it->second;
  };

  // /v1/health, /v1/stats
  if (p.size() == 1 && p[0] == "health") {
    c.route = "/v1/health";
    if (m != "GET") co_return method_not_allowed("GET");
    auto h = co_await store.Health(deadline);
    if (!h) co_return FromStatus(h.error());
    json tiers = json::array();
    for (const auto& t : h->tiers) {
      tiers.push_back({{"tier", t.tier},
                       {"healthy", t.healthy},
                       {"detail", t.detail},
                       {"latency_us", t.latency.count()}});
    }
    co_return Json(h->healthy() ? 200 : 503, {{"healthy", h->healthy()}, {"tiers", tiers}});
  }
  if (p.size() == 1 && p[0] == "stats") {
    c.route = "/v1/stats";
    if (m != "GET") co_return method_not_allowed("GET");
    if (c.who.role != Role::kAdmin)
      co_return Problem(403, "forbidden", "the store's counters need a token with the admin role");
    const StoreStats s = store.Stats();
    co_return Json(200, {{"backend", s.backend}, {"values", s.values}});
  }
  // LangGraph's checkpoint model: /v1/threads/{thread_id}/..., /v1/checkpoints[/prune]
  if ((p.size() >= 3 && p[0] == "threads") || (!p.empty() && p[0] == "checkpoints"))
    co_return co_await CheckpointRoute(c, store, deadline);
  // /v1/threads/{thread_id}
  if (p.size() == 2 && p[0] == "threads") {
    c.route = "/v1/threads/{thread_id}";
    if (m != "GET") co_return method_not_allowed("GET");
    auto t = co_await store.ThreadContext(p[1], deadline);
    if (!t) co_return FromStatus(t.error());
    if (!*t) co_return Problem(404, "not_found", fmt::format("thread {} has no run", p[1]));
    co_return Json(200, {{"thread_id", (*t)->thread_id},
                         {"run_id", (*t)->run_id},
                         {"version", (*t)->version},
                         {"updated_at_ms", Millis((*t)->updated_at)}});
  }
  // /v1/admin/tenants[/{tenant}]: list, create (a first agent token) and drop (its tokens
  // revoked, then every run, checkpoint and thread context of it deleted).
  if (!p.empty() && p[0] == "admin") {
    if (p.size() < 2 || p.size() > 3 || p[1] != "tenants")
      co_return Problem(404, "not_found", "no such route (docs/http-api.md lists them)");
    c.route = p.size() == 2 ? "/v1/admin/tenants" : "/v1/admin/tenants/{tenant}";
    const bool allowed = p.size() == 2 ? m == "GET" : (m == "POST" || m == "DELETE");
    if (!allowed) co_return method_not_allowed(p.size() == 2 ? "GET" : "POST, DELETE");
    if (c.who.role != Role::kAdmin)
      co_return Problem(403, "forbidden", "tenants are made and dropped with an admin token");
    TokenFile* file = options_.token_file;
    if (!file)
      co_return Problem(409, "conflict",
                        "tenants come from a token file: start agentstated with --tokens FILE");
    if (p.size() == 2) {
      json list = json::array();
      for (const auto& [tenant, roles] : file->Tenants()) {
        list.push_back({{"tenant", tenant},
                        {"agent_tokens", roles.count("agent") ? roles.at("agent") : 0},
                        {"admin_tokens", roles.count("admin") ? roles.at("admin") : 0}});
      }
      co_return Json(200, {{"tenants", list}});
    }
    const std::string& tenant = p[2];
    if (!ValidTenant(tenant))
      co_return Problem(400, "invalid_argument",
                        fmt::format("tenant '{}': a tenant is 1..64 of a-z 0-9 _ -, starting "
                                    "with a letter or digit",
                                    tenant));
    if (m == "POST") {
      auto token = file->CreateTenant(tenant);
      if (!token) co_return FromStatus(token.error());
      co_return Json(201, {{"tenant", tenant}, {"role", "agent"}, {"token", *token}});
    }
    // DELETE: the tokens first, so that nothing of the tenant is written meanwhile.
    std::size_t revoked = 0;
    if (auto dropped = file->DropTenant(tenant); dropped) {
      revoked = *dropped;
    } else if (dropped.error().code() != StatusCode::kNotFound) {
      co_return FromStatus(dropped.error());
    }
    auto runs = co_await store_.DeletePrefix(tenant + "/", deadline);
    if (CheckpointStore* cp = store_.Checkpoints(); runs && cp) {
      auto threads = co_await cp->Prune("", tenant + "/", {.delete_all = true}, deadline);
      if (!threads) runs = Error(threads.error());
    }
    if (!runs)
      co_return FromStatus(Status(runs.error().code(),
                                  fmt::format("tenant {}: its {} tokens are revoked, but its data "
                                              "is not all deleted ({}); send the DELETE again",
                                              tenant, revoked, runs.error().message())));
    co_return Json(200, {{"tenant", tenant}, {"tokens_revoked", revoked}, {"runs_deleted", *runs}});
  }
  if (p.empty() || p[0] != "runs")
    co_return Problem(404, "not_found", "no such route (docs/http-api.md lists them)");
  // /v1/runs: active runs, a page at a time
  if (p.size() == 1) {
    c.route = "/v1/runs";
    if (m != "GET") co_return method_not_allowed("GET");
    ActiveRunsQuery q;
    q.cursor = query_str("cursor");
    auto limit = query_int("limit", 100);
    if (!limit || *limit < 1 || *limit > 10000)
      co_return Problem(400, "invalid_argument", "limit must be an integer in 1..10000");
    q.limit = static_cast<uint32_t>(*limit);
    if (c.query.count("thread_id")) q.thread_id = query_str("thread_id");
    auto page = co_await store.ActiveRuns(q, deadline);
    if (!page) co_return FromStatus(page.error());
    json runs = json::array();
    for (const auto& r : page->runs) {
      runs.push_back({{"run_id", r.run_id},
                      {"thread_id", r.thread_id},
                      {"user_id", r.user_id},
                      {"agent_type", r.agent_type},
                      {"version", r.version},
                      {"saved_at_ms", Millis(r.saved_at)}});
    }
    co_return Json(200, {{"runs", runs}, {"next_cursor", page->next_cursor}});
  }
  const std::string& run = p[1];
  // /v1/runs/{run_id}: save (POST), load (GET), delete (DELETE)
  if (p.size() == 2) {
    c.route = "/v1/runs/{run_id}";
    if (m == "GET") {
      auto r = co_await store.Load(run, deadline);
      if (!r) co_return FromStatus(r.error());
      if (!*r) co_return Problem(404, "not_found", fmt::format("run {} does not exist", run));
      ApiResponse out;
      out.body = core::RecordJson(**r);
      out.headers.emplace_back("ETag", ETag((*r)->version));
      co_return out;
    }
    if (m == "DELETE") {
      auto r = co_await store.Delete(run, deadline);
      if (!r) co_return FromStatus(r.error());
      co_return Json(200, {{"run_id", run}, {"deleted", *r}});
    }
    if (m == "PUT") {
      // Replication (StateStore::Put): a record another store acknowledged, at its version.
      if (!IsJson(c.req.content_type))
        co_return Problem(415, "unsupported_media_type",
                          "the body of a put is a record as JSON: Content-Type: application/json");
      auto record = core::ParseRecordJson(c.req.body);
      if (!record) co_return FromStatus(record.error());
      if (record->run_id != run)
        co_return Problem(400, "invalid_argument",
                          fmt::format("the record is of run {}, not of {}", record->run_id, run));
      auto applied = co_await store.Put(std::move(*record), deadline);
      if (!applied) co_return FromStatus(applied.error());
      co_return Json(200, {{"run_id", run}, {"applied", *applied}});
    }
    if (m != "POST") co_return method_not_allowed("GET, POST, PUT, DELETE");
    // The body is the state itself; what the store needs to know of it is in the query.
    if (!IsJson(c.req.content_type))
      co_return Problem(415, "unsupported_media_type",
                        "the body of a save is the state as JSON: Content-Type: application/json");
    SaveRequest s;
    s.run_id = run;
    s.thread_id = query_str("thread_id");
    if (s.thread_id.empty()) co_return Problem(400, "invalid_argument", "a save needs ?thread_id=");
    s.user_id = query_str("user_id");
    s.agent_type = query_str("agent_type");
    s.phase = query_str("phase");
    auto step = query_int("step", 0);
    if (!step || *step < 0)
      co_return Problem(400, "invalid_argument", "step must be a non-negative integer");
    s.step_count = *step;
    if (auto kind = query_str("checkpoint"); !kind.empty()) {
      auto t = ParseCheckpointType(kind);
      if (!t)
        co_return Problem(400, "invalid_argument",
                          "checkpoint must be auto, manual, critical or recovery");
      s.checkpoint_type = *t;
    }
    const std::string recovery = query_str("recovery_point");
    if (!recovery.empty() && recovery != "true" && recovery != "false")
      co_return Problem(400, "invalid_argument", "recovery_point must be true or false");
    s.is_recovery_point = recovery == "true";
    // Optimistic concurrency: If-Match: "N" saves only over version N; If-None-Match: *
    // only when the run does not exist yet.
    if (!c.req.if_match.empty()) {
      const auto version = ParseInt(Unquote(c.req.if_match));  // the store checks its range
      if (!version)
        co_return Problem(400, "invalid_argument",
                          "If-Match must be the version to save over, as an ETag: \"3\"");
      s.expected_version = *version;
    } else if (c.req.if_none_match == "*") {
      s.expected_version = 0;
    } else if (!c.req.if_none_match.empty()) {
      co_return Problem(400, "invalid_argument", "If-None-Match takes only *");
    }
    // Idempotency-Key: K, or as a structured-field string, "K" (the store checks K itself).
    if (c.req.idempotency_key) {
      s.idempotency_key = Unquote(*c.req.idempotency_key);
      if (s.idempotency_key.empty())
        co_return Problem(
            400, "invalid_argument",
            "Idempotency-Key is empty: send 1..255 visible ASCII bytes, or no header");
    }
    s.payload = std::move(c.req.body);
    auto ack = co_await store.Save(std::move(s), deadline);
    if (!ack) co_return FromStatus(ack.error());
    ApiResponse out = Json(200, {{"run_id", run},
                                 {"version", ack->version},
                                 {"checksum", core::ChecksumHex(ack->checksum)},
                                 {"replayed", ack->replayed}});
    out.headers.emplace_back("ETag", ETag(ack->version));
    if (ack->replayed) out.headers.emplace_back("Idempotent-Replayed", "true");
    co_return out;
  }
  if (p.size() == 3 && p[2] == "complete") {
    c.route = "/v1/runs/{run_id}/complete";
    if (m != "POST") co_return method_not_allowed("POST");
    auto r = co_await store.Complete(run, deadline);
    if (!r) co_return FromStatus(r.error());
    co_return Json(200, {{"run_id", run}, {"status", "completed"}});
  }
  if (p.size() == 3 && p[2] == "checkpoints") {
    c.route = "/v1/runs/{run_id}/checkpoints";
    if (m == "GET") {
      auto r = co_await store.ListCheckpoints(run, deadline);
      if (!r) co_return FromStatus(r.error());
      json list = json::array();
      for (const auto& cp : *r) list.push_back(CheckpointJson(cp));
      co_return Json(200, {{"run_id", run}, {"checkpoints", list}});
    }
    if (m != "POST") co_return method_not_allowed("GET, POST");
    auto type = ParseCheckpointType(c.query.count("type") ? query_str("type") : "manual");
    if (!type)
      co_return Problem(400, "invalid_argument", "type must be manual, critical or recovery");
    auto r = co_await store.Checkpoint(run, *type, deadline);
    if (!r) co_return FromStatus(r.error());
    co_return Json(200, CheckpointJson(*r));
  }
  if (p.size() == 3 && p[2] == "restore") {
    c.route = "/v1/runs/{run_id}/restore";
    if (m != "POST") co_return method_not_allowed("POST");
    std::optional<std::string> id;
    if (c.query.count("checkpoint_id")) id = query_str("checkpoint_id");
    auto r = co_await store.Restore(run, std::move(id), deadline);
    if (!r) co_return FromStatus(r.error());
    ApiResponse out;
    out.body = core::RecordJson(*r);
    out.headers.emplace_back("ETag", ETag(r->version));
    co_return out;
  }
  co_return Problem(404, "not_found", "no such route (docs/http-api.md lists them)");
}

Awaitable<ApiResponse> Api::CheckpointRoute(Call& c, StateStore& store, Deadline deadline) {
  const auto& p = c.path;
  const std::string& m = c.req.method;
  const auto query = [&](const std::string& key) -> std::optional<std::string> {
    auto it = c.query.find(key);
    if (it == c.query.end()) return std::nullopt;
    return it->second;
  };
  const auto method_not_allowed = [&](std::string_view allow) {
    return MethodNotAllowed(m, c.route, allow);
  };
  const auto tuple = [](const CheckpointTuple& t) {
    ApiResponse r;
    AppendTupleJson(t, r.body);
    return r;
  };
  const bool thread = p[0] == "threads";
  if (thread && p.size() == 3 && p[2] == "checkpoints") {
    c.route = "/v1/threads/{thread_id}/checkpoints";
  } else if (thread && p.size() == 4 && p[2] == "checkpoints") {
    c.route = "/v1/threads/{thread_id}/checkpoints/{checkpoint_id}";
  } else if (thread && p.size() == 6 && p[2] == "checkpoints" && p[4] == "writes") {
    c.route = "/v1/threads/{thread_id}/checkpoints/{checkpoint_id}/writes/{task_id}";
  } else if (thread && p.size() == 3 && (p[2] == "head" || p[2] == "copy")) {
    c.route = "/v1/threads/{thread_id}/" + p[2];
  } else if (!thread && p.size() == 1) {
    c.route = "/v1/checkpoints";
  } else if (!thread && p.size() == 2 && (p[1] == "prune" || p[1] == "delete-for-runs")) {
    c.route = "/v1/checkpoints/" + p[1];
  } else {
    co_return Problem(404, "not_found", "no such route (docs/http-api.md lists them)");
  }
  CheckpointStore* cp = store.Checkpoints();
  if (!cp)
    co_return Problem(501, "not_implemented",
                      fmt::format("the store {} has no checkpoint model; serve sqlite://, "
                                  "postgres:// or a tiered store with a durable tier",
                                  store.Describe()));
  const std::string ns = query("ns").value_or("");
  const auto not_json = [&] {
    return Problem(415, "unsupported_media_type",
                   "the body is JSON: Content-Type: application/json");
  };

  if (c.route == "/v1/threads/{thread_id}/checkpoints") {
    if (m != "DELETE") co_return method_not_allowed("DELETE");
    auto n = co_await cp->DeleteThread(p[1], deadline);
    if (!n) co_return FromStatus(n.error());
    co_return Json(200, {{"thread_id", p[1]}, {"deleted", *n}});
  }
  if (c.route == "/v1/threads/{thread_id}/checkpoints/{checkpoint_id}") {
    if (m == "GET") {
      auto t = co_await cp->GetCheckpoint(p[1], ns, p[3], deadline);
      if (!t) co_return FromStatus(t.error());
      if (!*t)
        co_return Problem(
            404, "not_found",
            fmt::format("thread {} has no checkpoint {} in namespace '{}'", p[1], p[3], ns));
      co_return tuple(**t);
    }
    if (m != "PUT") co_return method_not_allowed("GET, PUT");
    if (!IsJson(c.req.content_type)) co_return not_json();
    auto put = ParseCheckpointPut(c.req.body);
    if (!put) co_return FromStatus(put.error());
    put->thread_id = p[1];
    put->ns = ns;
    put->checkpoint_id = p[3];
    if (Status s = co_await cp->PutCheckpoint(std::move(*put), deadline); !s.ok())
      co_return FromStatus(s);
    co_return Json(200, {{"thread_id", p[1]}, {"ns", ns}, {"checkpoint_id", p[3]}});
  }
  if (c.route == "/v1/threads/{thread_id}/checkpoints/{checkpoint_id}/writes/{task_id}") {
    if (m != "PUT") co_return method_not_allowed("PUT");
    if (!IsJson(c.req.content_type)) co_return not_json();
    auto body = ParseCheckpointWrites(c.req.body);
    if (!body) co_return FromStatus(body.error());
    const std::size_t n = body->writes.size();
    if (Status s = co_await cp->PutWrites(p[1], ns, p[3], p[5], std::move(body->task_path),
                                          std::move(body->writes), deadline);
        !s.ok())
      co_return FromStatus(s);
    co_return Json(200, {{"thread_id", p[1]}, {"checkpoint_id", p[3]}, {"writes", n}});
  }
  if (c.route == "/v1/threads/{thread_id}/head") {
    if (m != "GET") co_return method_not_allowed("GET");
    auto t = co_await cp->GetCheckpoint(p[1], ns, "", deadline);
    if (!t) co_return FromStatus(t.error());
    if (!*t)
      co_return Problem(404, "not_found",
                        fmt::format("thread {} has no checkpoint in namespace '{}'", p[1], ns));
    co_return tuple(**t);
  }
  if (c.route == "/v1/threads/{thread_id}/copy") {
    if (m != "POST") co_return method_not_allowed("POST");
    auto to = query("to");
    if (!to) co_return Problem(400, "invalid_argument", "a copy needs ?to=<new thread id>");
    auto n = co_await cp->CopyThread(p[1], *to, deadline);
    if (!n) co_return FromStatus(n.error());
    co_return Json(200, {{"from", p[1]}, {"to", *to}, {"copied", *n}});
  }
  if (c.route == "/v1/checkpoints") {
    if (m != "GET") co_return method_not_allowed("GET");
    CheckpointListQuery q;
    q.thread_id = query("thread_id");
    q.ns = query("ns");
    q.checkpoint_id = query("checkpoint_id");
    q.before = query("before");
    auto limit = ParseInt(query("limit").value_or("1000"));
    if (!limit || *limit < 1 || *limit > 10000)
      co_return Problem(400, "invalid_argument", "limit must be an integer in 1..10000");
    q.limit = static_cast<std::size_t>(*limit);
    if (auto f = query("filter")) {
      json filter = json::parse(*f, nullptr, false);
      if (!filter.is_object())
        co_return Problem(400, "invalid_argument",
                          "filter must be a JSON object of metadata keys and values");
      for (const auto& [k, v] : filter.items())
        q.metadata_filter.emplace_back(k, v.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    auto list = co_await cp->ListCheckpoints(std::move(q), deadline);
    if (!list) co_return FromStatus(list.error());
    ApiResponse r;
    r.body = "{\"checkpoints\":[";
    for (std::size_t i = 0; i < list->size(); ++i) {
      if (i) r.body += ',';
      AppendTupleJson((*list)[i], r.body);
    }
    r.body += "]}";
    co_return r;
  }
  if (m != "POST") co_return method_not_allowed("POST");
  const auto purged = [](const PurgeReport& report) {
    return Json(200, {{"checkpoints", report.checkpoints},
                      {"values", report.values},
                      {"writes", report.writes},
                      {"threads", report.threads}});
  };
  if (c.route == "/v1/checkpoints/delete-for-runs") {
    if (!IsJson(c.req.content_type)) co_return not_json();
    auto runs = ParseRunIds(c.req.body);
    if (!runs) co_return FromStatus(runs.error());
    auto report = co_await cp->DeleteForRuns(std::move(*runs), "", deadline);
    if (!report) co_return FromStatus(report.error());
    co_return purged(*report);
  }
  // /v1/checkpoints/prune
  RetentionPolicy policy;
  const std::string strategy = query("strategy").value_or("retain");
  if (strategy != "retain" && strategy != "delete")
    co_return Problem(400, "invalid_argument",
                      "strategy must be retain (keep_last, ttl_ms) or delete");
  policy.delete_all = strategy == "delete";
  auto keep = ParseInt(query("keep_last").value_or("0"));
  auto ttl = ParseInt(query("ttl_ms").value_or("0"));
  if (!keep || *keep < 0 || !ttl || *ttl < 0)
    co_return Problem(400, "invalid_argument",
                      "keep_last and ttl_ms must be non-negative integers (0: no limit)");
  if (!policy.delete_all && *keep == 0 && *ttl == 0)
    co_return Problem(400, "invalid_argument",
                      "a retain prune needs keep_last or ttl_ms; strategy=delete removes all");
  policy.keep_last = static_cast<std::size_t>(*keep);
  policy.thread_ttl = std::chrono::milliseconds(*ttl);
  auto report = co_await cp->Prune(query("thread_id").value_or(""), "", policy, deadline);
  if (!report) co_return FromStatus(report.error());
  co_return purged(*report);
}

std::optional<int> Api::Throttle(const std::string& tenant) {
  const double rate = options_.rate_limit_per_s;
  if (rate <= 0) return std::nullopt;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(buckets_mu_);
  auto [it, fresh] = buckets_.try_emplace(tenant, Bucket{rate, now});
  Bucket& b = it->second;
  if (!fresh) {
    const double elapsed = std::chrono::duration<double>(now - b.at).count();
    b.tokens = std::min(rate, b.tokens + elapsed * rate);
    b.at = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return std::nullopt;
  }
  return std::max(1, static_cast<int>(std::ceil((1 - b.tokens) / rate)));
}

std::string Api::Metrics(const std::map<std::string, double>& extra) const {
  std::string out;
  out += "# TYPE agentstated_requests_total counter\n";
  std::lock_guard lock(mu_);
  for (const auto& [key, n] : counts_) {
    out += fmt::format("agentstated_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first,
                       key.second, n);
  }
  out += "# TYPE agentstated_request_duration_seconds summary\n";
  for (const auto& [route, h] : latency_) {
    for (double q : {0.5, 0.99}) {
      out +=
          fmt::format("agentstated_request_duration_seconds{{route=\"{}\",quantile=\"{}\"}} {}\n",
                      route, q, static_cast<double>(h->Percentile(q)) / 1e6);
    }
    out += fmt::format("agentstated_request_duration_seconds_count{{route=\"{}\"}} {}\n", route,
                       h->Count());
  }
  out += fmt::format(
      "# TYPE agentstated_in_flight_requests gauge\nagentstated_in_flight_requests {}\n",
      in_flight_.load());
  for (const auto& [k, v] : extra) out += fmt::format("# TYPE {0} gauge\n{0} {1}\n", k, v);
  // The store's own counters: admission waits, breaker states, write-behind lag, ...
  const StoreStats s = store_.Stats();
  out += "# TYPE agentstate_store gauge\n";
  for (const auto& [k, v] : s.values)
    out += fmt::format("agentstate_store{{key=\"{}\"}} {}\n", k, v);
  return out;
}

}  // namespace agentstate::server
