// Opening a store by URI. The scheme picks the backend:
//   memory://                      in-process, for tests and benchmarks
//   sqlite://PATH                  the embedded default: one file, WAL mode
//   redis://HOST:PORT[/DB]         the hot tier
//   postgresql://USER@HOST/DB      the durable tier
// and OpenTieredStore composes a hot and a durable store (agentstate/tiered.hpp).
// Every scheme's parameters, defaults and ranges: docs/uris.md. An unknown scheme or
// parameter is an error that lists the known ones.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agentstate/asio.hpp"
#include "agentstate/options.hpp"
#include "agentstate/state_store.hpp"
#include "agentstate/status.hpp"
#include "agentstate/tiered.hpp"

namespace agentstate {

// Opens (and for durable backends, creates or migrates) the store named by `uri`.
// Synchronous: it is start-up work. Errors: kInvalidArgument (malformed URI, unknown scheme,
// bad option), kUnavailable (the file or server cannot be opened, is locked or read-only).
// The store's own I/O threads, if any, are owned by the returned object.
Result<std::unique_ptr<StateStore>> OpenStore(std::string_view uri, const StoreOptions& options);

// A hot store (redis://, memory://) in front of a durable one (postgresql://, sqlite://):
// auto saves are acknowledged by the hot tier and written behind within the flush window;
// saves that keep a checkpoint are acknowledged after the durable commit. `analytics_uri`
// (clickhouse://, or empty for none) receives one event per operation and the archive of
// completed runs. Errors as OpenStore's, and kInvalidArgument for a flush window <= 0.
Result<std::unique_ptr<TieredStore>> OpenTieredStore(std::string_view hot_uri,
                                                     std::string_view durable_uri,
                                                     const TieredOptions& tiered,
                                                     const StoreOptions& options,
                                                     std::string_view analytics_uri = {});

// The schemes OpenStore accepts, sorted ("memory", "sqlite").
std::vector<std::string> KnownSchemes();

}  // namespace agentstate
