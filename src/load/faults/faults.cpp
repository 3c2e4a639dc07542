#include "load/faults/faults.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <functional>
#include <mutex>
#include <thread>

#include "core/one_line.hpp"
#include "core/uri.hpp"
#include "load/faults/cluster_faults.hpp"
#include "load/faults/fault_proxy.hpp"
#include "load/faults/server_process.hpp"
#include "load/faults/services.hpp"

namespace agentstate::load {
namespace {

// A lock on the path to a store that another client takes and gives back: what blocks the
// store's writes while held.
class Lock {
 public:
  virtual ~Lock() = default;
  virtual Status Take() = 0;
  virtual void Release() = 0;
};

// Another SQLite connection's write transaction (BEGIN IMMEDIATE).
class SqliteLock final : public Lock {
 public:
  explicit SqliteLock(sqlite3* db) : db_(db) {}
  ~SqliteLock() override { sqlite3_close(db_); }
  Status Take() override {
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK)
      return Status();
    return Status(StatusCode::kUnavailable,
                  fmt::format("cannot take the write lock: {}", sqlite3_errmsg(db_)));
  }
  void Release() override { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

 private:
  sqlite3* db_;
};

// CLIENT PAUSE WRITE on the server: every client's writes wait, reads carry on. The pause
// is given a lifetime of its own too, so a harness that dies cannot leave it in force.
class RedisPauseLock final : public Lock {
 public:
  RedisPauseLock(redisContext* c, std::chrono::milliseconds on) : c_(c), on_(on) {}
  ~RedisPauseLock() override { redisFree(c_); }
  Status Take() override {
    if (Ok({"CLIENT", "PAUSE", std::to_string(on_.count() + 1000), "WRITE"})) return Status();
    return Status(StatusCode::kUnavailable, "CLIENT PAUSE refused");
  }
  void Release() override { Ok({"CLIENT", "UNPAUSE"}); }
  bool Ok(std::vector<std::string> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c_, static_cast<int>(args.size()), argv.data(), lens.data()));
    const bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    return ok;
  }

 private:
  redisContext* c_;
  std::chrono::milliseconds on_;
};

// Where a server is, from its URI: what a fault needs to reach it on its own connection.
struct Endpoint {
  std::string host;
  int port = 0;
  std::string user, password, database;
  std::string schema;  // postgresql: the store's schema (its `schema` parameter)
  std::string redacted;
};

Result<Endpoint> EndpointOf(const core::ParsedUri& uri, int default_port) {
  auto a = core::ParseAuthority(uri.body);
  if (!a) return Error(a.error());
  Endpoint e{a->host,
             a->port.value_or(default_port),
             a->user,
             a->password,
             a->path,
             "public",
             core::RedactUri(uri)};
  // redis://PASSWORD@host and redis://:PASSWORD@host both name the password.
  if (uri.scheme == "redis" && e.password.empty()) std::swap(e.user, e.password);
  if (auto it = uri.params.find("schema"); it != uri.params.end()) e.schema = it->second;
  return e;
}

// Another PostgreSQL session's LOCK TABLE runs IN EXCLUSIVE MODE: writes wait, reads carry on.
// `runs` is the store's table of latest states, documented with its schema in docs/uris.md;
// every save writes it.
class PgTableLock final : public Lock {
 public:
  explicit PgTableLock(PGconn* c) : c_(c) {}
  ~PgTableLock() override { PQfinish(c_); }
  Status Take() override {
    PGresult* r = PQexec(c_, "BEGIN; LOCK TABLE runs IN EXCLUSIVE MODE");
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    const std::string why = core::OneLine(PQresultErrorMessage(r));
    PQclear(r);
    if (ok) return Status();
    PQclear(PQexec(c_, "ROLLBACK"));
    return Status(StatusCode::kUnavailable, fmt::format("cannot lock the runs table: {}", why));
  }
  void Release() override { PQclear(PQexec(c_, "COMMIT")); }

 private:
  PGconn* c_;
};

// Holds the lock for `on`, releases it for `off`, repeats, from a thread of its own. Holding
// and releasing on a schedule is the fault itself, not measured work.
class OnOffFault final : public Fault {
 public:
  using Opener = std::function<Result<std::unique_ptr<Lock>>()>;
  OnOffFault(std::string what, Opener open, std::chrono::milliseconds on,
             std::chrono::milliseconds off)
      : what_(std::move(what)), open_(std::move(open)), on_(on), off_(off) {}
  ~OnOffFault() override { (void)End(); }

  std::string Describe() const override {
    return fmt::format("{}, {} ms on / {} ms off", what_, on_.count(), off_.count());
  }

