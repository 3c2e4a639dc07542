// The StateStore contract on the embedded stores: memory:// and sqlite://.
#include "backends/store_contract.hpp"
#include "agentstate/tiered.hpp"
#include "backends/embedded_traits.hpp"
#include "backends/memory/memory_store.hpp"
#include "backends/tenant_traits.hpp"

namespace agentstate {
namespace {

using testing::MemoryTraits;
using testing::SqliteTraits;

// The tiered store, hermetic: memory:// in front of sqlite://.
struct TieredTraits {
  static constexpr const char* kName = "tiered_memory_sqlite";
  static constexpr bool kSortedActiveRuns = true;  // the hot tier's order
  SqliteTraits durable;
  Result<std::unique_ptr<StateStore>> Open(const StoreOptions& o) {
    return OpenTieredStore("memory://", durable.Uri(),
                           {.flush_window = std::chrono::milliseconds(20)}, o);
  }
  // Damage in both tiers, once the durable one has the run.
  bool Corrupt(StateStore& store, const std::string& run_id) {
    auto& t = dynamic_cast<TieredStore&>(store);
    Status flushed =
        RunSync([&]() -> Awaitable<Status> { co_return co_await t.Flush(DeadlineIn(5s)); });
    return flushed.ok() &&
           dynamic_cast<backends::memory::MemoryStore&>(t.hot()).CorruptForTest(run_id) &&
           SqliteTraits::CorruptFile(durable.dir / "state.db", run_id);
  }
};

// One tenant's view (agentstated's), with a neighbour tenant in the same store.
struct TenantMemoryTraits : testing::TenantTraits<MemoryTraits> {
  static constexpr const char* kName = "tenant_memory";
};
struct TenantSqliteTraits : testing::TenantTraits<SqliteTraits> {
  static constexpr const char* kName = "tenant_sqlite";
};

using EmbeddedStores = ::testing::Types<MemoryTraits, SqliteTraits, TieredTraits,
                                        TenantMemoryTraits, TenantSqliteTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(Embedded, StoreContractTest, EmbeddedStores, TraitsName);

}  // namespace
}  // namespace agentstate
