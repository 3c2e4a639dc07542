// Exit status 3 through the whole program. Its own executable so that CTest runs it alone:
// it keeps a core busy for 24 s, which would disturb timing-sensitive tests beside it.
#include "apps/agentload_fixture.hpp"

namespace agentstate::agentload {
namespace {

// Exit 3 through the whole program: a real soak (--duration) on the in-process memory store
// keeps the harness thread busy all the time, so the generator, not the store, sets the
// pace, and the run says INVALID instead of passing or failing gates.
TEST_F(AgentloadCli, AGeneratorBoundRunIsInvalidWithExitThree) {
  auto o = Run({"--test", "sustained_load_24h_simulation", "--duration", "24s", "--store",
                "memory://", "--report-dir", Reports()});
  EXPECT_EQ(o.code, 3) << o.out << o.err;
  EXPECT_THAT(o.out, HasSubstr("INV  sustained_load_24h_simulation"));
  EXPECT_THAT(o.out, HasSubstr("INVALID the harness thread was saturated"));
  auto summary = nlohmann::json::parse(std::ifstream(fs::path(Reports()) / "summary.json"));
  EXPECT_EQ(summary["scenarios"][0]["invalid"], true);
  std::ifstream junit(fs::path(Reports()) / "junit.xml");
  std::string xml((std::istreambuf_iterator<char>(junit)), std::istreambuf_iterator<char>());
  EXPECT_THAT(xml, HasSubstr("name=\"valid_measurement\"><failure"));
}

}  // namespace
}  // namespace agentstate::agentload
