// The StateStore contract, one type-parameterized suite for every backend. A backend joins
// with a Traits struct (kName; Uri() or Open(options); Corrupt(store, run) damages a stored
// payload behind the store's back; kSortedActiveRuns: whether ActiveRuns pages come ordered
// by run_id) and
// an INSTANTIATE_TYPED_TEST_SUITE_P line: store_contract_test.cpp for the embedded stores,
// tests/integration/ for the ones on real servers.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "agentstate/registry.hpp"
#include "core/asio.hpp"
#include "core/codec.hpp"
#include "support/clock.hpp"
#include "support/requests.hpp"
#include "support/run.hpp"

namespace agentstate {
namespace {

using namespace std::chrono_literals;
using testing::RunSync;

using testing::ManualClock;

template <typename Traits>
class StoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(std::function<void(StoreOptions&)> tweak = {}) {
    store_.reset();
    StoreOptions o;
    o.clock = clock_;
    if (tweak) tweak(o);
    auto s = OpenWith(o);
    ASSERT_TRUE(s) << s.error().ToString();
    store_ = std::move(*s);
  }

  // A Traits may open its store itself (a tiered store has no single URI).
  Result<std::unique_ptr<StateStore>> OpenWith(const StoreOptions& o) {
    if constexpr (requires { traits_.Open(o); }) {
      return traits_.Open(o);
    } else {
      return OpenStore(traits_.Uri(), o);
    }
  }

  static SaveRequest Req(std::string run, std::string thread = "thread_1",
                         std::string payload = R"({"step":1})") {
    return testing::SampleSave(std::move(run), std::move(payload), std::move(thread));
  }

  Result<SaveAck> Save(SaveRequest r) {
    return RunSync([&]() -> Awaitable<Result<SaveAck>> {
      co_return co_await store_->Save(r, DeadlineIn(5s));
    });
  }
  Result<std::optional<StateRecord>> Load(const std::string& run) {
    return RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
      co_return co_await store_->Load(run, DeadlineIn(5s));
    });
  }
  Result<std::vector<CheckpointInfo>> List(const std::string& run) {
    return RunSync([&]() -> Awaitable<Result<std::vector<CheckpointInfo>>> {
      co_return co_await store_->ListCheckpoints(run, DeadlineIn(5s));
    });
  }
  Result<StateRecord> Restore(const std::string& run, std::optional<std::string> id) {
    return RunSync([&]() -> Awaitable<Result<StateRecord>> {
      co_return co_await store_->Restore(run, id, DeadlineIn(5s));
    });
  }
  Result<CheckpointInfo> Checkpoint(const std::string& run,
                                    CheckpointType type = CheckpointType::kManual) {
    return RunSync([&]() -> Awaitable<Result<CheckpointInfo>> {
      co_return co_await store_->Checkpoint(run, type, DeadlineIn(5s));
    });
  }
  Done Complete(const std::string& run) {
    return RunSync(
        [&]() -> Awaitable<Done> { co_return co_await store_->Complete(run, DeadlineIn(5s)); });
  }
  Result<bool> Delete(const std::string& run) {
    return RunSync([&]() -> Awaitable<Result<bool>> {
      co_return co_await store_->Delete(run, DeadlineIn(5s));
    });
  }
  Result<std::optional<ThreadContextRecord>> Thread(const std::string& thread) {
    return RunSync([&]() -> Awaitable<Result<std::optional<ThreadContextRecord>>> {
      co_return co_await store_->ThreadContext(thread, DeadlineIn(5s));
    });
  }
  Result<ActiveRunsPage> Active(ActiveRunsQuery q) {
    return RunSync([&]() -> Awaitable<Result<ActiveRunsPage>> {
      co_return co_await store_->ActiveRuns(q, DeadlineIn(5s));
    });
  }
  // Every page of a listing, concatenated (a backend may return partial pages).
  std::vector<RunSummary> ActiveAll(ActiveRunsQuery q) {
    std::vector<RunSummary> all;
    for (int pages = 0; pages < 1000; ++pages) {
      auto page = Active(q);
      EXPECT_TRUE(page) << page.error().ToString();
      if (!page) break;
      all.insert(all.end(), page->runs.begin(), page->runs.end());
      if (page->next_cursor.empty()) break;
      q.cursor = page->next_cursor;
    }
    return all;
  }
  int64_t VersionOf(const std::string& run) {
    auto r = Load(run);
    return r && *r ? (*r)->version : -1;
  }

  Traits traits_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<StateStore> store_;
};

struct TraitsName {
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};
TYPED_TEST_SUITE_P(StoreContractTest);

