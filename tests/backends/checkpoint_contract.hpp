// The CheckpointStore contract (agentstate/checkpoint_store.hpp), as a typed test suite:
// instantiate it with a Traits struct (kName; Uri() or Open(options); CorruptValue(store, thread,
// ns, channel, version) damages a stored value behind the store's back) in
// checkpoint_contract_test.cpp. The cases follow LangGraph's validation suite where it
// checks something (../shared/LANGGRAPH.md) and our own guarantees beyond it.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <future>
#include <string>

#include "agentstate/checkpoint_store.hpp"
#include "agentstate/registry.hpp"
#include "core/asio.hpp"
#include "support/clock.hpp"
#include "support/run.hpp"

namespace agentstate {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using testing::RunSync;

using testing::ManualClock;

// A document whose channel_versions are `versions` (a JSON object's members).
std::string Doc(const std::string& id, const std::string& versions) {
  return R"({"v":4,"id":")" + id + R"(","ts":"2026-12-02T07:00:00.000Z","channel_versions":{)" +
         versions + R"(},"versions_seen":{}})";
}
TypedValue Json(std::string bytes) { return TypedValue{"json", std::move(bytes)}; }

template <typename Traits>
class CheckpointContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions o;
    o.clock = clock_;
    Result<std::unique_ptr<StateStore>> s = [&] {
      if constexpr (requires { traits_.Open(o); })
        return traits_.Open(o);
      else
        return OpenStore(traits_.Uri(), o);
    }();
    ASSERT_TRUE(s) << s.error().ToString();
    store_ = std::move(*s);
    cp_ = store_->Checkpoints();
    ASSERT_NE(cp_, nullptr) << traits_.kName << " offers no checkpoint model";
  }

  Status Put(CheckpointPut p) {
    return RunSync(
        [&]() -> Awaitable<Status> { co_return co_await cp_->PutCheckpoint(p, DeadlineIn(5s)); });
  }
  // A checkpoint of thread `t` in `ns` with channel versions and the new values given.
  Status Put(std::string t, std::string ns, std::string id, std::string parent,
             std::string versions, std::vector<ChannelValue> values,
             std::string metadata = R"({"source":"loop","step":1,"parents":{}})",
             bool check_head = false) {
    CheckpointPut p{std::move(t),      std::move(ns),     id,
                    std::move(parent), Doc(id, versions), std::move(metadata),
                    std::move(values), check_head};
    return Put(std::move(p));
  }
  Status Writes(std::string t, std::string ns, std::string id, std::string task,
                std::vector<std::pair<std::string, TypedValue>> w) {
    return RunSync([&]() -> Awaitable<Status> {
      co_return co_await cp_->PutWrites(t, ns, id, task, "", w, DeadlineIn(5s));
    });
  }
  Result<std::optional<CheckpointTuple>> Get(std::string t, std::string ns = "",
                                             std::string id = "") {
    return RunSync([&]() -> Awaitable<Result<std::optional<CheckpointTuple>>> {
      co_return co_await cp_->GetCheckpoint(t, ns, id, DeadlineIn(5s));
    });
  }
  Result<std::vector<CheckpointTuple>> List(CheckpointListQuery q) {
    return RunSync([&]() -> Awaitable<Result<std::vector<CheckpointTuple>>> {
      co_return co_await cp_->ListCheckpoints(q, DeadlineIn(5s));
    });
  }
  std::vector<std::string> ListIds(CheckpointListQuery q) {
    auto r = List(std::move(q));
    EXPECT_TRUE(r) << r.error().ToString();
    std::vector<std::string> ids;
    if (r)
      for (const auto& t : *r) ids.push_back(t.thread_id + "/" + t.ns + "/" + t.checkpoint_id);
    return ids;
  }
  Result<PurgeReport> Prune(std::string t, RetentionPolicy p, std::string prefix = "") {
    return RunSync([&]() -> Awaitable<Result<PurgeReport>> {
      co_return co_await cp_->Prune(t, prefix, p, DeadlineIn(5s));
    });
  }
  Result<PurgeReport> DeleteForRuns(std::vector<std::string> runs, std::string prefix = "") {
    return RunSync([&]() -> Awaitable<Result<PurgeReport>> {
      co_return co_await cp_->DeleteForRuns(runs, prefix, DeadlineIn(5s));
    });
  }
  Result<uint64_t> DeleteThread(std::string t) {
    return RunSync([&]() -> Awaitable<Result<uint64_t>> {
      co_return co_await cp_->DeleteThread(t, DeadlineIn(5s));
    });
  }
  Result<uint64_t> CopyThread(std::string from, std::string to) {
    return RunSync([&]() -> Awaitable<Result<uint64_t>> {
      co_return co_await cp_->CopyThread(from, to, DeadlineIn(5s));
    });
  }

  Traits traits_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<StateStore> store_;
  CheckpointStore* cp_ = nullptr;
};

