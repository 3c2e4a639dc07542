// The store contract suite through one tenant's view of a store (server::TenantStore, what
// agentstated serves each tenant), over any other traits: a neighbour tenant's runs share the
// store, so every listing must leave them out and every cursor must page past them, on
// id-ordered stores and on Redis's SCAN order alike.
#pragma once

#include <memory>
#include <string>

#include "agentstate/registry.hpp"
#include "server/tenant_store.hpp"
#include "support/requests.hpp"
#include "support/run.hpp"

namespace agentstate::testing {

template <typename Inner>
struct TenantTraits {
  static constexpr bool kSortedActiveRuns = Inner::kSortedActiveRuns;
  static constexpr const char* kTenant = "acme";
  Inner inner;
  std::unique_ptr<StateStore> backend;

  Result<std::unique_ptr<StateStore>> Open(const StoreOptions& o) {
    StoreOptions room = o;
    room.max_id_bytes += server::kTenantPrefixBytes;
    auto opened = OpenStore(inner.Uri(), room);
    if (!opened) return Error(opened.error());
    backend = std::move(*opened);
    // The neighbour's runs, before and after this tenant's in id order.
    for (const char* id : {"aardvark/run_1", "aardvark/run_2", "zebra/run_1", "zebra/run_2"}) {
      SaveRequest r;
      r.run_id = id;
      r.thread_id = std::string(id) + "_thread";
      r.user_id = "neighbour";
      r.agent_type = "agent";
      r.payload = R"({"neighbour":true})";
      auto ack = RunSync([&]() -> Awaitable<Result<SaveAck>> {
        co_return co_await backend->Save(r, DeadlineIn(std::chrono::seconds(5)));
      });
      if (!ack) return Error(ack.error());
    }
    return std::unique_ptr<StateStore>(
        std::make_unique<server::TenantStore>(*backend, kTenant, o.max_id_bytes));
  }
  bool Corrupt(StateStore&, const std::string& run_id) {
    return inner.Corrupt(*backend, std::string(kTenant) + "/" + run_id);
  }
  // For the checkpoint contract: a stored value damaged under the tenant's thread id.
  bool CorruptValue(StateStore&, const std::string& thread, const std::string& ns,
                    const std::string& channel, const std::string& version) {
    return inner.CorruptValue(*backend, std::string(kTenant) + "/" + thread, ns, channel, version);
  }
};

}  // namespace agentstate::testing
