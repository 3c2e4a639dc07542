#include "load/report/files.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>

#include "load/report/json_read.hpp"

namespace agentstate::load {

std::string EscapeMarkup(std::string_view in) {
  std::string out;
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

Status WriteTextFile(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + fmt::format(".tmp{}", ::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (out) out << text;
    out.flush();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return Status(StatusCode::kUnavailable, fmt::format("cannot write report {}", path.string()));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return Status(StatusCode::kUnavailable,
                  fmt::format("cannot write report {}: {}", path.string(), ec.message()));
  }
  return Status();
}

Status WriteJsonFile(const std::filesystem::path& path, const nlohmann::json& doc) {
  // Invalid UTF-8 in a string (a store URI, an error from a server) is written as U+FFFD:
  // a report is never lost for one odd byte.
  return WriteTextFile(path,
                       doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

Status CheckReportDir(const std::filesystem::path& dir) {
  // Proven by making it and writing a probe, then undone: a run that fails before it has
  // results (a store that cannot be opened) leaves no empty directory behind.
  std::error_code ec;
  std::filesystem::path first_missing;
  for (std::filesystem::path at = dir; !at.empty() && !std::filesystem::exists(at, ec);
       at = at.parent_path()) {
    first_missing = at;
    if (at.parent_path() == at) break;
  }
  Status made = MakeReportDir(dir);
  if (!first_missing.empty()) {
    // Only directories this call made, and only while empty (remove never takes a full one).
    for (std::filesystem::path at = dir;; at = at.parent_path()) {
      std::filesystem::remove(at, ec);
      if (at == first_missing || at.empty() || at.parent_path() == at) break;
    }
  }
  return made;
}

Status MakeReportDir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    return Status(
        StatusCode::kUnavailable,
        fmt::format("report directory {} cannot be created ({}); pass a writable --report-dir",
                    dir.string(), ec ? ec.message() : "not a directory"));
  }
  const auto probe = dir / fmt::format(".agentload-probe-{}", ::getpid());
  {
    std::ofstream out(probe);
    out << "probe";
    out.flush();
    if (!out) {
      std::filesystem::remove(probe, ec);
      return Status(StatusCode::kUnavailable,
                    fmt::format("report directory {} is not writable; pass a writable --report-dir",
                                dir.string()));
    }
  }
  std::filesystem::remove(probe, ec);
  return Status();
}

std::map<std::string, FoundReport> NewestReports(
    const std::filesystem::path& dir,
    const std::function<void(const std::filesystem::path&, std::string_view)>& skipped) {
  using namespace json_read;
  std::map<std::string, FoundReport> newest;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".json" || e.path().filename() == "summary.json") continue;
    std::ifstream in(e.path());
    auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    // A foreign file beside the reports is left alone: it never costs the run's reports.
    if (j.is_discarded() || !At(j, {"test_name"}).is_string() || !At(j, {"raw"}).is_object()) {
      if (skipped)
        skipped(e.path(),
                j.is_discarded() ? "not JSON" : "no test_name and raw: not a scenario report");
      continue;
    }
    auto& slot = newest[Str(j, {"test_name"})];
    if (slot.doc.is_null() || Num(slot.doc, {"timestamp"}, 0) < Num(j, {"timestamp"}, 0))
      slot = FoundReport{e.path(), std::move(j)};
  }
  return newest;
}

}  // namespace agentstate::load
