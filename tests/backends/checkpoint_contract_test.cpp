// The CheckpointStore contract on the embedded stores: memory://, sqlite://, and the tiered
// store over them (its durable tier's model).
#include "backends/checkpoint_contract.hpp"
#include "agentstate/tiered.hpp"
#include "backends/embedded_traits.hpp"
#include "backends/memory/memory_checkpoints.hpp"
#include "backends/tenant_traits.hpp"

namespace agentstate {
namespace {

struct MemoryCheckpointTraits : testing::MemoryTraits {
  bool CorruptValue(StateStore& store, const std::string& thread, const std::string& ns,
                    const std::string& channel, const std::string& version) {
    return dynamic_cast<backends::memory::MemoryCheckpoints&>(*store.Checkpoints())
        .CorruptValueForTest(thread, ns, channel, version);
  }
};

struct SqliteCheckpointTraits : testing::SqliteTraits {
  // Damage at rest: one bit of the stored value's bytes, behind the store's back.
  bool CorruptValue(StateStore&, const std::string& thread, const std::string& ns,
                    const std::string& channel, const std::string& version) {
    sqlite3* db = nullptr;
    if (sqlite3_open((dir / "state.db").c_str(), &db) != SQLITE_OK) return false;
    sqlite3_busy_timeout(db, 2000);
    const auto bind = [&](sqlite3_stmt* st) {
      int i = 1;
      for (const std::string* v : {&thread, &ns, &channel, &version})
        sqlite3_bind_text(st, i++, v->c_str(), -1, SQLITE_TRANSIENT);
    };
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT bytes FROM lg_values WHERE thread_id = ?1 AND ns = ?2 AND "
                       "channel = ?3 AND version = ?4",
                       -1, &st, nullptr);
    bind(st);
    std::string blob;
    if (sqlite3_step(st) == SQLITE_ROW)
      blob.assign(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                  sqlite3_column_bytes(st, 0));
    sqlite3_finalize(st);
    bool ok = !blob.empty();
    if (ok) {
      blob[0] = static_cast<char>(blob[0] ^ 0x01);
      sqlite3_prepare_v2(db,
                         "UPDATE lg_values SET bytes = ?5 WHERE thread_id = ?1 AND ns = ?2 AND "
                         "channel = ?3 AND version = ?4",
                         -1, &st, nullptr);
      bind(st);
      sqlite3_bind_blob(st, 5, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
      ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db) == 1;
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return ok;
  }
};

// The tiered store serves its durable tier's checkpoint model.
struct TieredCheckpointTraits {
  static constexpr const char* kName = "tiered_memory_sqlite";
  SqliteCheckpointTraits durable;
  Result<std::unique_ptr<StateStore>> Open(const StoreOptions& o) {
    return OpenTieredStore("memory://", durable.Uri(), {}, o);
  }
  bool CorruptValue(StateStore& store, const std::string& thread, const std::string& ns,
                    const std::string& channel, const std::string& version) {
    return durable.CorruptValue(store, thread, ns, channel, version);
  }
};

// The model through one tenant's view of the store (server::TenantStore, what agentstated
// serves each tenant), whose thread ids are stored with the tenant's prefix.
struct TenantCheckpointTraits : testing::TenantTraits<MemoryCheckpointTraits> {
  static constexpr const char* kName = "tenant_memory";
};

struct TraitsName {
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};

using EmbeddedCheckpointStores = ::testing::Types<MemoryCheckpointTraits, SqliteCheckpointTraits,
                                                  TieredCheckpointTraits, TenantCheckpointTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(Embedded, CheckpointContractTest, EmbeddedCheckpointStores,
                               TraitsName);

}  // namespace
}  // namespace agentstate
