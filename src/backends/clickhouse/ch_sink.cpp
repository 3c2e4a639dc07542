#include "backends/clickhouse/ch_sink.hpp"

#include <fmt/format.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cmath>
#include <random>

#include "core/asio.hpp"
#include "core/one_line.hpp"
#include "core/uri.hpp"

namespace agentstate::backends::clickhouse {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

bool IsIdentifier(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
}

// ClickHouse TabSeparated: backslash, tab, newline, carriage return and NUL escaped.
void AppendTsv(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\0': out += "\\0"; break;
      default: out += c;
    }
  }
}

}  // namespace

Result<ChOptions> ParseChUri(std::string_view text) {
  auto uri = core::ParseUri(text);
  if (!uri) return Error(uri.error());
  ChOptions o;
  o.redacted_uri = core::RedactUri(text);
  auto bad = [&](const std::string& why) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("malformed clickhouse URI '{}': {}", o.redacted_uri, why));
  };
  if (uri->scheme != "clickhouse") return bad("the scheme must be clickhouse://");
  if (Status s = core::CheckKnownParams(*uri, {"prefix", "batch", "flush", "buffer", "timeout"});
      !s.ok())
    return Error(s);
  auto authority = core::ParseAuthority(uri->body);
  if (!authority) return bad(authority.error().message());
  o.user = authority->user;
  o.password = authority->password;
  o.host = authority->host;
  if (authority->port) o.port = *authority->port;
  if (!authority->path.empty()) o.database = authority->path;
  if (!IsIdentifier(o.database))
    return bad("the database must be lower-case letters, digits and _");
  if (auto it = uri->params.find("prefix"); it != uri->params.end()) {
    if (!IsIdentifier(it->second)) return bad("prefix must be lower-case letters, digits and _");
    o.prefix = it->second;
  }
  auto batch = core::UintParam(*uri, "batch", o.batch_rows, 1, 1000000);
  if (!batch) return Error(batch.error());
  o.batch_rows = *batch;
  auto buffer = core::UintParam(*uri, "buffer", o.max_buffer, 1, 100000000);
  if (!buffer) return Error(buffer.error());
  o.max_buffer = *buffer;
  for (auto [key, field] :
       {std::pair{"flush", &o.flush_interval}, std::pair{"timeout", &o.timeout}}) {
    auto d = core::DurationParam(*uri, key, *field, true);
    if (!d) return bad(d.error().message());
    *field = *d;
  }
  return o;
}

// One keep-alive HTTP/1.1 connection, used from one thread at a time (the caller holds
// http_mu_). Each request runs its own io_context turn with the stream's deadline.
class AnalyticsSink::Http {
 public:
  explicit Http(const ChOptions& o) : o_(o), stream_(io_) {}

