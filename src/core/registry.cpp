#include "core/registry.hpp"

#include <fmt/format.h>

namespace agentstate::core {

void BackendRegistry::Add(std::string scheme, BackendFactory factory) {
  factories_[std::move(scheme)] = std::move(factory);
}

Result<std::unique_ptr<StateStore>> BackendRegistry::Open(std::string_view uri,
                                                          const StoreOptions& options) const {
  auto parsed = ParseUri(uri);
  if (!parsed) return Error(parsed.error());
  auto it = factories_.find(parsed->scheme);
  if (it == factories_.end()) {
    std::string known;
    for (const auto& s : Schemes()) known += (known.empty() ? "" : ", ") + s + "://";
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("unknown store scheme '{}://' in '{}'; known schemes: {}",
                             parsed->scheme, RedactUri(uri), known));
  }
  if (options.max_id_bytes == 0) {
    return Error(StatusCode::kInvalidArgument, "StoreOptions::max_id_bytes must be > 0");
  }
  return it->second(*parsed, options);
}

std::vector<std::string> BackendRegistry::Schemes() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : factories_) out.push_back(k);
  return out;
}

}  // namespace agentstate::core
