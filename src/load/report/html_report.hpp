// index.html: the run as pictures, one self-contained file (inline CSS and SVG, no script,
// no network). It is made from the same JSON documents as the reports, so a run, a merge
// and `agentload report DIR` all produce it the same way.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agentstate/status.hpp"

namespace agentstate::load {

// The page for a run: `summary` is summary.json, `scenarios` the scenario reports.
std::string HtmlReport(const nlohmann::json& summary, const std::vector<nlohmann::json>& scenarios);

// Reads summary.json and the newest report of each scenario in `dir` and writes
// dir/index.html. kInvalidArgument naming the file for a directory that holds no run.
Status WriteHtmlReport(const std::filesystem::path& dir);

// Series longer than this are downsampled for charts, keeping each bucket's maximum.
inline constexpr std::size_t kMaxChartPoints = 1500;

}  // namespace agentstate::load
