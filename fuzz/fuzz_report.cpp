// Scenario reports read back by `agentload merge` (load/report/merge.*): files a user names
// on the command line, which may come from another run or version, or be cut off by a full
// disk. Any JSON either rebuilds a result or is refused with a message, never a crash or a
// read past its arrays; what rebuilds merges with itself as two shards would.
#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "load/catalogue/scenarios.hpp"
#include "load/report/merge.hpp"

namespace load = agentstate::load;

namespace {

// The spec a report is read against, as merge builds it: its scenario in its profile.
const load::ScenarioSpec* SpecFor(const nlohmann::json& doc) {
  static std::map<std::pair<std::string, bool>, load::ScenarioSpec> specs;
  if (!doc.is_object()) return nullptr;
  const auto name = doc.find("test_name");
  if (name == doc.end() || !name->is_string()) return nullptr;
  const load::ScenarioEntry* entry = load::FindScenario(name->get<std::string>());
  if (!entry) return nullptr;
  bool quick = false;
  if (const auto ad = doc.find("additional_data"); ad != doc.end() && ad->is_object()) {
    const auto p = ad->find("profile");
    quick = p != ad->end() && p->is_string() && p->get<std::string>() == "quick";
  }
  auto key = std::make_pair(entry->name, quick);
  auto it = specs.find(key);
  if (it == specs.end()) it = specs.emplace(key, entry->build(load::Profile{.quick = quick})).first;
  return &it->second;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const nlohmann::json doc = nlohmann::json::parse(data, data + size, nullptr,
                                                   /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;
  const load::ScenarioSpec* spec = SpecFor(doc);
  if (!spec) return 0;
  auto result = load::ResultFromReport(doc, *spec);
  if (!result) {
    if (result.error().message().empty()) __builtin_trap();
    return 0;
  }
  std::vector<load::ScenarioResult> shards{*result, *result};
  auto merged = load::MergeResults(std::move(shards));
  if (!merged && merged.error().message().empty()) __builtin_trap();
  return 0;
}
