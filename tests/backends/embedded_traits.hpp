// The embedded stores' traits for the StateStore contract suite (store_contract.hpp):
// memory:// and sqlite://, each able to damage a stored payload behind the store's back.
// Shared by the embedded suite and the suite over http:// (tests/integration).
#pragma once

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "agentstate/state_store.hpp"
#include "backends/memory/memory_store.hpp"

namespace agentstate::testing {

struct MemoryTraits {
  static constexpr const char* kName = "memory";
  static constexpr bool kSortedActiveRuns = true;
  std::string Uri() { return "memory://"; }
  bool Corrupt(StateStore& store, const std::string& run_id) {
    return dynamic_cast<backends::memory::MemoryStore&>(store).CorruptForTest(run_id);
  }
};

struct SqliteTraits {
  static constexpr const char* kName = "sqlite";
  static constexpr bool kSortedActiveRuns = true;
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("agentstate-contract-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  static inline std::atomic<int> counter{0};
  ~SqliteTraits() { std::filesystem::remove_all(dir); }
  std::string Uri() { return "sqlite://" + (dir / "state.db").string(); }
  bool Corrupt(StateStore&, const std::string& run_id) {
    return CorruptFile(dir / "state.db", run_id);
  }
  // Damage at rest: flip one bit of the stored payload behind the store's back.
  static bool CorruptFile(const std::filesystem::path& path, const std::string& run_id) {
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return false;
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT payload FROM runs WHERE run_id = ?1", -1, &st, nullptr);
    sqlite3_bind_text(st, 1, run_id.c_str(), -1, SQLITE_TRANSIENT);
    std::string blob;
    if (sqlite3_step(st) == SQLITE_ROW) {
      blob.assign(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                  sqlite3_column_bytes(st, 0));
    }
    sqlite3_finalize(st);
    bool ok = !blob.empty();
    if (ok) {
      blob[blob.size() / 2] = static_cast<char>(blob[blob.size() / 2] ^ 0x01);
      sqlite3_prepare_v2(db, "UPDATE runs SET payload = ?2 WHERE run_id = ?1", -1, &st, nullptr);
      sqlite3_bind_text(st, 1, run_id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_blob(st, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
      ok = sqlite3_step(st) == SQLITE_DONE;
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return ok;
  }
};

}  // namespace agentstate::testing