TYPED_TEST_P(StoreContractTest, SaveAssignsVersionsFromOneAndLoadReturnsTheLatest) {
  auto a = this->Save(this->Req("run_a", "thread_1", R"({"step":1})"));
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a->version, 1);
  auto b = this->Save(this->Req("run_a", "thread_1", R"({"step":2})"));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->version, 2);
  auto rec = this->Load("run_a");
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->version, 2);
  EXPECT_EQ((*rec)->payload, R"({"step":2})");
  EXPECT_EQ((*rec)->checksum, b->checksum);
  EXPECT_EQ((*rec)->user_id, "user_1");
  EXPECT_EQ((*rec)->agent_type, "triage_agent");
  EXPECT_EQ((*rec)->phase, "planning");
  EXPECT_EQ((*rec)->status, RunStatus::kActive);
  EXPECT_EQ((*rec)->saved_at, this->clock_->Now());
}

TYPED_TEST_P(StoreContractTest, LoadOfAnUnknownRunIsEmptyNotAnError) {
  auto rec = this->Load("run_missing");
  ASSERT_TRUE(rec);
  EXPECT_FALSE(rec->has_value());
}

TYPED_TEST_P(StoreContractTest, StaleExpectedVersionIsAConflictAndWritesNothing) {
  auto r = this->Req("run_c");
  r.expected_version = 0;  // must not exist yet
  ASSERT_TRUE(this->Save(r));
  auto again = this->Save(r);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), StatusCode::kConflict);
  r.expected_version = 1;
  r.payload = R"({"step":2})";
  ASSERT_TRUE(this->Save(r));
  r.expected_version = 5;
  r.payload = R"({"step":99})";
  auto stale = this->Save(r);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code(), StatusCode::kConflict);
  EXPECT_THAT(stale.error().message(), ::testing::HasSubstr("version 2"));
  auto rec = this->Load("run_c");
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->version, 2);
  EXPECT_EQ((*rec)->payload, R"({"step":2})");
}

// Many writers race on one run with optimistic concurrency: each version is won exactly once.
TYPED_TEST_P(StoreContractTest, ConcurrentWritersNeverWinTheSameVersion) {
  constexpr int kWriters = 16, kAttempts = 10;
  std::mutex mu;
  std::vector<int64_t> won;
  std::atomic<int> conflicts{0};
  StateStore& store = *this->store_;
  asio::io_context io(4);
  for (int w = 0; w < kWriters; ++w) {
    asio::co_spawn(
        io,
        [&, w]() -> Awaitable<void> {
          for (int i = 0; i < kAttempts; ++i) {
            auto cur = co_await store.Load("run_race", DeadlineIn(5s));
            int64_t v = cur && *cur ? (*cur)->version : 0;
            auto r = StoreContractTest<TypeParam>::Req("run_race", "thread_race",
                                                       "{\"writer\":" + std::to_string(w) + "}");
            r.expected_version = v;
            auto ack = co_await store.Save(r, DeadlineIn(5s));
            if (ack) {
              EXPECT_EQ(ack->version, v + 1);
              std::lock_guard lock(mu);
              won.push_back(ack->version);
            } else {
              EXPECT_EQ(ack.error().code(), StatusCode::kConflict) << ack.error().ToString();
              ++conflicts;
            }
          }
        },
        asio::detached);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { io.run(); });
  for (auto& t : threads) t.join();
  std::set<int64_t> unique(won.begin(), won.end());
  EXPECT_EQ(unique.size(), won.size()) << "two writers won the same version";
  EXPECT_EQ(won.size() + static_cast<std::size_t>(conflicts.load()),
            std::size_t{kWriters * kAttempts});
  ASSERT_FALSE(won.empty());
  EXPECT_EQ(*unique.begin(), 1);
  EXPECT_EQ(*unique.rbegin(), static_cast<int64_t>(won.size()));  // no gaps, no forks
  EXPECT_EQ(this->VersionOf("run_race"), static_cast<int64_t>(won.size()));
}