TYPED_TEST_SUITE_P(CheckpointContractTest);

TYPED_TEST_P(CheckpointContractTest, ADocumentItsMetadataAndItsValuesRoundTripExactly) {
  const std::string meta = R"({"source":"input","step":-1,"parents":{},"writes":{"a":[1,2]}})";
  ASSERT_TRUE(this->Put("t1", "", "c1", "", R"("foo":1,"baz":"v.2")",
                        {{"foo", "1", Json(R"("bar")")},
                         {"baz", "v.2", {"bytes", std::string("\0\xff", 2)}}},
                        meta)
                  .ok());
  auto got = this->Get("t1");
  ASSERT_TRUE(got && *got) << (got ? "not found" : got.error().ToString());
  const CheckpointTuple& t = **got;
  EXPECT_EQ(t.checkpoint_id, "c1");
  EXPECT_EQ(t.parent_id, "");
  EXPECT_EQ(t.checkpoint, Doc("c1", R"("foo":1,"baz":"v.2")"));
  EXPECT_EQ(t.metadata, meta);
  EXPECT_THAT(t.values, ElementsAre(ChannelValue{"baz", "v.2", {"bytes", std::string("\0\xff", 2)}},
                                    ChannelValue{"foo", "1", Json(R"("bar")")}));
  EXPECT_TRUE(t.writes.empty());
  auto missing = this->Get("t1", "", "nope");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
  auto other_ns = this->Get("t1", "child");
  ASSERT_TRUE(other_ns);
  EXPECT_FALSE(*other_ns) << "\"\" and \"child\" are different namespaces";
}

// LangGraph's changed-channels test and its carry-over tests: values are stored once per
// version and a checkpoint reads what its channel_versions name, wherever it was written.
TYPED_TEST_P(CheckpointContractTest, OnlyNewValuesAreStoredAndAChildReadsItsAncestorsValues) {
  ASSERT_TRUE(this->Put("t", "", "c1", "", R"("messages":1,"count":1)",
                        {{"messages", "1", Json(R"(["hi"])")}, {"count", "1", Json("1")}})
                  .ok());
  ASSERT_TRUE(
      this->Put("t", "", "c2", "c1", R"("messages":1,"count":2)", {{"count", "2", Json("3")}})
          .ok());
  // A checkpoint that lists no new values and versions nothing stored has no values.
  ASSERT_TRUE(this->Put("t", "", "c3", "c2", R"("other":7)", {}).ok());
  auto c2 = this->Get("t", "", "c2");
  ASSERT_TRUE(c2 && *c2);
  EXPECT_THAT((*c2)->values, ElementsAre(ChannelValue{"count", "2", Json("3")},
                                         ChannelValue{"messages", "1", Json(R"(["hi"])")}));
  EXPECT_EQ((*c2)->parent_id, "c1");
  auto c1 = this->Get("t", "", "c1");
  ASSERT_TRUE(c1 && *c1);
  EXPECT_THAT((*c1)->values, ElementsAre(ChannelValue{"count", "1", Json("1")},
                                         ChannelValue{"messages", "1", Json(R"(["hi"])")}));
  auto latest = this->Get("t");
  ASSERT_TRUE(latest && *latest);
  EXPECT_EQ((*latest)->checkpoint_id, "c3");
  EXPECT_TRUE((*latest)->values.empty());
  // An "empty" value is stored (the channel is versioned) but not read back.
  ASSERT_TRUE(this->Put("t", "", "c4", "c3", R"("gone":1)", {{"gone", "1", {"empty", ""}}}).ok());
  auto c4 = this->Get("t");
  ASSERT_TRUE(c4 && *c4);
  EXPECT_TRUE((*c4)->values.empty());
}

