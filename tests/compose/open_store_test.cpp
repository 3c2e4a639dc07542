// The composition root: OpenStore picks the backend by scheme and each backend checks its
// parameters.
#include <gtest/gtest.h>

#include "agentstate/registry.hpp"

namespace agentstate {
namespace {

TEST(OpenStore, UnknownSchemesListTheKnownOnes) {
  auto r = OpenStore("mongodb://localhost/x", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(
      r.error().message().find(
          "http://, https://, memory://, postgresql://, redis://, redis+cluster://, sqlite://"),
      std::string::npos)
      << r.error().message();
  EXPECT_EQ(KnownSchemes(), (std::vector<std::string>{"http", "https", "memory", "postgresql",
                                                      "redis", "redis+cluster", "sqlite"}));
}

TEST(OpenStore, BackendParametersAreChecked) {
  auto bad = OpenStore("sqlite:///tmp/x.db?readers=0", {});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("readers=0"), std::string::npos);
  auto unknown = OpenStore("sqlite:///tmp/x.db?reader=2", {});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("unknown parameter 'reader'"), std::string::npos);
  EXPECT_FALSE(OpenStore("memory://somewhere", {}));
  EXPECT_FALSE(OpenStore("sqlite://", {}));
}

}  // namespace
}  // namespace agentstate