TYPED_TEST_P(StoreContractTest, CheckpointHistoryAndRestore) {
  ASSERT_TRUE(this->Save(this->Req("run_h", "t", R"({"v":1})")));
  auto cp1 = this->Checkpoint("run_h");
  ASSERT_TRUE(cp1) << cp1.error().ToString();
  EXPECT_EQ(cp1->version, 1);
  EXPECT_EQ(cp1->type, CheckpointType::kManual);
  auto same = this->Checkpoint("run_h");  // unchanged run: the same checkpoint
  ASSERT_TRUE(same);
  EXPECT_EQ(same->checkpoint_id, cp1->checkpoint_id);

  auto crit = this->Req("run_h", "t", R"({"v":2})");
  crit.checkpoint_type = CheckpointType::kCritical;
  crit.is_recovery_point = true;
  ASSERT_TRUE(this->Save(crit));  // keeps a checkpoint in the same commit
  ASSERT_TRUE(this->Save(this->Req("run_h", "t", R"({"v":3})")));  // auto: latest only

  auto list = this->List("run_h");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].version, 1);
  EXPECT_EQ((*list)[1].version, 2);
  EXPECT_EQ((*list)[1].type, CheckpointType::kCritical);
  EXPECT_TRUE((*list)[1].is_recovery_point);
  EXPECT_EQ((*list)[1].payload_bytes, std::string(R"({"v":2})").size());

  auto back = this->Restore("run_h", cp1->checkpoint_id);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->version, 4);  // a restore is a new version, never a rewrite of history
  EXPECT_EQ(back->payload, R"({"v":1})");
  auto rec = this->Load("run_h");
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->payload, R"({"v":1})");
  EXPECT_EQ((*rec)->version, 4);

  auto newest = this->Restore("run_h", std::nullopt);
  ASSERT_TRUE(newest);
  EXPECT_EQ(newest->version, 5);
  EXPECT_EQ(newest->payload, R"({"v":2})");

  auto missing = this->Restore("run_h", "v000000000099");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound);
  auto garbage = this->Restore("run_h", "not-an-id");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code(), StatusCode::kNotFound);
  auto none = this->Checkpoint("run_nobody");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), StatusCode::kNotFound);
}

TYPED_TEST_P(StoreContractTest, CompleteEndsARunUntilRestored) {
  auto r = this->Req("run_done");
  r.checkpoint_type = CheckpointType::kManual;
  ASSERT_TRUE(this->Save(r));
  ASSERT_TRUE(this->Complete("run_done"));
  ASSERT_TRUE(this->Complete("run_done"));  // idempotent
  auto rec = this->Load("run_done");
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->status, RunStatus::kCompleted);
  EXPECT_TRUE(this->ActiveAll({}).empty());
  auto late = this->Save(this->Req("run_done"));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code(), StatusCode::kConflict);
  auto missing = this->Complete("run_nobody");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound);
  auto back = this->Restore("run_done", std::nullopt);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->status, RunStatus::kActive);
  EXPECT_TRUE(this->Save(this->Req("run_done")));
}

TYPED_TEST_P(StoreContractTest, ThreadContextFollowsTheLatestSaveAndDelete) {
  ASSERT_TRUE(this->Save(this->Req("run_1", "thread_x")));
  auto ctx = this->Thread("thread_x");
  ASSERT_TRUE(ctx && *ctx);
  EXPECT_EQ((*ctx)->run_id, "run_1");
  EXPECT_EQ((*ctx)->version, 1);
  ASSERT_TRUE(this->Save(this->Req("run_2", "thread_x")));
  ASSERT_TRUE(this->Save(this->Req("run_2", "thread_x")));
  ctx = this->Thread("thread_x");
  ASSERT_TRUE(ctx && *ctx);
  EXPECT_EQ((*ctx)->run_id, "run_2");
  EXPECT_EQ((*ctx)->version, 2);

  auto del = this->Delete("run_2");
  ASSERT_TRUE(del);
  EXPECT_TRUE(*del);
  del = this->Delete("run_2");
  ASSERT_TRUE(del);
  EXPECT_FALSE(*del);
  ctx = this->Thread("thread_x");
  ASSERT_TRUE(ctx);
  EXPECT_FALSE(ctx->has_value());
  auto gone = this->Load("run_2");
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
  auto list = this->List("run_2");
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
}

// Save, then Delete at offsets from 0 to 29 ms (a tiered store's flusher is then anywhere
// in its window), then read: the run and its thread context stay gone. A tiered store once
// let 7 to 56 runs in 1,500 come back.
TYPED_TEST_P(StoreContractTest, ADeletedRunStaysDeletedWhateverTheTiming) {
  for (int i = 0; i < 60; ++i) {
    const std::string run = fmt::format("run_del_{}", i), thread = fmt::format("thread_del_{}", i);
    ASSERT_TRUE(this->Save(this->Req(run, thread)));
    std::this_thread::sleep_for(std::chrono::milliseconds((i * 7) % 30));
    auto del = this->Delete(run);
    ASSERT_TRUE(del) << del.error().ToString();
    ASSERT_TRUE(*del);
  }
  std::this_thread::sleep_for(60ms);  // past any flush window: whatever was on its way has landed
  for (int i = 0; i < 60; ++i) {
    auto read = this->Load(fmt::format("run_del_{}", i));
    ASSERT_TRUE(read) << read.error().ToString();
    EXPECT_FALSE(read->has_value()) << "run_del_" << i << " came back after its delete";
    auto ctx = this->Thread(fmt::format("thread_del_{}", i));
    ASSERT_TRUE(ctx) << ctx.error().ToString();
    EXPECT_FALSE(ctx->has_value()) << "thread_del_" << i << " came back after its run's delete";
  }
}