TYPED_TEST_P(CheckpointContractTest, PendingWritesTakeLangGraphsIndexesAndComeBackInTaskOrder) {
  ASSERT_TRUE(this->Put("t", "", "c1", "", R"("a":1)", {{"a", "1", Json("0")}}).ok());
  ASSERT_TRUE(this->Writes("t", "", "c1", "task-b", {{"x", Json("1")}, {"y", Json("2")}}).ok());
  ASSERT_TRUE(this->Writes("t", "", "c1", "task-a", {{"__interrupt__", Json(R"("ask")")}}).ok());
  // A regular batch again keeps what is stored; an all-special one replaces.
  ASSERT_TRUE(this->Writes("t", "", "c1", "task-b", {{"x", Json("changed")}}).ok());
  ASSERT_TRUE(this->Writes("t", "", "c1", "task-a", {{"__interrupt__", Json(R"("again")")}}).ok());
  auto got = this->Get("t");
  ASSERT_TRUE(got && *got);
  EXPECT_THAT((*got)->writes,
              ElementsAre(PendingWrite{"task-a", "", "__interrupt__", -3, Json(R"("again")")},
                          PendingWrite{"task-b", "", "x", 0, Json("1")},
                          PendingWrite{"task-b", "", "y", 1, Json("2")}));
}

