#include "core/admission.hpp"
#include "core/asio.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace agentstate::core {
namespace {

using namespace std::chrono_literals;

TEST(Admission, ASlotGoesToTheLongestWaiterAndAWaitPastPoolWaitIsRefused) {
  asio::io_context io;
  Admission gate(io, /*max_in_flight=*/1, /*pool_wait=*/50ms, "redis://test", "commands");
  std::vector<std::string> events;
  auto admit = [&](std::string name) {
    gate.Admit(
        DeadlineIn(10s), [&events, name] { events.push_back("go " + name); },
        [&events, name](Status why) {
          events.push_back("refused " + name + " " + std::string(CodeName(why.code())));
        });
  };
  admit("a");  // runs at once
  admit("b");  // waits
  admit("c");  // waits, and will time out
  EXPECT_EQ(events, (std::vector<std::string>{"go a"}));
  EXPECT_EQ(gate.counters().waiting, 2u);
  gate.Finished(/*answered=*/true, /*failure=*/false);  // a's slot goes to b
  io.run_for(20ms);
  EXPECT_EQ(events, (std::vector<std::string>{"go a", "go b"}));
  io.restart();
  io.run_for(100ms);  // c has waited past pool_wait
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2], "refused c pool_exhausted");
  const auto c = gate.counters();
  EXPECT_EQ(c.waits, 2u);
  EXPECT_EQ(c.wait_timeouts, 1u);
  EXPECT_EQ(c.in_flight, 1u);  // b still holds its slot
}

TEST(Admission, FailuresThatLastOpenTheBreakerAndItRefusesAtOnce) {
  asio::io_context io;
  Admission gate(io, 100, 50ms, "redis://test", "commands");
  int ran = 0;
  std::string refused;
  auto admit = [&] {
    gate.Admit(
        DeadlineIn(10s), [&] { ++ran; }, [&](Status why) { refused = why.message(); });
  };
  const auto until = std::chrono::steady_clock::now() + 2s;  // bounded
  while (gate.counters().breaker_trips == 0 && std::chrono::steady_clock::now() < until) {
    admit();
    gate.Finished(/*answered=*/false, /*failure=*/true);
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(gate.counters().breaker_trips, 1u);
  const int before = ran;
  admit();
  EXPECT_EQ(ran, before);
  EXPECT_NE(refused.find("circuit open"), std::string::npos) << refused;
}

}  // namespace
}  // namespace agentstate::core
