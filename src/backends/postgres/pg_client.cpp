#include "backends/postgres/pg_client.hpp"
#include "core/asio.hpp"

#include <endian.h>
#include <fmt/format.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstring>
#include <functional>

namespace agentstate::backends::postgres {

Result<PgOptions> ParsePgUri(const core::ParsedUri& uri) {
  PgOptions o;
  o.redacted_uri = core::RedactUri(uri);
  auto bad = [&](const std::string& why) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("malformed postgresql URI '{}': {}", o.redacted_uri, why));
  };
  if (uri.scheme != "postgresql" && uri.scheme != "postgres")
    return bad("the scheme must be postgresql://");
  if (uri.body.empty()) return bad("no host");
  std::string passthrough;
  for (const auto& [k, v] : uri.params) {
    if (k == "connections" || k == "max_in_flight" || k == "pool_wait" || k == "timeout" ||
        k == "connect_timeout" || k == "schema" || k == "keep_checkpoints" || k == "pool_mode") {
      continue;
    }
    passthrough += (passthrough.empty() ? "?" : "&") + k + "=" + v;
  }
  auto n = core::UintParam(uri, "connections", static_cast<uint64_t>(o.connections), 1, 64);
  if (!n) return Error(n.error());
  o.connections = static_cast<int>(*n);
  auto keep = core::UintParam(uri, "keep_checkpoints", 0, 0, 1000000);
  if (!keep) return Error(keep.error());
  o.keep_checkpoints = *keep;
  auto limit = core::UintParam(uri, "max_in_flight", o.max_in_flight, 1, 1000000);
  if (!limit) return Error(limit.error());
  o.max_in_flight = static_cast<std::size_t>(*limit);
  for (auto [key, field, positive] : {std::tuple{"pool_wait", &o.pool_wait, false},
                                      std::tuple{"timeout", &o.command_timeout, true},
                                      std::tuple{"connect_timeout", &o.connect_timeout, true}}) {
    auto d = core::DurationParam(uri, key, *field, positive);
    if (!d) return bad(d.error().message());
    *field = *d;
  }
  if (auto it = uri.params.find("schema"); it != uri.params.end()) {
    const std::string& s = it->second;
    const bool ok =
        !s.empty() && s.size() <= 63 &&
        (std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_') &&
        s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
    if (!ok)
      return bad("schema must be 1..63 lower-case letters, digits or _, starting with a letter");
    o.schema = s;
  }
  if (auto it = uri.params.find("pool_mode"); it != uri.params.end()) {
    if (it->second != "session" && it->second != "transaction")
      return bad("pool_mode must be session (the default) or transaction (behind pgbouncer)");
    o.transaction_pooled = it->second == "transaction";
  }
  // libpq parses the URI itself; the scheme must be one it knows.
  o.conninfo = "postgresql://" + uri.body + passthrough;
  return o;
}

Param Text(std::string_view v) { return {kTextOid, std::string(v), false}; }
Param Bytea(std::string_view v) { return {kByteaOid, std::string(v), false}; }
Param Int8(int64_t v) {
  const uint64_t be = htobe64(static_cast<uint64_t>(v));
  return {kInt8Oid, std::string(reinterpret_cast<const char*>(&be), 8), false};
}
Param Bool(bool v) { return {kBoolOid, std::string(1, v ? '\1' : '\0'), false}; }
Param NullInt8() { return {kInt8Oid, {}, true}; }

namespace {
void PutBe32(std::string& out, uint32_t v) {
  const uint32_t be = htobe32(v);
  out.append(reinterpret_cast<const char*>(&be), 4);
}
Oid ArrayTypeOf(Oid element) {
  switch (element) {
    case kTextOid: return 1009;
    case kInt8Oid: return 1016;
    case kBoolOid: return 1000;
    case kByteaOid: return 1001;
  }
  return 0;
}
}  // namespace

