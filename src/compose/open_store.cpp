// The composition root: the backend table behind OpenStore (one line per backend this
// library links) and OpenTieredStore, which composes tiers into the tiered store. The one
// place that names every backend and the tiered store; everything above it opens stores by
// URI.
#include "agentstate/registry.hpp"
#include "backends/http/http_store.hpp"
#include "backends/memory/memory_store.hpp"
#include "backends/postgres/pg_store.hpp"
#include "backends/redis/redis_store.hpp"
#include "backends/sqlite/sqlite_store.hpp"
#include "core/registry.hpp"
#include "tiered/tiered_store.hpp"

namespace agentstate {
namespace {

const core::BackendRegistry& Registry() {
  static const core::BackendRegistry registry = [] {
    core::BackendRegistry r;
    r.Add("memory", &backends::memory::MemoryStore::Open);
    r.Add("sqlite", &backends::sqlite::SqliteStore::Open);
    r.Add("redis", &backends::redis::RedisStore::Open);
    r.Add("redis+cluster", &backends::redis::RedisStore::Open);
    r.Add("postgresql", &backends::postgres::PgStore::Open);
    r.Add("http", &backends::http::HttpStore::Open);
    r.Add("https", &backends::http::HttpStore::Open);
    return r;
  }();
  return registry;
}

}  // namespace

Result<std::unique_ptr<StateStore>> OpenStore(std::string_view uri, const StoreOptions& options) {
  return Registry().Open(uri, options);
}

std::vector<std::string> KnownSchemes() { return Registry().Schemes(); }

Result<std::unique_ptr<TieredStore>> OpenTieredStore(std::string_view hot_uri,
                                                     std::string_view durable_uri,
                                                     const TieredOptions& tiered,
                                                     const StoreOptions& options,
                                                     std::string_view analytics_uri) {
  if (tiered.flush_window.count() <= 0) {
    return Error(StatusCode::kInvalidArgument,
                 "the tiered store's flush window must be > 0, e.g. 100ms");
  }
  // The tiers take the tiered store's word for the JSON: it checks every save at its entry
  // (core::ValidateSave), and a tier checking again would parse each document twice.
  StoreOptions tier_options = options;
  tier_options.validate_json = false;
  auto hot = OpenStore(hot_uri, tier_options);
  if (!hot) return Error(hot.error());
  auto durable = OpenStore(durable_uri, tier_options);
  if (!durable) return Error(durable.error());
  std::unique_ptr<backends::clickhouse::AnalyticsSink> analytics;
  if (!analytics_uri.empty()) {
    auto sink = backends::clickhouse::AnalyticsSink::Open(analytics_uri);
    if (!sink) return Error(sink.error());
    analytics = std::move(*sink);
  }
  return std::unique_ptr<TieredStore>(std::make_unique<tiered::TieredStoreImpl>(
      std::move(*hot), std::move(*durable), std::move(analytics), tiered, options));
}

}  // namespace agentstate
