// What the embedded store promises beyond the shared contract: WAL with synchronous=NORMAL,
// one writer whose lock never blocks readers, clear refusals at open.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "agentstate/registry.hpp"
#include "support/run.hpp"

namespace agentstate {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("agentstate-sqlite-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override {
    if (holder_) sqlite3_close(holder_);
    fs::remove_all(dir_);
  }
  std::string Path() const { return (dir_ / "state.db").string(); }
  std::string Uri() const { return "sqlite://" + Path(); }
  // Another process's connection, for locks and inspection.
  sqlite3* Other() {
    if (!holder_) {
      EXPECT_EQ(sqlite3_open(Path().c_str(), &holder_), SQLITE_OK);
      sqlite3_busy_timeout(holder_, 2000);
    }
    return holder_;
  }
  std::string Scalar(const char* sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(Other(), sql, -1, &st, nullptr), SQLITE_OK);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
  }
  static SaveRequest Req(std::string run) {
    return {std::move(run), "t", "u", "a", 1, "p", CheckpointType::kAuto, false, R"({"x":1})", {}};
  }

  fs::path dir_;
  sqlite3* holder_ = nullptr;
};

TEST_F(SqliteStoreTest, RunsInWalModeWithSynchronousNormal) {
  auto store = OpenStore(Uri(), {});
  ASSERT_TRUE(store) << store.error().ToString();
  EXPECT_EQ(Scalar("PRAGMA journal_mode"), "wal");
  EXPECT_EQ((*store)->Stats().values.at("synchronous"), 1)
      << "1 = NORMAL (Debian's default is FULL = 2)";
  EXPECT_EQ(Scalar("PRAGMA user_version"), "4");
  EXPECT_EQ(Scalar("SELECT count(*) FROM sqlite_master WHERE name = 'runs_by_expiry'"), "1");
}

TEST_F(SqliteStoreTest, AVersionOneFileIsMigratedInPlace) {
  // A file as the first release wrote it: the same tables without the expiry indexes and
  // the idempotency key.
  { ASSERT_TRUE(OpenStore(Uri(), {})); }
  ASSERT_EQ(sqlite3_exec(Other(),
                         "DROP INDEX runs_by_expiry; DROP INDEX checkpoints_by_expiry; DROP INDEX "
                         "threads_by_expiry; ALTER TABLE runs DROP COLUMN idempotency_key; "
                         "PRAGMA user_version=1;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  auto store = OpenStore(Uri(), {});
  ASSERT_TRUE(store) << store.error().ToString();
  EXPECT_EQ(Scalar("PRAGMA user_version"), "4");
  EXPECT_EQ(Scalar("SELECT count(*) FROM sqlite_master WHERE name LIKE '%_by_expiry'"), "3");
  auto ack = testing::RunSync([&]() -> Awaitable<Result<SaveAck>> {
    co_return co_await (*store)->Save(Req("run_m"), DeadlineIn(5s));
  });
  EXPECT_TRUE(ack) << ack.error().ToString();
}

// Regression: the first checkpointer's connection had read nothing, so it did not know the
// file was in WAL mode and every checkpoint was a silent no-op; the WAL grew without end.
TEST_F(SqliteStoreTest, WalCheckpointsRunOffTheWritePath) {
  auto store = OpenStore(Uri(), {});
  ASSERT_TRUE(store);
  std::string big = "{\"pad\":\"" + std::string(60000, 'x') + "\"}";  // ~15 pages a save
  for (int i = 0; i < 120; ++i) {
    auto r = SaveRequest{"run_" + std::to_string(i), "t",   "u", "a", 1, "p",
                         CheckpointType::kAuto,      false, big, {}};
    ASSERT_TRUE(testing::RunSync([&]() -> Awaitable<Result<SaveAck>> {
      co_return co_await (*store)->Save(r, DeadlineIn(5s));
    }));
  }
  // Past 1000 WAL pages the checkpointer is woken; give it a moment.
  for (int i = 0; i < 50 && (*store)->Stats().values.at("wal_checkpoints") == 0; ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_GE((*store)->Stats().values.at("wal_checkpoints"), 1);
  EXPECT_LT(fs::file_size(Path() + "-wal"), 64u << 20);
}

TEST_F(SqliteStoreTest, DataSurvivesReopening) {
  {
    auto store = OpenStore(Uri(), {});
    ASSERT_TRUE(store);
    auto ack = testing::RunSync([&]() -> Awaitable<Result<SaveAck>> {
      co_return co_await (*store)->Save(Req("run_p"), DeadlineIn(5s));
    });
    ASSERT_TRUE(ack);
  }
  auto store = OpenStore(Uri(), {});
  ASSERT_TRUE(store);
  auto rec = testing::RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
    co_return co_await (*store)->Load("run_p", DeadlineIn(5s));
  });
  ASSERT_TRUE(rec && *rec);
  EXPECT_EQ((*rec)->payload, R"({"x":1})");
}

TEST_F(SqliteStoreTest, AWriteLockHeldElsewhereTimesOutWritesButNeverBlocksReads) {
  auto store = OpenStore(Uri(), {});
  ASSERT_TRUE(store);
  ASSERT_TRUE(testing::RunSync([&]() -> Awaitable<Result<SaveAck>> {
    co_return co_await (*store)->Save(Req("run_r"), DeadlineIn(5s));
  }));
  ASSERT_EQ(sqlite3_exec(Other(), "BEGIN IMMEDIATE; UPDATE runs SET step_count = 9;", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);

  const auto t0 = std::chrono::steady_clock::now();
  auto rec = testing::RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
    co_return co_await (*store)->Load("run_r", DeadlineIn(5s));
  });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "a reader waited for the writer";
  ASSERT_TRUE(rec && *rec) << (rec ? "" : rec.error().ToString());
  EXPECT_EQ((*rec)->step_count, 1) << "uncommitted data was visible";

  auto blocked = testing::RunSync([&]() -> Awaitable<Result<SaveAck>> {
    co_return co_await (*store)->Save(Req("run_r"), DeadlineIn(300ms));
  });
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code(), StatusCode::kTimeout) << blocked.error().ToString();
  sqlite3_exec(Other(), "ROLLBACK", nullptr, nullptr, nullptr);

  auto after = testing::RunSync([&]() -> Awaitable<Result<SaveAck>> {
    co_return co_await (*store)->Save(Req("run_r"), DeadlineIn(5s));
  });
  ASSERT_TRUE(after) << after.error().ToString();
  EXPECT_EQ(after->version, 2) << "the timed-out save must not have landed";
}