  // POSTs `body` with `query` in the URL; the response body, or why not. A request on a
  // kept-alive connection the server had closed is retried once on a new one.
  // `in_doubt` (optional) counts the tries that failed after the request was sent whole:
  // the server may have run each of them all the same.
  Result<std::string> Post(const std::string& query, const std::string& body,
                           int* in_doubt = nullptr) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = connected_;
      auto r = Once(query, body, in_doubt);
      if (r || !reused) return r;
      if (r.error().code() != StatusCode::kUnavailable) return r;
    }
    return Error(StatusCode::kUnavailable, fmt::format("{}: no answer", o_.redacted_uri));
  }

 private:
  Result<std::string> Once(const std::string& query, const std::string& body, int* in_doubt) {
    beast::error_code ec;
    bool sent = false;
    if (!connected_) {
      tcp::resolver resolver(io_);
      auto endpoints = resolver.resolve(o_.host, std::to_string(o_.port), ec);
      if (ec)
        return Error(StatusCode::kUnavailable,
                     fmt::format("cannot resolve {}: {}", o_.redacted_uri, ec.message()));
      stream_.expires_after(o_.timeout);
      stream_.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
      io_.restart();
      io_.run();
      if (ec)
        return Error(StatusCode::kUnavailable,
                     fmt::format("cannot connect to {}: {}", o_.redacted_uri, ec.message()));
      connected_ = true;
    }
    http::request<http::string_body> req{http::verb::post, "/?query=" + core::PercentEncode(query),
                                         11};
    req.set(http::field::host, o_.host);
    req.set(http::field::content_type, "text/tab-separated-values");
    if (!o_.user.empty()) req.set("X-ClickHouse-User", o_.user);
    if (!o_.password.empty()) req.set("X-ClickHouse-Key", o_.password);
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    http::response<http::string_body> res;
    beast::flat_buffer buffer;
    stream_.expires_after(o_.timeout);
    http::async_write(stream_, req, [&](beast::error_code e, std::size_t) {
      ec = e;
      sent = !e;
      if (!e)
        http::async_read(stream_, buffer, res, [&](beast::error_code e2, std::size_t) { ec = e2; });
    });
    io_.restart();
    io_.run();
    if (ec) {
      if (sent && in_doubt) ++*in_doubt;
      Close();
      return Error(ec == beast::error::timeout ? StatusCode::kTimeout : StatusCode::kUnavailable,
                   fmt::format("{}: {}", o_.redacted_uri, ec.message()));
    }
    if (!res.keep_alive()) Close();
    if (res.result() != http::status::ok) {
      std::string msg = res.body();
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      return Error(StatusCode::kInternal,
                   fmt::format("{} answered {}: {}", o_.redacted_uri, res.result_int(), msg));
    }
    return std::move(res.body());
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().close(ignored);
    connected_ = false;
  }

  const ChOptions& o_;
  asio::io_context io_;
  beast::tcp_stream stream_;
  bool connected_ = false;
};

AnalyticsSink::AnalyticsSink(ChOptions o) : o_(std::move(o)), http_(std::make_unique<Http>(o_)) {
  std::mt19937_64 rng(std::random_device{}());
  session_ = fmt::format("{:016x}", rng());
}

Result<std::unique_ptr<AnalyticsSink>> AnalyticsSink::Open(std::string_view uri) {
  auto o = ParseChUri(uri);
  if (!o) return Error(o.error());
  auto sink = std::make_unique<AnalyticsSink>(std::move(*o));
  const ChOptions& c = sink->o_;
  const std::string events = fmt::format(
      "CREATE TABLE IF NOT EXISTS {}.{}events (at DateTime, at_ms UInt64, session String, op "
      "String, run_id String, "
      "user_id String, bytes UInt64, latency_us UInt64, outcome String) ENGINE = MergeTree() "
      "PARTITION BY toYYYYMMDD(at) ORDER BY (session, op, at_ms)",
      c.database, c.prefix);
  const std::string archive = fmt::format(
      "CREATE TABLE IF NOT EXISTS {}.{}runs_archive (completed_at DateTime, completed_at_ms "
      "UInt64, session String, "
      "run_id String, thread_id String, user_id String, agent_type String, version UInt64, "
      "step_count Int64, "
      "payload_bytes UInt64, checksum UInt64, payload String) ENGINE = MergeTree() "
      "PARTITION BY toYYYYMMDD(completed_at) ORDER BY (run_id, completed_at_ms)",
      c.database, c.prefix);
  for (const std::string* sql : {&events, &archive}) {
    auto r = sink->Query(*sql);
    if (!r) {
      return Error(StatusCode::kUnavailable,
                   fmt::format("cannot use clickhouse at {}: {}; local services start with `bash "
                               "scripts/services.sh up`",
                               c.redacted_uri, r.error().message()));
    }
  }
  sink->thread_ = std::thread([s = sink.get()] { s->Loop(); });
  return sink;
}

