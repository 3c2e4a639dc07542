#include "backends/sqlite/sqlite_store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/asio.hpp"
#include "core/checkpoint_rules.hpp"
#include "core/codec.hpp"
#include "core/record.hpp"
#include "core/validate.hpp"

namespace agentstate::backends::sqlite {
namespace {

using core::Encoding;
using Clock = std::chrono::steady_clock;

// One SQLite connection, used by one thread at a time, with its prepared statements cached.
struct Conn {
  sqlite3* db = nullptr;
  Deadline deadline = Deadline::max();  // the running call's; read by the handlers below
  std::unordered_map<const char*, sqlite3_stmt*> stmts;

  Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() {
    for (auto& [sql, s] : stmts) sqlite3_finalize(s);
    if (db) sqlite3_close_v2(db);
  }
};

// Interrupts a statement that runs past its call's deadline (SQLITE_INTERRUPT -> kTimeout).
int ProgressHandler(void* ctx) { return Clock::now() >= static_cast<Conn*>(ctx)->deadline ? 1 : 0; }

// Waits for a lock held by another process, but never past the call's deadline.
int BusyHandler(void* ctx, int attempt) {
  if (Clock::now() >= static_cast<Conn*>(ctx)->deadline) return 0;
  std::this_thread::sleep_for(std::chrono::microseconds(std::min(100 * (attempt + 1), 5000)));
  return 1;
}

Status FromSqlite(Conn& c, int rc, std::string_view what) {
  const char* msg = c.db ? sqlite3_errmsg(c.db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_INTERRUPT:
      return Status(StatusCode::kTimeout, fmt::format("{}: deadline passed while running", what));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      if (Clock::now() >= c.deadline) {
        return Status(StatusCode::kTimeout,
                      fmt::format("{}: deadline passed waiting for the database lock", what));
      }
      return Status(StatusCode::kUnavailable,
                    fmt::format("{}: database is locked ({})", what, msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status(StatusCode::kCorruption,
                    fmt::format("{}: database file is damaged ({})", what, msg));
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_PERM: return Status(StatusCode::kUnavailable, fmt::format("{}: {}", what, msg));
    default:
      return Status(StatusCode::kInternal, fmt::format("{}: sqlite error {} ({})", what, rc, msg));
  }
}

// A cached statement in use; resets and unbinds itself when it goes out of scope.
// Bound text and blobs are SQLITE_STATIC: they must outlive the statement's use.
class Stmt {
 public:
  Stmt(Conn& c, sqlite3_stmt* s) : c_(c), s_(s) {}
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Text(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& Blob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& Int(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  // SQLITE_ROW -> true, SQLITE_DONE -> false, else the error.
  Result<bool> Step(std::string_view what) {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Error(FromSqlite(c_, rc, what));
  }
  int64_t ColInt(int col) const { return sqlite3_column_int64(s_, col); }
  std::string ColText(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }
  std::string_view ColBlob(int col) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
             : std::string_view();
  }
  int Changes() const { return sqlite3_changes(c_.db); }

 private:
  Conn& c_;
  sqlite3_stmt* s_;
};

Result<std::unique_ptr<Stmt>> Prepare(Conn& c, const char* sql) {
  auto it = c.stmts.find(sql);
  if (it == c.stmts.end()) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(c.db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) return Error(FromSqlite(c, rc, "prepare"));
    it = c.stmts.emplace(sql, s).first;
  }
  return std::make_unique<Stmt>(c, it->second);
}

Status Exec(Conn& c, const char* sql, std::string_view what) {
  char* err = nullptr;
  int rc = sqlite3_exec(c.db, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  return rc == SQLITE_OK ? Status() : FromSqlite(c, rc, what);
}

// BEGIN IMMEDIATE ... COMMIT; rolls back unless committed.
class Tx {
 public:
  explicit Tx(Conn& c) : c_(c) {}
  ~Tx() {
    if (open_) sqlite3_exec(c_.db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Status Begin() {
    Status s = Exec(c_, "BEGIN IMMEDIATE", "begin write transaction");
    open_ = s.ok();
    return s;
  }
  Status Commit() {
    Status s = Exec(c_, "COMMIT", "commit");
    if (s.ok()) open_ = false;
    return s;
  }

 private:
  Conn& c_;
  bool open_ = false;
};

uint64_t U64(int64_t v) { return static_cast<uint64_t>(v); }
int64_t I64(uint64_t v) { return static_cast<int64_t>(v); }

// Migrations, applied in order inside one write transaction at open; each is idempotent.
// Version 2: indexes on expiry, so purging expired rows reads only expired rows. Without
// them the once-a-minute purge scanned the whole table inside a write batch (60 ms on a
// 150 MB file: the first wave of every process stalled behind it).
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, user_id TEXT NOT NULL, agent_type TEXT NOT NULL,
  version INTEGER NOT NULL, step_count INTEGER NOT NULL, phase TEXT NOT NULL,
  checkpoint_type INTEGER NOT NULL, is_recovery_point INTEGER NOT NULL, status INTEGER NOT NULL,
  saved_at_ms INTEGER NOT NULL, encoding INTEGER NOT NULL, payload BLOB NOT NULL,
  payload_bytes INTEGER NOT NULL, checksum INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_thread ON runs(thread_id, run_id);
CREATE TABLE IF NOT EXISTS checkpoints (
  run_id TEXT NOT NULL, version INTEGER NOT NULL, type INTEGER NOT NULL,
  is_recovery_point INTEGER NOT NULL, created_at_ms INTEGER NOT NULL,
  thread_id TEXT NOT NULL, user_id TEXT NOT NULL, agent_type TEXT NOT NULL,
  step_count INTEGER NOT NULL, phase TEXT NOT NULL,
  encoding INTEGER NOT NULL, payload BLOB NOT NULL, payload_bytes INTEGER NOT NULL,
  checksum INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, version));
CREATE TABLE IF NOT EXISTS threads (
  thread_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, version INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL);
)sql",
    R"sql(
CREATE INDEX IF NOT EXISTS runs_by_expiry ON runs(expires_at_ms);
CREATE INDEX IF NOT EXISTS checkpoints_by_expiry ON checkpoints(expires_at_ms);
CREATE INDEX IF NOT EXISTS threads_by_expiry ON threads(expires_at_ms);
)sql",
    // Version 3: the idempotency key of the save that wrote the run's latest version.
    R"sql(
ALTER TABLE runs ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';
)sql",
    // Version 4: LangGraph's checkpoint model (SqliteStore::Checkpoints): checkpoints, channel
    // values once per version, pending writes, and each thread's last touch for its TTL.
    R"sql(
CREATE TABLE IF NOT EXISTS lg_checkpoints (
  thread_id TEXT NOT NULL, ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL,
  parent_id TEXT NOT NULL, checkpoint TEXT NOT NULL, metadata TEXT NOT NULL,
  PRIMARY KEY (thread_id, ns, checkpoint_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lg_checkpoints_by_id ON lg_checkpoints(checkpoint_id);
CREATE TABLE IF NOT EXISTS lg_values (
  thread_id TEXT NOT NULL, ns TEXT NOT NULL, channel TEXT NOT NULL, version TEXT NOT NULL,
  type TEXT NOT NULL, encoding INTEGER NOT NULL, bytes BLOB NOT NULL, checksum INTEGER NOT NULL,
  PRIMARY KEY (thread_id, ns, channel, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lg_writes (
  thread_id TEXT NOT NULL, ns TEXT NOT NULL, checkpoint_id TEXT NOT NULL, task_id TEXT NOT NULL,
  idx INTEGER NOT NULL, task_path TEXT NOT NULL, channel TEXT NOT NULL, type TEXT NOT NULL,
  encoding INTEGER NOT NULL, bytes BLOB NOT NULL, checksum INTEGER NOT NULL,
  PRIMARY KEY (thread_id, ns, checkpoint_id, task_id, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lg_threads (
  thread_id TEXT PRIMARY KEY, touched_ms INTEGER NOT NULL) WITHOUT ROWID;
)sql",
};

constexpr const char* kRunColumns =
    "run_id, thread_id, user_id, agent_type, version, step_count, phase, checkpoint_type, "
    "is_recovery_point, status, saved_at_ms, encoding, payload, payload_bytes, checksum, "
    "idempotency_key";

constexpr const char* kUpsertRun =
    "INSERT INTO runs (run_id, thread_id, user_id, agent_type, version, step_count, phase, "
    "checkpoint_type, is_recovery_point, status, saved_at_ms, encoding, payload, payload_bytes, "
    "checksum, expires_at_ms, idempotency_key) "
    "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,0,?10,?11,?12,?13,?14,?15,?16) "
    "ON CONFLICT(run_id) DO UPDATE SET thread_id=?2, user_id=?3, agent_type=?4, version=?5, "
    "step_count=?6, phase=?7, checkpoint_type=?8, is_recovery_point=?9, status=0, saved_at_ms=?10, "
    "encoding=?11, payload=?12, payload_bytes=?13, checksum=?14, expires_at_ms=?15, "
    "idempotency_key=?16";

constexpr const char* kUpsertThread =
    "INSERT INTO threads (thread_id, run_id, version, updated_at_ms, expires_at_ms) "
    "VALUES (?1,?2,?3,?4,?5) ON CONFLICT(thread_id) DO UPDATE SET run_id=?2, version=?3, "
    "updated_at_ms=?4, expires_at_ms=?5";

// Snapshots the run's current row into its history; one checkpoint per version.
constexpr const char* kCheckpointFromRun =
    "INSERT OR IGNORE INTO checkpoints (run_id, version, type, is_recovery_point, created_at_ms, "
    "thread_id, user_id, agent_type, step_count, phase, encoding, payload, payload_bytes, "
    "checksum, "
    "expires_at_ms) SELECT run_id, version, ?2, (is_recovery_point OR ?2 = 3), ?3, thread_id, "
    "user_id, agent_type, step_count, phase, encoding, payload, payload_bytes, checksum, "
    "CASE WHEN (is_recovery_point OR ?2 = 3) THEN ?5 ELSE ?4 END FROM runs WHERE run_id = ?1";

constexpr const char* kLiveRunVersion =
    "SELECT version, status, idempotency_key, checksum FROM runs WHERE run_id = ?1 AND "
    "expires_at_ms > ?2";
constexpr const char* kNewestCheckpointVersion =
    "SELECT max(version) FROM checkpoints WHERE run_id = ?1 AND expires_at_ms > ?2";

// A payload as stored plus what is needed to decode and verify it.
struct Body {
  Encoding encoding = Encoding::kRaw;
  std::string bytes;
  uint64_t payload_bytes = 0;
  uint64_t checksum = 0;
};

}  // namespace

// A write waiting for the writer thread. Execute runs inside the batch's transaction;
// Finish delivers the result once the batch has committed (or failed).
struct WriteTask {
  WriteTask(Deadline d, std::string_view o, bool s) : deadline(d), op(o), sync(s) {}
  virtual ~WriteTask() = default;
  // Runs the write; an error here is the task's own (its savepoint is rolled back).
  virtual Status Execute(Conn& c) = 0;
  // `failure` ok: deliver what Execute produced. Otherwise deliver `failure` instead.
  virtual void Finish(Status failure) = 0;
  Deadline deadline;
  std::string_view op;
  bool sync;  // acknowledged only once on disk (the batch commits with synchronous=FULL)
};

template <typename T, typename Handler>
class TypedWriteTask final : public WriteTask {
 public:
  TypedWriteTask(Deadline d, std::string_view o, bool sync, std::function<Result<T>(Conn&)> fn,
                 Handler h)
      : WriteTask(d, o, sync), fn_(std::move(fn)), handler_(std::move(h)) {}
  Status Execute(Conn& c) override {
    result_ = fn_(c);
    return result_ ? Status() : result_.error();
  }
  void Finish(Status failure) override {
    if (!failure.ok()) result_ = Error(std::move(failure));
    auto ex = asio::get_associated_executor(handler_);
    asio::post(ex,
               [h = std::move(handler_), r = std::move(result_)]() mutable { h(std::move(r)); });
  }

 private:
  std::function<Result<T>(Conn&)> fn_;
  Handler handler_;
  Result<T> result_{tl::unexpect, Status(StatusCode::kInternal, "write never ran")};
};

// Threads and connections. Reads: N threads with N connections, so a reader task always
// finds a free one. Writes: one thread with one connection that commits whatever is queued
// as one transaction (group commit), each write in its own savepoint.
struct SqliteStore::Impl {
  struct Worker {
    explicit Worker(std::size_t threads) : pool(threads) {}
    asio::thread_pool pool;
    std::mutex mu;
    std::vector<std::unique_ptr<Conn>> free;
    std::atomic<uint64_t> queued{0};
  };

  std::string path;
  StoreOptions options;
  std::size_t max_queue = 0;
  int synchronous = -1;  // PRAGMA synchronous as read back after setting it (1 = NORMAL)
  std::unique_ptr<Worker> readers;

  static constexpr std::size_t kMaxBatch = 256;  // writes per transaction
  std::unique_ptr<Conn> writer_conn;
  std::thread writer_thread;
  std::mutex wq_mu;
  std::condition_variable wq_cv;
  std::deque<std::unique_ptr<WriteTask>> wq;
  bool stopping = false;
  std::atomic<uint64_t> write_queue{0}, batches{0}, batched_writes{0}, synced_batches{0};
  bool synced_commits = false;  // the writer connection's synchronous is FULL (else NORMAL)

  // WAL checkpoints run on a thread and connection of their own. SQLite's default runs
  // them inside the COMMIT that crosses 1000 WAL pages, with an fsync, which stalled every
  // write queued behind it (~14 ms here, seen as one slow wave in latency_sla_compliance).
  static constexpr int kCheckpointPages = 1000;
  std::unique_ptr<Conn> checkpoint_conn;
  std::thread checkpoint_thread;
  std::mutex ck_mu;
  std::condition_variable ck_cv;
  bool ck_due = false;
  bool ck_stop = false;
  std::atomic<uint64_t> checkpoints{0}, checkpoint_us{0}, wal_pages{0};

  static int WalHook(void* ctx, sqlite3*, const char*, int pages) {
    auto* im = static_cast<Impl*>(ctx);
    im->wal_pages = static_cast<uint64_t>(pages);
    if (pages >= kCheckpointPages) {
      {
        std::lock_guard lock(im->ck_mu);
        im->ck_due = true;
      }
      im->ck_cv.notify_one();
    }
    return SQLITE_OK;
  }

  void CheckpointLoop() {
    std::unique_lock lock(ck_mu);
    while (true) {
      // Also once a second, so a quiet store's WAL is folded back too.
      ck_cv.wait_for(lock, std::chrono::seconds(1), [&] { return ck_due || ck_stop; });
      if (ck_stop) return;
      ck_due = false;
      lock.unlock();
      const auto t0 = Clock::now();
      int log = 0, done = 0;
      // PASSIVE: copies what it can without blocking the writer or any reader.
      if (sqlite3_wal_checkpoint_v2(checkpoint_conn->db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log,
                                    &done) == SQLITE_OK &&
          done > 0) {
        ++checkpoints;
        checkpoint_us += static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
      }
      lock.lock();
    }
  }
  std::atomic<uint64_t> saves{0}, loads{0}, conflicts{0}, corruptions{0}, timeouts{0}, rejected{0};
  std::mutex purge_mu;
  int64_t last_purge_ms = 0;

  ~Impl() {
    {
      std::lock_guard lock(wq_mu);
      stopping = true;
    }
    wq_cv.notify_all();
    if (writer_thread.joinable()) writer_thread.join();
    {
      std::lock_guard lock(ck_mu);
      ck_stop = true;
    }
    ck_cv.notify_all();
    if (checkpoint_thread.joinable()) checkpoint_thread.join();
    if (readers) readers->pool.join();
  }

  // Queues a write for the writer thread; it resumes the caller on its own executor once
  // the batch holding it has committed. Not a coroutine, for the reason Run gives.
  //
  // Every write is acknowledged once it is on disk, as a power cut leaves it, except a plain
  // auto save (`sync` false): that one once committed, which survives the process but
  // reaches the disk at the next WAL checkpoint, within a second (tests/backends/power_cut_test).
  template <typename T>
  Awaitable<Result<T>> Write(Deadline deadline, std::string_view op,
                             std::function<Result<T>(Conn&)> fn, bool sync = true) {
    auto initiate = [this, deadline, op, sync, fn = std::move(fn)](auto handler) mutable {
      using Handler = decltype(handler);
      auto task = std::make_unique<TypedWriteTask<T, Handler>>(deadline, op, sync, std::move(fn),
                                                               std::move(handler));
      if (Status s = core::CheckDeadline(deadline, op); !s.ok()) {
        ++timeouts;
        return task->Finish(s);
      }
      {
        std::lock_guard lock(wq_mu);
        if (wq.size() < max_queue) {
          wq.push_back(std::move(task));
          ++write_queue;
        }
      }
      if (task) {  // the queue was full
        ++rejected;
        return task->Finish(
            Status(StatusCode::kPoolExhausted,
                   fmt::format("{}: {} sqlite writes already queued; slow down or raise the "
                               "queue= URI parameter",
                               op, max_queue)));
      }
      wq_cv.notify_one();
    };
    return asio::async_initiate<decltype(asio::use_awaitable), void(Result<T>)>(
        std::move(initiate), asio::use_awaitable);
  }

  void WriterLoop() {
    std::vector<std::unique_ptr<WriteTask>> batch;
    while (true) {
      {
        std::unique_lock lock(wq_mu);
        wq_cv.wait(lock, [&] { return stopping || !wq.empty(); });
        if (wq.empty()) return;  // stopping, and everything queued has run
        while (!wq.empty() && batch.size() < kMaxBatch) {
          batch.push_back(std::move(wq.front()));
          wq.pop_front();
        }
        write_queue -= batch.size();
      }
      RunBatch(*writer_conn, batch);
      batch.clear();
    }
  }

  // One transaction for the whole batch; a savepoint per write so one write's failure
  // (a conflict, say) undoes only that write. Results are delivered after COMMIT, so an
  // acknowledgement always means committed.
  void RunBatch(Conn& c, std::vector<std::unique_ptr<WriteTask>>& batch) {
    const std::size_t n = batch.size();
    std::vector<Status> outcome(n);  // what to deliver instead of the task's own result
    std::vector<bool> applied(n, false);
    Deadline latest = Deadline::min();
    bool sync = false;
    for (const auto& t : batch) {
      latest = std::max(latest, t->deadline);
      sync = sync || t->sync;
    }
    // In WAL mode, synchronous=FULL makes the COMMIT fsync the WAL; NORMAL leaves that to the
    // checkpoint thread. One fsync covers the whole batch.
    if (sync != synced_commits) {
      synced_commits = sync;
      (void)Exec(c, sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                 "set synchronous");
    }
    c.deadline =
        latest;  // the batch waits for another process's lock as long as its most patient write
    bool open = false;
    auto begin = [&]() {
      Status s = Exec(c, "BEGIN IMMEDIATE", "begin write transaction");
      open = s.ok();
      return s;
    };
    Status began = begin();
    for (std::size_t i = 0; i < n; ++i) {
      WriteTask& t = *batch[i];
      if (!open) {
        outcome[i] = began.ok()
                         ? Status(StatusCode::kUnavailable, "write transaction could not be opened")
                         : began;
        continue;
      }
      if (Clock::now() >= t.deadline) {
        outcome[i] = Status(StatusCode::kTimeout,
                            fmt::format("{}: deadline passed while queued for the writer", t.op));
        continue;
      }
      c.deadline = t.deadline;
      (void)Exec(c, "SAVEPOINT w", "savepoint");
      Status s = t.Execute(c);
      if (s.ok()) {
        (void)Exec(c, "RELEASE w", "release savepoint");
        applied[i] = true;
        continue;
      }
      if (sqlite3_get_autocommit(c.db)) {
        // An interrupted write statement rolls back the whole transaction: the writes
        // applied before it in this batch are gone too. Fail them (nothing of theirs was
        // written) and carry on in a fresh transaction.
        for (std::size_t j = 0; j < i; ++j) {
          if (applied[j]) {
            applied[j] = false;
            outcome[j] = Status(
                StatusCode::kTimeout,
                fmt::format("{}: rolled back with its batch when another write hit its deadline",
                            batch[j]->op));
          }
        }
        c.deadline = latest;
        began = begin();
      } else {
        (void)Exec(c, "ROLLBACK TO w", "rollback savepoint");
        (void)Exec(c, "RELEASE w", "release savepoint");
      }
    }
    Status committed;
    if (open) {
      c.deadline = Deadline::max();  // a commit is never interrupted half-way
      MaybePurge(c, core::ToUnixMillis(core::Now(options)));
      committed = Exec(c, "COMMIT", "commit");
      if (!committed.ok()) sqlite3_exec(c.db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    ++batches;
    if (sync) ++synced_batches;
    for (std::size_t i = 0; i < n; ++i) {
      if (applied[i]) {
        batched_writes += 1;
        batch[i]->Finish(committed);
      } else {
        if (outcome[i].code() == StatusCode::kTimeout) ++timeouts;
        batch[i]->Finish(outcome[i]);
      }
    }
  }

  // Runs fn(conn) on the worker's thread and resumes the caller on its own executor.
  // A call still queued at its deadline is not started. The queue is bounded by max_queue.
  // Deliberately not a coroutine itself: g++ 12 mishandles non-trivial coroutine parameters
  // built from temporaries, so callers pass a named std::function and this only initiates.
  template <typename T>
  Awaitable<Result<T>> Run(Worker& w, Deadline deadline, std::string_view op,
                           std::function<Result<T>(Conn&)> fn) {
    auto initiate = [this, &w, deadline, op, fn = std::move(fn)](auto handler) mutable {
      auto finish = [](auto handler, Result<T> r) {
        auto ex = asio::get_associated_executor(handler);
        asio::post(ex, [handler = std::move(handler), r = std::move(r)]() mutable {
          handler(std::move(r));
        });
      };
      if (Status s = core::CheckDeadline(deadline, op); !s.ok()) {
        ++timeouts;
        return finish(std::move(handler), Error(s));
      }
      if (w.queued.load(std::memory_order_relaxed) >= max_queue) {
        ++rejected;
        return finish(
            std::move(handler),
            Error(StatusCode::kPoolExhausted,
                  fmt::format("{}: {} sqlite operations already queued; slow down or raise "
                              "the queue= URI parameter",
                              op, max_queue)));
      }
      ++w.queued;
      asio::post(w.pool, [this, &w, deadline, op, fn = std::move(fn), handler = std::move(handler),
                          finish]() mutable {
        Result<T> r =
            Error(StatusCode::kTimeout,
                  fmt::format("{}: deadline passed while queued for the sqlite thread", op));
        if (Clock::now() < deadline) {
          std::unique_ptr<Conn> c;
          {
            std::lock_guard lock(w.mu);
            c = std::move(w.free.back());
            w.free.pop_back();
          }
          c->deadline = deadline;
          r = fn(*c);
          c->deadline = Deadline::max();
          std::lock_guard lock(w.mu);
          w.free.push_back(std::move(c));
        }
        --w.queued;
        if (!r && r.error().code() == StatusCode::kTimeout) ++timeouts;
        finish(std::move(handler), std::move(r));
      });
    };
    return asio::async_initiate<decltype(asio::use_awaitable), void(Result<T>)>(
        std::move(initiate), asio::use_awaitable);
  }

  // The run's current version (live record, else newest live checkpoint, else 0), whether
  // its live record is completed, and that record's idempotency key and checksum. Runs
  // inside the writer's transaction.
  struct Head {
    int64_t version = 0;
    bool completed = false;
    std::string idempotency_key;
    uint64_t checksum = 0;
  };
  Result<Head> Current(Conn& c, const std::string& run_id, int64_t now_ms) {
    auto st = Prepare(c, kLiveRunVersion);
    if (!st) return Error(st.error());
    (*st)->Text(1, run_id).Int(2, now_ms);
    auto row = (*st)->Step("read run version");
    if (!row) return Error(row.error());
    if (*row)
      return Head{(*st)->ColInt(0), (*st)->ColInt(1) != 0, (*st)->ColText(2),
                  U64((*st)->ColInt(3))};
    auto cp = Prepare(c, kNewestCheckpointVersion);
    if (!cp) return Error(cp.error());
    (*cp)->Text(1, run_id).Int(2, now_ms);
    row = (*cp)->Step("read checkpoint version");
    if (!row) return Error(row.error());
    return Head{*row ? (*cp)->ColInt(0) : 0, false, {}, 0};
  }

  Status UpsertRun(Conn& c, const StateRecord& m, const Body& b, int64_t now_ms,
                   int64_t expires_ms) {
    auto st = Prepare(c, kUpsertRun);
    if (!st) return st.error();
    (*st)->Text(1, m.run_id).Text(2, m.thread_id).Text(3, m.user_id).Text(4, m.agent_type);
    (*st)->Int(5, m.version).Int(6, m.step_count).Text(7, m.phase);
    (*st)->Int(8, static_cast<int64_t>(m.checkpoint_type)).Int(9, m.is_recovery_point ? 1 : 0);
    (*st)->Int(10, now_ms).Int(11, static_cast<int64_t>(b.encoding)).Blob(12, b.bytes);
    (*st)->Int(13, I64(b.payload_bytes)).Int(14, I64(b.checksum)).Int(15, expires_ms);
    (*st)->Text(16, m.idempotency_key);
    auto r = (*st)->Step("write run");
    if (!r) return r.error();
    auto th = Prepare(c, kUpsertThread);
    if (!th) return th.error();
    (*th)->Text(1, m.thread_id).Text(2, m.run_id).Int(3, m.version).Int(4, now_ms);
    (*th)->Int(5, core::ExpiryMillis(options.ttl, RunStatus::kActive, false,
                                     core::FromUnixMillis(now_ms)));
    r = (*th)->Step("write thread context");
    return r ? Status() : r.error();
  }

  Status SnapshotRun(Conn& c, const std::string& run_id, CheckpointType type, int64_t now_ms) {
    auto st = Prepare(c, kCheckpointFromRun);
    if (!st) return st.error();
    SystemTime now = core::FromUnixMillis(now_ms);
    (*st)->Text(1, run_id).Int(2, static_cast<int64_t>(type)).Int(3, now_ms);
    (*st)->Int(4, core::ExpiryMillis(options.ttl, RunStatus::kActive, false, now));
    (*st)->Int(5, core::ExpiryMillis(options.ttl, RunStatus::kActive, true, now));
    auto r = (*st)->Step("write checkpoint");
    return r ? Status() : r.error();
  }

  // Removes expired rows at most once a minute, on the writer, inside its transaction.
  void MaybePurge(Conn& c, int64_t now_ms) {
    {
      std::lock_guard lock(purge_mu);
      if (now_ms - last_purge_ms < 60000) return;
      last_purge_ms = now_ms;
    }
    // Bounded per pass (the indexes find the rows): a backlog is worked off a minute at a time.
    for (const char* sql : {"DELETE FROM runs WHERE rowid IN (SELECT rowid FROM runs WHERE "
                            "expires_at_ms <= ?1 LIMIT 1000)",
                            "DELETE FROM checkpoints WHERE rowid IN (SELECT rowid FROM checkpoints "
                            "WHERE expires_at_ms <= ?1 LIMIT 1000)",
                            "DELETE FROM threads WHERE rowid IN (SELECT rowid FROM threads WHERE "
                            "expires_at_ms <= ?1 LIMIT 1000)"}) {
      if (auto st = Prepare(c, sql)) {
        (*st)->Int(1, now_ms);
        (void)(*st)->Step("purge expired");
      }
    }
  }

  Result<StateRecord> ReadRecord(const Stmt& st, const std::string& what) {
    StateRecord r;
    r.run_id = st.ColText(0);
    r.thread_id = st.ColText(1);
    r.user_id = st.ColText(2);
    r.agent_type = st.ColText(3);
    r.version = st.ColInt(4);
    r.step_count = st.ColInt(5);
    r.phase = st.ColText(6);
    r.checkpoint_type = static_cast<CheckpointType>(st.ColInt(7));
    r.is_recovery_point = st.ColInt(8) != 0;
    r.status = st.ColInt(9) != 0 ? RunStatus::kCompleted : RunStatus::kActive;
    r.saved_at = core::FromUnixMillis(st.ColInt(10));
    r.checksum = U64(st.ColInt(14));
    r.idempotency_key = st.ColText(15);
    auto payload = core::DecodeVerified(static_cast<Encoding>(st.ColInt(11)), st.ColBlob(12),
                                        r.checksum, options.max_payload_bytes, what);
    if (!payload) {
      ++corruptions;
      return Error(payload.error());
    }
    r.payload = std::move(*payload);
    return r;
  }
};

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteStore::~SqliteStore() = default;

std::string SqliteStore::Describe() const { return "sqlite://" + impl_->path; }

namespace {

Result<std::unique_ptr<Conn>> OpenConn(const std::string& path, bool reader) {
  auto c = std::make_unique<Conn>();
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (reader ? 0 : SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &c->db, flags, nullptr);
  if (rc != SQLITE_OK) {
    return Error(StatusCode::kUnavailable,
                 fmt::format("cannot open database file {}: {}; check the path and its permissions",
                             path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc)));
  }
  sqlite3_extended_result_codes(c->db, 1);
  sqlite3_busy_handler(c->db, BusyHandler, c.get());
  sqlite3_progress_handler(c->db, 1000, ProgressHandler, c.get());
  return c;
}

// Runs PRAGMA `sql` and returns its first column as text.
Result<std::string> Pragma(Conn& c, const char* sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(c.db, sql, -1, &s, nullptr);
  if (rc != SQLITE_OK) return Error(FromSqlite(c, rc, sql));
  std::string out;
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW && sqlite3_column_text(s, 0))
    out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error(FromSqlite(c, rc, sql));
  return out;
}

}  // namespace

// --- The checkpoint model (CheckpointStore) on the lg_* tables -------------------------------

namespace {

Result<bool> Run(Conn& c, const char* sql, std::string_view what,
                 const std::function<void(Stmt&)>& bind) {
  auto st = Prepare(c, sql);
  if (!st) return Error(st.error());
  bind(**st);
  return (*st)->Step(what);
}

// Runs `sql` (bound by `bind`) and hands each row to `row`; the first error, SQLite's or
// the row's, ends it.
Status EachRow(Conn& c, const char* sql, std::string_view what,
               const std::function<void(Stmt&)>& bind, const std::function<Status(Stmt&)>& row) {
  auto st = Prepare(c, sql);
  if (!st) return st.error();
  bind(**st);
  while (true) {
    auto more = (*st)->Step(what);
    if (!more) return more.error();
    if (!*more) return Status();
    if (Status s = row(**st); !s.ok()) return s;
  }
}

// The tuple of a checkpoint row: its values joined through its channel_versions, its writes
// in (task_id, idx) order.
Result<CheckpointTuple> ReadTuple(Conn& c, CheckpointTuple t) {
  auto versions = core::ChannelVersions(t.checkpoint);
  if (!versions) return Error(versions.error());
  for (const auto& [channel, version] : *versions) {
    auto st = Prepare(c,
                      "SELECT type, encoding, bytes, checksum FROM lg_values WHERE thread_id = ?1 "
                      "AND ns = ?2 AND channel = ?3 AND version = ?4");
    if (!st) return Error(st.error());
    (*st)->Text(1, t.thread_id).Text(2, t.ns).Text(3, channel).Text(4, version);
    auto row = (*st)->Step("get checkpoint");
    if (!row) return Error(row.error());
    if (!*row || (*st)->ColText(0) == "empty") continue;
    auto v = core::LoadValue((*st)->ColText(0), static_cast<core::Encoding>((*st)->ColInt(1)),
                             (*st)->ColBlob(2), U64((*st)->ColInt(3)),
                             fmt::format("thread {} channel {}@{}", t.thread_id, channel, version));
    if (!v) return Error(v.error());
    t.values.push_back({channel, version, std::move(*v)});
  }
  Status s = EachRow(
      c,
      "SELECT task_id, idx, task_path, channel, type, encoding, bytes, checksum FROM lg_writes "
      "WHERE thread_id = ?1 AND ns = ?2 AND checkpoint_id = ?3 ORDER BY task_id, idx",
      "get checkpoint writes",
      [&](Stmt& st) { st.Text(1, t.thread_id).Text(2, t.ns).Text(3, t.checkpoint_id); },
      [&](Stmt& st) -> Status {
        auto task = st.ColText(0);
        const int64_t idx = st.ColInt(1);
        auto v = core::LoadValue(st.ColText(4), static_cast<core::Encoding>(st.ColInt(5)),
                                 st.ColBlob(6), U64(st.ColInt(7)),
                                 fmt::format("thread {} write {}/{}", t.thread_id, task, idx));
        if (!v) return v.error();
        t.writes.push_back({std::move(task), st.ColText(2), st.ColText(3), idx, std::move(*v)});
        return Status();
      });
  if (!s.ok()) return Error(s);
  return t;
}

// The newest checkpoint id of (thread, ns), "" when it has none.
Result<std::string> HeadId(Conn& c, const std::string& thread_id, const std::string& ns) {
  auto st = Prepare(c,
                    "SELECT checkpoint_id FROM lg_checkpoints WHERE thread_id = ?1 AND ns = ?2 "
                    "ORDER BY checkpoint_id DESC LIMIT 1");
  if (!st) return Error(st.error());
  (*st)->Text(1, thread_id).Text(2, ns);
  auto row = (*st)->Step("head");
  if (!row) return Error(row.error());
  return *row ? (*st)->ColText(0) : std::string();
}

Status Touch(Conn& c, const std::string& thread_id, int64_t now_ms) {
  auto r = Run(c,
               "INSERT INTO lg_threads (thread_id, touched_ms) VALUES (?1, ?2) "
               "ON CONFLICT(thread_id) DO UPDATE SET touched_ms = ?2",
               "touch thread", [&](Stmt& st) { st.Text(1, thread_id).Int(2, now_ms); });
  return r ? Status() : r.error();
}

Result<int64_t> Count(Conn& c, const char* sql, const std::string& thread_id) {
  auto st = Prepare(c, sql);
  if (!st) return Error(st.error());
  (*st)->Text(1, thread_id);
  auto row = (*st)->Step("count");
  if (!row) return Error(row.error());
  return *row ? (*st)->ColInt(0) : 0;
}

// Deletes what `sql` (bound to the thread) matches; returns how many rows.
Result<uint64_t> DeleteAll(Conn& c, const char* sql, const std::string& thread_id) {
  auto st = Prepare(c, sql);
  if (!st) return Error(st.error());
  (*st)->Text(1, thread_id);
  auto row = (*st)->Step("delete");
  if (!row) return Error(row.error());
  return static_cast<uint64_t>((*st)->Changes());
}

// Deletes a checkpoint and its writes, counting both.
Status EraseCheckpoint(Conn& c, const std::string& thread_id, const std::string& ns,
                       const std::string& checkpoint_id, PurgeReport& report) {
  for (auto [sql, counter] :
       {std::pair{"DELETE FROM lg_writes WHERE thread_id = ?1 AND ns = ?2 AND checkpoint_id = ?3",
                  &report.writes},
        std::pair{"DELETE FROM lg_checkpoints WHERE thread_id = ?1 AND ns = ?2 AND "
                  "checkpoint_id = ?3",
                  &report.checkpoints}}) {
    auto st = Prepare(c, sql);
    if (!st) return st.error();
    (*st)->Text(1, thread_id).Text(2, ns).Text(3, checkpoint_id);
    if (auto r = (*st)->Step("delete checkpoint"); !r) return r.error();
    *counter += static_cast<uint64_t>((*st)->Changes());
  }
  return Status();
}

Result<uint64_t> PurgeValues(Conn& c, const std::string& thread_id);

// After removals from a thread: purges its unused values, and forgets it when empty.
Status Settle(Conn& c, const std::string& thread_id, PurgeReport& report) {
  auto purged = PurgeValues(c, thread_id);
  if (!purged) return purged.error();
  report.values += *purged;
  auto left = Count(c, "SELECT count(*) FROM lg_checkpoints WHERE thread_id = ?1", thread_id);
  if (!left) return left.error();
  if (*left > 0) return Status();
  if (auto r = DeleteAll(c, "DELETE FROM lg_threads WHERE thread_id = ?1", thread_id); !r)
    return r.error();
  ++report.threads;
  return Status();
}

// Deletes the thread's values that no remaining checkpoint's channel_versions name.
Result<uint64_t> PurgeValues(Conn& c, const std::string& thread_id) {
  std::set<std::tuple<std::string, std::string, std::string>> used;
  const auto bind = [&](Stmt& st) { st.Text(1, thread_id); };
  Status s = EachRow(c, "SELECT ns, checkpoint FROM lg_checkpoints WHERE thread_id = ?1",
                     "purge values", bind, [&](Stmt& st) -> Status {
                       auto versions = core::ChannelVersions(st.ColText(1));
                       if (!versions) return versions.error();
                       for (auto& [channel, version] : *versions)
                         used.emplace(st.ColText(0), std::move(channel), std::move(version));
                       return Status();
                     });
  if (!s.ok()) return Error(s);
  std::vector<std::tuple<std::string, std::string, std::string>> unused;
  s = EachRow(c, "SELECT ns, channel, version FROM lg_values WHERE thread_id = ?1", "purge values",
              bind, [&](Stmt& st) {
                std::tuple key{st.ColText(0), st.ColText(1), st.ColText(2)};
                if (!used.contains(key)) unused.push_back(std::move(key));
                return Status();
              });
  if (!s.ok()) return Error(s);
  // Named references, not a structured binding: lambdas capture these (clang 14, which the
  // fuzz build uses, cannot capture a binding).
  for (const auto& row : unused) {
    const auto& ns = std::get<0>(row);
    const auto& channel = std::get<1>(row);
    const auto& version = std::get<2>(row);
    auto r = Run(c,
                 "DELETE FROM lg_values WHERE thread_id = ?1 AND ns = ?2 AND channel = ?3 AND "
                 "version = ?4",
                 "purge values", [&](Stmt& st) {
                   st.Text(1, thread_id).Text(2, ns).Text(3, channel).Text(4, version);
                 });
    if (!r) return Error(r.error());
  }
  return unused.size();
}

}  // namespace

class SqliteStore::LangGraph final : public CheckpointStore {
 public:
  explicit LangGraph(Impl& im) : im_(im) {}

  Awaitable<Status> PutCheckpoint(CheckpointPut put, Deadline deadline) override {
    auto versions = core::ValidatePut(put, im_.options.max_id_bytes);
    if (!versions) co_return Status(versions.error());
    Impl& im = im_;
    std::function<Result<bool>(Conn&)> work = [&im, put = std::move(put)](Conn& c) -> Result<bool> {
      if (put.check_head) {
        auto head = HeadId(c, put.thread_id, put.ns);
        if (!head) return Error(head.error());
        if (*head != put.parent_id)
          return Error(StatusCode::kConflict,
                       fmt::format("thread {}: its newest checkpoint is '{}', not the parent "
                                   "'{}' this put names; read the head and continue from it",
                                   put.thread_id, *head, put.parent_id));
      }
      for (const auto& v : put.values) {
        const auto stored = core::StoreValue(v.value);
        auto r = Run(c,
                     "INSERT OR IGNORE INTO lg_values (thread_id, ns, channel, version, type, "
                     "encoding, bytes, checksum) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                     "put checkpoint value", [&](Stmt& st) {
                       st.Text(1, put.thread_id).Text(2, put.ns).Text(3, v.channel);
                       st.Text(4, v.version).Text(5, stored.type);
                       st.Int(6, static_cast<int64_t>(stored.body.encoding));
                       st.Blob(7, stored.body.bytes).Int(8, I64(stored.checksum));
                     });
        if (!r) return Error(r.error());
      }
      auto r = Run(c,
                   "INSERT INTO lg_checkpoints (thread_id, ns, checkpoint_id, parent_id, "
                   "checkpoint, metadata) VALUES (?1,?2,?3,?4,?5,?6) ON CONFLICT(thread_id, ns, "
                   "checkpoint_id) DO UPDATE SET parent_id = ?4, checkpoint = ?5, metadata = ?6",
                   "put checkpoint", [&](Stmt& st) {
                     st.Text(1, put.thread_id).Text(2, put.ns).Text(3, put.checkpoint_id);
                     st.Text(4, put.parent_id).Text(5, put.checkpoint).Text(6, put.metadata);
                   });
      if (!r) return Error(r.error());
      if (Status s = Touch(c, put.thread_id, core::NowMs(im.options)); !s.ok()) return Error(s);
      return true;
    };
    auto done = co_await im.Write<bool>(deadline, "put_checkpoint", std::move(work));
    co_return done ? Status() : done.error();
  }

  Awaitable<Status> PutWrites(std::string thread_id, std::string ns, std::string checkpoint_id,
                              std::string task_id, std::string task_path,
                              std::vector<std::pair<std::string, TypedValue>> writes,
                              Deadline deadline) override {
    if (Status s = core::ValidateWrites(thread_id, ns, checkpoint_id, task_id, writes,
                                        im_.options.max_id_bytes);
        !s.ok())
      co_return s;
    Impl& im = im_;
    std::function<Result<bool>(Conn&)> work =
        [&im, thread_id = std::move(thread_id), ns = std::move(ns),
         checkpoint_id = std::move(checkpoint_id), task_id = std::move(task_id),
         task_path = std::move(task_path), writes = std::move(writes)](Conn& c) -> Result<bool> {
      auto exists = Run(c,
                        "SELECT 1 FROM lg_checkpoints WHERE thread_id = ?1 AND ns = ?2 AND "
                        "checkpoint_id = ?3",
                        "put writes", [&](Stmt& st) {
                          st.Text(1, thread_id).Text(2, ns).Text(3, checkpoint_id);
                        });
      if (!exists) return Error(exists.error());
      if (!*exists)
        return Error(StatusCode::kNotFound,
                     fmt::format("thread {}: no checkpoint '{}' in namespace '{}' to write to "
                                 "(put it first; a deleted thread takes no writes)",
                                 thread_id, checkpoint_id, ns));
      const char* sql =
          core::ReplacesWrites(writes)
              ? "INSERT OR REPLACE INTO lg_writes VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"
              : "INSERT OR IGNORE INTO lg_writes VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)";
      for (std::size_t i = 0; i < writes.size(); ++i) {
        const auto& channel = writes[i].first;
        const auto& value = writes[i].second;
        const auto stored = core::StoreValue(value);
        auto r = Run(c, sql, "put writes", [&](Stmt& st) {
          st.Text(1, thread_id).Text(2, ns).Text(3, checkpoint_id).Text(4, task_id);
          st.Int(5, core::WriteIndex(channel, i)).Text(6, task_path).Text(7, channel);
          st.Text(8, stored.type).Int(9, static_cast<int64_t>(stored.body.encoding));
          st.Blob(10, stored.body.bytes).Int(11, I64(stored.checksum));
        });
        if (!r) return Error(r.error());
      }
      if (Status s = Touch(c, thread_id, core::NowMs(im.options)); !s.ok()) return Error(s);
      return true;
    };
    auto done = co_await im.Write<bool>(deadline, "put_writes", std::move(work));
    co_return done ? Status() : done.error();
  }

  Awaitable<Result<std::optional<CheckpointTuple>>> GetCheckpoint(std::string thread_id,
                                                                  std::string ns,
                                                                  std::string checkpoint_id,
                                                                  Deadline deadline) override {
    if (Status s = core::ValidateGet(thread_id, ns, checkpoint_id, im_.options.max_id_bytes);
        !s.ok())
      co_return Error(s);
    using R = std::optional<CheckpointTuple>;
    std::function<Result<R>(Conn&)> work = [thread_id = std::move(thread_id), ns = std::move(ns),
                                            checkpoint_id =
                                                std::move(checkpoint_id)](Conn& c) -> Result<R> {
      std::string id = checkpoint_id;
      if (id.empty()) {
        auto head = HeadId(c, thread_id, ns);
        if (!head) return Error(head.error());
        if (head->empty()) return R();
        id = std::move(*head);
      }
      auto st = Prepare(c,
                        "SELECT parent_id, checkpoint, metadata FROM lg_checkpoints WHERE "
                        "thread_id = ?1 AND ns = ?2 AND checkpoint_id = ?3");
      if (!st) return Error(st.error());
      (*st)->Text(1, thread_id).Text(2, ns).Text(3, id);
      auto row = (*st)->Step("get checkpoint");
      if (!row) return Error(row.error());
      if (!*row) return R();
      CheckpointTuple t{thread_id,         ns, id, (*st)->ColText(0), (*st)->ColText(1),
                        (*st)->ColText(2), {}, {}};
      st->reset();
      auto full = ReadTuple(c, std::move(t));
      if (!full) return Error(full.error());
      return R(std::move(*full));
    };
    co_return co_await im_.Run<R>(*im_.readers, deadline, "get_checkpoint", std::move(work));
  }

  Awaitable<Result<std::vector<CheckpointTuple>>> ListCheckpoints(CheckpointListQuery q,
                                                                  Deadline deadline) override {
    auto filter = core::ValidateListQuery(q, im_.options.max_id_bytes);
    if (!filter) co_return Error(filter.error());
    using R = std::vector<CheckpointTuple>;
    std::function<Result<R>(Conn&)> work = [q = std::move(q),
                                            filter = std::move(*filter)](Conn& c) -> Result<R> {
      // Unbound parameters are NULL: each absent part of the query matches everything.
      auto st = Prepare(c,
                        "SELECT thread_id, ns, checkpoint_id, parent_id, checkpoint, metadata "
                        "FROM lg_checkpoints WHERE (?1 IS NULL OR thread_id = ?1) AND "
                        "(?2 IS NULL OR ns = ?2) AND (?3 IS NULL OR checkpoint_id = ?3) AND "
                        "(?4 IS NULL OR checkpoint_id < ?4) AND "
                        "(?5 IS NULL OR substr(thread_id, 1, length(?5)) = ?5) "
                        "ORDER BY checkpoint_id DESC, thread_id, ns");
      if (!st) return Error(st.error());
      if (q.thread_id) (*st)->Text(1, *q.thread_id);
      if (q.ns) (*st)->Text(2, *q.ns);
      if (q.checkpoint_id) (*st)->Text(3, *q.checkpoint_id);
      if (q.before) (*st)->Text(4, *q.before);
      if (!q.thread_id && !q.thread_prefix.empty()) (*st)->Text(5, q.thread_prefix);
      std::vector<CheckpointTuple> hits;
      while (hits.size() < q.limit) {
        auto row = (*st)->Step("list checkpoints");
        if (!row) return Error(row.error());
        if (!*row) break;
        std::string metadata = (*st)->ColText(5);
        if (!filter.Matches(metadata)) continue;
        hits.push_back({(*st)->ColText(0),
                        (*st)->ColText(1),
                        (*st)->ColText(2),
                        (*st)->ColText(3),
                        (*st)->ColText(4),
                        std::move(metadata),
                        {},
                        {}});
      }
      st->reset();
      R out;
      out.reserve(hits.size());
      for (auto& t : hits) {
        auto full = ReadTuple(c, std::move(t));
        if (!full) return Error(full.error());
        out.push_back(std::move(*full));
      }
      return out;
    };
    co_return co_await im_.Run<R>(*im_.readers, deadline, "list_lg_checkpoints", std::move(work));
  }

  Awaitable<Result<uint64_t>> DeleteThread(std::string thread_id, Deadline deadline) override {
    if (Status s = core::ValidateId("thread_id", thread_id, im_.options.max_id_bytes); !s.ok())
      co_return Error(s);
    std::function<Result<uint64_t>(Conn&)> work =
        [thread_id = std::move(thread_id)](Conn& c) -> Result<uint64_t> {
      auto n = DeleteAll(c, "DELETE FROM lg_checkpoints WHERE thread_id = ?1", thread_id);
      if (!n) return n;
      for (const char* sql : {"DELETE FROM lg_values WHERE thread_id = ?1",
                              "DELETE FROM lg_writes WHERE thread_id = ?1",
                              "DELETE FROM lg_threads WHERE thread_id = ?1"}) {
        if (auto r = DeleteAll(c, sql, thread_id); !r) return r;
      }
      return n;
    };
    co_return co_await im_.Write<uint64_t>(deadline, "delete_thread", std::move(work));
  }

  Awaitable<Result<uint64_t>> CopyThread(std::string from, std::string to,
                                         Deadline deadline) override {
    for (const auto& [what, id] :
         {std::pair{"from thread_id", &from}, std::pair{"to thread_id", &to}}) {
      if (Status s = core::ValidateId(what, *id, im_.options.max_id_bytes); !s.ok())
        co_return Error(s);
    }
    Impl& im = im_;
    std::function<Result<uint64_t>(Conn&)> work =
        [&im, from = std::move(from), to = std::move(to)](Conn& c) -> Result<uint64_t> {
      auto taken = Count(c, "SELECT count(*) FROM lg_threads WHERE thread_id = ?1", to);
      if (!taken) return Error(taken.error());
      if (*taken > 0)
        return Error(StatusCode::kConflict,
                     fmt::format("thread {} already holds checkpoints; copy into a new thread "
                                 "id or delete it first",
                                 to));
      auto n = Count(c, "SELECT count(*) FROM lg_checkpoints WHERE thread_id = ?1", from);
      if (!n) return Error(n.error());
      if (*n == 0)
        return Error(StatusCode::kNotFound, fmt::format("thread {} has no checkpoints", from));
      for (const char* sql :
           {"INSERT INTO lg_checkpoints SELECT ?2, ns, checkpoint_id, parent_id, checkpoint, "
            "metadata FROM lg_checkpoints WHERE thread_id = ?1",
            "INSERT INTO lg_values SELECT ?2, ns, channel, version, type, encoding, bytes, "
            "checksum FROM lg_values WHERE thread_id = ?1",
            "INSERT INTO lg_writes SELECT ?2, ns, checkpoint_id, task_id, idx, task_path, "
            "channel, type, encoding, bytes, checksum FROM lg_writes WHERE thread_id = ?1"}) {
        auto r = Run(c, sql, "copy thread", [&](Stmt& st) { st.Text(1, from).Text(2, to); });
        if (!r) return Error(r.error());
      }
      if (Status s = Touch(c, to, core::NowMs(im.options)); !s.ok()) return Error(s);
      return static_cast<uint64_t>(*n);
    };
    co_return co_await im_.Write<uint64_t>(deadline, "copy_thread", std::move(work));
  }

  Awaitable<Result<PurgeReport>> Prune(std::string thread_id, std::string thread_prefix,
                                       RetentionPolicy policy, Deadline deadline) override {
    if (Status s = core::ValidateThreads(thread_id, thread_prefix, im_.options.max_id_bytes);
        !s.ok())
      co_return Error(s);
    Impl& im = im_;
    std::function<Result<PurgeReport>(Conn&)> work = [&im, thread_id = std::move(thread_id),
                                                      thread_prefix = std::move(thread_prefix),
                                                      policy](Conn& c) -> Result<PurgeReport> {
      std::vector<std::pair<std::string, int64_t>> threads;  // thread, touched
      Status listed = EachRow(
          c,
          "SELECT thread_id, touched_ms FROM lg_threads WHERE (?1 IS NULL OR thread_id = ?1) AND "
          "substr(thread_id, 1, length(?2)) = ?2",
          "prune",
          [&](Stmt& st) {
            // Text binds without a copy (and an empty view with no data as NULL): both
            // strings outlive the statement.
            if (!thread_id.empty()) st.Text(1, thread_id);
            st.Text(2, thread_id.empty() ? std::string_view(thread_prefix) : std::string_view(""));
          },
          [&](Stmt& st) {
            threads.emplace_back(st.ColText(0), st.ColInt(1));
            return Status();
          });
      if (!listed.ok()) return Error(listed);
      const int64_t now_ms = core::NowMs(im.options);
      PurgeReport report;
      for (const auto& entry : threads) {
        const auto& t = entry.first;
        const auto& touched = entry.second;
        const bool expired =
            policy.thread_ttl.count() > 0 && touched + policy.thread_ttl.count() <= now_ms;
        std::vector<std::pair<std::string, std::string>> doomed;  // ns, checkpoint id
        if (policy.delete_all || expired || policy.keep_last > 0) {
          Status s = EachRow(
              c,
              "SELECT ns, checkpoint_id FROM (SELECT ns, checkpoint_id, row_number() OVER "
              "(PARTITION BY ns ORDER BY checkpoint_id DESC) AS r FROM lg_checkpoints WHERE "
              "thread_id = ?1) WHERE r > ?2",
              "prune",
              [&](Stmt& st) {
                const bool all = policy.delete_all || expired;
                st.Text(1, t).Int(2, all ? 0 : static_cast<int64_t>(policy.keep_last));
              },
              [&](Stmt& st) {
                doomed.emplace_back(st.ColText(0), st.ColText(1));
                return Status();
              });
          if (!s.ok()) return Error(s);
        }
        for (const auto& [ns, id] : doomed)
          if (Status s = EraseCheckpoint(c, t, ns, id, report); !s.ok()) return Error(s);
        if (Status s = Settle(c, t, report); !s.ok()) return Error(s);
      }
      return report;
    };
    co_return co_await im_.Write<PurgeReport>(deadline, "prune", std::move(work));
  }

  Awaitable<Result<PurgeReport>> DeleteForRuns(std::vector<std::string> run_ids,
                                               std::string thread_prefix,
                                               Deadline deadline) override {
    auto runs = core::ValidateRunIds(std::move(run_ids), thread_prefix, im_.options.max_id_bytes);
    if (!runs) co_return Error(runs.error());
    std::function<Result<PurgeReport>(Conn&)> work =
        [runs = std::move(*runs),
         thread_prefix = std::move(thread_prefix)](Conn& c) -> Result<PurgeReport> {
      PurgeReport report;
      if (runs.empty()) return report;
      std::vector<std::tuple<std::string, std::string, std::string>> doomed;  // thread, ns, id
      Status s = EachRow(
          c,
          "SELECT thread_id, ns, checkpoint_id, metadata FROM lg_checkpoints WHERE "
          "substr(thread_id, 1, length(?1)) = ?1",
          "delete for runs", [&](Stmt& st) { st.Text(1, thread_prefix); },
          [&](Stmt& st) {
            if (core::OfRuns(st.ColText(3), runs))
              doomed.emplace_back(st.ColText(0), st.ColText(1), st.ColText(2));
            return Status();
          });
      if (!s.ok()) return Error(s);
      std::set<std::string> threads;
      for (const auto& [t, ns, id] : doomed) {
        if (Status e = EraseCheckpoint(c, t, ns, id, report); !e.ok()) return Error(e);
        threads.insert(t);
      }
      for (const auto& t : threads)
        if (Status e = Settle(c, t, report); !e.ok()) return Error(e);
      return report;
    };
    co_return co_await im_.Write<PurgeReport>(deadline, "delete_for_runs", std::move(work));
  }

 private:
  Impl& im_;
};

Result<std::unique_ptr<StateStore>> SqliteStore::Open(const core::ParsedUri& uri,
                                                      const StoreOptions& options) {
  if (uri.body.empty()) {
    return Error(StatusCode::kInvalidArgument,
                 "sqlite:// needs a file path, e.g. sqlite://agentstate-data/agentstate.db");
  }
  if (Status s = core::CheckKnownParams(uri, {"readers", "queue"}); !s.ok()) return Error(s);
  auto readers = core::UintParam(uri, "readers", 2, 1, 64);
  if (!readers) return Error(readers.error());
  auto queue = core::UintParam(uri, "queue", 10000, 1, 1000000);
  if (!queue) return Error(queue.error());

  auto impl = std::make_unique<Impl>();
  impl->path = uri.body;
  impl->options = options;
  impl->max_queue = *queue;
  const std::string& path = impl->path;
  const std::string where = fmt::format("sqlite://{}", path);

  // The file's own directory is created when its parent exists (as `mkdir` would: the
  // default agentstate-data/ in the working directory); a chain of missing directories is
  // not: a mistyped path must not grow a tree (as root, /nonexistent/dir was created).
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    const std::filesystem::path grand = parent.parent_path();
    if (std::filesystem::exists(parent, ec)) {
      return Error(
          StatusCode::kUnavailable,
          fmt::format("{}: {} is not a directory; pick another path", where, parent.string()));
    }
    if (!grand.empty() && !std::filesystem::is_directory(grand, ec)) {
      return Error(StatusCode::kUnavailable,
                   fmt::format("{}: directory {} does not exist (sqlite:// creates at most the "
                               "file's own directory); "
                               "create it or pick another path",
                               where, grand.string()));
    }
    std::filesystem::create_directory(parent, ec);
    if (ec) {
      return Error(StatusCode::kUnavailable, fmt::format("cannot create directory {} for {}: {}",
                                                         parent.string(), where, ec.message()));
    }
  }
  // An existing path must be a regular file: SQLite on /dev/null would "work" and leave a
  // /dev/null-journal behind.
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec)) {
    return Error(
        StatusCode::kUnavailable,
        fmt::format("{}: {} is not a regular file; give the path of a database file", where, path));
  }

  auto writer = OpenConn(path, false);
  if (!writer) return Error(writer.error());
  Conn& w = **writer;
  // Bound everything at open too: a file locked by another process must not hang start-up.
  w.deadline = Clock::now() + std::chrono::seconds(2);
  auto fail = [&](const Status& s, std::string_view hint) {
    return Error(s.code() == StatusCode::kTimeout ? StatusCode::kUnavailable : s.code(),
                 fmt::format("{}: {}; {}", where, s.message(), hint));
  };
  auto mode = Pragma(w, "PRAGMA journal_mode=WAL");
  if (!mode) return fail(mode.error(), "is the file writable and not locked by another process?");
  if (*mode != "wal") {
    return Error(
        StatusCode::kUnavailable,
        fmt::format("{}: could not switch to WAL mode (got '{}'); use a local, writable file",
                    where, *mode));
  }
  for (const char* p :
       {"PRAGMA synchronous=NORMAL", "PRAGMA cache_size=-16384", "PRAGMA foreign_keys=OFF"}) {
    if (auto r = Pragma(w, p); !r) return fail(r.error(), "check the file");
  }
  if (auto sync = Pragma(w, "PRAGMA synchronous"); sync)
    impl->synchronous = std::atoi(sync->c_str());
  {
    // Proves we can take the write lock now, and creates or checks the schema under it.
    Tx tx(w);
    if (Status s = tx.Begin(); !s.ok()) {
      return fail(s, "another process holds its write lock; stop it or use another file");
    }
    auto ver = Pragma(w, "PRAGMA user_version");
    if (!ver) return fail(ver.error(), "check the file");
    int version = std::atoi(ver->c_str());
    if (version > kSchemaVersion) {
      return Error(
          StatusCode::kUnavailable,
          fmt::format("{}: schema version {} is newer than this build's {}; use a newer agentstate "
                      "(the file is left untouched)",
                      where, version, kSchemaVersion));
    }
    static_assert(std::size(kMigrations) == kSchemaVersion);
    for (int v = version; v < kSchemaVersion; ++v) {
      if (Status s = Exec(w, kMigrations[v], "migrate schema"); !s.ok())
        return fail(s, "is the file writable?");
    }
    if (version < kSchemaVersion) {
      const std::string set = fmt::format("PRAGMA user_version={}", kSchemaVersion);
      if (Status s = Exec(w, set.c_str(), "set schema version"); !s.ok())
        return fail(s, "is the file writable?");
    }
    if (Status s = tx.Commit(); !s.ok()) return fail(s, "is the file writable?");
  }
  w.deadline = Deadline::max();

  impl->writer_conn = std::move(*writer);
  impl->readers = std::make_unique<Impl::Worker>(*readers);
  for (uint64_t i = 0; i < *readers; ++i) {
    auto r = OpenConn(path, true);
    if (!r) return Error(r.error());
    for (const char* p : {"PRAGMA query_only=1", "PRAGMA cache_size=-16384"}) {
      if (auto x = Pragma(**r, p); !x) return fail(x.error(), "check the file");
    }
    impl->readers->free.push_back(std::move(*r));
  }
  auto ck = OpenConn(path, false);
  if (!ck) return Error(ck.error());
  // A connection that has read nothing does not know the file is in WAL mode, and its
  // checkpoints are silent no-ops (the first version's never ran: the WAL only grew).
  if (auto mode = Pragma(**ck, "PRAGMA journal_mode"); !mode || *mode != "wal") {
    return Error(StatusCode::kUnavailable,
                 fmt::format("{}: checkpoint connection is not in WAL mode", where));
  }
  impl->checkpoint_conn = std::move(*ck);
  if (auto r = Pragma(*impl->writer_conn, "PRAGMA wal_autocheckpoint=0"); !r)
    return fail(r.error(), "check the file");
  Impl* raw = impl.get();
  sqlite3_wal_hook(impl->writer_conn->db, &Impl::WalHook, raw);
  impl->writer_thread = std::thread([raw] { raw->WriterLoop(); });
  impl->checkpoint_thread = std::thread([raw] { raw->CheckpointLoop(); });
  auto* store = new SqliteStore(std::move(impl));
  store->langgraph_ = std::make_unique<LangGraph>(*store->impl_);
  return std::unique_ptr<StateStore>(store);
}

Awaitable<Result<SaveAck>> SqliteStore::Save(SaveRequest req, Deadline deadline) {
  if (Status s = core::ValidateSave(req, impl_->options); !s.ok()) co_return Error(s);
  // Checksum and compression on the caller's thread: the single writer does only SQL.
  auto body = std::make_shared<Body>();
  body->checksum = core::Checksum(req.payload);
  body->payload_bytes = req.payload.size();
  core::Encoded enc = core::Encode(req.payload, impl_->options.compress_threshold_bytes.value_or(
                                                    core::kDefaultCompressThreshold));
  body->encoding = enc.encoding;
  body->bytes = std::move(enc.bytes);
  req.payload.clear();
  const bool sync = KeepsCheckpoint(req.checkpoint_type, req.is_recovery_point);
  Impl& im = *impl_;
  std::function<Result<SaveAck>(Conn&)> work = [&im, req = std::move(req),
                                                body](Conn& c) -> Result<SaveAck> {
    const SystemTime now = core::Now(im.options);
    const int64_t now_ms = core::ToUnixMillis(now);
    auto cur = im.Current(c, req.run_id, now_ms);
    if (!cur) return Error(cur.error());
    if (auto replay = core::Replay(req.run_id, req.idempotency_key, body->checksum,
                                   cur->idempotency_key, cur->version, cur->checksum)) {
      return std::move(*replay);
    }
    const int64_t current = cur->version;
    const bool completed = cur->completed;
    if (req.expected_version && *req.expected_version != current) {
      ++im.conflicts;
      return Error(StatusCode::kConflict, fmt::format("run {} is at version {}, expected {}",
                                                      req.run_id, current, *req.expected_version));
    }
    if (completed) {
      ++im.conflicts;
      return Error(StatusCode::kConflict,
                   fmt::format("run {} is completed; restore it or start a new run", req.run_id));
    }
    const StateRecord m = core::RecordOf(req, current + 1, body->checksum, now);
    int64_t expires =
        core::ExpiryMillis(im.options.ttl, RunStatus::kActive, req.is_recovery_point, now);
    if (Status s = im.UpsertRun(c, m, *body, now_ms, expires); !s.ok()) return Error(s);
    if (KeepsCheckpoint(req.checkpoint_type, req.is_recovery_point)) {
      if (Status s = im.SnapshotRun(c, req.run_id, req.checkpoint_type, now_ms); !s.ok())
        return Error(s);
    }
    ++im.saves;
    return SaveAck{m.version, body->checksum};
  };
  co_return co_await im.Write<SaveAck>(deadline, "save", std::move(work), sync);
}

Awaitable<Result<bool>> SqliteStore::Put(StateRecord record, Deadline deadline) {
  if (Status s = core::ValidatePut(record, impl_->options); !s.ok()) co_return Error(s);
  auto body = std::make_shared<Body>();
  body->checksum = record.checksum;
  body->payload_bytes = record.payload.size();
  core::Encoded enc = core::Encode(record.payload, impl_->options.compress_threshold_bytes.value_or(
                                                       core::kDefaultCompressThreshold));
  body->encoding = enc.encoding;
  body->bytes = std::move(enc.bytes);
  record.payload.clear();
  const bool sync = KeepsCheckpoint(record.checkpoint_type, record.is_recovery_point);
  Impl& im = *impl_;
  std::function<Result<bool>(Conn&)> work = [&im, m = std::move(record),
                                             body](Conn& c) -> Result<bool> {
    const int64_t now_ms = core::ToUnixMillis(core::Now(im.options));
    auto cur = im.Current(c, m.run_id, now_ms);
    if (!cur) return Error(cur.error());
    if (m.version <= cur->version) return false;
    const int64_t at_ms = core::ToUnixMillis(m.saved_at);
    const int64_t expires =
        core::ExpiryMillis(im.options.ttl, RunStatus::kActive, m.is_recovery_point, m.saved_at);
    if (Status s = im.UpsertRun(c, m, *body, at_ms, expires); !s.ok()) return Error(s);
    if (KeepsCheckpoint(m.checkpoint_type, m.is_recovery_point)) {
      if (Status s = im.SnapshotRun(c, m.run_id, m.checkpoint_type, at_ms); !s.ok())
        return Error(s);
    }
    ++im.saves;
    return true;
  };
  co_return co_await im.Write<bool>(deadline, "put", std::move(work), sync);
}

Awaitable<Result<std::optional<StateRecord>>> SqliteStore::Load(std::string run_id,
                                                                Deadline deadline) {
  if (Status s = core::ValidateId("run_id", run_id, impl_->options.max_id_bytes); !s.ok())
    co_return Error(s);
  Impl& im = *impl_;
  using R = std::optional<StateRecord>;
  std::function<Result<R>(Conn&)> work = [&im, run_id = std::move(run_id)](Conn& c) -> Result<R> {
    static const std::string sql =
        fmt::format("SELECT {} FROM runs WHERE run_id = ?1 AND expires_at_ms > ?2", kRunColumns);
    auto st = Prepare(c, sql.c_str());
    if (!st) return Error(st.error());
    (*st)->Text(1, run_id).Int(2, core::ToUnixMillis(core::Now(im.options)));
    auto row = (*st)->Step("load");
    if (!row) return Error(row.error());
    ++im.loads;
    if (!*row) return R();
    auto rec = im.ReadRecord(**st, fmt::format("run {}", run_id));
    if (!rec) return Error(rec.error());
    return R(std::move(*rec));
  };
  co_return co_await im.Run<R>(*im.readers, deadline, "load", std::move(work));
}

Awaitable<Result<bool>> SqliteStore::Delete(std::string run_id, Deadline deadline) {
  if (Status s = core::ValidateId("run_id", run_id, impl_->options.max_id_bytes); !s.ok())
    co_return Error(s);
  Impl& im = *impl_;
  std::function<Result<bool>(Conn&)> work = [&im,
                                             run_id = std::move(run_id)](Conn& c) -> Result<bool> {
    const int64_t now_ms = core::ToUnixMillis(core::Now(im.options));
    bool existed = false;
    {
      auto st = Prepare(c, kLiveRunVersion);
      if (!st) return Error(st.error());
      (*st)->Text(1, run_id).Int(2, now_ms);
      auto row = (*st)->Step("delete");
      if (!row) return Error(row.error());
      existed = *row;
    }
    for (const char* sql :
         {"DELETE FROM threads WHERE thread_id IN (SELECT thread_id FROM runs WHERE run_id = ?1) "
          "AND run_id = ?1",
          "DELETE FROM runs WHERE run_id = ?1", "DELETE FROM checkpoints WHERE run_id = ?1"}) {
      auto st = Prepare(c, sql);
      if (!st) return Error(st.error());
      (*st)->Text(1, run_id);
      if (auto r = (*st)->Step("delete"); !r) return Error(r.error());
    }
    return existed;
  };
  co_return co_await im.Write<bool>(deadline, "delete", std::move(work));
}

Awaitable<Result<uint64_t>> SqliteStore::DeletePrefix(std::string prefix, Deadline deadline) {
  if (Status s = core::ValidateDeletePrefix(prefix); !s.ok()) co_return Error(s);
  Impl& im = *impl_;
  std::function<Result<uint64_t>(Conn&)> work =
      [&im, prefix = std::move(prefix)](Conn& c) -> Result<uint64_t> {
    const int64_t now_ms = core::ToUnixMillis(core::Now(im.options));
    uint64_t live = 0;
    {
      auto st = Prepare(c,
                        "SELECT count(*) FROM runs WHERE substr(run_id, 1, length(?1)) = ?1 AND "
                        "expires_at_ms > ?2");
      if (!st) return Error(st.error());
      (*st)->Text(1, prefix).Int(2, now_ms);
      auto row = (*st)->Step("delete prefix");
      if (!row) return Error(row.error());
      live = *row ? U64((*st)->ColInt(0)) : 0;
    }
    for (const char* sql : {"DELETE FROM runs WHERE substr(run_id, 1, length(?1)) = ?1",
                            "DELETE FROM checkpoints WHERE substr(run_id, 1, length(?1)) = ?1",
                            "DELETE FROM threads WHERE substr(thread_id, 1, length(?1)) = ?1"}) {
      auto st = Prepare(c, sql);
      if (!st) return Error(st.error());
      (*st)->Text(1, prefix);
      if (auto r = (*st)->Step("delete prefix"); !r) return Error(r.error());
    }
    return live;
  };
  co_return co_await im.Write<uint64_t>(deadline, "delete_prefix", std::move(work));
}

Awaitable<Done> SqliteStore::Complete(std::string run_id, Deadline deadline) {
  if (Status s = core::ValidateId("run_id", run_id, impl_->options.max_id_bytes); !s.ok())
    co_return Error(s);
  Impl& im = *impl_;
  std::function<Result<bool>(Conn&)> work = [&im, run_id](Conn& c) -> Result<bool> {
    const SystemTime now = core::Now(im.options);
    const int64_t now_ms = core::ToUnixMillis(now);
    auto st = Prepare(
        c,
        "UPDATE runs SET status = 1, expires_at_ms = ?3 WHERE run_id = ?1 AND expires_at_ms > ?2");
    if (!st) return Error(st.error());
    // Completing twice must not extend the completed TTL: keep the earlier expiry.
    int64_t expires = core::ExpiryMillis(im.options.ttl, RunStatus::kCompleted, false, now);
    auto cur = Prepare(
        c, "SELECT status, expires_at_ms FROM runs WHERE run_id = ?1 AND expires_at_ms > ?2");
    if (!cur) return Error(cur.error());
    (*cur)->Text(1, run_id).Int(2, now_ms);
    auto row = (*cur)->Step("complete");
    if (!row) return Error(row.error());
    if (!*row) return false;
    if ((*cur)->ColInt(0) != 0) return true;
    (*st)->Text(1, run_id).Int(2, now_ms).Int(3, expires);
    auto done = (*st)->Step("complete");
    if (!done) return Error(done.error());
    return true;
  };
  auto r = co_await im.Write<bool>(deadline, "complete", std::move(work));
  if (!r) co_return Error(r.error());
  if (!*r) co_return Error(StatusCode::kNotFound, fmt::format("run {} does not exist", run_id));
  co_return Done();
}

namespace {
constexpr const char* kCheckpointInfoColumns =
    "version, type, is_recovery_point, created_at_ms, payload_bytes, checksum";

CheckpointInfo ReadInfo(const Stmt& st, const std::string& run_id) {
  CheckpointInfo i;
  i.run_id = run_id;
  i.version = st.ColInt(0);
  i.checkpoint_id = core::CheckpointId(i.version);
  i.type = static_cast<CheckpointType>(st.ColInt(1));
  i.is_recovery_point = st.ColInt(2) != 0;
  i.created_at = core::FromUnixMillis(st.ColInt(3));
  i.payload_bytes = U64(st.ColInt(4));
  i.checksum = U64(st.ColInt(5));
  return i;
}

// "v000000000042" -> 42; nullopt for anything else.
std::optional<int64_t> ParseCheckpointId(const std::string& id) {
  if (id.size() != 13 || id[0] != 'v') return std::nullopt;
  int64_t v = 0;
  for (std::size_t i = 1; i < id.size(); ++i) {
    if (id[i] < '0' || id[i] > '9') return std::nullopt;
    v = v * 10 + (id[i] - '0');
  }
  return v;
}
}  // namespace

Awaitable<Result<CheckpointInfo>> SqliteStore::Checkpoint(std::string run_id, CheckpointType type,
                                                          Deadline deadline) {
  if (Status s = core::ValidateId("run_id", run_id, impl_->options.max_id_bytes); !s.ok())
    co_return Error(s);
  Impl& im = *impl_;
  std::function<Result<CheckpointInfo>(Conn&)> work = [&im, run_id,
                                                       type](Conn& c) -> Result<CheckpointInfo> {
    const int64_t now_ms = core::ToUnixMillis(core::Now(im.options));
    {
      // Never snapshot damaged bytes as if they were good.
      static const std::string sql =
          fmt::format("SELECT {} FROM runs WHERE run_id = ?1 AND expires_at_ms > ?2", kRunColumns);
      auto st = Prepare(c, sql.c_str());
      if (!st) return Error(st.error());
      (*st)->Text(1, run_id).Int(2, now_ms);
      auto row = (*st)->Step("checkpoint");
      if (!row) return Error(row.error());
      if (!*row) return Error(StatusCode::kNotFound, fmt::format("run {} does not exist", run_id));
      if (auto rec = im.ReadRecord(**st, fmt::format("run {}", run_id)); !rec)
        return Error(rec.error());
    }
    if (Status s = im.SnapshotRun(c, run_id, type, now_ms); !s.ok()) return Error(s);
    static const std::string sql = fmt::format(
        "SELECT {} FROM checkpoints WHERE run_id = ?1 AND version = (SELECT version FROM runs "
        "WHERE run_id = ?1)",
        kCheckpointInfoColumns);
    auto st = Prepare(c, sql.c_str());
    if (!st) return Error(st.error());
    (*st)->Text(1, run_id);
    auto row = (*st)->Step("checkpoint");
    if (!row) return Error(row.error());
    if (!*row)
      return Error(StatusCode::kInternal,
                   fmt::format("checkpoint of run {} vanished inside its transaction", run_id));
    return ReadInfo(**st, run_id);
  };
  co_return co_await im.Write<CheckpointInfo>(deadline, "checkpoint", std::move(work));
}

Awaitable<Result<std::vector<CheckpointInfo>>> SqliteStore::ListCheckpoints(std::string run_id,
                                                                            Deadline deadline) {
  if (Status s = core::ValidateId("run_id", run_id, impl_->options.max_id_bytes); !s.ok())
    co_return Error(s);
  Impl& im = *impl_;
  using R = std::vector<CheckpointInfo>;
  std::function<Result<R>(Conn&)> work = [&im, run_id](Conn& c) -> Result<R> {
    static const std::string sql = fmt::format(
        "SELECT {} FROM checkpoints WHERE run_id = ?1 AND expires_at_ms > ?2 ORDER BY version",
        kCheckpointInfoColumns);
    auto st = Prepare(c, sql.c_str());
    if (!st) return Error(st.error());
    (*st)->Text(1, run_id).Int(2, core::ToUnixMillis(core::Now(im.options)));
    R out;
    while (true) {
      auto row = (*st)->Step("list checkpoints");
      if (!row) return Error(row.error());
      if (!*row) break;
      out.push_back(ReadInfo(**st, run_id));
    }
    return out;
  };
  co_return co_await im.Run<R>(*im.readers, deadline, "list_checkpoints", std::move(work));
}

Awaitable<Result<StateRecord>> SqliteStore::Restore(std::string run_id,
                                                    std::optional<std::string> checkpoint_id,
                                                    Deadline deadline) {
  if (Status s = core::ValidateId("run_id", run_id, impl_->options.max_id_bytes); !s.ok())
    co_return Error(s);
  Impl& im = *impl_;
  std::function<Result<StateRecord>(Conn&)> work = [&im, run_id,
                                                    checkpoint_id](Conn& c) -> Result<StateRecord> {
    const SystemTime now = core::Now(im.options);
    const int64_t now_ms = core::ToUnixMillis(now);
    auto missing = [&] {
      return Error(StatusCode::kNotFound,
                   checkpoint_id
                       ? fmt::format("run {} has no checkpoint {}", run_id, *checkpoint_id)
                       : fmt::format("run {} has no checkpoints", run_id));
    };
    int64_t wanted = INT64_MAX;
    if (checkpoint_id) {
      auto v = ParseCheckpointId(*checkpoint_id);
      if (!v) return missing();
      wanted = *v;
    }
    auto cur = im.Current(c, run_id, now_ms);
    if (!cur) return Error(cur.error());
    // Same column order as kRunColumns, so ReadRecord decodes either table's row.
    static const char* sql =
        "SELECT run_id, thread_id, user_id, agent_type, version, step_count, phase, type, "
        "is_recovery_point, 0, created_at_ms, encoding, payload, payload_bytes, checksum, '' "
        "FROM checkpoints WHERE run_id = ?1 AND expires_at_ms > ?2 AND version <= ?3 "
        "ORDER BY version DESC LIMIT 1";
    auto st = Prepare(c, sql);
    if (!st) return Error(st.error());
    (*st)->Text(1, run_id).Int(2, now_ms).Int(3, wanted);
    auto row = (*st)->Step("restore");
    if (!row) return Error(row.error());
    if (!*row || (checkpoint_id && (*st)->ColInt(4) != wanted)) return missing();
    auto rec = im.ReadRecord(
        **st, fmt::format("checkpoint {} of run {}", core::CheckpointId((*st)->ColInt(4)), run_id));
    if (!rec) return Error(rec.error());
    Body body;
    body.encoding = static_cast<Encoding>((*st)->ColInt(11));
    body.bytes = std::string((*st)->ColBlob(12));
    body.payload_bytes = U64((*st)->ColInt(13));
    body.checksum = rec->checksum;
    StateRecord& r = *rec;
    r.version = cur->version + 1;
    r.status = RunStatus::kActive;
    r.checkpoint_type = CheckpointType::kRecovery;
    r.saved_at = core::FromUnixMillis(now_ms);
    int64_t expires =
        core::ExpiryMillis(im.options.ttl, RunStatus::kActive, r.is_recovery_point, now);
    if (Status s = im.UpsertRun(c, r, body, now_ms, expires); !s.ok()) return Error(s);
    return std::move(r);
  };
  co_return co_await im.Write<StateRecord>(deadline, "restore", std::move(work));
}

Awaitable<Result<std::optional<ThreadContextRecord>>> SqliteStore::ThreadContext(
    std::string thread_id, Deadline deadline) {
  if (Status s = core::ValidateId("thread_id", thread_id, impl_->options.max_id_bytes); !s.ok())
    co_return Error(s);
  Impl& im = *impl_;
  using R = std::optional<ThreadContextRecord>;
  std::function<Result<R>(Conn&)> work = [&im, thread_id](Conn& c) -> Result<R> {
    auto st = Prepare(c,
                      "SELECT run_id, version, updated_at_ms FROM threads WHERE thread_id = ?1 AND "
                      "expires_at_ms > ?2");
    if (!st) return Error(st.error());
    (*st)->Text(1, thread_id).Int(2, core::ToUnixMillis(core::Now(im.options)));
    auto row = (*st)->Step("thread context");
    if (!row) return Error(row.error());
    if (!*row) return R();
    return R(ThreadContextRecord{thread_id, (*st)->ColText(0), (*st)->ColInt(1),
                                 core::FromUnixMillis((*st)->ColInt(2))});
  };
  co_return co_await im.Run<R>(*im.readers, deadline, "thread_context", std::move(work));
}

Awaitable<Result<ActiveRunsPage>> SqliteStore::ActiveRuns(ActiveRunsQuery query,
                                                          Deadline deadline) {
  if (Status s = core::ValidateActiveRunsQuery(query, impl_->options.max_id_bytes); !s.ok())
    co_return Error(s);
  Impl& im = *impl_;
  std::function<Result<ActiveRunsPage>(Conn&)> work = [&im,
                                                       query](Conn& c) -> Result<ActiveRunsPage> {
    // Keyset pagination: the cursor is the last run_id of the previous page.
    const char* sql =
        query.thread_id
            ? "SELECT run_id, thread_id, user_id, agent_type, version, saved_at_ms FROM runs "
              "WHERE run_id > ?1 AND status = 0 AND expires_at_ms > ?2 AND thread_id = ?4 ORDER BY "
              "run_id LIMIT ?3"
            : "SELECT run_id, thread_id, user_id, agent_type, version, saved_at_ms FROM runs "
              "WHERE run_id > ?1 AND status = 0 AND expires_at_ms > ?2 ORDER BY run_id LIMIT ?3";
    auto st = Prepare(c, sql);
    if (!st) return Error(st.error());
    (*st)
        ->Text(1, query.cursor)
        .Int(2, core::ToUnixMillis(core::Now(im.options)))
        .Int(3, query.limit + 1);
    if (query.thread_id) (*st)->Text(4, *query.thread_id);
    ActiveRunsPage page;
    while (true) {
      auto row = (*st)->Step("active runs");
      if (!row) return Error(row.error());
      if (!*row) break;
      if (page.runs.size() == query.limit) {
        page.next_cursor = page.runs.back().run_id;
        break;
      }
      page.runs.push_back({(*st)->ColText(0), (*st)->ColText(1), (*st)->ColText(2),
                           (*st)->ColText(3), (*st)->ColInt(4),
                           core::FromUnixMillis((*st)->ColInt(5))});
    }
    return page;
  };
  co_return co_await im.Run<ActiveRunsPage>(*im.readers, deadline, "active_runs", std::move(work));
}

Awaitable<Result<HealthReport>> SqliteStore::Health(Deadline deadline) {
  Impl& im = *impl_;
  auto start = Clock::now();
  std::function<Result<bool>(Conn&)> work = [](Conn& c) -> Result<bool> {
    return Exec(c, "SELECT 1", "health").ok();
  };
  auto r = co_await im.Run<bool>(*im.readers, deadline, "health", std::move(work));
  if (!r && r.error().code() == StatusCode::kTimeout) co_return Error(r.error());
  HealthReport h;
  h.tiers.push_back({"durable", Describe(), r && *r, r ? "" : r.error().ToString(),
                     std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start)});
  co_return h;
}

StoreStats SqliteStore::Stats() const {
  StoreStats s;
  s.backend = Describe();
  const Impl& im = *impl_;
  s.values = {{"saves", double(im.saves)},
              {"loads", double(im.loads)},
              {"conflicts", double(im.conflicts)},
              {"corruptions", double(im.corruptions)},
              {"timeouts", double(im.timeouts)},
              {"rejected", double(im.rejected)},
              {"write_queue", double(im.write_queue)},
              {"read_queue", double(im.readers->queued)},
              {"write_batches", double(im.batches)},
              {"write_batches_synced", double(im.synced_batches)},
              {"batched_writes", double(im.batched_writes)},
              {"wal_pages", double(im.wal_pages)},
              {"wal_checkpoints", double(im.checkpoints)},
              {"wal_checkpoint_ms_total", double(im.checkpoint_us) / 1000.0},
              {"synchronous", double(im.synchronous)}};
  return s;
}

}  // namespace agentstate::backends::sqlite