// PostgreSQL's binary array form (array_recv): dimensions, null flag, element type, then
// each dimension's size and lower bound, then each element as length + bytes.
Param ArrayOf(const std::vector<Param>& elements, Oid element_type) {
  std::string out;
  std::size_t total = 20;
  for (const auto& e : elements) total += 4 + e.bytes.size();
  out.reserve(total);
  if (elements.empty()) {  // PostgreSQL's empty array has no dimensions
    PutBe32(out, 0);
    PutBe32(out, 0);
    PutBe32(out, element_type);
    return {ArrayTypeOf(element_type), std::move(out), false};
  }
  PutBe32(out, 1);  // one dimension
  PutBe32(out, 0);  // no nulls
  PutBe32(out, element_type);
  PutBe32(out, static_cast<uint32_t>(elements.size()));
  PutBe32(out, 1);  // lower bound
  for (const auto& e : elements) {
    PutBe32(out, static_cast<uint32_t>(e.bytes.size()));
    out += e.bytes;
  }
  return {ArrayTypeOf(element_type), std::move(out), false};
}

int64_t GetInt8(const PGresult* r, int row, int col) {
  uint64_t be = 0;
  if (PQgetlength(r, row, col) == 8) std::memcpy(&be, PQgetvalue(r, row, col), 8);
  return static_cast<int64_t>(be64toh(be));
}
// The Status an error result stands for: our functions' SQLSTATEs, then the server's.
Status StatusOf(const PGresult* r, std::string_view what) {
  const std::string_view state = SqlState(r);
  const std::string msg = OneLine(ErrorMessage(r));
  if (state == "AS409" || state == "AS410") return Status(StatusCode::kConflict, msg);
  if (state == "AS404") return Status(StatusCode::kNotFound, msg);
  if (state == "57014")
    return Status(StatusCode::kTimeout, fmt::format("postgresql {}: {}", what, msg));
  // Connection trouble, shutdown, too many clients, serialization: try again later.
  if (state.starts_with("08") || state.starts_with("57P") || state == "53300" || state == "40001" ||
      state == "40P01") {
    return Status(StatusCode::kUnavailable,
                  fmt::format("postgresql {}: {} ({})", what, msg, state));
  }
  return Status(StatusCode::kInternal, fmt::format("postgresql {}: {} ({})", what, msg, state));
}

bool GetBool(const PGresult* r, int row, int col) {
  return PQgetlength(r, row, col) == 1 && PQgetvalue(r, row, col)[0] != 0;
}
std::string_view GetBytes(const PGresult* r, int row, int col) {
  return {PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col))};
}

std::string_view SqlState(const PGresult* r) {
  const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return s ? s : "";
}
std::string_view ErrorMessage(const PGresult* r) {
  const char* s = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  return s ? s : PQresultErrorMessage(r);
}

namespace {

using PgPending = core::Pending<PgRequest, std::vector<PgResult>>;

// A session's warm-up batch: its results are dropped and its end, whatever it was, is
// counted (PgClient::AwaitWarm). It takes no admission slot and has no deadline of its
// own: the queries queued behind it keep theirs.
struct WarmupPending final : PgPending {
  WarmupPending(std::vector<Statement> s, std::function<void(bool ok)> done)
      : PgPending(PgRequest{std::move(s), {}, false}, Deadline::max()), on_warm(std::move(done)) {}
  void Deliver(Result<std::vector<PgResult>> r) override {
    bool ok = r.has_value();
    for (std::size_t i = 0; ok && i < r->size(); ++i) {
      const auto st = PQresultStatus((*r)[i].get());
      ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
    }
    on_warm(ok);
  }
  std::function<void(bool ok)> on_warm;
};

}  // namespace

