// A StateStore that forwards every call to another one (a memory store by default).
// Tests derive from it and override only the calls whose behaviour they change: a store
// that stalls, blocks its caller, damages what it returns, or is slow.
#pragma once

#include <memory>

#include "agentstate/registry.hpp"
#include "agentstate/state_store.hpp"

namespace agentstate::testing {

class ForwardingStore : public StateStore {
 public:
  ForwardingStore() : inner_(std::move(*OpenStore("memory://", {}))) {}
  explicit ForwardingStore(std::unique_ptr<StateStore> inner) : inner_(std::move(inner)) {}

  std::string Describe() const override { return "forwarding(" + inner_->Describe() + ")"; }
  Awaitable<Result<SaveAck>> Save(SaveRequest r, Deadline d) override {
    return inner_->Save(std::move(r), d);
  }
  Awaitable<Result<bool>> Put(StateRecord r, Deadline d) override {
    return inner_->Put(std::move(r), d);
  }
  Awaitable<Result<std::optional<StateRecord>>> Load(std::string id, Deadline d) override {
    return inner_->Load(std::move(id), d);
  }
  Awaitable<Result<bool>> Delete(std::string id, Deadline d) override {
    return inner_->Delete(std::move(id), d);
  }
  Awaitable<Done> Complete(std::string id, Deadline d) override {
    return inner_->Complete(std::move(id), d);
  }
  Awaitable<Result<CheckpointInfo>> Checkpoint(std::string id, CheckpointType t,
                                               Deadline d) override {
    return inner_->Checkpoint(std::move(id), t, d);
  }
  Awaitable<Result<std::vector<CheckpointInfo>>> ListCheckpoints(std::string id,
                                                                 Deadline d) override {
    return inner_->ListCheckpoints(std::move(id), d);
  }
  Awaitable<Result<StateRecord>> Restore(std::string id, std::optional<std::string> c,
                                         Deadline d) override {
    return inner_->Restore(std::move(id), std::move(c), d);
  }
  Awaitable<Result<std::optional<ThreadContextRecord>>> ThreadContext(std::string id,
                                                                      Deadline d) override {
    return inner_->ThreadContext(std::move(id), d);
  }
  Awaitable<Result<uint64_t>> DeletePrefix(std::string prefix, Deadline d) override {
    return inner_->DeletePrefix(std::move(prefix), d);
  }
  Awaitable<Result<ActiveRunsPage>> ActiveRuns(ActiveRunsQuery q, Deadline d) override {
    return inner_->ActiveRuns(std::move(q), d);
  }
  Awaitable<Result<HealthReport>> Health(Deadline d) override { return inner_->Health(d); }
  StoreStats Stats() const override { return inner_->Stats(); }

 protected:
  StateStore& inner() { return *inner_; }

 private:
  std::unique_ptr<StateStore> inner_;
};

}  // namespace agentstate::testing