  Status Begin() override {
    if (thread_.joinable()) return Status();
    auto lock = open_();
    if (!lock) return lock.error();
    // Taken before returning, so the phase starts with the fault in force.
    if (Status s = (*lock)->Take(); !s.ok()) return s;
    {
      std::lock_guard guard(mu_);
      stop_ = false;
    }
    thread_ = std::thread([this, l = std::move(*lock)]() mutable { Loop(std::move(l)); });
    return Status();
  }

  Status End() override {
    {
      std::lock_guard guard(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return Status();
  }

 private:
  void Loop(std::unique_ptr<Lock> lock) {
    std::unique_lock guard(mu_);
    bool held = true;
    while (!stop_) {
      if (!held) {
        guard.unlock();
        held = lock->Take().ok();
        guard.lock();
      }
      cv_.wait_for(guard, on_, [this] { return stop_; });
      if (held) lock->Release();
      held = false;
      if (stop_) break;
      cv_.wait_for(guard, off_, [this] { return stop_; });
    }
  }

  std::string what_;
  Opener open_;
  std::chrono::milliseconds on_, off_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

Result<std::unique_ptr<Lock>> OpenSqliteLock(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Error(StatusCode::kUnavailable, fmt::format("cannot open {} to lock it: {}", path, msg));
  }
  sqlite3_busy_timeout(db,
                       2000);  // our own store's writer holds the lock for milliseconds at a time
  return std::unique_ptr<Lock>(std::make_unique<SqliteLock>(db));
}

Result<std::unique_ptr<Lock>> OpenRedisLock(const Endpoint& o, std::chrono::milliseconds on) {
  const timeval tv{1, 0};
  redisContext* c = redisConnectWithTimeout(o.host.c_str(), o.port, tv);
  if (!c || c->err) {
    std::string why = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return Error(StatusCode::kUnavailable,
                 fmt::format("cannot reach {} to pause it: {}", o.redacted, why));
  }
  redisSetTimeout(c, tv);
  auto lock = std::make_unique<RedisPauseLock>(c, on);
  if (!o.password.empty() && !lock->Ok({"AUTH", o.password})) {
    return Error(StatusCode::kUnavailable, fmt::format("{} refused AUTH", o.redacted));
  }
  return std::unique_ptr<Lock>(std::move(lock));
}

Result<std::unique_ptr<Lock>> OpenPgLock(const Endpoint& o) {
  const std::string options =
      fmt::format("-c search_path={},public -c lock_timeout=2000", o.schema);
  const std::string port = std::to_string(o.port);
  const char* keys[] = {"host",
                        "port",
                        "user",
                        "password",
                        "dbname",
                        "options",
                        "application_name",
                        "connect_timeout",
                        nullptr};
  const char* values[] = {o.host.c_str(),
                          port.c_str(),
                          o.user.c_str(),
                          o.password.c_str(),
                          o.database.c_str(),
                          options.c_str(),
                          "agentstate-fault",
                          "2",
                          nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 1);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    std::string why = core::OneLine(c ? PQerrorMessage(c) : "out of memory");
    PQfinish(c);
    return Error(StatusCode::kUnavailable,
                 fmt::format("cannot reach {} to lock it: {}", o.redacted, why));
  }
  return std::unique_ptr<Lock>(std::make_unique<PgTableLock>(c));
}

// Whether the service at host:port serves: Redis answers PING with PONG (not LOADING while
// it reads its AOF back); the others accept a TCP connection (PostgreSQL's pg_ctl -w has
// waited for it to accept queries already; ClickHouse listens once its tables are loaded).
bool Serving(const std::string& service, const std::string& host, int port) {
  const timeval tv{0, 500000};
  if (service == "redis") {
    redisContext* c = redisConnectWithTimeout(host.c_str(), port, tv);
    bool ok = false;
    if (c && !c->err) {
      redisSetTimeout(c, tv);
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      ok = r && r->type == REDIS_REPLY_STATUS && std::string_view(r->str, r->len) == "PONG";
      if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return ok;
  }
  // hiredis's connect is a plain TCP connect with a timeout: enough for "listening".
  redisContext* c = redisConnectWithTimeout(host.c_str(), port, tv);
  const bool ok = c && !c->err;
  if (c) redisFree(c);
  return ok;
}

// A local service killed as a crash would, then restarted with its recorded command; healed
// once it serves again at `authority` (host:port), so that what follows is the store's own
// recovery, not the server's start-up.
class ProcessFault final : public Fault {
 public:
  ProcessFault(std::filesystem::path dir, std::string service, std::string authority,
               std::string what)
      : control_(std::move(dir)),
        service_(std::move(service)),
        authority_(std::move(authority)),
        what_(std::move(what)) {}
  std::string Describe() const override { return what_; }
  Status Begin() override {
    auto r = control_.Kill(service_, std::chrono::seconds(30));
    return r ? Status() : r.error();
  }
  Status End() override {
    if (!control_.Find(service_)) {
      auto r = control_.Restart(service_, std::chrono::seconds(60));
      if (!r) return r.error();
    }
    const auto colon = authority_.rfind(':');
    const std::string host = authority_.substr(0, colon);
    const int port = std::atoi(authority_.c_str() + colon + 1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!Serving(service_, host, port)) {
      if (std::chrono::steady_clock::now() >= until) {
        return Status(
            StatusCode::kUnavailable,
            fmt::format("{} restarted but does not serve at {} after 60 s", service_, authority_));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a starting server
    }
    return Status();
  }

 private:
  ServiceControl control_;
  std::string service_, authority_, what_;
};

// Every connection through the proxy reset, and every new one reset on arrival, while on.
class ResetStorm final : public Fault {
 public:
  ResetStorm(FaultProxy& proxy, std::string what) : proxy_(proxy), what_(std::move(what)) {}
  std::string Describe() const override { return what_; }
  Status Begin() override {
    FaultSpec spec = proxy_.spec();
    spec.reset_probability = 1.0;
    proxy_.set(spec);
    proxy_.reset_now();
    return Status();
  }
  Status End() override {
    FaultSpec spec = proxy_.spec();
    spec.reset_probability = 0;
    proxy_.set(spec);
    return Status();
  }

 private:
  FaultProxy& proxy_;
  std::string what_;
};

// "host:port" of a URI, or "" when it has none.
std::string AuthorityOf(std::string_view uri) {
  auto parsed = core::ParseUri(uri);
  if (!parsed) return "";
  auto a = core::ParseAuthority(parsed->body);
  if (!a || !a->port) return "";
  return fmt::format("{}:{}", a->host, *a->port);
}

// `uri` with its host:port replaced by 127.0.0.1:port (credentials, path and parameters kept).
std::string ThroughPort(std::string_view uri, uint16_t port) {
  const std::string u(uri);
  const auto scheme_end = u.find("://") + 3;
  auto path = u.find_first_of("/?", scheme_end);
  if (path == std::string::npos) path = u.size();
  const auto at = u.rfind('@', path);
  const std::size_t host = at != std::string::npos && at >= scheme_end ? at + 1 : scheme_end;
  return u.substr(0, host) + fmt::format("127.0.0.1:{}", port) + u.substr(path);
}

}  // namespace

RunFaults::RunFaults() = default;
RunFaults::RunFaults(RunFaults&&) noexcept = default;
RunFaults& RunFaults::operator=(RunFaults&&) noexcept = default;
// The faults (a ResetStorm holds the proxy) go before the proxy.
RunFaults::~RunFaults() { faults.clear(); }

std::vector<std::string> RunFaults::names() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : faults) out.push_back(name);
  return out;
}

