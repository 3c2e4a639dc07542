// What a scenario checks on the tiered store beyond its API (load::StoreChecks): the durable
// tier on its own once the write-behind queue is empty, the write-behind's drops, and the
// analytics tier's events as its server counts them. The program supplies it when it opens a
// tiered store; the engine knows only the interface.
#pragma once

#include "agentstate/tiered.hpp"
#include "load/engine/scenario.hpp"

namespace agentstate::agentload {

class TieredChecks final : public load::StoreChecks {
 public:
  explicit TieredChecks(TieredStore& store) : store_(store) {}

  std::map<std::string, double> Baseline() override;
  Awaitable<void> Verify(const load::Ledger& ledger, const std::map<std::string, double>& baseline,
                         load::ScenarioSpec& spec, load::ScenarioResult& result) override;

 private:
  TieredStore& store_;
};

}  // namespace agentstate::agentload