// Ids and phases are printable UTF-8 in every store: invalid UTF-8 was kept by memory,
// sqlite and redis and refused by PostgreSQL as kInternal (a tiered write-behind of it then
// failed forever). And Put has the same size limit as Save: a 16 MiB + 102 byte record was
// stored, then called corrupt by Load.
TYPED_TEST_P(StoreContractTest, InvalidUtf8AndOversizedRecordsAreRefusedByEveryStore) {
  this->Open([](StoreOptions& o) { o.max_payload_bytes = 1024; });
  auto bad_run = this->Req("run_\xff\xfe");
  auto saved = this->Save(bad_run);
  ASSERT_FALSE(saved);
  EXPECT_EQ(saved.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(saved.error().message(), ::testing::HasSubstr("not valid UTF-8"));
  auto bad_phase = this->Req("run_u");
  bad_phase.phase = "plan\xc3";
  saved = this->Save(bad_phase);
  ASSERT_FALSE(saved);
  EXPECT_THAT(saved.error().message(), ::testing::HasSubstr("not valid UTF-8"));

  ASSERT_TRUE(this->Save(this->Req("run_u")));
  StateRecord big = **this->Load("run_u");
  big.version = 2;
  big.payload = "[" + std::string(2000, ' ') + "]";
  big.checksum = core::Checksum(big.payload);
  auto put = RunSync([&]() -> Awaitable<Result<bool>> {
    co_return co_await this->store_->Put(big, DeadlineIn(5s));
  });
  ASSERT_FALSE(put) << "an oversized record was stored";
  EXPECT_EQ(put.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(put.error().message(), ::testing::HasSubstr("limit is 1024"));
  StateRecord foreign = big;
  foreign.payload = "[]";
  foreign.checksum = core::Checksum(foreign.payload);
  foreign.thread_id = "thread_\xff";
  put = RunSync([&]() -> Awaitable<Result<bool>> {
    co_return co_await this->store_->Put(foreign, DeadlineIn(5s));
  });
  ASSERT_FALSE(put);
  EXPECT_THAT(put.error().message(), ::testing::HasSubstr("not valid UTF-8"));
  EXPECT_EQ(this->VersionOf("run_u"), 1);
}

// Each id of a save is refused one byte past the limit (StoreOptions' default, 256) and
// taken at it, whichever field holds it: a store that adds to some ids (a tenant's prefix
// on the run and thread) must not let the others grow by as much.
TYPED_TEST_P(StoreContractTest, EveryIdOfASavePastTheLimitIsRefusedWhicheverFieldItIs) {
  const std::string at(256, 'i'), past(257, 'p');
  for (auto field : {&SaveRequest::run_id, &SaveRequest::thread_id, &SaveRequest::user_id,
                     &SaveRequest::agent_type}) {
    SaveRequest r = this->Req("run_long");
    r.*field = past;
    auto saved = this->Save(r);
    ASSERT_FALSE(saved) << "a save with a " << past.size() << "-byte id was stored";
    EXPECT_EQ(saved.error().code(), StatusCode::kInvalidArgument);
  }
  auto none = this->Load("run_long");
  ASSERT_TRUE(none) << none.error().ToString();
  EXPECT_FALSE(*none);
  SaveRequest r = this->Req(at, at);
  r.user_id = r.agent_type = at;
  auto saved = this->Save(r);
  ASSERT_TRUE(saved) << saved.error().ToString();
  auto loaded = this->Load(at);
  ASSERT_TRUE(loaded && *loaded);
  EXPECT_EQ((*loaded)->user_id, at);
  EXPECT_EQ((*loaded)->agent_type, at);
}

TYPED_TEST_P(StoreContractTest, ActiveRunsPagesThroughEveryRunOnceWithACursor) {
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(
        this->Save(this->Req(fmt::format("run_{:02}", i), i % 2 ? "thread_odd" : "thread_even")));
  }
  ASSERT_TRUE(this->Complete("run_07"));
  std::vector<std::string> seen;
  ActiveRunsQuery q;
  q.limit = 10;
  int pages = 0;
  do {
    auto page = this->Active(q);
    ASSERT_TRUE(page) << page.error().ToString();
    EXPECT_LE(page->runs.size(), 10u);
    for (const auto& r : page->runs) seen.push_back(r.run_id);
    q.cursor = page->next_cursor;
    // A loop guard. SCAN-based backends may return partial pages in a shared keyspace.
    ASSERT_LT(++pages, TypeParam::kSortedActiveRuns ? 10 : 1000);
  } while (!q.cursor.empty());
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "run_07"), 0);
  if constexpr (TypeParam::kSortedActiveRuns) {
    EXPECT_EQ(pages, 3);
    ASSERT_EQ(seen.size(), 24u);
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  } else {
    // SCAN order, SCAN's guarantee: every run active throughout is listed, at least once
    // (here exactly once: nothing shrinks the keyspace during the listing).
    EXPECT_GE(pages, 3);
    std::set<std::string> unique(seen.begin(), seen.end());
    EXPECT_EQ(unique.size(), 24u);
    EXPECT_EQ(seen.size(), 24u);
  }

  ActiveRunsQuery odd;
  odd.thread_id = "thread_odd";
  auto odd_runs = this->ActiveAll(odd);
  EXPECT_EQ(odd_runs.size(), 11u);  // 12 odd runs, one completed
  for (const auto& r : odd_runs) EXPECT_EQ(r.thread_id, "thread_odd");

  ActiveRunsQuery bad;
  bad.limit = 0;
  auto err = this->Active(bad);
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST_P(StoreContractTest, ExpiredRecordsAreNotReturned) {
  this->Open([](StoreOptions& o) {
    o.ttl.active = 60s;
    o.ttl.completed = 10s;
    o.ttl.recovery_point = 600s;
  });
  ASSERT_TRUE(this->Save(this->Req("run_short", "thread_a")));
  ASSERT_TRUE(this->Save(this->Req("run_done", "thread_b")));
  ASSERT_TRUE(this->Complete("run_done"));
  auto rp = this->Req("run_rp", "thread_c", R"({"rp":1})");
  rp.checkpoint_type = CheckpointType::kRecovery;
  rp.is_recovery_point = true;
  ASSERT_TRUE(this->Save(rp));

  this->clock_->Advance(11s);
  EXPECT_FALSE(*this->Load("run_done")) << "completed TTL not applied";
  EXPECT_TRUE(*this->Load("run_short"));

  this->clock_->Advance(50s);  // 61 s: past the active TTL
  EXPECT_FALSE(*this->Load("run_short"));
  EXPECT_FALSE(*this->Thread("thread_a"));
  auto active = this->ActiveAll({});
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].run_id, "run_rp");

  this->clock_->Advance(600s);  // the recovery point's record is gone too ...
  EXPECT_FALSE(*this->Load("run_rp"));
  EXPECT_TRUE(this->List("run_rp")->empty());

  // ... and a saved-over run whose record expired keeps its version sequence while its
  // recovery checkpoints live, so a restore never reuses a version.
  this->Open([](StoreOptions& o) {
    o.ttl.active = 60s;
    o.ttl.recovery_point = 600s;
  });
  auto keep = this->Req("run_k", "thread_k", R"({"k":1})");
  keep.checkpoint_type = CheckpointType::kRecovery;
  ASSERT_TRUE(this->Save(keep));  // record v1 (active TTL) + checkpoint v1 (recovery TTL)
  this->clock_->Advance(61s);
  EXPECT_FALSE(*this->Load("run_k"));
  auto restored = this->Restore("run_k", std::nullopt);
  ASSERT_TRUE(restored) << restored.error().ToString();
  EXPECT_EQ(restored->version, 2);
  EXPECT_EQ(restored->payload, R"({"k":1})");
}