// One libpq connection in pipeline mode on the pipelined-connection core. Everything here
// runs on the client's one thread.
class PgConnection final : public core::Connection<PgRequest, std::vector<PgResult>> {
 public:
  PgConnection(asio::io_context& io, const PgOptions& o, const PgClient::Warmup& warmup,
               std::function<void(bool ok)> on_warm)
      : Connection(io, {.endpoint = o.redacted_uri,
                        .request = "postgresql query",
                        .answer = "result",
                        .dead_after_timeouts = 0}),
        o_(o),
        warmup_(warmup),
        on_warm_(std::move(on_warm)),
        socket_(io) {}
  ~PgConnection() override { Closed(); }

 private:
  void Interrupt() override {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }

  void Opened() override {
    if (warmup_) queued_.push_front(std::make_shared<WarmupPending>(warmup_(), on_warm_));
  }

  // The descriptor is libpq's: release it from Asio, then let PQfinish close it.
  void Closed() override {
    if (socket_.is_open()) socket_.release();
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
  }

  Status Failed(std::string_view what) const {
    const std::string msg = OneLine(conn_ ? PQerrorMessage(conn_) : "out of memory");
    return Status(StatusCode::kUnavailable, fmt::format("{}: {}: {}", o_.redacted_uri, what, msg));
  }

  // Wraps libpq's current descriptor (it may change while connecting).
  void Adopt() {
    const int fd = PQsocket(conn_);
    if (socket_.is_open() && socket_.native_handle() == fd) return;
    if (socket_.is_open()) socket_.release();
    if (fd >= 0) socket_.assign(fd);
  }