TYPED_TEST_P(CheckpointContractTest, ListFiltersByThreadNamespaceBeforeAndMetadataNewestFirst) {
  const std::string input = R"({"source":"input","step":-1,"parents":{}})";
  const std::string loop = R"({"source":"loop","step":0,"parents":{}})";
  for (const std::string t : {"t1", "t2"}) {
    for (const std::string ns : {"", "child"}) {
      ASSERT_TRUE(this->Put(t, ns, "c1", "", R"("a":1)", {}, input).ok());
      ASSERT_TRUE(this->Put(t, ns, "c2", "c1", R"("a":1)", {}, loop).ok());
    }
  }
  CheckpointListQuery all;
  EXPECT_THAT(this->ListIds(all), ElementsAre("t1//c2", "t1/child/c2", "t2//c2", "t2/child/c2",
                                              "t1//c1", "t1/child/c1", "t2//c1", "t2/child/c1"));
  CheckpointListQuery one{.thread_id = "t2", .ns = ""};
  EXPECT_THAT(this->ListIds(one), ElementsAre("t2//c2", "t2//c1"));
  CheckpointListQuery before{.before = "c2"};
  EXPECT_EQ(this->ListIds(before).size(), 4u) << "before compares ids across threads";
  CheckpointListQuery filtered{.ns = "child", .metadata_filter = {{"source", R"("input")"}}};
  EXPECT_THAT(this->ListIds(filtered), ElementsAre("t1/child/c1", "t2/child/c1"));
  CheckpointListQuery nothing{.metadata_filter = {{"source", R"("update")"}}};
  EXPECT_TRUE(this->ListIds(nothing).empty());
  CheckpointListQuery limited{.limit = 3};
  EXPECT_EQ(this->ListIds(limited).size(), 3u);
  CheckpointListQuery unknown{.thread_id = "t3"};
  EXPECT_TRUE(this->ListIds(unknown).empty());
  CheckpointListQuery bad{.limit = 0};
  auto r = this->List(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST_P(CheckpointContractTest, DeleteThreadRemovesEveryNamespaceAndLeavesOtherThreads) {
  for (const std::string t : {"1", "2"})
    for (const std::string ns : {"", "child"})
      ASSERT_TRUE(this->Put(t, ns, "c1", "", R"("a":1)", {{"a", "1", Json("1")}}).ok());
  ASSERT_TRUE(this->Writes("1", "", "c1", "task", {{"x", Json("1")}}).ok());
  auto removed = this->DeleteThread("1");
  ASSERT_TRUE(removed);
  EXPECT_EQ(*removed, 2u);
  for (const std::string ns : {"", "child"}) {
    auto gone = this->Get("1", ns);
    ASSERT_TRUE(gone);
    EXPECT_FALSE(*gone);
    auto kept = this->Get("2", ns);
    ASSERT_TRUE(kept && *kept);
    EXPECT_EQ((*kept)->values.size(), 1u);
  }
  Status w = this->Writes("1", "", "c1", "task", {{"x", Json("1")}});
  EXPECT_EQ(w.code(), StatusCode::kNotFound) << "a deleted thread takes no writes";
}

TYPED_TEST_P(CheckpointContractTest, TheHeadCheckRefusesAPutThatWouldForkTheThread) {
  ASSERT_TRUE(this->Put("t", "", "c1", "", R"("a":1)", {}, R"({})", true).ok());
  ASSERT_TRUE(this->Put("t", "", "c2", "c1", R"("a":1)", {}, R"({})", true).ok());
  // A second run that read c1 too and now puts its own child of it.
  Status fork = this->Put("t", "", "c3", "c1", R"("a":1)", {}, R"({})", true);
  EXPECT_EQ(fork.code(), StatusCode::kConflict) << fork.ToString();
  auto head = this->Get("t");
  ASSERT_TRUE(head && *head);
  EXPECT_EQ((*head)->checkpoint_id, "c2") << "nothing of the refused put is stored";
  // A first put on a thread that has checkpoints must name the head too.
  EXPECT_EQ(this->Put("t", "", "c9", "", R"("a":1)", {}, R"({})", true).code(),
            StatusCode::kConflict);
  // Without the check, LangGraph's savers' behaviour: the fork is stored.
  EXPECT_TRUE(this->Put("t", "", "c3", "c1", R"("a":1)", {}).ok());
}

// Eight runs read the same head and each puts its own child of it at once: with the head
// check exactly one wins and the others are refused, whatever the interleaving.
TYPED_TEST_P(CheckpointContractTest, ConcurrentPutsOnOneHeadLetExactlyOneThrough) {
  ASSERT_TRUE(this->Put("t", "", "c0", "", R"("a":1)", {}, R"({})", true).ok());
  constexpr int kRuns = 8;
  asio::thread_pool pool(4);
  std::vector<std::future<Status>> results;
  for (int i = 0; i < kRuns; ++i) {
    const std::string id = "c1-" + std::to_string(i);
    CheckpointPut put{"t", "", id, "c0", Doc(id, R"("a":2)"), R"({})", {{"a", "2", Json("2")}},
                      true};
    // A strand each: a coroutine is resumed on one thread at a time (on a bare pool, TSan
    // saw one resumed on a second thread while the first was still suspending it); the
    // eight still run at once.
    results.push_back(asio::co_spawn(
        boost::asio::make_strand(pool),
        [cp = this->cp_, put = std::move(put)]() mutable -> Awaitable<Status> {
          co_return co_await cp->PutCheckpoint(std::move(put), DeadlineIn(10s));
        },
        asio::use_future));
  }
  int ok = 0, conflicts = 0;
  for (auto& r : results) {
    const Status s = r.get();
    if (s.ok()) ++ok;
    if (s.code() == StatusCode::kConflict) ++conflicts;
  }
  pool.join();
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(conflicts, kRuns - 1);
  EXPECT_EQ(this->ListIds({.thread_id = "t"}).size(), 2u) << "c0 and the one winner";
}

TYPED_TEST_P(CheckpointContractTest, CopyThreadCopiesEverythingAndRefusesATakenTarget) {
  ASSERT_TRUE(this->Put("from", "", "c1", "", R"("a":1)", {{"a", "1", Json("1")}}).ok());
  ASSERT_TRUE(this->Put("from", "sub", "c2", "", R"("a":1)", {{"a", "1", Json("2")}}).ok());
  ASSERT_TRUE(this->Writes("from", "", "c1", "task", {{"x", Json("w")}}).ok());
  auto copied = this->CopyThread("from", "to");
  ASSERT_TRUE(copied) << copied.error().ToString();
  EXPECT_EQ(*copied, 2u);
  auto a = this->Get("from", "", "c1");
  auto b = this->Get("to", "", "c1");
  ASSERT_TRUE(a && *a && b && *b);
  EXPECT_EQ((*b)->thread_id, "to");
  EXPECT_EQ((*b)->values, (*a)->values);
  EXPECT_EQ((*b)->writes, (*a)->writes);
  auto sub = this->Get("to", "sub");
  ASSERT_TRUE(sub && *sub);
  EXPECT_EQ((*sub)->values.at(0).value, Json("2"));
  auto again = this->CopyThread("from", "to");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), StatusCode::kConflict);
  auto none = this->CopyThread("nobody", "x");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), StatusCode::kNotFound);
}

