// The report directory and its files: written whole or not at all, and found again (the
// newest report of each scenario) by `agentload report` and `agentload merge`.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agentstate/status.hpp"

namespace agentstate::load {

// `in` with & < > " escaped, for XML and HTML text and attributes.
std::string EscapeMarkup(std::string_view in);

// Writes to `path` atomically (a temporary file, then rename). kUnavailable naming the path.
Status WriteTextFile(const std::filesystem::path& path, const std::string& text);
Status WriteJsonFile(const std::filesystem::path& path, const nlohmann::json& doc);

// Whether the report directory can be made and written; what it made to find out is
// removed again. kUnavailable with a message naming the directory otherwise.
Status CheckReportDir(const std::filesystem::path& dir);
// Creates the directory if needed and proves a file can be written there (the probe is
// removed); kUnavailable with a message naming the directory otherwise.
Status MakeReportDir(const std::filesystem::path& dir);

// A scenario report of ours, as read from its file.
struct FoundReport {
  std::filesystem::path path;
  nlohmann::json doc;
};
// The newest (by timestamp) scenario report of each scenario in `dir`, by test_name: every
// *.json but summary.json that has a test_name and a raw section. Other files are passed to
// `skipped` with why, and otherwise left alone. Reports are untrusted input: read them with
// json_read's total lookups.
std::map<std::string, FoundReport> NewestReports(
    const std::filesystem::path& dir,
    const std::function<void(const std::filesystem::path&, std::string_view why)>& skipped = {});

}  // namespace agentstate::load
