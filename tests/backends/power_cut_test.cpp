// Power cuts of the embedded store: a writer saving on sqlite:// is killed at a random
// moment, and the files are rebuilt as a disk may hold them after a power cut (what was
// synced, plus any subset of what was not, some of it torn; tests/support/power_cut_vfs.hpp).
// The rebuilt database must open, pass SQLite's integrity check and hold, for every run:
// an acknowledged critical save at its version or a later one, auto saves lost only within
// the store's WAL checkpoint window (1 s), and nothing that was never written.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "agentstate/registry.hpp"
#include "backends/power_cut_payload.hpp"
#include "support/power_cut_vfs.hpp"
#include "support/run.hpp"

#ifndef POWER_CUT_WRITER
#error "POWER_CUT_WRITER must name the power_cut_writer binary"
#endif

namespace agentstate {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

long long NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// What the writer said about one run before it was cut off.
struct RunLog {
  int64_t tried = 0;  // the highest version it set out to save
  std::map<int64_t, std::pair<std::string, long long>> acked;  // version -> (class, millis)
};

struct Cut {
  std::map<std::string, RunLog> runs;
  long long cut_at = 0;  // steady-clock millis of the SIGKILL
  int acks = 0;
};

// Runs the writer on `db` and kills it with SIGKILL `after` its first acknowledgement.
Cut RunAndCut(const fs::path& db, uint64_t seed, const char* mix, std::chrono::milliseconds after) {
  int out[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const std::string seed_text = std::to_string(seed);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    const std::string path = db.string();
    execl(POWER_CUT_WRITER, POWER_CUT_WRITER, path.c_str(), seed_text.c_str(), "6", mix,
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(out[1]);
  Cut cut;
  std::string text, pending;
  char buf[65536];
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  std::optional<std::chrono::steady_clock::time_point> kill_at;
  // Non-blocking reads until the kill; everything the writer flushed before it is in the pipe.
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  while (!cut.cut_at && std::chrono::steady_clock::now() < give_up) {
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n > 0) text.append(buf, std::size_t(n));
    if (n == 0) break;  // the writer exited on its own: a failure below
    if (!kill_at && text.find("\nA ") != std::string::npos)
      kill_at = std::chrono::steady_clock::now() + after;
    if (kill_at && std::chrono::steady_clock::now() >= *kill_at) {
      ::kill(pid, SIGKILL);
      cut.cut_at = NowMillis();
    }
    if (n < 0) std::this_thread::sleep_for(1ms);
  }
  if (!cut.cut_at) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::fcntl(out[0], F_SETFL, 0);
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) text.append(buf, std::size_t(n));
  ::close(out[0]);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the writer ended before the cut (status " << status << ")";
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (lines.eof() && !text.ends_with('\n')) break;  // the line the kill cut short
    std::istringstream f(line);
    std::string kind, run, cls;
    int64_t version = 0;
    long long millis = 0;
    f >> kind >> run >> version >> cls >> millis;
    if (kind == "T") cut.runs[run].tried = std::max(cut.runs[run].tried, version);
    if (kind == "A") {
      cut.runs[run].acked[version] = {cls, millis};
      ++cut.acks;
    }
  }
  return cut;
}

std::string IntegrityCheck(const fs::path& db) {
  sqlite3* h = nullptr;
  std::string result = "cannot open";
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      result = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return result;
}

TEST(PowerCut, TheEmbeddedStoreKeepsEveryAcknowledgedCriticalSaveAndNothingTorn) {
  const fs::path dir =
      fs::temp_directory_path() / ("agentstate-power-cut-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  std::mt19937_64 rng(20261204);
  int critical_acked = 0, critical_lost = 0, auto_lost = 0, torn = 0, kept = 0, pending = 0;
  long long worst_auto_loss_ms = 0;
  // Twelve cuts of a mixed workload, then four of auto saves alone, where only the WAL
  // checkpoint syncs.
  const int rounds = 16;
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const fs::path live = dir / std::to_string(round) / "live";
    const fs::path after = dir / std::to_string(round) / "after";
    fs::create_directories(live);
    fs::create_directories(after);
    const auto wait = std::chrono::milliseconds(300 + rng() % 1700);
    const bool mixed = round < 12;
    Cut cut = RunAndCut(live / "state.db", uint64_t(round) + 1, mixed ? "mixed" : "auto", wait);
    ASSERT_GT(cut.acks, 10) << "the writer acknowledged too little to test";

    const auto image = testing::ComposeAfterPowerCut((live / "state.db").string(),
                                                     (after / "state.db").string(), rng());
    ASSERT_GE(image.files, 1);
    torn += image.torn;
    kept += image.kept;
    pending += image.pending_writes;
    ASSERT_EQ(IntegrityCheck(after / "state.db"), "ok");

    auto store = OpenStore("sqlite://" + (after / "state.db").string(), StoreOptions{});
    ASSERT_TRUE(store) << store.error().ToString();
    for (const auto& [run, log] : cut.runs) {
      SCOPED_TRACE(run);
      auto loaded = testing::RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
        co_return co_await (*store)->Load(run, DeadlineIn(5s));
      });
      ASSERT_TRUE(loaded) << "unreadable after the cut: " << loaded.error().ToString();
      const int64_t have = *loaded ? (**loaded).version : 0;
      if (*loaded) {
        EXPECT_LE(have, log.tried) << "a version the writer never tried";
        EXPECT_EQ((**loaded).payload, testing::PowerCutPayload(run, have)) << "version " << have;
      }
      for (const auto& [version, ack] : log.acked) {
        if (version <= have) continue;
        if (ack.first == "critical") {
          ++critical_lost;
          ADD_FAILURE() << "acknowledged critical save of version " << version
                        << " lost; the store has " << have;
        } else {
          ++auto_lost;
          worst_auto_loss_ms = std::max(worst_auto_loss_ms, cut.cut_at - ack.second);
        }
      }
      for (const auto& [version, ack] : log.acked) critical_acked += ack.first == "critical";
    }
  }
  // Auto saves are synced by the store's WAL checkpoint, once a second: a power cut may
  // take those acknowledged since the last one (and the one in progress), never older ones.
  EXPECT_LE(worst_auto_loss_ms, 2500) << auto_lost << " auto saves lost";
  EXPECT_GT(critical_acked, 20) << "too few critical saves to test (the machine is slow?)";
  EXPECT_GT(pending, 0) << "no write was ever left unsynced: the cut tested nothing";
  std::printf(
      "power cuts: %d; critical saves acknowledged %d, lost %d; auto saves lost %d, the oldest "
      "%lld ms before the cut; unsynced writes %d, kept %d, torn %d\n",
      rounds, critical_acked, critical_lost, auto_lost, worst_auto_loss_ms, pending, kept, torn);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace agentstate