std::vector<NamedFault> RunFaults::view() const {
  std::vector<NamedFault> out;
  for (const auto& [name, f] : faults) out.push_back({name, f.get()});
  return out;
}

Result<RunFaults> MakeStoreFaults(std::string_view store_uri) {
  RunFaults out;
  // http://: the agentstated behind it, when it runs on loopback as this user's.
  if (auto uri = core::ParseUri(store_uri);
      uri && (uri->scheme == "http" || uri->scheme == "https")) {
    auto a = core::ParseAuthority(uri->body);
    const uint16_t port = a && a->port ? *a->port : 8787;
    for (auto [name, signal] :
         {std::pair{"agentstated_kill", SIGKILL}, std::pair{"agentstated_term", SIGTERM}}) {
      if (!a || !IsLoopback(a->host)) {
        out.skipped.push_back(fmt::format("{}: the server is not on a loopback address", name));
      } else if (auto fault = MakeServerKillFault(port, signal); !fault) {
        out.skipped.push_back(fmt::format("{}: {}", name, fault.error().message()));
      } else {
        out.faults.emplace_back(name, std::move(*fault));
      }
    }
    return out;
  }
  if (auto uri = core::ParseUri(store_uri); uri && uri->scheme == "redis+cluster") {
    AddClusterFaults(out, store_uri, ServiceControl::DefaultDir());
    return out;
  }
  auto fault = MakeFault(store_uri);
  if (!fault) return Error(fault.error());
  if (*fault)
    out.faults.emplace_back(core::ParseUri(store_uri)->scheme + "_write_lock", std::move(*fault));
  return out;
}

