// The smallest embedder: open a store by URI, save a state with optimistic concurrency,
// read it back, and show what a conflicting writer gets. Built against the installed package
// (examples/CMakeLists.txt); CI builds and runs it.
//
//   embed [STORE_URI]   default: sqlite://embed-data/agentstate.db
#include <agentstate/registry.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <iostream>

namespace as = agentstate;

namespace {

as::Awaitable<int> Run(as::StateStore& store) {
  using std::chrono::seconds;
  as::SaveRequest save;
  save.run_id = "example-run";
  save.thread_id = "example-thread";
  save.user_id = "example-user";
  save.agent_type = "planner";
  save.phase = "planning";
  save.payload = R"({"messages":["hello"],"step":1})";
  // A run that must not exist yet: expected_version 0. A second run of this program finds it
  // and starts from the version it has.
  auto before = co_await store.Load(save.run_id, as::DeadlineIn(seconds(2)));
  if (!before) {
    std::cerr << "embed: load failed: " << before.error().ToString() << '\n';
    co_return 1;
  }
  save.expected_version = *before ? (*before)->version : 0;
  auto ack = co_await store.Save(save, as::DeadlineIn(seconds(2)));
  if (!ack) {
    std::cerr << "embed: save failed: " << ack.error().ToString() << '\n';
    co_return 1;
  }
  auto loaded = co_await store.Load(save.run_id, as::DeadlineIn(seconds(2)));
  if (!loaded || !*loaded || (*loaded)->payload != save.payload) {
    std::cerr << "embed: the state read back is not the state saved\n";
    co_return 1;
  }
  std::cout << "saved " << save.run_id << " at version " << ack->version << ", read back "
            << (*loaded)->payload.size() << " bytes\n";
  // A writer that read the old version loses: kConflict, and nothing is written.
  auto stale = co_await store.Save(save, as::DeadlineIn(seconds(2)));
  if (stale || stale.error().code() != as::StatusCode::kConflict) {
    std::cerr << "embed: a save at a stale version was not refused\n";
    co_return 1;
  }
  std::cout << "a stale writer gets: " << stale.error().ToString() << '\n';
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string uri = argc > 1 ? argv[1] : "sqlite://embed-data/agentstate.db";
  auto store = as::OpenStore(uri, as::StoreOptions{});
  if (!store) {
    std::cerr << "embed: " << store.error().message() << '\n';
    return 2;
  }
  boost::asio::io_context io;
  auto done = boost::asio::co_spawn(io, Run(**store), boost::asio::use_future);
  io.run();
  return done.get();
}
