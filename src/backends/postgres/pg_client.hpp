// The PostgreSQL client on Boost.Asio: libpq 15 in nonblocking pipeline mode, a few
// connections that many agents share.
//
// Each connection's socket is driven by Asio (an async wait on libpq's descriptor, which is
// released before PQfinish: libpq owns it). Queries queued on a connection go out back to
// back, each followed by a pipeline sync, so each is its own implicit transaction and many
// are in flight at once; results come back in order. Every query has a deadline; one that
// passes completes with kTimeout and its late result is discarded. A dropped connection
// fails every query in flight on it with kUnavailable and reconnects with jittered
// exponential backoff. Admission control and the circuit breaker work as in the Redis
// client: at most max_in_flight queries, waits up to pool_wait, then kPoolExhausted.
//
// Thread-safety: Query() may be called from any thread; completions resume on the caller's
// executor. The client owns one I/O thread; it must outlive the calls it started.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agentstate/model.hpp"
#include "agentstate/status.hpp"
#include "core/asio.hpp"
#include "core/one_line.hpp"
#include "core/pipeline.hpp"
#include "core/uri.hpp"

namespace agentstate::backends::postgres {

// postgresql://[USER[:PASSWORD]@]HOST[:PORT]/DB[?connections=8&max_in_flight=N&pool_wait=1s
//   &timeout=5s&connect_timeout=2s&schema=NAME&keep_checkpoints=N&pool_mode=transaction]; other
//   parameters go to libpq
//   as they are
// (sslmode=..., application_name=...).
struct PgOptions {
  std::string conninfo;  // what libpq gets: the URI without our parameters
  std::string schema = "public";
  // Retention: each run keeps at most this many checkpoints, the newest (0 = all). Set per
  // session as agentstate.keep_checkpoints, which the save and checkpoint functions read.
  uint64_t keep_checkpoints = 0;
  // pool_mode=transaction: the server is a pooler in transaction mode (pgbouncer), which hands
  // each transaction to whichever of its sessions is free. Nothing may then live in a session:
  // no startup options (pgbouncer refuses them), so the search path, the statement timeout and
  // keep_checkpoints are set for each transaction, by a statement sent ahead of each batch
  // (set_config(..., true)). Every statement is unnamed already; the migration's lock is the
  // transaction's.
  bool transaction_pooled = false;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{0};  // 0 = the caller's deadline alone
  // 1..64. Commits run one at a time per connection (one backend each), and concurrent
  // commits share WAL flushes: 50 agents' critical saves went 3.6 k/s with 2, 4.4 k/s with
  // 4 and 4.8 k/s with 8 connections (docs/benchmarks.md).
  int connections = 8;
  std::size_t max_in_flight = 10000;
  std::chrono::milliseconds pool_wait{1000};
  std::string redacted_uri;
};
Result<PgOptions> ParsePgUri(const core::ParsedUri& uri);

// Owns one PGresult.
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

inline constexpr Oid kBoolOid = 16, kByteaOid = 17, kInt8Oid = 20, kTextOid = 25;

// One parameter, sent in binary form with its type.
struct Param {
  Oid type = 0;
  std::string bytes;
  bool null = false;
};
Param Text(std::string_view v);
Param Bytea(std::string_view v);
Param Int8(int64_t v);
Param Bool(bool v);
Param NullInt8();
// A one-dimensional array of same-typed, non-null elements (text[], int8[], bool[], bytea[]),
// for statements that take many rows at once through unnest(). kInvalidArgument-free: the
// element type must be one of those four.
Param ArrayOf(const std::vector<Param>& elements, Oid element_type);

// Column readers for binary-format results. The caller checks the column's type.
int64_t GetInt8(const PGresult* r, int row, int col);
bool GetBool(const PGresult* r, int row, int col);
std::string_view GetBytes(const PGresult* r, int row, int col);  // text or bytea, raw
// libpq's messages span lines; errors here are one line (core::OneLine).
using core::OneLine;

// SQLSTATE of an error result ("" otherwise), and its primary message.
std::string_view SqlState(const PGresult* r);
// The Status an error result stands for: our functions' SQLSTATEs (AS409 and AS410
// kConflict, AS404 kNotFound), then the server's (57014 kTimeout; connection trouble,
// shutdown, too many clients, serialization kUnavailable; else kInternal).
Status StatusOf(const PGresult* r, std::string_view what);
std::string_view ErrorMessage(const PGresult* r);

// One statement and its parameters.
struct Statement {
  std::string sql;
  std::vector<Param> params;
};

// What a connection sends for one Batch: its statements, one pipeline sync; and each
// statement's first result, kept until the sync arrives.
struct PgRequest {
  std::vector<Statement> stmts;
  std::vector<PgResult> results;
  bool have_result = false;  // the current statement's result is in `results`
  bool prelude = false;      // the next result is the transaction settings' (pool_mode)
  std::string prelude_error;
};

class PgClient {
 public:
  using Statement = backends::postgres::Statement;

  // What `warmup` returns runs first on every new session, before any query queued for it: a
  // new backend compiles the store's functions and plans their statements on first use, and
  // plans them again for each of the first five calls. Called on the client's thread, once
  // per session; the results are discarded.
  using Warmup = std::function<std::vector<Statement>()>;
  explicit PgClient(PgOptions options, Warmup warmup = nullptr);
  // Blocks until every connection has finished its first warm-up, or until `timeout`; true
  // when all did. A warm-up that failed counts as finished (and in Stats). Not from the
  // client's own thread.
  bool AwaitWarm(std::chrono::milliseconds timeout);
  ~PgClient();
  PgClient(const PgClient&) = delete;
  PgClient& operator=(const PgClient&) = delete;

  // Runs one statement (parameterized, binary results) as its own transaction. The result
  // may be an error result (SQLSTATE set), which is a successful round trip. Errors:
  // kTimeout, kUnavailable (no connection, dropped with the query in flight),
  // kPoolExhausted, kInternal.
  Awaitable<Result<PgResult>> Query(std::string sql, std::vector<Param> params, Deadline deadline);
  // Query, with an error result turned into the Status it stands for (StatusOf; `what`
  // names the operation in its message).
  Awaitable<Result<PgResult>> Run(std::string sql, std::vector<Param> params, Deadline deadline,
                                  std::string_view what);

  // Several statements in one implicit transaction (one pipeline sync, so one commit):
  // either all of them take effect or none. One result per statement, in order; after the
  // first error the rest are PGRES_PIPELINE_ABORTED.
  Awaitable<Result<std::vector<PgResult>>> Batch(std::vector<Statement> statements,
                                                 Deadline deadline);

  const PgOptions& options() const { return options_; }
  using Pipeline = core::PipelineClient<PgRequest, std::vector<PgResult>>;
  // Admission control, the breaker, connections and reconnects, plus these.
  struct Stats : Pipeline::Stats {
    uint64_t warmups = 0, warmup_failures = 0;  // a failure: no answer, or an error result
  };
  Stats stats() const;

 private:
  PgOptions options_;
  Warmup warmup_;
  mutable std::mutex warm_mu_;
  std::condition_variable warm_cv_;
  uint64_t warmed_ = 0, warm_failures_ = 0;  // warm-ups finished and failed, reconnects' included
  // Declared last: its thread, which the connections' use of the members above runs on,
  // stops first.
  Pipeline pipeline_;
};

}  // namespace agentstate::backends::postgres
