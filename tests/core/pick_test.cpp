#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "core/backoff.hpp"

namespace agentstate::core {
namespace {

struct FakeConnection {
  bool up = true;
  std::size_t queue = 0;
  bool connected() const { return up; }
  std::size_t outstanding() const { return queue; }
};

std::vector<std::shared_ptr<FakeConnection>> Pool(std::vector<std::size_t> queues) {
  std::vector<std::shared_ptr<FakeConnection>> pool;
  for (std::size_t q : queues)
    pool.push_back(std::make_shared<FakeConnection>(FakeConnection{true, q}));
  return pool;
}

TEST(PickConnected, TakesTheShortestQueueAmongConnectionsThatAreUp) {
  auto pool = Pool({3, 1, 0, 2});
  std::size_t next = 0;
  EXPECT_EQ(PickConnected(pool, next), pool[2]);
  pool[2]->up = false;  // the shortest is reconnecting: never wait on it
  EXPECT_EQ(PickConnected(pool, next), pool[1]);
}

TEST(PickConnected, EqualQueuesTakeTurns) {
  auto pool = Pool({0, 0, 0});
  std::size_t next = 0;
  std::vector<std::shared_ptr<FakeConnection>> picked;
  for (int i = 0; i < 6; ++i) picked.push_back(PickConnected(pool, next));
  EXPECT_EQ(picked, (std::vector<std::shared_ptr<FakeConnection>>{pool[0], pool[1], pool[2],
                                                                  pool[0], pool[1], pool[2]}));
}

TEST(PickConnected, WithAllDownTheNextInTurnQueuesForItsReconnect) {
  auto pool = Pool({5, 0});
  for (auto& c : pool) c->up = false;
  std::size_t next = 0;
  EXPECT_EQ(PickConnected(pool, next), pool[0]);
  EXPECT_EQ(PickConnected(pool, next), pool[1]);
}

}  // namespace
}  // namespace agentstate::core
