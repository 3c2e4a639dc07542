// Opening a store by URI. The scheme picks the backend:
//   memory://                      in-process, for tests and benchmarks
//   sqlite://PATH[?readers=N]      the embedded default: one file, WAL mode
// An unknown scheme is an error that lists the known ones.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agentstate/asio.hpp"
#include "agentstate/options.hpp"
#include "agentstate/state_store.hpp"
#include "agentstate/status.hpp"

namespace agentstate {

// Opens (and for durable backends, creates or migrates) the store named by `uri`.
// Synchronous: it is start-up work. Errors: kInvalidArgument (malformed URI, unknown scheme,
// bad option), kUnavailable (the file or server cannot be opened, is locked or read-only).
// The store's own I/O threads, if any, are owned by the returned object.
Result<std::unique_ptr<StateStore>> OpenStore(std::string_view uri, const StoreOptions& options);

// The schemes OpenStore accepts, sorted ("memory", "sqlite").
std::vector<std::string> KnownSchemes();

}  // namespace agentstate
