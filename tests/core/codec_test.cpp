#include "core/codec.hpp"

#include <gtest/gtest.h>

namespace agentstate::core {
namespace {

std::string Doc(std::size_t n) {
  std::string s = "{\"data\":\"";
  while (s.size() < n) s += "abcdefgh";
  return s + "\"}";
}

TEST(Codec, SmallPayloadsStayRawAndLargeOnesCompress) {
  auto small = Encode("{\"a\":1}", 1024);
  EXPECT_EQ(small.encoding, Encoding::kRaw);
  EXPECT_EQ(small.bytes, "{\"a\":1}");
  std::string big = Doc(100000);
  auto enc = Encode(big, 1024);
  EXPECT_EQ(enc.encoding, Encoding::kZstd);
  EXPECT_LT(enc.bytes.size(), big.size() / 10);
  auto dec = DecodeVerified(enc.encoding, enc.bytes, Checksum(big), 0, "run x");
  ASSERT_TRUE(dec) << dec.error().ToString();
  EXPECT_EQ(*dec, big);
  EXPECT_EQ(Encode(big, 0).encoding, Encoding::kRaw) << "threshold 0 means never compress";
}

TEST(Codec, TheFastLevelDecodesTheSameWayAndStillCompresses) {
  std::string big = Doc(100000);
  auto fast = Encode(big, 1024, kZstdFastLevel);
  ASSERT_EQ(fast.encoding, Encoding::kZstd);
  EXPECT_LT(fast.bytes.size(), big.size() / 4);
  auto dec = DecodeVerified(fast.encoding, fast.bytes, Checksum(big), 0, "run x");
  ASSERT_TRUE(dec) << dec.error().ToString();
  EXPECT_EQ(*dec, big);
}

TEST(Codec, IncompressibleDataIsKeptRaw) {
  std::string noise;
  uint64_t x = 1;
  for (int i = 0; i < 20000; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    noise.push_back(static_cast<char>(x >> 56));
  }
  EXPECT_EQ(Encode(noise, 1024).encoding, Encoding::kRaw);
}

TEST(Codec, ChecksumIsStableAndSensitive) {
  EXPECT_EQ(Checksum("hello"), Checksum("hello"));
  EXPECT_NE(Checksum("hello"), Checksum("hellp"));
  EXPECT_NE(Checksum(""), Checksum(std::string(1, '\0')));
}

TEST(Codec, EveryKindOfDamageIsCorruption) {
  std::string big = Doc(50000);
  auto enc = Encode(big, 1024);
  const uint64_t sum = Checksum(big);
  std::string flipped = enc.bytes;
  flipped[flipped.size() / 2] ^= 0x40;
  for (auto [encoding, bytes, checksum] :
       {std::tuple{enc.encoding, flipped, sum},                  // damaged frame
        std::tuple{enc.encoding, enc.bytes.substr(0, 10), sum},  // truncated frame
        std::tuple{enc.encoding, enc.bytes, sum ^ 1},            // checksum mismatch
        std::tuple{Encoding::kRaw, std::string("{\"a\":2}"), Checksum("{\"a\":1}")},
        std::tuple{static_cast<Encoding>(7), enc.bytes, sum}}) {  // unknown encoding
    auto r = DecodeVerified(encoding, bytes, checksum, 0, "run r9");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), StatusCode::kCorruption);
    EXPECT_NE(r.error().message().find("run r9"), std::string::npos) << r.error().message();
  }
  // A frame that claims more than the payload limit is refused before allocating it.
  auto limited = DecodeVerified(enc.encoding, enc.bytes, sum, 1000, "run r9");
  ASSERT_FALSE(limited);
  EXPECT_EQ(limited.error().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace agentstate::core
