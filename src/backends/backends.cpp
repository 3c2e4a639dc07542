// The backend table behind OpenStore: one line per backend this library links.
#include "agentstate/registry.hpp"
#include "backends/memory/memory_store.hpp"
#include "backends/postgres/pg_store.hpp"
#include "backends/redis/redis_store.hpp"
#include "backends/sqlite/sqlite_store.hpp"
#include "core/registry.hpp"

namespace agentstate {
namespace {

const core::BackendRegistry& Registry() {
  static const core::BackendRegistry registry = [] {
    core::BackendRegistry r;
    r.Add("memory", &backends::MemoryStore::Open);
    r.Add("sqlite", &backends::SqliteStore::Open);
    r.Add("redis", &redis::RedisStore::Open);
    r.Add("postgresql", &pg::PgStore::Open);
    return r;
  }();
  return registry;
}

}  // namespace

Result<std::unique_ptr<StateStore>> OpenStore(std::string_view uri, const StoreOptions& options) {
  return Registry().Open(uri, options);
}

std::vector<std::string> KnownSchemes() { return Registry().Schemes(); }

}  // namespace agentstate
