// One tenant's view of a store: every run and thread id it names (LangGraph's threads of
// the checkpoint model too: Checkpoints()) is stored as
// "<tenant>/<id>", and every id it gets back has the prefix taken off. Whatever ids a
// tenant sends, it can only read, list, overwrite or delete runs under its own prefix: the
// isolation lives here, below the HTTP layer, not in the route handlers.
//
// Tenant names are 1..64 of [a-z0-9_-], starting with a letter or digit (ValidTenant), so
// "/" never appears in one and no tenant's prefix is another's.
//
// A tenant's ids are checked here as the store would check them (empty, control bytes,
// UTF-8, at most `max_id_bytes`) before the prefix is added: the store beneath is opened with
// room for the prefix (max_id_bytes + kTenantPrefixBytes), so every tenant gets the same
// limit whatever its name's length.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "agentstate/checkpoint_store.hpp"
#include "agentstate/state_store.hpp"

namespace agentstate::server {

bool ValidTenant(std::string_view name);

// The longest prefix: a 64-byte tenant name and "/".
inline constexpr std::size_t kTenantPrefixBytes = 65;

class TenantStore final : public StateStore {
 public:
  // `inner` must outlive this view; `tenant` must be ValidTenant.
  TenantStore(StateStore& inner, std::string tenant, std::size_t max_id_bytes);
  ~TenantStore() override;

  std::string Describe() const override { return inner_.Describe(); }
  Awaitable<Result<SaveAck>> Save(SaveRequest request, Deadline deadline) override;
  Awaitable<Result<bool>> Put(StateRecord record, Deadline deadline) override;
  Awaitable<Result<std::optional<StateRecord>>> Load(std::string run_id,
                                                     Deadline deadline) override;
  Awaitable<Result<bool>> Delete(std::string run_id, Deadline deadline) override;
  Awaitable<Done> Complete(std::string run_id, Deadline deadline) override;
  Awaitable<Result<CheckpointInfo>> Checkpoint(std::string run_id, CheckpointType type,
                                               Deadline deadline) override;
  Awaitable<Result<std::vector<CheckpointInfo>>> ListCheckpoints(std::string run_id,
                                                                 Deadline deadline) override;
  Awaitable<Result<StateRecord>> Restore(std::string run_id,
                                         std::optional<std::string> checkpoint_id,
                                         Deadline deadline) override;
  Awaitable<Result<std::optional<ThreadContextRecord>>> ThreadContext(std::string thread_id,
                                                                      Deadline deadline) override;
  // The tenant's active runs only, in the store's order. next_cursor is opaque: one of the
  // tenant's own run ids or the store's own position, never another tenant's id.
  Awaitable<Result<ActiveRunsPage>> ActiveRuns(ActiveRunsQuery query, Deadline deadline) override;
  // The tenant's own runs under `prefix` (non-empty, as for every store).
  Awaitable<Result<uint64_t>> DeletePrefix(std::string prefix, Deadline deadline) override;
  Awaitable<Result<HealthReport>> Health(Deadline deadline) override;
  StoreStats Stats() const override { return inner_.Stats(); }
  uint64_t Generation() const override { return inner_.Generation(); }
  // The tenant's view of the store's checkpoint model (its threads only; a list or prune
  // of every thread is of the tenant's every thread); null when the store has none.
  CheckpointStore* Checkpoints() override;

 private:
  class TenantCheckpoints;

  std::string In(std::string_view id) const { return prefix_ + std::string(id); }
  // The store's own check of a tenant's id, on the id as the tenant gave it.
  // Every id a tenant names is checked so, the prefixed ones and the others alike (a
  // namespace, a checkpoint, task or channel id): the store beneath would let the others be
  // kTenantPrefixBytes longer.
  Status Check(std::string_view what, std::string_view id) const;
  // The same for an id that may be empty (a namespace, a parent, "the newest").
  Status CheckIfGiven(std::string_view what, std::string_view id) const;
  std::string Out(std::string_view id) const;
  // The store's error with this tenant's prefix taken out of its message.
  Status Scrub(const Status& s) const;
  void Strip(StateRecord& r) const;

  StateStore& inner_;
  std::string prefix_;
  std::size_t max_id_bytes_;
  std::unique_ptr<TenantCheckpoints> checkpoints_;  // made on first use
};

}  // namespace agentstate::server
