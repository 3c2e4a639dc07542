// The LangGraph request decoder (server/checkpoint_wire.*): the bodies of a checkpoint put,
// of pending writes and of a delete for runs, decoded strictly from a client's bytes. Each
// is refused with a reason or decoded whole; a decoded put's values are real bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/checkpoint_wire.hpp"

namespace server = agentstate::server;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (auto put = server::ParseCheckpointPut(body)) {
    if (put->checkpoint.empty() || put->metadata.empty()) __builtin_trap();
  } else if (put.error().message().empty()) {
    __builtin_trap();
  }
  if (auto writes = server::ParseCheckpointWrites(body);
      !writes && writes.error().message().empty())
    __builtin_trap();
  if (auto ids = server::ParseRunIds(body); !ids && ids.error().message().empty()) __builtin_trap();
  return 0;
}
