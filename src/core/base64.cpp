#include "core/base64.hpp"

#include <array>
#include <cstdint>

namespace agentstate::core {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> kValues = [] {
  std::array<int8_t, 256> v{};
  v.fill(-1);
  for (std::size_t i = 0; i < kAlphabet.size(); ++i)
    v[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return v;
}();

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out((bytes.size() + 2) / 3 * 4, '\0');
  const auto* in = reinterpret_cast<const uint8_t*>(bytes.data());
  char* o = out.data();
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = uint32_t{in[i]} << 16 | uint32_t{in[i + 1]} << 8 | in[i + 2];
    *o++ = kAlphabet[n >> 18];
    *o++ = kAlphabet[(n >> 12) & 63];
    *o++ = kAlphabet[(n >> 6) & 63];
    *o++ = kAlphabet[n & 63];
  }
  if (const std::size_t left = bytes.size() - i; left > 0) {
    const uint32_t n = uint32_t{in[i]} << 16 | (left == 2 ? uint32_t{in[i + 1]} << 8 : 0);
    *o++ = kAlphabet[n >> 18];
    *o++ = kAlphabet[(n >> 12) & 63];
    *o++ = left == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    *o++ = '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  std::string out(text.size() / 4 * 3 - pad, '\0');
  char* o = out.data();
  const auto value = [](char c) { return kValues[static_cast<unsigned char>(c)]; };
  // Every group but the last: four symbols, three bytes, any invalid symbol refused (an
  // invalid one is -1, so the OR of the four is negative).
  const std::size_t full = text.empty() ? 0 : text.size() - 4;
  for (std::size_t i = 0; i < full; i += 4) {
    const int32_t a = value(text[i]), b = value(text[i + 1]), c = value(text[i + 2]),
                  d = value(text[i + 3]);
    if ((a | b | c | d) < 0) return std::nullopt;
    const uint32_t n = static_cast<uint32_t>(a << 18 | b << 12 | c << 6 | d);
    *o++ = static_cast<char>(n >> 16);
    *o++ = static_cast<char>((n >> 8) & 255);
    *o++ = static_cast<char>(n & 255);
  }
  if (text.empty()) return out;
  // The last group, with its padding; the bits past the last byte must be zero, so that one
  // text decodes to one byte string.
  uint32_t n = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    const char c = text[full + k];
    if (c == '=' && k >= 4 - pad) {
      n <<= 6;
      continue;
    }
    const int8_t v = value(c);
    if (v < 0) return std::nullopt;
    n = n << 6 | static_cast<uint32_t>(v);
  }
  if (pad > 0 && (n & ((1u << (8 * pad)) - 1)) != 0) return std::nullopt;
  *o++ = static_cast<char>(n >> 16);
  if (pad < 2) *o++ = static_cast<char>((n >> 8) & 255);
  if (pad < 1) *o++ = static_cast<char>(n & 255);
  return out;
}

}  // namespace agentstate::core