TYPED_TEST_P(StoreContractTest, DamagedPayloadsAreCorruptionNeverData) {
  ASSERT_TRUE(this->Save(this->Req("run_bad", "t", R"({"some":"state","n":12345})")));
  ASSERT_TRUE(this->traits_.Corrupt(*this->store_, "run_bad"));
  auto rec = this->Load("run_bad");
  ASSERT_FALSE(rec);
  EXPECT_EQ(rec.error().code(), StatusCode::kCorruption);
  EXPECT_THAT(rec.error().message(), ::testing::HasSubstr("run_bad"));
  auto cp = this->Checkpoint("run_bad");
  ASSERT_FALSE(cp);
  EXPECT_EQ(cp.error().code(), StatusCode::kCorruption);

  // The same for a payload large enough to be stored compressed.
  std::string big = "{\"items\":[";
  for (int i = 0; i < 20000; ++i) big += (i ? "," : "") + std::to_string(i);
  big += "]}";
  ASSERT_TRUE(this->Save(this->Req("run_big", "t", big)));
  auto ok = this->Load("run_big");
  ASSERT_TRUE(ok && *ok);
  EXPECT_EQ((*ok)->payload, big);
  ASSERT_TRUE(this->traits_.Corrupt(*this->store_, "run_big"));
  auto bad = this->Load("run_big");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), StatusCode::kCorruption);
}