TEST_F(SqliteStoreTest, OpeningALockedFileFailsClearlyWithinTwoSeconds) {
  fs::create_directories(dir_);
  ASSERT_EQ(
      sqlite3_exec(
          Other(),
          "PRAGMA journal_mode=WAL; CREATE TABLE x(y); BEGIN IMMEDIATE; INSERT INTO x VALUES(1);",
          nullptr, nullptr, nullptr),
      SQLITE_OK);
  const auto t0 = std::chrono::steady_clock::now();
  auto store = OpenStore(Uri(), {});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), StatusCode::kUnavailable);
  EXPECT_THAT(store.error().message(), HasSubstr(Path()));
  EXPECT_THAT(store.error().message(), HasSubstr("write lock"));
}

TEST_F(SqliteStoreTest, ASchemaFromANewerVersionIsRefusedAndLeftAlone) {
  fs::create_directories(dir_);
  ASSERT_EQ(sqlite3_exec(Other(), "PRAGMA user_version=99;", nullptr, nullptr, nullptr), SQLITE_OK);
  auto store = OpenStore(Uri(), {});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), StatusCode::kUnavailable);
  EXPECT_THAT(store.error().message(), HasSubstr("schema version 99 is newer"));
  EXPECT_EQ(Scalar("PRAGMA user_version"), "99");
}

TEST_F(SqliteStoreTest, UnopenablePathsNameThePath) {
  for (std::string uri : {"sqlite:///proc/agentstate-nope/x.db", "sqlite:///dev/null/x.db"}) {
    auto store = OpenStore(uri, {});
    ASSERT_FALSE(store) << uri;
    EXPECT_EQ(store.error().code(), StatusCode::kUnavailable);
    EXPECT_THAT(store.error().message(), HasSubstr(uri.substr(9, 12)));
  }
  fs::create_directories(dir_ / "is_a_dir.db");
  auto dir = OpenStore("sqlite://" + (dir_ / "is_a_dir.db").string(), {});
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().code(), StatusCode::kUnavailable);
}

// sqlite:///nonexistent/dir/x.db created /nonexistent/dir (as root), and sqlite:///dev/null
// "opened" and left /dev/null-journal behind.
TEST_F(SqliteStoreTest, AChainOfMissingDirectoriesIsNotCreatedAndANonFileIsRefused) {
  const fs::path deep = dir_ / "missing" / "dir";
  auto store = OpenStore("sqlite://" + (deep / "x.db").string(), {});
  ASSERT_FALSE(store);
  EXPECT_THAT(store.error().message(), HasSubstr("does not exist"));
  EXPECT_FALSE(fs::exists(dir_ / "missing"));
  fs::create_directories(dir_);
  auto one = OpenStore("sqlite://" + (dir_ / "own" / "x.db").string(), {});
  EXPECT_TRUE(one) << "the file's own directory is created when its parent exists: "
                   << one.error().ToString();
  auto null = OpenStore("sqlite:///dev/null", {});
  ASSERT_FALSE(null);
  EXPECT_EQ(null.error().code(), StatusCode::kUnavailable);
  EXPECT_THAT(null.error().message(), HasSubstr("not a regular file"));
  EXPECT_FALSE(fs::exists("/dev/null-journal"));
  EXPECT_FALSE(fs::exists("/dev/null-wal"));
}

TEST_F(SqliteStoreTest, NotADatabaseIsReportedNotOverwritten) {
  fs::create_directories(dir_);
  { std::ofstream(Path()) << std::string(8192, 'z'); }
  auto store = OpenStore(Uri(), {});
  ASSERT_FALSE(store);
  EXPECT_THAT(store.error().message(), HasSubstr(Path()));
  EXPECT_EQ(fs::file_size(Path()), 8192u);
}

}  // namespace
}  // namespace agentstate