Result<RunFaults> MakeTieredFaults(std::string_view hot_uri, std::string_view durable_uri,
                                   std::string_view analytics_uri,
                                   const std::filesystem::path& services_dir) {
  RunFaults out;
  const bool cluster = hot_uri.starts_with("redis+cluster://");
  const std::string hot = cluster ? std::string() : AuthorityOf(hot_uri);
  auto colon = hot.rfind(':');
  if (cluster) {
    // A cluster's faults are its own; the proxy and the kill each front one server.
    AddClusterFaults(out, hot_uri, services_dir);
  } else if (!hot.empty() && IsLoopback(hot.substr(0, colon))) {
    const std::string host = hot.substr(0, colon);
    auto proxy = FaultProxy::Start("127.0.0.1", host,
                                   static_cast<uint16_t>(std::stoi(hot.substr(colon + 1))));
    if (!proxy) return Error(proxy.error());
    out.proxied_hot_uri = ThroughPort(hot_uri, (*proxy)->port());
    out.faults.emplace_back("redis_reset_storm",
                            std::make_unique<ResetStorm>(
                                **proxy, fmt::format("TCP proxy 127.0.0.1:{} in front of {} resets "
                                                     "every connection, open and new",
                                                     (*proxy)->port(), hot)));
    out.proxy = std::move(*proxy);
  } else {
    out.skipped.push_back(
        fmt::format("redis_reset_storm: {} is not a loopback address the proxy may front", hot));
  }
  const ServiceControl control(services_dir);
  struct Process {
    const char* name;
    const char* service;
    std::string at;  // host:port; empty when that tier is not in use
    const char* what;
  };
  auto authority = [](std::string_view uri) {
    return uri.empty() ? std::string() : AuthorityOf(uri);
  };
  // A durable tier reached through the pgbouncer scripts/services.sh started: pgbouncer is a
  // fault of its own, and PostgreSQL's restart is the server's behind it.
  const bool pooled = !durable_uri.empty() && control.Serves("pgbouncer", authority(durable_uri));
  std::vector<Process> processes;
  if (!cluster) {
    processes.push_back({"redis_kill", "redis", authority(hot_uri),
                         "redis-server at {} killed (SIGKILL), then restarted until it serves"});
  }
  if (pooled) {
    processes.push_back({"pgbouncer_restart", "pgbouncer", authority(durable_uri),
                         "pgbouncer at {} killed (SIGKILL), then restarted until it serves"});
  }
  processes.push_back(
      {"postgres_restart", "postgres",
       pooled ? control.Authority("postgres") : authority(durable_uri),
       "postgresql at {} stopped at once (SIGQUIT), then restarted until it serves"});
  processes.push_back({"clickhouse_down", "clickhouse", authority(analytics_uri),
                       "clickhouse-server at {} killed (SIGKILL), then restarted until it serves"});
  for (const auto& p : processes) {
    if (p.at.empty()) continue;
    auto running = control.Find(p.service);
    if (!running) {
      out.skipped.push_back(fmt::format("{}: {}", p.name, running.error().message()));
    } else if (!control.Serves(p.service, p.at)) {
      out.skipped.push_back(
          fmt::format("{}: {} is not the {} scripts/services.sh started (see {}/env)", p.name, p.at,
                      p.service, services_dir.string()));
    } else {
      out.faults.emplace_back(
          p.name, std::make_unique<ProcessFault>(services_dir, p.service, p.at,
                                                 fmt::format(fmt::runtime(p.what), p.at)));
    }
  }
  return out;
}

std::unique_ptr<Fault> SqliteWriteLockFault(std::string path, std::chrono::milliseconds on,
                                            std::chrono::milliseconds off) {
  std::string what = fmt::format("sqlite write lock on {} held by another connection", path);
  return std::make_unique<OnOffFault>(
      std::move(what), [path] { return OpenSqliteLock(path); }, on, off);
}

Result<std::unique_ptr<Fault>> MakeFault(std::string_view store_uri) {
  auto uri = core::ParseUri(store_uri);
  if (!uri) return Error(uri.error());
  using std::chrono::milliseconds;
  const milliseconds on(400), off(400);
  if (uri->scheme == "sqlite") return SqliteWriteLockFault(uri->body, on, off);
  if (uri->scheme == "redis") {
    auto o = EndpointOf(*uri, 6379);
    if (!o) return Error(o.error());
    std::string what =
        fmt::format("redis-server at {} holds all writes (CLIENT PAUSE WRITE)", o->redacted);
    return std::unique_ptr<Fault>(std::make_unique<OnOffFault>(
        std::move(what), [o = *o, on] { return OpenRedisLock(o, on); }, on, off));
  }
  if (uri->scheme == "postgresql") {
    auto o = EndpointOf(*uri, 5432);
    if (!o) return Error(o.error());
    std::string what = fmt::format(
        "postgresql at {}: another session holds LOCK TABLE runs IN EXCLUSIVE MODE", o->redacted);
    return std::unique_ptr<Fault>(std::make_unique<OnOffFault>(
        std::move(what), [o = *o] { return OpenPgLock(o); }, on, off));
  }
  return std::unique_ptr<Fault>();
}

}  // namespace agentstate::load