TYPED_TEST_P(StoreContractTest, BadRequestsAreRejectedAndWriteNothing) {
  this->Open([](StoreOptions& o) { o.max_payload_bytes = 1024; });
  auto expect_invalid = [&](SaveRequest r, const char* needle) {
    auto res = this->Save(std::move(r));
    ASSERT_FALSE(res) << needle;
    EXPECT_EQ(res.error().code(), StatusCode::kInvalidArgument) << res.error().ToString();
    EXPECT_THAT(res.error().message(), ::testing::HasSubstr(needle));
  };
  expect_invalid(this->Req(""), "run_id is empty");
  expect_invalid(this->Req(std::string(300, 'r')), "limit is 256");
  expect_invalid(this->Req(std::string("run\0x", 5)), "control byte");
  expect_invalid(this->Req("run_j", "t", "{not json"), "not well-formed JSON");
  expect_invalid(this->Req("run_j", "t", ""), "not well-formed JSON");
  expect_invalid(this->Req("run_j", "t", "[" + std::string(2000, ' ') + "]"), "limit is 1024");
  auto neg = this->Req("run_j");
  neg.expected_version = -1;
  expect_invalid(neg, "negative");
  EXPECT_FALSE(*this->Load("run_j"));
  auto load = this->Load("");
  ASSERT_FALSE(load);
  EXPECT_EQ(load.error().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST_P(StoreContractTest, APassedDeadlineIsATimeout) {
  auto r = RunSync([&]() -> Awaitable<Result<SaveAck>> {
    co_return co_await this->store_->Save(this->Req("run_late"), DeadlineIn(-1ms));
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), StatusCode::kTimeout);
  auto l = RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
    co_return co_await this->store_->Load("run_late", DeadlineIn(-1ms));
  });
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code(), StatusCode::kTimeout);
}

TYPED_TEST_P(StoreContractTest, MegabytePayloadRoundTripsByteForByte) {
  std::string doc = "{\"blob\":\"";
  for (std::size_t i = 0; doc.size() < (1u << 20); ++i)
    doc += static_cast<char>('a' + (i * 7919) % 26);
  doc += "\"}";
  auto ack = this->Save(this->Req("run_mb", "t", doc));
  ASSERT_TRUE(ack) << ack.error().ToString();
  auto rec = this->Load("run_mb");
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->payload, doc);
}

// Put is replication: the exact version when it is newer, nothing when it is not.
TYPED_TEST_P(StoreContractTest, PutWritesExactlyItsVersionWhenNewerAndNothingOtherwise) {
  ASSERT_TRUE(this->Save(this->Req("run_p", "thread_p", R"({"v":1})")));
  auto put = [&](StateRecord r) {
    return RunSync([&]() -> Awaitable<Result<bool>> {
      co_return co_await this->store_->Put(r, DeadlineIn(5s));
    });
  };
  StateRecord r = **this->Load("run_p");
  r.version = 5;
  r.payload = R"({"v":5})";
  r.checksum = core::Checksum(r.payload);
  r.saved_at = this->clock_->Now() - 1s;
  auto applied = put(r);
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_TRUE(*applied);
  auto got = this->Load("run_p");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->version, 5);
  EXPECT_EQ((*got)->payload, R"({"v":5})");
  EXPECT_EQ((*got)->saved_at, r.saved_at);

  StateRecord older = r;
  older.version = 3;
  older.payload = R"({"v":3})";
  older.checksum = core::Checksum(older.payload);
  auto ignored = put(older);
  ASSERT_TRUE(ignored);
  EXPECT_FALSE(*ignored);
  EXPECT_EQ(this->VersionOf("run_p"), 5);

  StateRecord bad = r;
  bad.version = 9;
  bad.checksum ^= 1;
  auto refused = put(bad);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), StatusCode::kCorruption);
  EXPECT_EQ(this->VersionOf("run_p"), 5);

  StateRecord critical = r;
  critical.version = 6;
  critical.checkpoint_type = CheckpointType::kCritical;
  ASSERT_TRUE(put(critical));
  auto history = this->List("run_p");
  ASSERT_TRUE(history);
  ASSERT_FALSE(history->empty());
  EXPECT_EQ(history->back().version, 6);
  EXPECT_EQ(history->back().type, CheckpointType::kCritical);

  auto next = this->Save(this->Req("run_p", "thread_p", R"({"v":7})"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->version, 7);
  auto ctx = this->Thread("thread_p");
  ASSERT_TRUE(ctx && *ctx);
  EXPECT_EQ((*ctx)->version, 7);
  // A put of a run the store has never seen creates it.
  StateRecord fresh = r;
  fresh.run_id = "run_p_new";
  fresh.version = 3;
  ASSERT_TRUE(*put(fresh));
  EXPECT_EQ(this->VersionOf("run_p_new"), 3);
}