TYPED_TEST_P(CheckpointContractTest, RetentionKeepsTheLastNAndPurgesWhatNoCheckpointUses) {
  // Five checkpoints; "big" changes every step, "base" only at the first.
  std::string parent;
  for (int i = 1; i <= 5; ++i) {
    const std::string id = "c" + std::to_string(i);
    std::vector<ChannelValue> values{{"big", std::to_string(i), Json(std::to_string(i))}};
    if (i == 1) values.push_back({"base", "1", Json(R"("kept")")});
    ASSERT_TRUE(
        this->Put("t", "", id, parent, R"("base":1,"big":)" + std::to_string(i), values).ok());
    ASSERT_TRUE(this->Writes("t", "", id, "task", {{"x", Json("1")}}).ok());
    parent = id;
  }
  auto report = this->Prune("t", {.keep_last = 2});
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(*report, (PurgeReport{.checkpoints = 3, .values = 3, .writes = 3, .threads = 0}));
  EXPECT_THAT(this->ListIds({.thread_id = "t"}), ElementsAre("t//c5", "t//c4"));
  auto c4 = this->Get("t", "", "c4");
  ASSERT_TRUE(c4 && *c4);
  EXPECT_THAT((*c4)->values, ElementsAre(ChannelValue{"base", "1", Json(R"("kept")")},
                                         ChannelValue{"big", "4", Json("4")}))
      << "a value an older checkpoint wrote stays while a kept one joins it";
  EXPECT_EQ((*c4)->writes.size(), 1u);
}

TYPED_TEST_P(CheckpointContractTest, AThreadPastItsTtlIsPurgedWholeAndAFreshOneIsKept) {
  ASSERT_TRUE(this->Put("old", "", "c1", "", R"("a":1)", {{"a", "1", Json("1")}}).ok());
  this->clock_->Advance(2h);
  ASSERT_TRUE(this->Put("fresh", "", "c1", "", R"("a":1)", {{"a", "1", Json("1")}}).ok());
  auto report = this->Prune("", {.thread_ttl = 1h});
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(*report, (PurgeReport{.checkpoints = 1, .values = 1, .writes = 0, .threads = 1}));
  auto old = this->Get("old");
  ASSERT_TRUE(old);
  EXPECT_FALSE(*old);
  auto fresh = this->Get("fresh");
  ASSERT_TRUE(fresh && *fresh);
}

TYPED_TEST_P(CheckpointContractTest, AThreadPrefixBoundsListsAndPrunesToItsThreads) {
  // Tenants' threads, as agentstated stores them: "<tenant>/<thread>".
  for (const char* t : {"a/1", "a/2", "ab/1", "b/1"}) {
    ASSERT_TRUE(this->Put(t, "", "c1", "", R"("x":1)", {{"x", "1", Json("1")}}).ok());
    ASSERT_TRUE(this->Writes(t, "", "c1", "task", {{"x", Json("2")}}).ok());
  }
  EXPECT_THAT(this->ListIds({.thread_prefix = "a/"}), ElementsAre("a/1//c1", "a/2//c1"));
  EXPECT_THAT(this->ListIds({.thread_prefix = "c/"}), ElementsAre());
  auto report = this->Prune("", {.delete_all = true}, "a/");
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(*report, (PurgeReport{.checkpoints = 2, .values = 2, .writes = 2, .threads = 2}));
  EXPECT_THAT(this->ListIds({}), ElementsAre("ab/1//c1", "b/1//c1"));
  auto kept = this->Get("ab/1");
  ASSERT_TRUE(kept && *kept);
  EXPECT_EQ((*kept)->values.size(), 1u);
  EXPECT_EQ((*kept)->writes.size(), 1u);
}

