#include "load/faults.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "backends/redis/client.hpp"
#include "core/uri.hpp"

namespace agentstate::load {
namespace {

class WriteLockFault final : public Fault {
 public:
  WriteLockFault(std::string path, std::chrono::milliseconds on, std::chrono::milliseconds off)
      : path_(std::move(path)), on_(on), off_(off) {}
  ~WriteLockFault() override { End(); }

  std::string Describe() const override {
    return fmt::format("sqlite write lock on {} held by another connection, {} ms on / {} ms off", path_,
                       on_.count(), off_.count());
  }

  Status Begin() override {
    if (thread_.joinable()) return Status();
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close(db);
      return Status(StatusCode::kUnavailable, fmt::format("cannot open {} to lock it: {}", path_, msg));
    }
    // Our own store's writer holds the lock for milliseconds at a time; wait for it.
    sqlite3_busy_timeout(db, 2000);
    // Take the lock before returning, so the phase starts with the fault in force.
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
      std::string msg = sqlite3_errmsg(db);
      sqlite3_close(db);
      return Status(StatusCode::kUnavailable, fmt::format("cannot take the write lock of {}: {}", path_, msg));
    }
    {
      std::lock_guard lock(mu_);
      stop_ = false;
    }
    thread_ = std::thread([this, db] { Loop(db, /*held=*/true); });
    return Status();
  }

  void End() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  // Holding and releasing the lock on a schedule is the fault itself, not measured work.
  void Loop(sqlite3* db, bool held) {
    std::unique_lock lock(mu_);
    while (!stop_) {
      if (!held) {
        lock.unlock();
        held = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
        lock.lock();
      }
      cv_.wait_for(lock, on_, [this] { return stop_; });
      if (held) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      held = false;
      if (stop_) break;
      cv_.wait_for(lock, off_, [this] { return stop_; });
    }
    lock.unlock();
    sqlite3_close(db);
  }

  std::string path_;
  std::chrono::milliseconds on_, off_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// redis-server holds every client's writes for `on`, then lets them through for `off`
// (CLIENT PAUSE WRITE): what a server stalled by a fork, a slow disk or a big DEL looks like
// to its clients. Reads carry on. Sent on a connection of its own (hiredis, blocking).
class RedisPauseFault final : public Fault {
 public:
  RedisPauseFault(redis::RedisOptions o, std::chrono::milliseconds on, std::chrono::milliseconds off)
      : o_(std::move(o)), on_(on), off_(off) {}
  ~RedisPauseFault() override { End(); }

  std::string Describe() const override {
    return fmt::format("redis-server at {} holds all writes (CLIENT PAUSE WRITE), {} ms on / {} ms off", o_.redacted_uri,
                       on_.count(), off_.count());
  }

  Status Begin() override {
    if (thread_.joinable()) return Status();
    const timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout(o_.host.c_str(), o_.port, tv);
    auto fail = [&](std::string why) {
      if (c) redisFree(c);
      return Status(StatusCode::kUnavailable, fmt::format("cannot reach {} to pause it: {}", o_.redacted_uri, why));
    };
    if (!c || c->err) return fail(c ? c->errstr : "out of memory");
    redisSetTimeout(c, tv);
    if (!o_.password.empty() && !Ok(c, {"AUTH", o_.password})) return fail("AUTH refused");
    if (!Ok(c, {"CLIENT", "PAUSE", std::to_string(on_.count()), "WRITE"})) return fail("CLIENT PAUSE refused");
    {
      std::lock_guard lock(mu_);
      stop_ = false;
    }
    thread_ = std::thread([this, c] { Loop(c); });
    return Status();
  }

  void End() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static bool Ok(redisContext* c, std::vector<std::string> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
    const bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    return ok;
  }

  // The pause expires by itself after `on`; the loop re-arms it after `off`.
  void Loop(redisContext* c) {
    std::unique_lock lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, on_ + off_, [this] { return stop_; });
      if (stop_) break;
      lock.unlock();
      Ok(c, {"CLIENT", "PAUSE", std::to_string(on_.count()), "WRITE"});
      lock.lock();
    }
    lock.unlock();
    Ok(c, {"CLIENT", "UNPAUSE"});
    redisFree(c);
  }

  redis::RedisOptions o_;
  std::chrono::milliseconds on_, off_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Fault> SqliteWriteLockFault(std::string path, std::chrono::milliseconds on,
                                            std::chrono::milliseconds off) {
  return std::make_unique<WriteLockFault>(std::move(path), on, off);
}

Result<std::unique_ptr<Fault>> MakeFault(std::string_view store_uri) {
  auto uri = core::ParseUri(store_uri);
  if (!uri) return Error(uri.error());
  using std::chrono::milliseconds;
  if (uri->scheme == "sqlite") {
    return SqliteWriteLockFault(uri->body, milliseconds(400), milliseconds(400));
  }
  if (uri->scheme == "redis") {
    auto o = redis::ParseRedisUri(*uri, {"prefix"});
    if (!o) return Error(o.error());
    return std::unique_ptr<Fault>(std::make_unique<RedisPauseFault>(std::move(*o), milliseconds(400), milliseconds(400)));
  }
  return std::unique_ptr<Fault>();
}

}  // namespace agentstate::load