TYPED_TEST_P(StoreContractTest, PutManyAppliesWhatIsNewerAndCountsIt) {
  ASSERT_TRUE(this->Save(this->Req("run_m1", "t", R"({"v":1})")));
  ASSERT_TRUE(this->Save(this->Req("run_m1", "t", R"({"v":2})")));
  StateRecord base = **this->Load("run_m1");
  std::vector<StateRecord> batch;
  for (auto [run, version] : {std::pair<std::string, int64_t>{"run_m1", 1},
                              {"run_m1", 4},
                              {"run_m2", 2},
                              {"run_m3", 1}}) {
    StateRecord r = base;
    r.run_id = run;
    r.version = version;
    r.payload = fmt::format(R"({{"run":"{}","v":{}}})", run, version);
    r.checksum = core::Checksum(r.payload);
    batch.push_back(std::move(r));
  }
  auto applied = RunSync([&]() -> Awaitable<Result<std::size_t>> {
    co_return co_await this->store_->PutMany(batch, DeadlineIn(5s));
  });
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_EQ(*applied, 3u) << "run_m1 v1 is older than what the store has";
  EXPECT_EQ(this->VersionOf("run_m1"), 4);
  EXPECT_EQ(this->VersionOf("run_m2"), 2);
  EXPECT_EQ((*this->Load("run_m3"))->payload, R"({"run":"run_m3","v":1})");
}

TYPED_TEST_P(StoreContractTest, HealthReportsTheStoreAndStatsCountWork) {
  auto h = RunSync([&]() -> Awaitable<Result<HealthReport>> {
    co_return co_await this->store_->Health(DeadlineIn(5s));
  });
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->healthy());
  const double before = this->store_->Stats().values["saves"];
  ASSERT_TRUE(this->Save(this->Req("run_s")));
  StoreStats s = this->store_->Stats();
  EXPECT_EQ(s.values["saves"] - before, 1);
  EXPECT_FALSE(s.backend.empty());
}

// A save retried with its idempotency key is answered with the first acknowledgement and
// writes nothing: the retry of a save whose answer was lost never makes a second version.
TYPED_TEST_P(StoreContractTest, ASaveRetriedWithItsIdempotencyKeyReturnsTheFirstAck) {
  auto r = this->Req("run_idem", "thread_idem", R"({"step":1})");
  r.idempotency_key = "6f1c2d3e-key-1";
  r.expected_version = 0;
  auto first = this->Save(r);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(first->version, 1);
  EXPECT_FALSE(first->replayed);
  // The retry still says expected_version 0: without the key it would be a conflict.
  auto retry = this->Save(r);
  ASSERT_TRUE(retry) << retry.error().ToString();
  EXPECT_EQ(retry->version, 1);
  EXPECT_EQ(retry->checksum, first->checksum);
  EXPECT_TRUE(retry->replayed);
  auto rec = this->Load("run_idem");
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->version, 1);
  EXPECT_EQ((*rec)->idempotency_key, "6f1c2d3e-key-1");
  // The same key with other bytes is refused and writes nothing.
  auto other = r;
  other.payload = R"({"step":"other"})";
  auto refused = this->Save(other);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), StatusCode::kConflict);
  EXPECT_THAT(refused.error().message(), ::testing::HasSubstr("idempotency key"));
  EXPECT_EQ(this->VersionOf("run_idem"), 1);
  // A new key is a new write; the old key then no longer names the latest version.
  auto next = this->Req("run_idem", "thread_idem", R"({"step":2})");
  next.idempotency_key = "6f1c2d3e-key-2";
  auto second = this->Save(next);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->version, 2);
  EXPECT_FALSE(second->replayed);
  auto late = this->Save(r);  // expected_version 0 again: refused, not a third version
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code(), StatusCode::kConflict);
  EXPECT_EQ(this->VersionOf("run_idem"), 2);
  // A completed run still answers the retry of its last save.
  ASSERT_TRUE(this->Complete("run_idem"));
  auto after = this->Save(next);
  ASSERT_TRUE(after) << after.error().ToString();
  EXPECT_EQ(after->version, 2);
  EXPECT_TRUE(after->replayed);
  auto bad_key = this->Req("run_idem_bad");
  bad_key.idempotency_key = "has space";
  auto invalid = this->Save(bad_key);
  ASSERT_FALSE(invalid);
  EXPECT_EQ(invalid.error().code(), StatusCode::kInvalidArgument);
  bad_key.idempotency_key = std::string(256, 'k');
  invalid = this->Save(bad_key);
  ASSERT_FALSE(invalid);
  EXPECT_EQ(invalid.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->VersionOf("run_idem_bad"), -1);
}