AnalyticsSink::~AnalyticsSink() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AnalyticsSink::Record(Event e) {
  std::string row = fmt::format("{}\t{}\t{}\t", e.at_ms / 1000, e.at_ms, session_);
  AppendTsv(row, e.op);
  row += '\t';
  AppendTsv(row, e.run_id);
  row += '\t';
  AppendTsv(row, e.user_id);
  fmt::format_to(std::back_inserter(row), "\t{}\t{}\t", e.bytes, e.latency_us);
  AppendTsv(row, e.outcome);
  row += '\n';
  ++recorded_;
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (events_.size() + archive_.size() >= o_.max_buffer) {
      ++dropped_;  // never blocks the store: counted and reported instead
      ++dropped_events_;
      return;
    }
    events_.push_back(std::move(row));
    wake = events_.size() >= o_.batch_rows;
  }
  if (wake) cv_.notify_all();
}

void AnalyticsSink::Archive(const StateRecord& r, int64_t completed_at_ms) {
  std::string row = fmt::format("{}\t{}\t{}\t", completed_at_ms / 1000, completed_at_ms, session_);
  for (const std::string* f : {&r.run_id, &r.thread_id, &r.user_id, &r.agent_type}) {
    AppendTsv(row, *f);
    row += '\t';
  }
  fmt::format_to(std::back_inserter(row), "{}\t{}\t{}\t{}\t", r.version, r.step_count,
                 r.payload.size(), r.checksum);
  AppendTsv(row, r.payload);
  row += '\n';
  ++archived_;
  std::lock_guard lock(mu_);
  if (events_.size() + archive_.size() >= o_.max_buffer) {
    ++dropped_;
    return;
  }
  archive_.push_back(std::move(row));
}

Result<std::string> AnalyticsSink::Query(const std::string& sql) {
  std::lock_guard lock(http_mu_);
  return http_->Post(sql, "");
}

// One batch per table. A batch that fails goes back to the front of the buffer for the
// next try, unless it was the last of its retries: then its rows are dropped and counted.
bool AnalyticsSink::SendBatch() {
  bool ok = true;
  for (auto [rows, table] : {std::pair{&events_, "events"}, std::pair{&archive_, "runs_archive"}}) {
    std::deque<std::string> batch;
    {
      std::lock_guard lock(mu_);
      const std::size_t n = std::min(rows->size(), o_.batch_rows * 10);
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(rows->front()));
        rows->pop_front();
      }
      sending_ += batch.size();
    }
    if (batch.empty()) continue;
    std::string body;
    for (const auto& r : batch) body += r;
    const std::string insert =
        fmt::format("INSERT INTO {}.{}{} FORMAT TabSeparated", o_.database, o_.prefix, table);
    Result<std::string> r = Error(StatusCode::kUnavailable, "not tried");
    int in_doubt = 0;  // tries that failed after sending the whole INSERT
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (attempt > 0) {
        ++retries_;
        std::this_thread::sleep_for(
            std::chrono::milliseconds(100 * attempt * attempt));  // backoff between retries
      }
      {
        std::lock_guard lock(http_mu_);
        r = http_->Post(insert, body, &in_doubt);
      }
      if (r) break;
    }
    ++batches_;
    const bool events = table == std::string_view("events");
    sending_ -= batch.size();
    // Each such try may have landed: its rows may be on the server once more than counted
    // (twice after a retry, or once though dropped). The harness's count check allows it.
    if (events) in_doubt_events_ += static_cast<uint64_t>(in_doubt) * batch.size();
    failing_ = !r;
    if (r) {
      if (events) sent_ += batch.size();
      continue;
    }
    ++failed_batches_;
    dropped_ += batch.size();
    if (events) dropped_events_ += batch.size();
    ok = false;
  }
  return ok;
}

void AnalyticsSink::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait_for(lock, o_.flush_interval,
                 [this] { return stop_ || events_.size() >= o_.batch_rows; });
    const bool last = stop_;
    lock.unlock();
    SendBatch();
    // Stopping: one more pass for what arrived meanwhile, then go (a dead server cannot hold us).
    if (last) {
      SendBatch();
      return;
    }
    lock.lock();
  }
}

