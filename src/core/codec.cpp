#include "core/codec.hpp"

#include <fmt/format.h>
#include <xxhash.h>
#include <zstd.h>

namespace agentstate::core {

namespace {

// One compression and one decompression context per thread, reused: creating a context
// per call cost more than the compression itself (perf showed ~75 % of a save in zstd's
// context setup).
struct ZstdContexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ~ZstdContexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};
ZstdContexts& Contexts() {
  thread_local ZstdContexts contexts;
  return contexts;
}

}  // namespace

uint64_t Checksum(std::string_view payload) { return XXH3_64bits(payload.data(), payload.size()); }

Encoded Encode(std::string_view payload, std::size_t threshold, int level) {
  if (threshold == 0 || payload.size() < threshold) return {Encoding::kRaw, std::string(payload)};
  std::string out(ZSTD_compressBound(payload.size()), '\0');
  std::size_t n = ZSTD_compressCCtx(Contexts().c, out.data(), out.size(), payload.data(),
                                    payload.size(), level);
  if (ZSTD_isError(n) || n >= payload.size()) return {Encoding::kRaw, std::string(payload)};
  out.resize(n);
  return {Encoding::kZstd, std::move(out)};
}

Result<std::string> DecodeVerified(Encoding encoding, std::string_view bytes, uint64_t checksum,
                                   std::size_t max_bytes, std::string_view what) {
  std::string payload;
  switch (encoding) {
    case Encoding::kRaw: payload.assign(bytes); break;
    case Encoding::kZstd: {
      unsigned long long size = ZSTD_getFrameContentSize(bytes.data(), bytes.size());
      if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
          (max_bytes != 0 && size > max_bytes)) {
        return Error(StatusCode::kCorruption,
                     fmt::format("{}: stored zstd frame is damaged (bad content size)", what));
      }
      payload.resize(size);
      std::size_t n = ZSTD_decompressDCtx(Contexts().d, payload.data(), payload.size(),
                                          bytes.data(), bytes.size());
      if (ZSTD_isError(n) || n != size) {
        return Error(StatusCode::kCorruption,
                     fmt::format("{}: stored zstd frame is damaged ({})", what,
                                 ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short frame"));
      }
      break;
    }
    default:
      return Error(StatusCode::kCorruption, fmt::format("{}: unknown payload encoding {}", what,
                                                        static_cast<int>(encoding)));
  }
  uint64_t actual = Checksum(payload);
  if (actual != checksum) {
    return Error(StatusCode::kCorruption,
                 fmt::format("{}: payload checksum mismatch (stored {:016x}, computed {:016x})",
                             what, checksum, actual));
  }
  return payload;
}

}  // namespace agentstate::core
