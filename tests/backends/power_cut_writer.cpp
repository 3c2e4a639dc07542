// The process power_cut_test cuts off: saves on sqlite://PATH through the power-cut VFS
// (tests/support/power_cut_vfs.hpp) until it is killed, or for at most 60 s and 100,000
// saves. Usage: power_cut_writer PATH SEED AGENTS MIX, MIX being mixed (one save in three
// critical) or auto (none).
//
// On stdout, one line per event, flushed at once, so that what the parent reads after the
// kill is everything this process knew:
//   T RUN VERSION CLASS         a save about to be made (CLASS: auto | critical)
//   A RUN VERSION CLASS MILLIS  its acknowledgement, at steady-clock MILLIS
// Payloads are a function of (run, version): the parent checks what it reads back.
#include <cstdio>
#include <random>
#include <string>

#include "agentstate/registry.hpp"
#include "backends/power_cut_payload.hpp"
#include "core/asio.hpp"
#include "support/power_cut_vfs.hpp"

namespace {

using namespace agentstate;
using namespace std::chrono_literals;
using testing::PowerCutPayload;

void Emit(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

long long NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Awaitable<void> Agent(StateStore& store, std::string run, uint64_t seed, bool mixed, int& remaining,
                      std::chrono::steady_clock::time_point until) {
  std::mt19937_64 rng(seed);
  int64_t version = 0;
  while (remaining > 0 && std::chrono::steady_clock::now() < until) {
    --remaining;
    SaveRequest r;
    r.run_id = run;
    r.thread_id = "t-" + run;
    r.user_id = "power_cut";
    r.agent_type = "writer";
    r.checkpoint_type = mixed && rng() % 3 == 0 ? CheckpointType::kCritical : CheckpointType::kAuto;
    r.expected_version = version;
    r.payload = PowerCutPayload(run, version + 1);
    const std::string cls(Name(r.checkpoint_type));
    Emit("T " + run + " " + std::to_string(version + 1) + " " + cls + "\n");
    auto ack = co_await store.Save(std::move(r), DeadlineIn(5s));
    if (!ack) {
      std::fprintf(stderr, "power_cut_writer: save failed: %s\n", ack.error().ToString().c_str());
      std::exit(1);
    }
    version = ack->version;
    Emit("A " + run + " " + std::to_string(version) + " " + cls + " " +
         std::to_string(NowMillis()) + "\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: power_cut_writer PATH SEED AGENTS mixed|auto\n");
    return 2;
  }
  if (!agentstate::testing::RegisterPowerCutVfs()) {
    std::fprintf(stderr, "power_cut_writer: could not register the power-cut VFS\n");
    return 1;
  }
  auto store = OpenStore(std::string("sqlite://") + argv[1], StoreOptions{});
  if (!store) {
    std::fprintf(stderr, "power_cut_writer: %s\n", store.error().ToString().c_str());
    return 1;
  }
  const uint64_t seed = std::stoull(argv[2]);
  const int agents = std::stoi(argv[3]);
  const bool mixed = std::string(argv[4]) == "mixed";
  int remaining = 100000;
  const auto until = std::chrono::steady_clock::now() + 60s;
  asio::io_context io(1);
  for (int i = 0; i < agents; ++i) {
    asio::co_spawn(io,
                   Agent(**store, "pc-" + std::to_string(i), seed * 1000 + uint64_t(i), mixed,
                         remaining, until),
                   asio::detached);
  }
  io.run();
  return 0;
}
