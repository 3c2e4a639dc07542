#include "load/engine/ledger.hpp"

#include <gtest/gtest.h>

#include "agentstate/registry.hpp"
#include "support/run.hpp"

namespace agentstate::load {
namespace {

StateRecord At(int64_t version, uint64_t checksum) {
  StateRecord r;
  r.version = version;
  r.checksum = checksum;
  return r;
}

// A tiered delete let runs come back; the ledger had no notion of a delete and so could
// not see it. Now a run read back after an acknowledged delete is "resurrected".
TEST(Ledger, ARunReadBackAfterAnAcknowledgedDeleteIsResurrected) {
  Ledger l;
  for (const char* run : {"gone", "back", "saved_again", "delete_in_doubt"}) {
    l.Record(run, WriteOutcome::kAcked, 2, 0xAA, CheckpointType::kAuto);
  }
  l.RecordDelete("gone", WriteOutcome::kAcked);
  l.RecordDelete("back", WriteOutcome::kAcked);
  l.RecordDelete("saved_again", WriteOutcome::kAcked);
  l.Record("saved_again", WriteOutcome::kAcked, 1, 0xBB,
           CheckpointType::kAuto);  // afresh: no reordering
  l.RecordDelete("delete_in_doubt", WriteOutcome::kUnknown);

  LedgerVerdict v;
  l.Judge("gone", std::optional<StateRecord>(), v);
  l.Judge("back", std::optional<StateRecord>(At(2, 0xAA)), v);
  l.Judge("saved_again", std::optional<StateRecord>(At(1, 0xBB)), v);
  l.Judge("delete_in_doubt", std::optional<StateRecord>(), v);
  EXPECT_EQ(v.resurrected, 1u);
  EXPECT_EQ(v.lost, 0u);
  EXPECT_EQ(v.out_of_order, 0u);
  EXPECT_EQ(v.phantom, 0u);
  EXPECT_FALSE(v.clean());
}

// Found by 22 minutes of agentload chaos with agentstated SIGKILLed: a delete the kill left
// in doubt had taken effect, and the run's next save was version 1 again.
TEST(Ledger, ASaveAfterADeleteInDoubtMayStartAfreshWithoutBeingOutOfOrder) {
  Ledger l;
  l.Record("r", WriteOutcome::kAcked, 1, 0xAA, CheckpointType::kAuto);
  l.RecordDelete("r", WriteOutcome::kUnknown);
  l.Record("r", WriteOutcome::kAcked, 1, 0xAA, CheckpointType::kAuto);
  l.Record("r", WriteOutcome::kAcked, 2, 0xBB, CheckpointType::kAuto);
  l.Record("r", WriteOutcome::kAcked, 2, 0xBB, CheckpointType::kAuto);  // no delete: reordered
  LedgerVerdict v;
  l.Judge("r", std::optional<StateRecord>(At(2, 0xBB)), v);
  EXPECT_EQ(v.out_of_order, 1u);
  EXPECT_EQ(v.lost, 0u);
}

TEST(Ledger, VerdictsForEveryKindOfOutcome) {
  Ledger l;
  l.Record("ok", WriteOutcome::kAcked, 3, 0xAA, CheckpointType::kAuto);
  l.Record("lost", WriteOutcome::kAcked, 2, 0xBB, CheckpointType::kCritical);
  l.Record("rolled_back", WriteOutcome::kAcked, 5, 0xCC, CheckpointType::kAuto);
  l.Record("damaged", WriteOutcome::kAcked, 1, 0xDD, CheckpointType::kAuto);
  l.Record("phantom", WriteOutcome::kAcked, 1, 0xEE, CheckpointType::kAuto);
  l.Record("unknown", WriteOutcome::kAcked, 1, 0x11, CheckpointType::kAuto);
  l.Record("unknown", WriteOutcome::kUnknown, 0, 0, CheckpointType::kAuto);
  l.Record("failed_only", WriteOutcome::kFailed, 0, 0, CheckpointType::kAuto);
  l.Record("reordered", WriteOutcome::kAcked, 4, 0x44, CheckpointType::kAuto);
  l.Record("reordered", WriteOutcome::kAcked, 3, 0x33, CheckpointType::kAuto);

  LedgerVerdict v;
  l.Judge("ok", std::optional<StateRecord>(At(3, 0xAA)), v);
  l.Judge("lost", std::optional<StateRecord>(), v);
  l.Judge("rolled_back", std::optional<StateRecord>(At(4, 0x00)), v);
  l.Judge("damaged", Error(StatusCode::kCorruption, "checksum"), v);
  l.Judge("phantom", std::optional<StateRecord>(At(2, 0x99)), v);
  l.Judge("unknown", std::optional<StateRecord>(At(2, 0x99)),
          v);                                               // the timed-out write landed: fine
  l.Judge("failed_only", std::optional<StateRecord>(), v);  // never acked, absent: fine
  l.Judge("reordered", std::optional<StateRecord>(At(4, 0x44)), v);
  EXPECT_EQ(v.runs_checked, 8u);
  EXPECT_EQ(v.lost, 2u);
  EXPECT_EQ(v.corrupted, 1u);
  EXPECT_EQ(v.phantom, 1u);
  EXPECT_EQ(v.out_of_order, 1u);
  EXPECT_EQ(v.unknown_writes, 1u);
  EXPECT_FALSE(v.clean());
  EXPECT_TRUE(l.HasUnknown("unknown"));
  EXPECT_FALSE(l.HasUnknown("ok"));
  EXPECT_FALSE(l.HasUnknown("never_written"));
  // Per durability class, and listed with when they were acknowledged.
  EXPECT_EQ(v.lost_durable_class, 1u);
  EXPECT_EQ(v.lost_auto, 1u);
  ASSERT_EQ(v.lost_writes.size(), 2u);
  for (const auto& w : v.lost_writes) {
    EXPECT_TRUE(w.run_id == "lost" || w.run_id == "rolled_back") << w.run_id;
    EXPECT_EQ(w.durability, w.run_id == "lost" ? CheckpointType::kCritical : CheckpointType::kAuto);
    EXPECT_LE(w.acked_at, std::chrono::steady_clock::now());
    EXPECT_GT(w.acked_at.time_since_epoch().count(), 0);
  }

  LedgerVerdict same_version_other_bytes;
  l.Judge("ok", std::optional<StateRecord>(At(3, 0xAB)), same_version_other_bytes);
  EXPECT_EQ(same_version_other_bytes.corrupted, 1u);

  LedgerVerdict unreadable;
  l.Judge("ok", Error(StatusCode::kTimeout, "slow"), unreadable);
  EXPECT_EQ(unreadable.unverifiable, 1u);
  EXPECT_EQ(unreadable.lost, 0u) << "a read that timed out proves nothing lost";
}

TEST(Ledger, VerifyReadsEveryRunBackFromTheStore) {
  auto store = OpenStore("memory://", {});
  ASSERT_TRUE(store);
  Ledger l;
  auto v = testing::RunSync([&]() -> Awaitable<LedgerVerdict> {
    for (int i = 0; i < 100; ++i) {
      SaveRequest r{"run_" + std::to_string(i), "t",   "u",  "a", 1, "p",
                    CheckpointType::kAuto,      false, "{}", {}};
      auto ack = co_await (*store)->Save(r, DeadlineIn(std::chrono::seconds(1)));
      l.Record(r.run_id, WriteOutcome::kAcked, ack->version, ack->checksum, CheckpointType::kAuto);
    }
    // Behind the ledger's back: one run deleted, one overwritten.
    (void)co_await (*store)->Delete("run_3", DeadlineIn(std::chrono::seconds(1)));
    SaveRequest r{"run_4", "t", "u", "a", 1, "p", CheckpointType::kAuto, false, "{\"x\":1}", {}};
    (void)co_await (*store)->Save(r, DeadlineIn(std::chrono::seconds(1)));
    co_return co_await l.Verify(**store, std::chrono::milliseconds(1000), 8);
  });
  EXPECT_EQ(v.runs_checked, 100u);
  EXPECT_EQ(v.lost, 1u);
  EXPECT_EQ(v.phantom, 1u);
  EXPECT_EQ(v.corrupted, 0u);
}

}  // namespace
}  // namespace agentstate::load