TYPED_TEST_P(CheckpointContractTest, DeleteForRunsRemovesTheRunsCheckpointsAndPurges) {
  const auto run = [](std::string id) {
    return R"({"source":"loop","step":1,"parents":{},"run_id":)" + id + "}";
  };
  ASSERT_TRUE(
      this->Put("a/1", "", "c1", "", R"("x":1)", {{"x", "1", Json("1")}}, run(R"("r1")")).ok());
  ASSERT_TRUE(this->Writes("a/1", "", "c1", "task", {{"x", Json("2")}}).ok());
  ASSERT_TRUE(
      this->Put("a/1", "", "c2", "c1", R"("x":2)", {{"x", "2", Json("2")}}, run(R"("r2")")).ok());
  ASSERT_TRUE(
      this->Put("a/1", "child", "c1", "", R"("x":1)", {{"x", "1", Json("1")}}, run(R"("r1")"))
          .ok());
  // A run_id that is not a string is no run's; a thread outside the prefix is left alone.
  ASSERT_TRUE(this->Put("a/2", "", "c1", "", R"("x":1)", {{"x", "1", Json("1")}}, run("7")).ok());
  ASSERT_TRUE(
      this->Put("b/1", "", "c1", "", R"("x":1)", {{"x", "1", Json("1")}}, run(R"("r1")")).ok());

  auto first = this->DeleteForRuns({"r1", "r1", "7"}, "a/");
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(*first, (PurgeReport{.checkpoints = 2, .values = 2, .writes = 1, .threads = 0}));
  EXPECT_THAT(this->ListIds({}), ElementsAre("a/1//c2", "a/2//c1", "b/1//c1"));
  auto kept = this->Get("a/1");
  ASSERT_TRUE(kept && *kept);
  EXPECT_EQ((*kept)->values.at(0).value.bytes, "2");

  auto second = this->DeleteForRuns({"r2"}, "a/");
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(*second, (PurgeReport{.checkpoints = 1, .values = 1, .writes = 0, .threads = 1}));
  auto none = this->DeleteForRuns({}, "");
  ASSERT_TRUE(none) << none.error().ToString();
  EXPECT_EQ(*none, PurgeReport{});

  EXPECT_EQ(this->DeleteForRuns({""}).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->DeleteForRuns(std::vector<std::string>(CheckpointStore::kMaxRunIds + 1, "r"))
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_THAT(this->ListIds({}), ElementsAre("a/2//c1", "b/1//c1"));
}

TYPED_TEST_P(CheckpointContractTest, BadInputIsRefusedAndNothingIsHalfWritten) {
  const auto code = [](const Status& s) { return s.code(); };
  EXPECT_EQ(code(this->Put("", "", "c1", "", R"("a":1)", {})), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(this->Put("t", "", "", "", R"("a":1)", {})), StatusCode::kInvalidArgument);
  CheckpointPut no_versions{"t", "", "c1", "", R"({"v":4})", "{}", {}, false};
  EXPECT_EQ(code(this->Put(no_versions)), StatusCode::kInvalidArgument);
  CheckpointPut not_json{"t", "", "c1", "", Doc("c1", R"("a":1)"), "{oops", {}, false};
  EXPECT_EQ(code(this->Put(not_json)), StatusCode::kInvalidArgument);
  // A value for a channel the document does not version, after a valid one: nothing lands.
  EXPECT_EQ(code(this->Put("t", "", "c1", "", R"("a":1)",
                           {{"a", "1", Json("1")}, {"b", "1", Json("2")}})),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(this->Put("t", "", "c1", "", R"("a":1)", {{"a", "2", Json("1")}})),
            StatusCode::kInvalidArgument);
  auto none = this->Get("t");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  EXPECT_EQ(code(this->Writes("t", "", "", "task", {{"x", Json("1")}})),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(this->Writes("t", "", "c1", "", {{"x", Json("1")}})),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(this->Writes("t", "", "c1", "task", {{"x", Json("1")}})), StatusCode::kNotFound);
}

TYPED_TEST_P(CheckpointContractTest, ADamagedValueIsReportedAsCorruption) {
  ASSERT_TRUE(this->Put("t", "", "c1", "", R"("a":1)", {{"a", "1", Json(R"("payload")")}}).ok());
  ASSERT_TRUE(this->traits_.CorruptValue(*this->store_, "t", "", "a", "1"));
  auto got = this->Get("t");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), StatusCode::kCorruption) << got.error().ToString();
}

TYPED_TEST_P(CheckpointContractTest, LargeValuesAreCompressedAndComeBackWhole) {
  std::string big = "\"";
  for (int i = 0; i < 20000; ++i) big += "abc";
  big += "\"";
  ASSERT_TRUE(this->Put("t", "", "c1", "", R"("a":1)", {{"a", "1", Json(big)}}).ok());
  auto got = this->Get("t");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->values.at(0).value.bytes, big);
}

