// Shards: `--shard i/N` runs every N-th agent of each scenario; `agentload merge` turns the
// shards' reports back into the report of the whole run. Reports carry their raw
// measurements (exact histograms, counts, ledger verdicts) under "raw", so merged
// percentiles are the percentiles of the union, and gates are evaluated once, on the union.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agentstate/status.hpp"
#include "load/engine/scenario.hpp"

namespace agentstate::load {

// The fault windows as report JSON.
nlohmann::json Faults(const std::vector<FaultWindow>& faults);

// The "raw" section of a scenario report.
nlohmann::json RawJson(const ScenarioResult& result);

// A ledger verdict's counts as JSON: the one writer of the shape ResultFromReport reads
// (raw.ledger), also used for the report's additional_data.ledger and ledger_durable_tier.
nlohmann::json LedgerJson(const LedgerVerdict& verdict);

// Rebuilds a result's measurements from a report; `spec` (from the catalogue) supplies the
// declaration, and the report's gate limits replace the spec's. Metrics and gates are not
// evaluated: MergeResults + FinishScenario do that. kInvalidArgument for a report that is
// not one, or whose scenario version differs from `spec`'s.
Result<ScenarioResult> ResultFromReport(const nlohmann::json& report, const ScenarioSpec& spec);

// Sums the shards' measurements (phases by name, histograms bucket by bucket, windows by
// index, ledger verdicts) and runs FinishScenario on the union. kInvalidArgument when the
// shards do not fit together (different phases or gate limits).
Result<ScenarioResult> MergeResults(std::vector<ScenarioResult> shards);

}  // namespace agentstate::load
