// The payload codec (core/codec.*, core/base64.*): stored bytes come back from disk, Redis
// or the network and may be damaged. Decoding refuses what does not verify, never returns
// more than its limit, and what is encoded decodes to itself.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "core/base64.hpp"
#include "core/codec.hpp"

namespace core = agentstate::core;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 9) return 0;
  // The first byte is the encoding, the next eight the recorded checksum, the rest the
  // stored bytes.
  const auto encoding = static_cast<core::Encoding>(data[0] % 3);
  uint64_t checksum = 0;
  std::memcpy(&checksum, data + 1, 8);
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 9, size - 9);
  constexpr std::size_t kLimit = 1 << 20;
  if (auto d = core::DecodeVerified(encoding, bytes, checksum, kLimit, "fuzz")) {
    if (d->size() > kLimit || core::Checksum(*d) != checksum) __builtin_trap();
  }
  // Any bytes round-trip, compressed or not.
  const auto encoded = core::Encode(bytes, 1 + data[0] % 128);
  auto back =
      core::DecodeVerified(encoded.encoding, encoded.bytes, core::Checksum(bytes), 0, "fuzz");
  if (!back || *back != bytes) __builtin_trap();
  // Base64: a text that decodes encodes back to its canonical form, which decodes the same.
  if (auto raw = core::Base64Decode(bytes)) {
    auto again = core::Base64Decode(core::Base64Encode(*raw));
    if (!again || *again != *raw) __builtin_trap();
  }
  auto round = core::Base64Decode(core::Base64Encode(bytes));
  if (!round || *round != bytes) __builtin_trap();
  return 0;
}