// Every id a caller names, whichever field holds it, is refused one byte past the limit
// (StoreOptions' default, 256) and taken at it: a store that adds to some ids (a tenant's
// prefix) must not let the others grow by as much.
TYPED_TEST_P(CheckpointContractTest, EveryIdPastTheLimitIsRefusedWhicheverFieldItIs) {
  const std::string at(256, 'i'), past(257, 'p');
  const auto refused = [](const Status& s) { return s.code() == StatusCode::kInvalidArgument; };
  const auto versions = [](const std::string& channel) { return "\"" + channel + "\":1"; };
  EXPECT_TRUE(refused(this->Put(past, "", "c1", "", versions("a"), {})));
  EXPECT_TRUE(refused(this->Put("t", past, "c1", "", versions("a"), {})));
  EXPECT_TRUE(refused(this->Put("t", "", past, "", versions("a"), {})));
  EXPECT_TRUE(refused(this->Put("t", "", "c1", past, versions("a"), {})));
  EXPECT_TRUE(refused(this->Put("t", "", "c1", "", versions(past), {{past, "1", Json("1")}})));
  auto none = this->Get("t");
  ASSERT_TRUE(none) << none.error().ToString();
  EXPECT_FALSE(*none) << "a refused put left a checkpoint";
  ASSERT_TRUE(this->Put(at, at, at, "", versions(at), {{at, "1", Json("1")}}).ok());

  EXPECT_TRUE(refused(this->Writes(at, past, at, "task", {{"x", Json("1")}})));
  EXPECT_TRUE(refused(this->Writes(at, at, past, "task", {{"x", Json("1")}})));
  EXPECT_TRUE(refused(this->Writes(at, at, at, past, {{"x", Json("1")}})));
  EXPECT_TRUE(refused(this->Writes(at, at, at, "task", {{past, Json("1")}})));
  ASSERT_TRUE(this->Writes(at, at, at, at, {{at, Json("1")}}).ok());

  for (const auto& [ns, id] : {std::pair{past, at}, std::pair{at, past}}) {
    auto got = this->Get(at, ns, id);
    ASSERT_FALSE(got) << "a get with a " << past.size() << "-byte id was answered";
    EXPECT_EQ(got.error().code(), StatusCode::kInvalidArgument);
  }
  auto got = this->Get(at, at, at);
  ASSERT_TRUE(got && *got) << "the checkpoint at the limit does not read back";
  EXPECT_EQ((*got)->writes.size(), 1u);
  for (auto field : {&CheckpointListQuery::ns, &CheckpointListQuery::checkpoint_id,
                     &CheckpointListQuery::before}) {
    CheckpointListQuery q;
    q.thread_id = at;
    q.*field = past;
    auto listed = this->List(q);
    ASSERT_FALSE(listed) << "a list with a " << past.size() << "-byte id was answered";
    EXPECT_EQ(listed.error().code(), StatusCode::kInvalidArgument);
  }
  auto purged = this->DeleteForRuns({past});
  ASSERT_FALSE(purged);
  EXPECT_EQ(purged.error().code(), StatusCode::kInvalidArgument);
}

REGISTER_TYPED_TEST_SUITE_P(
    CheckpointContractTest, ADocumentItsMetadataAndItsValuesRoundTripExactly,
    OnlyNewValuesAreStoredAndAChildReadsItsAncestorsValues,
    PendingWritesTakeLangGraphsIndexesAndComeBackInTaskOrder,
    ListFiltersByThreadNamespaceBeforeAndMetadataNewestFirst,
    DeleteThreadRemovesEveryNamespaceAndLeavesOtherThreads,
    TheHeadCheckRefusesAPutThatWouldForkTheThread, ConcurrentPutsOnOneHeadLetExactlyOneThrough,
    CopyThreadCopiesEverythingAndRefusesATakenTarget,
    RetentionKeepsTheLastNAndPurgesWhatNoCheckpointUses,
    AThreadPastItsTtlIsPurgedWholeAndAFreshOneIsKept, AThreadPrefixBoundsListsAndPrunesToItsThreads,
    DeleteForRunsRemovesTheRunsCheckpointsAndPurges, BadInputIsRefusedAndNothingIsHalfWritten,
    ADamagedValueIsReportedAsCorruption, LargeValuesAreCompressedAndComeBackWhole,
    EveryIdPastTheLimitIsRefusedWhicheverFieldItIs);

}  // namespace
}  // namespace agentstate