  Awaitable<Status> Connect() override {
    const std::string timeout_s = std::to_string(
        std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(o_.connect_timeout).count()));
    // Every session: our schema first on the search path, and a server-side bound on any
    // one statement so that a discarded query cannot run on for ever.
    const std::string options = fmt::format(
        "-c search_path={},public -c statement_timeout=30000 "
        "-c agentstate.keep_checkpoints={}",
        o_.schema, o_.keep_checkpoints);
    const char* keys[] = {"dbname", "connect_timeout", "application_name", "options", nullptr};
    const char* values[] = {o_.conninfo.c_str(), timeout_s.c_str(), "agentstate", options.c_str(),
                            nullptr};
    // Behind a pooler the session is not ours: the same settings go ahead of each batch.
    if (o_.transaction_pooled) keys[3] = nullptr;
    conn_ = PQconnectStartParams(keys, values, /*expand_dbname=*/1);
    if (!conn_ || PQstatus(conn_) == CONNECTION_BAD) co_return Failed("cannot connect");
    // The server's notices ("terminating connection due to immediate shutdown", ...) would
    // go to stderr by default, in the middle of a harness's report. What they announce
    // reaches the caller as the failed query's error.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    asio::steady_timer watchdog(io_, o_.connect_timeout);
    bool timed_out = false;
    watchdog.async_wait([&](boost::system::error_code e) {
      if (e) return;
      timed_out = true;
      boost::system::error_code ignored;
      socket_.cancel(ignored);
    });
    PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
    while (poll != PGRES_POLLING_OK) {
      if (poll == PGRES_POLLING_FAILED) {
        watchdog.cancel();
        co_return Failed("cannot connect");
      }
      Adopt();
      boost::system::error_code ec;
      co_await socket_.async_wait(poll == PGRES_POLLING_READING
                                      ? asio::posix::stream_descriptor::wait_read
                                      : asio::posix::stream_descriptor::wait_write,
                                  asio::redirect_error(asio::use_awaitable, ec));
      if (timed_out || stopped()) {
        co_return Status(StatusCode::kUnavailable,
                         fmt::format("cannot connect to {}: no answer within {} ms",
                                     o_.redacted_uri, o_.connect_timeout.count()));
      }
      poll = PQconnectPoll(conn_);
    }
    watchdog.cancel();
    Adopt();
    if (PQsetnonblocking(conn_, 1) != 0 || PQenterPipelineMode(conn_) != 1)
      co_return Failed("pipeline mode");
    co_return Status();
  }

  Awaitable<Status> Writer() override {
    while (!ending()) {
      // Everything queued is handed to libpq, one statement and one sync each, then flushed.
      uint64_t taken = 0;
      while (auto* p = TakeQueued()) {
        ++taken;
        bool sent = true;
        if (o_.transaction_pooled) {
          const char* settings[] = {search_path_.c_str(), keep_.c_str()};
          sent = PQsendQueryParams(conn_, kTransactionSettings, 2, nullptr, settings, nullptr,
                                   nullptr, /*resultFormat=*/1) == 1;
          p->request.prelude = true;
        }
        for (const auto& st : p->request.stmts) {
          std::vector<Oid> types;
          std::vector<const char*> values;
          std::vector<int> lengths, formats;
          for (const auto& param : st.params) {
            types.push_back(param.type);
            values.push_back(param.null ? nullptr : param.bytes.data());
            lengths.push_back(static_cast<int>(param.bytes.size()));
            formats.push_back(1);
          }
          sent =
              sent && PQsendQueryParams(conn_, st.sql.c_str(), static_cast<int>(st.params.size()),
                                        types.data(), values.data(), lengths.data(), formats.data(),
                                        /*resultFormat=*/1) == 1;
        }
        // One sync for all of them: one implicit transaction.
        if (!sent || PQpipelineSync(conn_) != 1) co_return Failed("sending a query");
      }
      if (taken == 0) {
        co_await WaitForWork();
        continue;
      }
      while (true) {
        const int r = PQflush(conn_);
        if (r < 0) co_return Failed("sending");
        if (Status s = Drain(); !s.ok()) co_return s;
        if (r == 0) {
          Sent(taken);
          break;
        }
        boost::system::error_code ec;
        co_await socket_.async_wait(asio::posix::stream_descriptor::wait_write,
                                    asio::redirect_error(asio::use_awaitable, ec));
        if (ec || ending())
          co_return Status(StatusCode::kUnavailable,
                           fmt::format("{}: connection lost", o_.redacted_uri));
      }
    }
    co_return Status(StatusCode::kUnavailable,
                     fmt::format("{}: connection closed", o_.redacted_uri));
  }

  Awaitable<Status> Reader() override {
    while (!ending()) {
      boost::system::error_code ec;
      co_await socket_.async_wait(asio::posix::stream_descriptor::wait_read,
                                  asio::redirect_error(asio::use_awaitable, ec));
      if (ec || ending())
        co_return Status(StatusCode::kUnavailable,
                         fmt::format("{}: connection lost", o_.redacted_uri));
      if (PQconsumeInput(conn_) != 1) co_return Failed("connection lost");
      if (Status s = Drain(); !s.ok()) co_return s;
    }
    co_return Status(StatusCode::kUnavailable,
                     fmt::format("{}: connection closed", o_.redacted_uri));
  }

  // Hands out every complete result libpq holds. Called after reading, and after flushing
  // too: a flush that would block reads what the server sent meanwhile into libpq's buffer,
  // where no readable socket would announce it.
  Status Drain() {
    // Results in order: the statement's result(s), a null, then PGRES_PIPELINE_SYNC.
    int nulls = 0;
    while (Front() && PQisBusy(conn_) == 0) {
      PGresult* raw = PQgetResult(conn_);
      PgRequest& front = Front()->request;
      if (!raw) {
        front.have_result = false;  // the next result is the next statement's
        if (++nulls > 1) break;     // nothing more until more bytes arrive
        continue;
      }
      nulls = 0;
      PgResult res(raw);
      if (PQresultStatus(raw) == PGRES_PIPELINE_SYNC) {
        if (!front.prelude_error.empty()) {
          Answered(Error(StatusCode::kUnavailable,
                         fmt::format("{}: setting the transaction's search path and timeouts: {}",
                                     o_.redacted_uri, front.prelude_error)));
        } else if (front.results.size() != front.stmts.size()) {
          Answered(Error(StatusCode::kInternal,
                         fmt::format("{}: {} results for {} statements", o_.redacted_uri,
                                     front.results.size(), front.stmts.size())));
        } else {
          Answered(std::move(front.results));
        }
        continue;
      }
      if (!front.have_result) {
        if (front.prelude) {
          front.prelude = false;
          if (PQresultStatus(raw) != PGRES_TUPLES_OK) front.prelude_error = ErrorMessage(raw);
        } else {
          front.results.push_back(std::move(res));
        }
        front.have_result = true;
      }
    }
    if (PQstatus(conn_) == CONNECTION_BAD) return Failed("connection lost");
    return Status();
  }

  // What a session's startup options set, for one transaction (pool_mode=transaction).
  static constexpr const char* kTransactionSettings =
      "SELECT set_config('search_path', $1, true), set_config('statement_timeout', '30000', true), "
      "set_config('agentstate.keep_checkpoints', $2, true)";

  const PgOptions& o_;
  const std::string search_path_ = o_.schema + ",public";
  const std::string keep_ = std::to_string(o_.keep_checkpoints);
  const PgClient::Warmup& warmup_;
  std::function<void(bool ok)> on_warm_;
  PGconn* conn_ = nullptr;
  asio::posix::stream_descriptor socket_;
};