Status AnalyticsSink::Flush() {
  // Bounded: what is buffered goes out here; what the sink's thread is sending, it finishes.
  const auto until = std::chrono::steady_clock::now() + 3 * o_.timeout;
  while (std::chrono::steady_clock::now() < until) {
    bool empty = false;
    {
      std::lock_guard lock(mu_);
      empty = events_.empty() && archive_.empty();
    }
    if (empty && sending_ == 0) return Status();
    if (!empty && !SendBatch()) {
      return Status(StatusCode::kUnavailable,
                    fmt::format("{}: a batch was dropped", o_.redacted_uri));
    }
    if (empty)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the sink's own INSERT in flight
  }
  return Status(StatusCode::kUnavailable,
                fmt::format("{}: the buffer did not drain in time", o_.redacted_uri));
}

Result<std::map<std::string, double>> ParseOpRows(std::string_view text, bool whole) {
  std::map<std::string, double> out;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    const auto tab = line.find('\t');
    if (tab == std::string_view::npos) continue;
    const std::string_view value = line.substr(tab + 1);
    double v = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    // 2^63: a count ClickHouse gives fits an int64, and a cast beyond it would be undefined.
    const bool ok = ec == std::errc() && end == value.data() + value.size() && std::isfinite(v) &&
                    (!whole || (v >= 0 && v < 9223372036854775808.0 && v == std::floor(v)));
    if (!ok)
      return Error(StatusCode::kInternal,
                   fmt::format("clickhouse: unreadable row '{}'", core::OneLine(line)));
    out[std::string(line.substr(0, tab))] = v;
  }
  return out;
}

Result<std::map<std::string, uint64_t>> AnalyticsSink::EventsByOp() {
  auto text =
      Query(fmt::format("SELECT op, count() FROM {}.{}events WHERE session = '{}' GROUP BY op",
                        o_.database, o_.prefix, session_));
  if (!text) return Error(text.error());
  auto rows = ParseOpRows(*text, true);
  if (!rows) return Error(rows.error());
  std::map<std::string, uint64_t> out;
  for (const auto& [op, n] : *rows) out[op] = static_cast<uint64_t>(n);
  return out;
}

Result<std::map<std::string, double>> AnalyticsSink::OpsPerMinuteByOp() {
  auto text =
      Query(fmt::format("SELECT op, count() * 60000 / greatest(1, max(at_ms) - min(at_ms)) FROM "
                        "{}.{}events WHERE session = '{}' GROUP BY op",
                        o_.database, o_.prefix, session_));
  if (!text) return Error(text.error());
  return ParseOpRows(*text, false);
}

Result<std::map<std::string, double>> AnalyticsSink::P99MsByOp() {
  auto text = Query(fmt::format(
      "SELECT op, quantile(0.99)(latency_us) / 1000 FROM {}.{}events WHERE session = '{}' "
      "GROUP BY op",
      o_.database, o_.prefix, session_));
  if (!text) return Error(text.error());
  return ParseOpRows(*text, false);
}

Result<uint64_t> AnalyticsSink::ArchivedRuns() {
  auto r = Query(fmt::format("SELECT count() FROM {}.{}runs_archive WHERE session = '{}'",
                             o_.database, o_.prefix, session_));
  if (!r) return Error(r.error());
  try {
    return static_cast<uint64_t>(std::stoull(*r));
  } catch (const std::exception&) {
    return Error(StatusCode::kInternal, fmt::format("clickhouse: unreadable count '{}'", *r));
  }
}

AnalyticsSink::Stats AnalyticsSink::stats() const {
  Stats s;
  s.recorded = recorded_.load();
  s.sent = sent_.load();
  s.dropped = dropped_.load();
  s.dropped_events = dropped_events_.load();
  s.in_doubt_events = in_doubt_events_.load();
  s.batches = batches_.load();
  s.retries = retries_.load();
  s.failing = failing_.load();
  s.failed_batches = failed_batches_.load();
  s.archived = archived_.load();
  std::lock_guard lock(mu_);
  s.buffered = events_.size() + archive_.size();
  return s;
}

}  // namespace agentstate::backends::clickhouse
