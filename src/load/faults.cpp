#include "load/faults.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

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

}  // namespace

std::unique_ptr<Fault> SqliteWriteLockFault(std::string path, std::chrono::milliseconds on,
                                            std::chrono::milliseconds off) {
  return std::make_unique<WriteLockFault>(std::move(path), on, off);
}

Result<std::unique_ptr<Fault>> MakeFault(std::string_view store_uri) {
  auto uri = core::ParseUri(store_uri);
  if (!uri) return Error(uri.error());
  if (uri->scheme == "sqlite") {
    using std::chrono::milliseconds;
    return SqliteWriteLockFault(uri->body, milliseconds(400), milliseconds(400));
  }
  return std::unique_ptr<Fault>();
}

}  // namespace agentstate::load
