#include "core/base64.hpp"

#include <gtest/gtest.h>

namespace agentstate::core {
namespace {

TEST(Base64, EncodesRfc4648TestVectorsAndDecodesThemBack) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [bytes, text] : vectors) {
    EXPECT_EQ(Base64Encode(bytes), text);
    EXPECT_EQ(Base64Decode(text), bytes) << text;
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(Base64Decode(Base64Encode(all)), all);
}

TEST(Base64, RefusesAnythingButPaddedStandardBase64) {
  for (const char* bad : {"Zg", "Zg=", "Zm9v\n", "Zm-v", "Zm_v",
                          "Z===", "====", "Zg==Zg==", "Zh==", "Zm9=", "Zm 9v"}) {
    EXPECT_FALSE(Base64Decode(bad)) << bad;
  }
}

}  // namespace
}  // namespace agentstate::core