PgClient::PgClient(PgOptions options, Warmup warmup)
    : options_(std::move(options)),
      warmup_(std::move(warmup)),
      pipeline_(options_.redacted_uri, "queries", options_.max_in_flight, options_.pool_wait,
                options_.command_timeout) {
  auto warmed = [this](bool ok) {
    std::lock_guard lock(warm_mu_);
    ++warmed_;
    warm_failures_ += ok ? 0 : 1;
    warm_cv_.notify_all();
  };
  std::vector<std::shared_ptr<Pipeline::ConnectionType>> connections;
  for (int i = 0; i < options_.connections; ++i)
    connections.push_back(
        std::make_shared<PgConnection>(pipeline_.io(), options_, warmup_, warmed));
  pipeline_.Start(std::move(connections));
}

PgClient::~PgClient() = default;

bool PgClient::AwaitWarm(std::chrono::milliseconds timeout) {
  if (!warmup_) return true;
  std::unique_lock lock(warm_mu_);
  return warm_cv_.wait_for(
      lock, timeout, [this] { return warmed_ >= static_cast<uint64_t>(options_.connections); });
}

PgClient::Stats PgClient::stats() const {
  Stats s;
  static_cast<Pipeline::Stats&>(s) = pipeline_.stats();
  std::lock_guard lock(warm_mu_);
  s.warmups = warmed_;
  s.warmup_failures = warm_failures_;
  return s;
}

Awaitable<Result<std::vector<PgResult>>> PgClient::Batch(std::vector<Statement> statements,
                                                         Deadline deadline) {
  return pipeline_.Submit(PgRequest{std::move(statements), {}, false}, deadline);
}

Awaitable<Result<PgResult>> PgClient::Query(std::string sql, std::vector<Param> params,
                                            Deadline deadline) {
  std::vector<Statement> one;
  one.push_back(Statement{std::move(sql), std::move(params)});
  auto r = co_await Batch(std::move(one), deadline);
  if (!r) co_return Error(r.error());
  co_return std::move(r->front());
}

Awaitable<Result<PgResult>> PgClient::Run(std::string sql, std::vector<Param> params,
                                          Deadline deadline, std::string_view what) {
  auto r = co_await Query(std::move(sql), std::move(params), deadline);
  if (!r) co_return Error(r.error());
  const auto st = PQresultStatus(r->get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) co_return Error(StatusOf(r->get(), what));
  co_return std::move(*r);
}

}  // namespace agentstate::backends::postgres
