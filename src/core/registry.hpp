// The table of backends by URI scheme behind OpenStore. Each backend contributes one
// factory; the `agentstate` library assembles the table (src/backends/backends.cpp).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agentstate/options.hpp"
#include "agentstate/state_store.hpp"
#include "core/uri.hpp"

namespace agentstate::core {

using BackendFactory =
    std::function<Result<std::unique_ptr<StateStore>>(const ParsedUri&, const StoreOptions&)>;

class BackendRegistry {
 public:
  void Add(std::string scheme, BackendFactory factory);
  // Parses the URI and dispatches on its scheme; an unknown scheme lists the known ones.
  Result<std::unique_ptr<StateStore>> Open(std::string_view uri, const StoreOptions& options) const;
  std::vector<std::string> Schemes() const;

 private:
  std::map<std::string, BackendFactory, std::less<>> factories_;
};

}  // namespace agentstate::core
