// The StateStore methods with a default: what a backend gets unless it does better.
#include "agentstate/state_store.hpp"

namespace agentstate {

Awaitable<Result<std::size_t>> StateStore::PutMany(std::vector<StateRecord> records,
                                                   Deadline deadline) {
  std::size_t applied = 0;
  for (auto& r : records) {
    auto one = co_await Put(std::move(r), deadline);
    if (!one) co_return Error(one.error());
    applied += *one ? 1 : 0;
  }
  co_return applied;
}

}  // namespace agentstate