// A restore makes a version no key wrote, so the save before it is not replayed over it.
TYPED_TEST_P(StoreContractTest, ARestoreEndsTheIdempotencyKeyOfTheSaveBeforeIt) {
  auto r = this->Req("run_idem_r", "thread_idem_r", R"({"step":1})");
  r.checkpoint_type = CheckpointType::kManual;
  r.idempotency_key = "restore-key-1";
  ASSERT_TRUE(this->Save(r));
  auto back = this->Restore("run_idem_r", std::nullopt);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->version, 2);
  EXPECT_EQ(back->idempotency_key, "");
  auto again = this->Save(r);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->version, 3);
  EXPECT_FALSE(again->replayed);
}

// Dropping a tenant: every run under a prefix goes, active, completed or with only its
// checkpoints left, with its checkpoints and its threads' contexts; nothing else does.
TYPED_TEST_P(StoreContractTest, DeletePrefixRemovesEveryRunUnderItAndNothingElse) {
  auto del = [&](std::string prefix) {
    return RunSync([&]() -> Awaitable<Result<uint64_t>> {
      co_return co_await this->store_->DeletePrefix(prefix, DeadlineIn(5s));
    });
  };
  if constexpr (requires { TypeParam::kNoDeletePrefix; }) {
    auto r = del("acme/");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), StatusCode::kUnavailable);
    return;
  }
  auto cp = this->Req("acme/run_cp", "acme/thread_1");
  cp.checkpoint_type = CheckpointType::kManual;
  ASSERT_TRUE(this->Save(cp));
  ASSERT_TRUE(this->Save(this->Req("acme/run_a", "acme/thread_2")));
  ASSERT_TRUE(this->Save(this->Req("acme/run_done", "acme/thread_3")));
  ASSERT_TRUE(this->Complete("acme/run_done"));
  ASSERT_TRUE(this->Save(this->Req("acme2/run_a", "acme2/thread_1")));
  ASSERT_TRUE(this->Save(this->Req("acm/run_a", "acm/thread_1")));
  auto empty = del("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), StatusCode::kInvalidArgument);
  auto n = del("acme/");
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_EQ(*n, 3u);
  for (const char* run : {"acme/run_cp", "acme/run_a", "acme/run_done"}) {
    EXPECT_EQ(this->VersionOf(run), -1) << run;
    auto history = this->List(run);
    ASSERT_TRUE(history) << history.error().ToString();
    EXPECT_TRUE(history->empty()) << run;
  }
  for (const char* thread : {"acme/thread_1", "acme/thread_2", "acme/thread_3"}) {
    auto t = this->Thread(thread);
    ASSERT_TRUE(t);
    EXPECT_FALSE(t->has_value()) << thread;
  }
  EXPECT_EQ(this->VersionOf("acme2/run_a"), 1);
  EXPECT_EQ(this->VersionOf("acm/run_a"), 1);
  auto t = this->Thread("acme2/thread_1");
  ASSERT_TRUE(t && t->has_value());
  // The same prefix again: nothing left, nothing removed.
  auto again = del("acme/");
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
  // A run saved again under it starts afresh.
  auto fresh = this->Save(this->Req("acme/run_a", "acme/thread_2"));
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->version, 1);
}

REGISTER_TYPED_TEST_SUITE_P(
    StoreContractTest, SaveAssignsVersionsFromOneAndLoadReturnsTheLatest,
    LoadOfAnUnknownRunIsEmptyNotAnError, StaleExpectedVersionIsAConflictAndWritesNothing,
    ConcurrentWritersNeverWinTheSameVersion, CheckpointHistoryAndRestore,
    CompleteEndsARunUntilRestored, ThreadContextFollowsTheLatestSaveAndDelete,
    ActiveRunsPagesThroughEveryRunOnceWithACursor, ExpiredRecordsAreNotReturned,
    DamagedPayloadsAreCorruptionNeverData, BadRequestsAreRejectedAndWriteNothing,
    APassedDeadlineIsATimeout, MegabytePayloadRoundTripsByteForByte,
    PutWritesExactlyItsVersionWhenNewerAndNothingOtherwise, PutManyAppliesWhatIsNewerAndCountsIt,
    HealthReportsTheStoreAndStatsCountWork, ADeletedRunStaysDeletedWhateverTheTiming,
    InvalidUtf8AndOversizedRecordsAreRefusedByEveryStore,
    EveryIdOfASavePastTheLimitIsRefusedWhicheverFieldItIs,
    ASaveRetriedWithItsIdempotencyKeyReturnsTheFirstAck,
    ARestoreEndsTheIdempotencyKeyOfTheSaveBeforeIt,
    DeletePrefixRemovesEveryRunUnderItAndNothingElse);

}  // namespace
}  // namespace agentstate
