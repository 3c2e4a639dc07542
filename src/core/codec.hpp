// Payload encoding and checksums, shared by every backend so that all of them store and
// verify bytes the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agentstate/status.hpp"

namespace agentstate::core {

enum class Encoding : uint8_t { kRaw = 0, kZstd = 1 };

// XXH3-64 of the payload as the caller gave it (before compression), so the check is
// end to end: it catches damage at rest and bugs in the codec alike.
uint64_t Checksum(std::string_view payload);

struct Encoded {
  Encoding encoding = Encoding::kRaw;
  std::string bytes;
};

// The compression threshold of backends that keep payloads in memory or local files.
inline constexpr std::size_t kDefaultCompressThreshold = 64 * 1024;

// zstd levels. kZstdLevel is the default: a save waits for it, and its bytes go to disk.
// kZstdFastLevel is for copies written in the background (the tiered store's write-behind),
// where the client's CPU is the limit: about twice as fast on agent states, for about 1.6
// times the bytes (bench/codec_bench.cpp).
inline constexpr int kZstdLevel = 1;
inline constexpr int kZstdFastLevel = -3;

// Compresses with zstd at `level` when the payload is at least `threshold` bytes (0 = never)
// and compression actually saves space; otherwise keeps the bytes as they are.
Encoded Encode(std::string_view payload, std::size_t threshold, int level = kZstdLevel);

// Decodes stored bytes and verifies them against the checksum recorded at save time.
// kCorruption when the encoding is unknown, zstd fails, the size exceeds `max_bytes`
// (0 = no limit) or the checksum does not match. `what` names the record in the message.
Result<std::string> DecodeVerified(Encoding encoding, std::string_view bytes, uint64_t checksum,
                                   std::size_t max_bytes, std::string_view what);

}  // namespace agentstate::core
