// The RESP2 reader (backends/redis/resp.*) on bytes from a server we do not control: fed
// in pieces as a socket would, it yields replies, asks for more, or fails once and for all;
// it never crashes, and a reply it gives is well-formed.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backends/redis/resp.hpp"

namespace {
using agentstate::backends::redis::Reply;
using agentstate::backends::redis::ReplyParser;

void Check(const Reply& r, int depth) {
  if (depth > 10000) __builtin_trap();
  if (r.type != Reply::Type::kArray && !r.elements.empty()) __builtin_trap();
  for (const auto& e : r.elements) Check(e, depth + 1);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte sets the size of the pieces, so replies split at every offset are met.
  const std::size_t piece = 1 + data[0] % 64;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  ReplyParser parser;
  while (!bytes.empty()) {
    parser.Feed(bytes.substr(0, piece));
    bytes.remove_prefix(std::min(piece, bytes.size()));
    for (;;) {
      auto next = parser.Next();
      if (!next) return 0;  // not RESP2: the connection would be dropped
      if (!*next) break;    // more bytes wanted
      Check(**next, 0);
    }
  }
  return 0;
}
