#include "load/scenario.hpp"

#include "tiered/tiered_store.hpp"

#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <ctime>
#include <deque>
#include <iostream>
#include <numeric>
#include <optional>
#include <set>

#include "core/wait_group.hpp"

namespace agentstate::load {

std::string_view Name(Work w) {
  switch (w) {
    case Work::kAgent: return "agent";
    case Work::kRead: return "read";
    case Work::kSaveLoadUpdate: return "save_load_update";
    case Work::kCriticalCheckpoint: return "critical_checkpoint";
    case Work::kLargeSaves: return "large_save";
    case Work::kSaveDelete: return "save_delete";
  }
  return "agent";
}

std::string_view Name(Executor e) {
  switch (e) {
    case Executor::kWave: return "wave";
    case Executor::kConstant: return "constant";
    case Executor::kArrivals: return "arrivals";
  }
  return "wave";
}

namespace {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;
constexpr auto kLateStart = std::chrono::milliseconds(10);
constexpr int kDefaultMaxInFlight = 10000;

int64_t MicrosBetween(TimePoint a, TimePoint b) {
  return std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
}

bool InDoubt(const Status& s) {
  return s.code() == StatusCode::kTimeout || s.code() == StatusCode::kUnavailable ||
         s.code() == StatusCode::kInternal;
}

// The harness pool for stores without one: at most `slots` calls in flight; a caller waits
// up to `wait` for a slot, and is turned away at once when `max_waiters` callers already wait.
// Single-threaded, like everything on the harness executor.
class Pool {
 public:
  Pool(asio::any_io_executor ex, int slots, std::size_t max_waiters, std::chrono::milliseconds wait,
       PhaseResult& stats)
      : ex_(std::move(ex)), free_(slots), max_waiters_(max_waiters), wait_(wait), stats_(stats) {}

  Awaitable<Status> Acquire() {
    if (free_ > 0) {
      --free_;
      co_return Status();
    }
    if (waiters_.size() >= max_waiters_) {
      ++stats_.pool_rejections;
      co_return Status(
          StatusCode::kPoolExhausted,
          fmt::format("every pool slot busy and {} callers already waiting", waiters_.size()));
    }
    ++stats_.pool_waits;
    const auto t0 = SteadyClock::now();
    auto w = std::make_shared<Waiter>(ex_, t0 + wait_);
    waiters_.push_back(w);
    boost::system::error_code ec;
    co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    stats_.pool_wait.Record(MicrosBetween(t0, SteadyClock::now()));
    if (w->granted) co_return Status();  // Release handed us its slot
    std::erase(waiters_, w);
    ++stats_.pool_timeouts;
    co_return Status(StatusCode::kPoolExhausted,
                     fmt::format("no pool slot within {} ms", wait_.count()));
  }

  void Release() {
    while (!waiters_.empty()) {
      auto w = waiters_.front();
      waiters_.pop_front();
      if (w->timer.expiry() <= SteadyClock::now()) continue;  // already timing out
      w->granted = true;
      w->timer.cancel();
      return;
    }
    ++free_;
  }

 private:
  struct Waiter {
    Waiter(const asio::any_io_executor& ex, TimePoint until) : timer(ex, until) {}
    asio::steady_timer timer;
    bool granted = false;
  };
  asio::any_io_executor ex_;
  int free_;
  std::size_t max_waiters_;
  std::chrono::milliseconds wait_;
  PhaseResult& stats_;
  std::deque<std::shared_ptr<Waiter>> waiters_;
};

// Everything one running scenario shares: the ledger, the interval recorders and what the
// progress line shows. Lives in RunScenario's frame; used only on its executor's thread.
struct State {
  const ScenarioSpec& spec;
  RunContext ctx;
  TimePoint t0;
  Ledger ledger;
  std::vector<IntervalRecorder> recorders;  // [0] is the 1 s series; then one per gate window
  std::string phase;
  const PhaseResult* current = nullptr;  // the running phase, for the progress line
  std::unique_ptr<Pool> pool;            // the running phase's harness pool, if any
  // kConstant phases run until then; a phase's fault driver pushes it out until the last
  // fault is healed and observed.
  TimePoint phase_end{};
  bool Interrupted() const { return ctx.interrupted && *ctx.interrupted; }
  // During fault phases, as offsets from t0: units of work per 100 ms (all of them, so a
  // window's count is exact without a mark per unit), and the signs of a fault, each with
  // its time: a failed unit, a failed attempt (one a retry then hid), a Health() poll that
  // found a tier down. Failures are rare; their marks are bounded all the same.
  enum class SignKind : uint8_t { kUnit, kAttempt, kHealth };
  struct Sign {
    float t_s;
    SignKind kind;
  };
  static constexpr std::size_t kMaxSigns = 1'000'000;
  static constexpr double kBucketS = 0.1;
  bool marking = false;
  std::vector<uint32_t> unit_buckets;
  std::vector<Sign> signs;
  double Elapsed() const { return std::chrono::duration<double>(SteadyClock::now() - t0).count(); }
  // Whether agent (or arrival) i is this shard's.
  bool Mine(int i) const { return i % ctx.shard_count == ctx.shard_index; }
  void Record(int64_t us, bool ok) {
    for (auto& r : recorders) r.Record(us, ok);
    if (!marking) return;
    const double t = Elapsed();
    const auto bucket = static_cast<std::size_t>(t / kBucketS);
    if (unit_buckets.size() <= bucket) unit_buckets.resize(bucket + 1, 0);
    ++unit_buckets[bucket];
    if (!ok) Mark(SignKind::kUnit);
  }
  void Mark(SignKind kind) {
    if (marking && signs.size() < kMaxSigns) signs.push_back({static_cast<float>(Elapsed()), kind});
  }
};

// One unit's context: where it records, its deadline per call, and what it does (a read
// in a writers' phase does Work::kRead; the phase's own spec is shared, never copied).
struct Unit {
  State& st;
  PhaseResult& phase;
  const PhaseSpec& spec;
  Work work;
  std::chrono::milliseconds timeout() const {
    return spec.op_timeout.count() > 0 ? spec.op_timeout : st.spec.op_timeout;
  }
};

// Store calls through the harness pool when the phase has one. Named functions, not a
// generic wrapper: g++ 12 mishandles lambdas turned into temporaries inside co_await.
Awaitable<Result<SaveAck>> Save(Unit& u, SaveRequest req) {
  if (u.st.pool) {
    if (Status s = co_await u.st.pool->Acquire(); !s.ok()) co_return Error(s);
  }
  const auto t0 = SteadyClock::now();
  auto r = co_await u.st.ctx.store.Save(std::move(req), DeadlineIn(u.timeout()));
  u.phase.save.Record(MicrosBetween(t0, SteadyClock::now()));
  if (u.st.pool) u.st.pool->Release();
  co_return r;
}

Awaitable<Result<std::optional<StateRecord>>> Load(Unit& u, std::string run_id) {
  if (u.st.pool) {
    if (Status s = co_await u.st.pool->Acquire(); !s.ok()) co_return Error(s);
  }
  const auto t0 = SteadyClock::now();
  auto r = co_await u.st.ctx.store.Load(std::move(run_id), DeadlineIn(u.timeout()));
  u.phase.load.Record(MicrosBetween(t0, SteadyClock::now()));
  if (u.st.pool) u.st.pool->Release();
  co_return r;
}

Awaitable<Result<bool>> Delete(Unit& u, std::string run_id) {
  if (u.st.pool) {
    if (Status s = co_await u.st.pool->Acquire(); !s.ok()) co_return Error(s);
  }
  auto r = co_await u.st.ctx.store.Delete(std::move(run_id), DeadlineIn(u.timeout()));
  if (u.st.pool) u.st.pool->Release();
  co_return r;
}

Awaitable<Result<std::vector<CheckpointInfo>>> Checkpoints(Unit& u, std::string run_id) {
  if (u.st.pool) {
    if (Status s = co_await u.st.pool->Acquire(); !s.ok()) co_return Error(s);
  }
  auto r = co_await u.st.ctx.store.ListCheckpoints(std::move(run_id), DeadlineIn(u.timeout()));
  if (u.st.pool) u.st.pool->Release();
  co_return r;
}

// Saves and records the outcome in the ledger: acknowledged, refused, or in doubt.
Awaitable<Result<SaveAck>> LedgeredSave(Unit& u, SaveRequest req) {
  const std::string run_id = req.run_id;
  const CheckpointType durability = req.checkpoint_type;
  auto ack = co_await Save(u, std::move(req));
  if (ack) {
    u.st.ledger.Record(run_id, WriteOutcome::kAcked, ack->version, ack->checksum, durability);
  } else {
    // Refused before reaching the store (the harness pool) is a definite "not written".
    const bool doubt = InDoubt(ack.error()) && ack.error().code() != StatusCode::kPoolExhausted;
    u.st.ledger.Record(run_id, doubt ? WriteOutcome::kUnknown : WriteOutcome::kFailed, 0, 0,
                       durability);
  }
  co_return ack;
}

// A read-your-write: the latest record is the acknowledged one, byte for byte; or, when a
// write of the run is in doubt (this unit's or an earlier one's: a timed-out save can land
// after a later acknowledged one), a newer version, as the ledger itself allows. On failure
// returns the error class name for the phase's error table.
std::string Verify(const Result<std::optional<StateRecord>>& rec, const AgentSpec& agent,
                   const SaveAck& ack, PhaseResult& phase, bool in_doubt = false) {
  if (!rec) {
    if (rec.error().code() == StatusCode::kCorruption) ++phase.corrupted;
    return std::string(CodeName(rec.error().code()));
  }
  // Each kind of mismatch has its own class, so a report says which one a run saw.
  const char* mismatch = nullptr;
  if (!*rec) {
    mismatch = "verify_missing";
  } else if ((*rec)->run_id != agent.run_id || (*rec)->user_id != agent.user_id) {
    mismatch = "verify_foreign";
  } else if ((*rec)->version < ack.version) {
    mismatch = "verify_older";
  } else if ((*rec)->version == ack.version && (*rec)->checksum != ack.checksum) {
    mismatch = "verify_other_bytes";
  } else if ((*rec)->version > ack.version && !in_doubt) {
    mismatch = "verify_newer";
  }
  if (mismatch) ++phase.corrupted;
  return mismatch ? mismatch : "";
}

// Verify, and on a mismatch one line on stderr with what was acknowledged and what came
// back, timed from the scenario's start like the fault table (at most 20 lines a process):
// the class alone does not say which fault window or path it was.
std::string VerifyLogged(Unit& u, const Result<std::optional<StateRecord>>& rec,
                         const AgentSpec& agent, const SaveAck& ack, bool in_doubt = false) {
  std::string e = Verify(rec, agent, ack, u.phase, in_doubt);
  static std::atomic<int> lines{0};
  if (e.rfind("verify_", 0) == 0 && lines.fetch_add(1) < 20) {
    const StateRecord* got = rec && *rec ? &**rec : nullptr;
    fmt::print(
        stderr, "agentload: {} at {:.3f} s in {}/{}: run {} acknowledged v{} {:016x}, read {}{}\n",
        e, u.st.Elapsed(), u.st.spec.name, u.st.phase, agent.run_id, ack.version, ack.checksum,
        got ? fmt::format("v{} {:016x}", got->version, got->checksum) : std::string("nothing"),
        in_doubt ? " (a write of the run is in doubt)" : "");
  }
  return e;
}

// A save, then a read of the run and its check against the acknowledgement: the error class
// ("" when both held) and the record read.
struct Verified {
  std::string error;
  std::optional<StateRecord> record;
};
Awaitable<Verified> SaveLoadVerify(Unit& u, const AgentSpec& agent, SaveRequest req) {
  auto ack = co_await LedgeredSave(u, std::move(req));
  if (!ack) co_return Verified{std::string(CodeName(ack.error().code())), std::nullopt};
  auto rec = co_await Load(u, agent.run_id);
  std::string e = VerifyLogged(u, rec, agent, *ack, u.st.ledger.HasUnknown(agent.run_id));
  if (!e.empty()) co_return Verified{std::move(e), std::nullopt};
  co_return Verified{"", std::move(*rec)};
}

// One attempt at a unit; "" on success, else the error class.
Awaitable<std::string> Attempt(Unit& u, const AgentSpec& agent, const std::string& payload) {
  const WorkloadGenerator& gen = u.st.ctx.generator;
  auto code = [](const Status& s) { return std::string(CodeName(s.code())); };
  switch (u.work) {
    case Work::kAgent: {
      Verified v = co_await SaveLoadVerify(u, agent, gen.Request(agent, payload));
      co_return v.error;
    }
    case Work::kRead: {
      auto want = u.st.ledger.LastAck(agent.run_id);
      auto rec = co_await Load(u, agent.run_id);
      if (!want) co_return "nothing_to_read";  // its writer failed: not a read error
      co_return VerifyLogged(u, rec, agent, SaveAck{want->first, want->second});
    }
    case Work::kSaveLoadUpdate: {
      Verified first = co_await SaveLoadVerify(u, agent, gen.Request(agent, payload));
      if (!first.error.empty()) co_return first.error;
      // The update goes in at the version just read: a lost update would be a conflict.
      SaveRequest next = gen.Request(agent, payload);
      next.step_count = first.record->step_count + 1;
      next.expected_version = first.record->version;
      auto second = co_await LedgeredSave(u, std::move(next));
      co_return second ? "" : code(second.error());
    }
    case Work::kCriticalCheckpoint: {
      SaveRequest req = gen.Request(agent, payload);
      req.checkpoint_type = CheckpointType::kCritical;
      req.is_recovery_point = true;
      req.phase = "recovery_point";
      auto ack = co_await LedgeredSave(u, std::move(req));
      if (!ack) co_return code(ack.error());
      auto history = co_await Checkpoints(u, agent.run_id);
      if (!history) co_return code(history.error());
      for (const auto& c : *history) {
        if (c.version == ack->version && c.checksum == ack->checksum && c.is_recovery_point)
          co_return "";
      }
      ++u.phase.corrupted;
      co_return "checkpoint_missing";
    }
    case Work::kLargeSaves: {
      auto ack = co_await LedgeredSave(u, gen.Request(agent, payload));
      co_return ack ? "" : code(ack.error());
    }
    case Work::kSaveDelete: {
      Verified saved = co_await SaveLoadVerify(u, agent, gen.Request(agent, payload));
      if (!saved.error.empty()) co_return saved.error;
      auto del = co_await Delete(u, agent.run_id);
      if (!del) {
        u.st.ledger.RecordDelete(
            agent.run_id, InDoubt(del.error()) ? WriteOutcome::kUnknown : WriteOutcome::kFailed);
        co_return code(del.error());
      }
      u.st.ledger.RecordDelete(agent.run_id, WriteOutcome::kAcked);
      auto gone = co_await Load(u, agent.run_id);
      if (!gone) co_return code(gone.error());
      if (*gone && !u.st.ledger.HasUnknown(agent.run_id)) {
        ++u.phase.corrupted;
        co_return "verify_resurrected";
      }
      co_return "";
    }
  }
  co_return "internal";
}

bool Retryable(const std::string& error) {
  return error == "timeout" || error == "unavailable" || error == "pool_exhausted";
}

// A unit with its retries, recorded as one outcome. Latency runs from `due` (when the unit
// should have started; for closed phases, when it did) to its end, retries included.
Awaitable<bool> RunUnit(Unit u, const AgentSpec& agent, const std::string& payload,
                        std::optional<TimePoint> due) {
  const auto t0 = SteadyClock::now();
  const auto from = due.value_or(t0);
  std::string error;
  for (int attempt = 0;; ++attempt) {
    error = co_await Attempt(u, agent, payload);
    if (error.empty() || attempt >= u.spec.max_retries || !Retryable(error)) break;
    ++u.phase.retries;
    u.st.Mark(State::SignKind::kAttempt);
    if (u.st.ctx.debug) {
      fmt::print(stderr,
                 "agentload: debug: {:.3f} s {}/{}: run {} attempt {} failed ({}), retrying\n",
                 u.st.Elapsed(), u.st.spec.name, u.st.phase, agent.run_id, attempt + 1, error);
    }
    asio::steady_timer backoff(co_await asio::this_coro::executor,
                               u.spec.retry_backoff * (attempt + 1));
    boost::system::error_code ec;
    co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  const bool ok = error.empty();
  const auto end = SteadyClock::now();
  const int64_t us = MicrosBetween(from, end);
  PhaseResult& p = u.phase;
  ++p.executed;
  ++(ok ? p.succeeded : p.failed);
  if (!ok) ++p.errors[error];
  p.latency.Record(us);
  if (ok) p.ok_latency.Record(us);
  if (due) p.uncorrected.Record(MicrosBetween(t0, end));
  // Every kind a phase runs was created with the phase: look it up without allocating.
  auto it = p.kinds.find(Name(u.work));
  auto& kind = it != p.kinds.end() ? it->second : p.kinds[std::string(Name(u.work))];
  ++kind.executed;
  kind.succeeded += ok ? 1 : 0;
  kind.latency.Record(us);
  u.st.Record(us, ok);
  co_return ok;
}

// What agent i of a phase does: the phase's work, a critical checkpoint for every
// critical_every-th agent, or a save and delete for every delete_every-th.
Work WorkOf(const PhaseSpec& p, int i) {
  if (p.critical_every > 0 && i % p.critical_every == p.critical_every - 1)
    return Work::kCriticalCheckpoint;
  if (p.delete_every > 0 && i % p.delete_every == 0) return Work::kSaveDelete;
  return p.work;
}

AgentSpec MakeAgent(const State& st, const PhaseSpec& p, int i) {
  const auto idx = static_cast<std::size_t>(i);
  return st.ctx.generator.Agent(st.spec.name + "/" + p.name, i, st.spec.user_id,
                                p.sizes[idx % p.sizes.size()], p.patterns[idx % p.patterns.size()]);
}

// What agent i of a phase does and on which run; reads take the runs of another phase.
struct Assignment {
  AgentSpec agent;
  std::string payload;
  Work work;
};

Awaitable<void> RunAgent(State& st, const PhaseSpec& p, PhaseResult& out, Assignment a) {
  if (a.work == Work::kLargeSaves) {
    // Distinct runs per save, save_interval apart; each save is a unit of its own.
    const std::string base = a.agent.run_id;
    for (int k = 0; k < p.saves_per_agent; ++k) {
      AgentSpec one = a.agent;
      one.run_id = fmt::format("{}_s{}", base, k);
      co_await RunUnit(Unit{st, out, p, Work::kLargeSaves}, one, a.payload, std::nullopt);
      if (k + 1 < p.saves_per_agent && p.save_interval.count() > 0) {
        asio::steady_timer pause(co_await asio::this_coro::executor, p.save_interval);
        boost::system::error_code ec;
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }
    co_return;
  }
  co_await RunUnit(Unit{st, out, p, a.work}, a.agent, a.payload, std::nullopt);
}

Awaitable<void> RunWave(State& st, const PhaseSpec& p, PhaseResult& out) {
  // Every document first: the wave then starts together, as the original's gather did.
  std::vector<Assignment> wave;
  wave.reserve(static_cast<std::size_t>(p.agents + p.reads));
  for (int i = 0; i < p.agents; ++i) {
    if (!st.Mine(i)) continue;
    AgentSpec a = MakeAgent(st, p, i);
    std::string doc = st.ctx.generator.StateDocument(a, p.extra_strings);
    wave.push_back({std::move(a), std::move(doc), WorkOf(p, i)});
  }
  if (p.reads > 0) {
    // A sample without replacement of the other phase's agents, the same for every seed.
    const PhaseSpec* from = nullptr;
    for (const auto& q : st.spec.phases) {
      if (q.name == p.read_from) from = &q;
    }
    std::vector<int> pool(static_cast<std::size_t>(from->agents));
    std::iota(pool.begin(), pool.end(), 0);
    uint64_t rng = HashScope(st.ctx.generator.seed(), st.spec.name + "/" + p.name + "/reads", 0);
    for (std::size_t k = pool.size(); k > 1; --k) {
      rng = Mix(rng);
      std::swap(pool[k - 1], pool[rng % k]);
    }
    for (int r = 0; r < p.reads; ++r) {
      if (!st.Mine(p.agents + r)) continue;
      wave.push_back(
          {MakeAgent(st, *from, pool[static_cast<std::size_t>(r) % pool.size()]), "", Work::kRead});
    }
    // Shuffled, so reads and writes interleave as they would in production.
    for (std::size_t k = wave.size(); k > 1; --k) {
      rng = Mix(rng);
      std::swap(wave[k - 1], wave[rng % k]);
    }
  }
  out.start_s = st.Elapsed();  // building documents is set-up, not the wave's time
  auto ex = co_await asio::this_coro::executor;
  core::WaitGroup group(ex);
  group.Add(wave.size());
  for (auto& a : wave) {
    asio::co_spawn(
        ex,
        [&st, &p, &out, &group, a = std::move(a)]() mutable -> Awaitable<void> {
          co_await RunAgent(st, p, out, std::move(a));
          group.Done();
        },
        asio::detached);
  }
  co_await group.Wait();
}

Awaitable<void> RunConstant(State& st, const PhaseSpec& p, PhaseResult& out) {
  const uint64_t per_agent =
      std::max<uint64_t>(1, p.max_operations / static_cast<uint64_t>(p.agents));
  auto ex = co_await asio::this_coro::executor;
  core::WaitGroup group(ex);
  for (int i = 0; i < p.agents; ++i) {
    if (!st.Mine(i)) continue;
    group.Add(1);
    asio::co_spawn(
        ex,
        [&st, &p, &out, &group, i, per_agent]() -> Awaitable<void> {
          const AgentSpec agent = MakeAgent(st, p, i);
          const std::string doc = st.ctx.generator.StateDocument(agent, p.extra_strings);
          const Work work = WorkOf(p, i);
          for (uint64_t n = 0; n < per_agent && SteadyClock::now() < st.phase_end; ++n) {
            co_await RunUnit(Unit{st, out, p, work}, agent, doc, std::nullopt);
            // A store that completes inline (memory://) never suspends us: yield, or the
            // first agent would run the whole duration alone.
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
          }
          group.Done();
        },
        asio::detached);
  }
  co_await group.Wait();
}

Awaitable<void> RunArrivals(State& st, const PhaseSpec& p, PhaseResult& out) {
  auto ex = co_await asio::this_coro::executor;
  const TimePoint start = SteadyClock::now();
  const TimePoint end = start + p.duration;
  const std::size_t max_in_flight =
      static_cast<std::size_t>(p.agents > 0 ? p.agents : kDefaultMaxInFlight);
  ArrivalSchedule schedule(
      p.rate_per_s, p.rate_end_per_s > 0 ? p.rate_end_per_s : p.rate_per_s,
      std::chrono::duration_cast<std::chrono::microseconds>(p.duration), p.arrival,
      HashScope(st.ctx.generator.seed(), st.spec.name + "/" + p.name, 0), p.max_operations);
  asio::steady_timer timer(ex);
  asio::steady_timer slot(ex);  // cancelled whenever an agent finishes
  std::size_t in_flight = 0;
  core::WaitGroup group(ex);
  TimePoint freed{};  // when the dispatcher last got a slot back after waiting for one
  for (int k = 0; auto offset = schedule.Next(); ++k) {
    if (st.Interrupted()) break;
    if (!st.Mine(k)) continue;  // another shard's arrival
    const TimePoint due = start + *offset;
    boost::system::error_code ec;
    if (due > SteadyClock::now()) {
      timer.expires_at(due);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    // How late the generator itself was: measured from when it could have dispatched (the
    // due time, or when a busy store gave a slot back), so store stalls are not counted.
    out.start_lag.Record(
        std::max<int64_t>(0, MicrosBetween(std::max(due, freed), SteadyClock::now())));
    if (in_flight >= max_in_flight) {
      while (in_flight >= max_in_flight && SteadyClock::now() < end) {
        slot.expires_at(end);
        co_await slot.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      freed = SteadyClock::now();
    }
    if (in_flight >= max_in_flight) {  // the duration ended with every slot busy
      ++out.dropped_starts;
      while (schedule.Next()) ++out.dropped_starts;
      break;
    }
    if (SteadyClock::now() - due > kLateStart) ++out.late_starts;
    ++in_flight;
    group.Add(1);
    asio::co_spawn(
        ex,
        [&st, &p, &out, &group, &slot, &in_flight, i = k, due]() -> Awaitable<void> {
          AgentSpec agent = MakeAgent(st, p, i);
          std::string doc = st.ctx.generator.StateDocument(agent, p.extra_strings);
          co_await RunUnit(Unit{st, out, p, WorkOf(p, i)}, agent, doc, due);
          --in_flight;
          slot.cancel();
          group.Done();
        },
        asio::detached);
  }
  co_await group.Wait();
}

constexpr auto kHealthEvery = std::chrono::milliseconds(100);
constexpr auto kHealthDeadline = std::chrono::milliseconds(1000);
// A during phase may fail 40 % of its units (its success gate is 60 %): its error budget.
constexpr double kFaultErrorBudget = 0.40;

double Ms(int64_t us) { return static_cast<double>(us) / 1000.0; }

// Runs a blocking fault call (a kill, a restart) on `worker` and resumes here once it has
// returned: the load goes on meanwhile.
Awaitable<Status> OffThread(asio::thread_pool& worker, Fault* fault, bool begin) {
  auto call = [fault, begin]() -> Awaitable<Status> {
    co_return begin ? fault->Begin() : fault->End();
  };
  co_return co_await asio::co_spawn(worker.get_executor(), call, asio::use_awaitable);
}

// A phase's fault events, in order: inject, hold, heal; each timed.
Awaitable<void> DriveFaults(State& st, const PhaseSpec& p, TimePoint start,
                            std::vector<FaultWindow>& windows, asio::thread_pool& worker) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  boost::system::error_code ec;
  TimePoint quiet_until = start;  // each fault's recovery is observed before the next begins
  for (const FaultEvent& ev : p.fault_events) {
    // Faults that took longer than planned push the next ones back; one that could no longer
    // be held and watched within the phase's duration is not started.
    const TimePoint at = std::max(start + ev.at, quiet_until);
    FaultWindow w;
    w.phase = p.name;
    w.name = ev.fault;
    if (st.Interrupted()) {
      w.fault = "not started";
      w.error = "not started: the run was interrupted";
      w.start_s = w.end_s = st.Elapsed();
      windows.push_back(std::move(w));
      continue;
    }
    if (at + ev.hold + p.observe > start + p.duration && at > start + ev.at) {
      w.fault = "not started";
      w.error =
          "not started: the faults before it took longer than planned, and it no longer fit the "
          "phase";
      w.start_s = w.end_s = st.Elapsed();
      windows.push_back(std::move(w));
      continue;
    }
    timer.expires_at(at);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    w.start_s = st.Elapsed();
    Fault* fault = nullptr;
    for (const auto& f : st.ctx.faults) {
      if (f.name == ev.fault) fault = f.fault;
    }
    if (!fault) {
      w.fault = "none";
      w.error = st.ctx.faults.empty() ? fmt::format("{} offers no fault the harness can inject",
                                                    st.ctx.store.Describe())
                                      : fmt::format("this run has no fault named {}", ev.fault);
      w.end_s = w.start_s;
      windows.push_back(std::move(w));
      continue;
    }
    w.fault = fault->Describe();
    const auto t0 = SteadyClock::now();
    const Status in = co_await OffThread(worker, fault, true);
    w.inject_ms = Ms(MicrosBetween(t0, SteadyClock::now()));
    w.injected = in.ok();
    if (in.ok()) {
      timer.expires_after(ev.hold);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    } else {
      w.error = in.ToString();
    }
    const auto t1 = SteadyClock::now();
    const Status out =
        co_await OffThread(worker, fault, false);  // also undoes a half-done injection
    w.heal_ms = Ms(MicrosBetween(t1, SteadyClock::now()));
    if (in.ok() && !out.ok()) w.error = "healing failed: " + out.ToString();
    w.end_s = st.Elapsed();
    windows.push_back(std::move(w));
    quiet_until = SteadyClock::now() + p.observe;
  }
}

// Polls the store's Health() while `stop` is false: a tier reported down is a sign of the
// fault even when no unit of work failed (a write-behind or analytics outage).
Awaitable<void> PollHealth(State& st, const bool& stop) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  boost::system::error_code ec;
  while (!stop) {
    auto h = co_await st.ctx.store.Health(DeadlineIn(kHealthDeadline));
    if (!(h && h->healthy())) st.Mark(State::SignKind::kHealth);
    timer.expires_after(kHealthEvery);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

// Recovered means a clean stretch this long after healing: no failed unit, no failed attempt,
// no tier reported down. (The last sign in the window would do on a quiet store; under load
// a stray timeout seconds later is not the fault's.)
constexpr double kCleanStretchS = 1.0;

// Each window's figures from the marks between its injection and the next one (or the end
// of its phase).
void AssessFaults(const State& st, std::vector<FaultWindow>& windows, double phase_end_s) {
  for (std::size_t k = 0; k < windows.size(); ++k) {
    FaultWindow& w = windows[k];
    w.until_s = k + 1 < windows.size() ? windows[k + 1].start_s : phase_end_s;
    // Units in the window, from the 100 ms counts; failed units and the signs, from marks.
    // Detection counts every sign; recovery leaves out failed attempts a retry hid (under
    // load a stray 250 ms timeout is not the fault's).
    for (std::size_t b = static_cast<std::size_t>(w.start_s / State::kBucketS);
         b < st.unit_buckets.size() && static_cast<double>(b) * State::kBucketS < w.until_s; ++b) {
      w.units += st.unit_buckets[b];
    }
    std::vector<double> bad;
    double first_sign = INFINITY;
    for (const auto& m : st.signs) {
      if (m.t_s < w.start_s || m.t_s >= w.until_s) continue;
      first_sign = std::min(first_sign, static_cast<double>(m.t_s));
      if (m.kind == State::SignKind::kUnit) ++w.failed_units;
      if (m.kind != State::SignKind::kAttempt) bad.push_back(m.t_s);
    }
    std::sort(bad.begin(), bad.end());
    if (std::isfinite(first_sign)) w.detect_ms = (first_sign - w.start_s) * 1000.0;
    // The first clean stretch after healing: recovered from its start.
    double from = w.end_s;
    bool found = false;
    for (double b : bad) {  // sorted
      if (b < from) continue;
      if (b - from >= kCleanStretchS) {
        found = true;  // clean from `from` to b
        break;
      }
      from = b;  // a sign inside the stretch: it starts again after it
    }
    found = found || w.until_s - from >= kCleanStretchS;
    w.recover_ms = (from - w.end_s) * 1000.0;
    w.recovered = w.injected && w.error.empty() && found;
    w.budget_spent_percent = w.units ? 100.0 * static_cast<double>(w.failed_units) /
                                           static_cast<double>(w.units) / kFaultErrorBudget
                                     : 0;
  }
}

// Acknowledged writes the ledger found lost (through the store, or on a tiered store's
// durable tier alone; a run lost in both counts once), charged to the fault window they
// were acknowledged in.
void ChargeLosses(const std::vector<const LedgerVerdict*>& verdicts, TimePoint t0,
                  std::vector<FaultWindow>& windows) {
  std::map<std::string, const LostWrite*> lost;
  for (const LedgerVerdict* v : verdicts) {
    for (const auto& l : v->lost_writes) lost.emplace(l.run_id, &l);
  }
  for (const auto& [run, l] : lost) {
    const double at = std::chrono::duration<double>(l->acked_at - t0).count();
    for (auto& w : windows) {
      if (at >= w.start_s && at < w.until_s)
        ++(l->durability == CheckpointType::kAuto ? w.lost_auto : w.lost_critical);
    }
  }
}

// Closes interval rows on time and draws the progress line, until `done`.
Awaitable<void> Ticker(State& st, const bool& done, asio::steady_timer& timer) {
  std::vector<TimePoint> next;
  for (auto& r : st.recorders) next.push_back(st.t0 + r.width());
  while (!done) {
    timer.expires_at(*std::min_element(next.begin(), next.end()));
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    const auto now = SteadyClock::now();
    // An interrupt ends the phase's load now; a fault driver still heals what it injected.
    if (st.Interrupted() && st.phase_end > now) st.phase_end = now;
    for (std::size_t i = 0; i < st.recorders.size(); ++i) {
      // Catch up on any interval boundaries passed (a busy executor can wake late).
      while (next[i] <= now) {
        st.recorders[i].Close(std::chrono::duration<double>(next[i] - st.t0).count());
        next[i] += st.recorders[i].width();
      }
    }
    if (st.ctx.progress && !st.recorders[0].rows().empty()) {
      const IntervalRow& r = st.recorders[0].rows().back();
      const uint64_t done_n = st.current ? st.current->executed : 0;
      const uint64_t failed = st.current ? st.current->failed : 0;
      std::cerr << fmt::format(
                       "\r\x1b[K{} [{}] {:.0f}s  {} done  {:.0f}/s  p50 {:.2f} ms  p99 {:.2f} ms  "
                       "errors {}",
                       st.spec.name, st.phase, st.Elapsed(), done_n, static_cast<double>(r.count),
                       r.p50_ms, r.p99_ms, failed)
                << std::flush;
    }
  }
}

void AddLatencyMetrics(Metrics& m, const std::string& prefix, const Histogram& h) {
  m[prefix + "mean_ms"] = h.Mean() / 1000.0;
  m[prefix + "p50_ms"] = Ms(h.ValueAtPercentile(50));
  m[prefix + "p95_ms"] = Ms(h.ValueAtPercentile(95));
  m[prefix + "p99_ms"] = Ms(h.ValueAtPercentile(99));
  m[prefix + "max_ms"] = Ms(h.Max());
}

void AddCounts(Metrics& m, const std::string& prefix, uint64_t executed, uint64_t succeeded,
               uint64_t failed, double wall_s) {
  const double n = static_cast<double>(executed);
  m[prefix + "executed"] = n;
  m[prefix + "succeeded"] = static_cast<double>(succeeded);
  m[prefix + "failed"] = static_cast<double>(failed);
  m[prefix + "success_rate_percent"] = executed ? 100.0 * static_cast<double>(succeeded) / n : 0;
  m[prefix + "availability_percent"] = m[prefix + "success_rate_percent"];
  m[prefix + "error_rate_percent"] = executed ? 100.0 * static_cast<double>(failed) / n : 0;
  m[prefix + "throughput_agents_per_s"] = wall_s > 0 ? n / wall_s : 0;
}

}  // namespace

Status ValidateScenario(const ScenarioSpec& spec) {
  auto bad = [&](const PhaseSpec& p, const std::string& what) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("scenario {} phase {}: {}", spec.name, p.name, what));
  };
  if (spec.phases.empty())
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("scenario {} has no phases", spec.name));
  if (spec.op_timeout.count() <= 0 || spec.max_duration.count() <= 0) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("scenario {}: timeouts and durations must be > 0", spec.name));
  }
  std::set<std::string> names;
  for (const auto& p : spec.phases) {
    if (!names.insert(p.name).second) return bad(p, "phase names must be unique");
    if (p.sizes.empty() || p.patterns.empty())
      return bad(p, "needs at least one state size and one pattern");
    if (p.pause_after.count() < 0) return bad(p, "pause must not be negative");
    switch (p.executor) {
      case Executor::kWave:
        if (p.agents < 1) return bad(p, fmt::format("a wave needs >= 1 agent (got {})", p.agents));
        break;
      case Executor::kConstant:
        if (p.agents < 1)
          return bad(p, fmt::format("constant concurrency needs >= 1 agent (got {})", p.agents));
        if (p.duration.count() <= 0) return bad(p, "constant concurrency needs a duration > 0");
        break;
      case Executor::kArrivals:
        if (p.agents < 0) return bad(p, "max in flight must not be negative");
        if (p.duration.count() <= 0) return bad(p, "an arrival phase needs a duration > 0");
        if (!(p.rate_per_s > 0) || !(p.rate_end_per_s >= 0) || !std::isfinite(p.rate_per_s) ||
            !std::isfinite(p.rate_end_per_s) || p.rate_per_s > 1e7 || p.rate_end_per_s > 1e7) {
          return bad(p, fmt::format("arrival rate must be in (0, 1e7] per second (got {} -> {})",
                                    p.rate_per_s, p.rate_end_per_s));
        }
        break;
    }
    if (p.max_operations == 0) return bad(p, "max_operations must be > 0");
    if (!p.fault_events.empty() && p.executor != Executor::kConstant) {
      return bad(
          p, "fault events need constant concurrency (the phase runs until the faults are healed)");
    }
    for (const auto& ev : p.fault_events) {
      if (ev.at.count() < 0 || ev.hold.count() < 0)
        return bad(p, "fault times must not be negative");
    }
    if (p.critical_every < 0) return bad(p, "critical_every must not be negative");
    if (p.delete_every < 0) return bad(p, "delete_every must not be negative");
  }
  for (const auto& g : spec.gates) {
    if (!std::isfinite(g.limit) || g.limit < 0) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("scenario {} gate {}: limit must be a finite non-negative number",
                                spec.name, g.name));
    }
    if (g.interval && (g.interval->window.count() <= 0 || g.interval->min_percent < 0 ||
                       g.interval->min_percent > 100)) {
      return Status(
          StatusCode::kInvalidArgument,
          fmt::format("scenario {} gate {}: interval window must be > 0 and the share 0..100 %",
                      spec.name, g.name));
    }
  }
  return Status();
}

Metrics BaseMetrics(const ScenarioResult& r) {
  Metrics m;
  uint64_t executed = 0, succeeded = 0, failed = 0, corrupted = 0, late = 0, dropped = 0;
  uint64_t retries = 0, pool_waits = 0, pool_timeouts = 0, pool_rejections = 0;
  std::map<std::string, uint64_t> errors;
  double wall = 0;
  Histogram lag, ok;
  for (const auto& p : r.phases) {
    executed += p.executed;
    succeeded += p.succeeded;
    failed += p.failed;
    corrupted += p.corrupted;
    late += p.late_starts;
    dropped += p.dropped_starts;
    wall += p.end_s - p.start_s;
    lag.Merge(p.start_lag);
    // Per phase, for gates such as "phase.spike.p95_ms".
    const std::string prefix = "phase." + p.name + ".";
    AddCounts(m, prefix, p.executed, p.succeeded, p.failed, p.end_s - p.start_s);
    AddLatencyMetrics(m, prefix, p.latency);
    AddLatencyMetrics(m, prefix + "ok_", p.ok_latency);
    m[prefix + "retries"] = static_cast<double>(p.retries);
    m[prefix + "mean_retries"] =
        p.executed ? static_cast<double>(p.retries) / static_cast<double>(p.executed) : 0;
    for (const auto& [kind, k] : p.kinds) {
      const std::string kp = prefix + kind + ".";
      m[kp + "executed"] = static_cast<double>(k.executed);
      m[kp + "succeeded"] = static_cast<double>(k.succeeded);
      AddLatencyMetrics(m, kp, k.latency);
    }
    ok.Merge(p.ok_latency);
    retries += p.retries;
    pool_waits += p.pool_waits;
    pool_timeouts += p.pool_timeouts;
    pool_rejections += p.pool_rejections;
    for (const auto& [code, n] : p.errors) errors[code] += n;
    if (p.executor == Executor::kArrivals)
      AddLatencyMetrics(m, prefix + "uncorrected_", p.uncorrected);
  }
  AddCounts(m, "", executed, succeeded, failed, wall);
  AddLatencyMetrics(m, "", r.latency);
  AddLatencyMetrics(m, "ok_", ok);
  m["retries"] = static_cast<double>(retries);
  m["mean_retries"] = executed ? static_cast<double>(retries) / static_cast<double>(executed) : 0;
  m["pool_waits"] = static_cast<double>(pool_waits);
  m["pool_timeouts"] = static_cast<double>(pool_timeouts);
  m["pool_rejections"] = static_cast<double>(pool_rejections);
  for (const auto& [code, n] : errors) m["errors." + code] = static_cast<double>(n);
  double injected = 0, unrecovered = 0;
  for (const auto& f : r.faults) {
    injected += f.injected ? 1 : 0;
    unrecovered += f.injected && !f.recovered ? 1 : 0;
  }
  m["faults_injected"] = injected;
  m["faults_unrecovered"] = unrecovered;
  // Lost acknowledged writes per durability class (through the store; a tiered store's
  // durable tier is gated on its own as durable_lost_writes).
  m["lost_auto_writes"] = static_cast<double>(r.ledger.lost_auto);
  m["lost_critical_writes"] = static_cast<double>(r.ledger.lost_durable_class);

  m["sla_violations"] = static_cast<double>(r.latency.CountAbove(200000));
  m["peak_memory_mb"] = r.peak_rss_mb;
  m["avg_cpu_percent"] = r.avg_cpu_percent;
  m["corruption"] = static_cast<double>(corrupted + r.ledger.corrupted);
  m["lost_writes"] = static_cast<double>(r.ledger.lost);
  m["phantom_writes"] = static_cast<double>(r.ledger.phantom);
  m["out_of_order_writes"] = static_cast<double>(r.ledger.out_of_order);
  m["resurrected_runs"] = static_cast<double>(r.ledger.resurrected);
  m["data_integrity_issues"] =
      m["corruption"] + static_cast<double>(r.ledger.lost + r.ledger.phantom +
                                            r.ledger.out_of_order + r.ledger.resurrected);
  m["late_starts"] = static_cast<double>(late);
  m["dropped_starts"] = static_cast<double>(dropped);
  m["generator_lag_p99_ms"] = Ms(lag.ValueAtPercentile(99));
  const Trend trend = RssTrend(r.resources);
  m["memory_slope_mb_per_hour"] = trend.mb_per_hour;
  return m;
}

void FinishScenario(ScenarioResult& result) {
  result.metrics = BaseMetrics(result);
  if (result.write_behind_dropped) {
    result.metrics["write_behind_dropped"] = static_cast<double>(*result.write_behind_dropped);
  }
  if (result.durable_ledger) {
    result.metrics["durable_lost_writes"] = static_cast<double>(result.durable_ledger->lost);
    result.metrics["durable_corrupted"] = static_cast<double>(result.durable_ledger->corrupted);
    result.metrics["durable_resurrected_runs"] =
        static_cast<double>(result.durable_ledger->resurrected);
    // Every acknowledged critical write must be in the durable tier, whatever the hot one says.
    result.metrics["lost_critical_writes"] =
        std::max(result.metrics["lost_critical_writes"],
                 static_cast<double>(result.durable_ledger->lost_durable_class));
  }
  if (result.analytics && result.analytics->reachable) {
    const auto& a = *result.analytics;
    // Events neither on the server nor counted as dropped; and events on the server beyond
    // the recorded minus the dropped that no insert in doubt explains (a duplicate, or a
    // drop that in fact landed, needs one).
    const double expected = static_cast<double>(a.recorded) - static_cast<double>(a.dropped);
    const double on_server = static_cast<double>(a.on_server);
    result.metrics["analytics_missing_events"] = expected - on_server;
    result.metrics["analytics_unexplained_events"] =
        std::max(0.0, on_server - expected - static_cast<double>(a.in_doubt));
    result.metrics["analytics_in_doubt_events"] = static_cast<double>(a.in_doubt);
    result.metrics["analytics_dropped_events"] = static_cast<double>(a.dropped);
    for (const auto& [op, v] : a.server_p99_ms) result.metrics["analytics_server_p99_ms_" + op] = v;
    for (const auto& [op, v] : a.server_ops_per_min)
      result.metrics["analytics_server_ops_per_min_" + op] = v;
  }
  result.metrics["wall_s"] = result.wall_s;
  result.metrics["harness_thread_cpu_percent"] = result.harness_thread_cpu_percent;
  result.metrics["harness_thread_busy_percent"] = result.harness_thread_busy_percent;
  // INVALID: the generator, not the store, set the pace.
  const double lag = result.metrics["generator_lag_p99_ms"];
  const double max_lag = static_cast<double>(result.spec.max_generator_lag.count());
  if (lag > max_lag) {
    result.invalid = true;
    result.invalid_reason =
        fmt::format("generator schedule lag p99 {:.1f} ms > {:.0f} ms", lag, max_lag);
  } else if (result.resources.size() >= 3 && std::max(result.harness_thread_cpu_percent,
                                                      result.harness_thread_busy_percent) >= 95) {
    // Busy, not CPU alone: beside a compile the never-idle harness thread got 60 % of a core
    // and looked healthy; its run time plus run-queue wait is what shows it never rested.
    result.invalid = true;
    result.invalid_reason =
        fmt::format("the harness thread was saturated ({:.0f} % busy, {:.0f} % of a core)",
                    result.harness_thread_busy_percent, result.harness_thread_cpu_percent);
  }
  if (result.spec.derive) result.spec.derive(result);
  result.gates = EvaluateGates(result.spec.gates, result.metrics, result.windows);
}

std::string ScenarioVersion(const ScenarioSpec& spec) {
  std::string shape = spec.name + "|" + spec.user_id;
  for (const auto& p : spec.phases) {
    shape += fmt::format("|{}:{}:{}:{}:{}:{}:{}:{}:{}", p.name, Name(p.executor), p.agents,
                         p.duration.count(), p.rate_per_s, p.rate_end_per_s,
                         static_cast<int>(p.arrival), p.pause_after.count(), p.max_operations);
    for (const auto& ev : p.fault_events)
      shape += fmt::format(",fault:{}@{}+{}", ev.fault, ev.at.count(), ev.hold.count());
    if (p.critical_every > 0) shape += fmt::format(",critical/{}", p.critical_every);
    if (p.delete_every > 0) shape += fmt::format(",delete/{}", p.delete_every);
    // append, not `std::string(",") + ...`: g++ 12 at -O3 (Release) calls that a -Wrestrict
    // overlap (gcc bug 105329), fatal under -Werror.
    for (auto z : p.sizes) shape.append(",").append(Name(z));
    for (auto x : p.patterns) shape.append(",").append(Name(x));
  }
  for (const auto& g : spec.gates) {
    shape += fmt::format(
        "|{}:{}:{}:{}", g.name, g.metric, static_cast<int>(g.compare),
        g.interval ? fmt::format("{}s>={}", g.interval->window.count(), g.interval->min_percent)
                   : "");
  }
  return fmt::format("{:016x}", HashScope(0, shape, 0));
}

Awaitable<ScenarioResult> RunScenario(ScenarioSpec spec, RunContext ctx) {
  ScenarioResult result;
  result.started_unix = static_cast<int64_t>(std::time(nullptr));
  if (!ctx.harness_tid) ctx.harness_tid = static_cast<int>(::syscall(SYS_gettid));
  ResourceSampler sampler(spec.sample_interval);
  sampler.WatchThread(ctx.harness_tid);
  sampler.WatchStore([&store = ctx.store] { return store.Stats().values; });
  sampler.Start();
  State st{spec, ctx, SteadyClock::now(), {}, {}, {}};
  std::set<int64_t> gate_widths;
  for (const auto& g : spec.gates) {
    if (g.interval)
      gate_widths.insert(
          std::chrono::duration_cast<std::chrono::milliseconds>(g.interval->window).count());
  }
  st.recorders.emplace_back(std::chrono::seconds(1), gate_widths.count(1000) > 0);
  for (int64_t ms : gate_widths) {
    if (ms != 1000) st.recorders.emplace_back(std::chrono::milliseconds(ms), true);
  }
  auto ex = co_await asio::this_coro::executor;
  bool done = false;
  asio::steady_timer tick(ex);
  core::WaitGroup ticker(ex);
  ticker.Add(1);
  asio::co_spawn(
      ex,
      [&]() -> Awaitable<void> {
        co_await Ticker(st, done, tick);
        ticker.Done();
      },
      asio::detached);

  // Every phase's measurement structures (histograms are ~188 KB each) exist before the
  // first phase runs: allocated mid-run, they read as RSS growth to the leak gates.
  result.phases.resize(spec.phases.size());
  for (std::size_t i = 0; i < spec.phases.size(); ++i) {
    result.phases[i].name = spec.phases[i].name;
    result.phases[i].executor = spec.phases[i].executor;
    result.phases[i].kinds[std::string(Name(spec.phases[i].work))];
    if (spec.phases[i].reads > 0) result.phases[i].kinds[std::string(Name(Work::kRead))];
    if (spec.phases[i].critical_every > 0)
      result.phases[i].kinds[std::string(Name(Work::kCriticalCheckpoint))];
    if (spec.phases[i].delete_every > 0)
      result.phases[i].kinds[std::string(Name(Work::kSaveDelete))];
  }
  std::size_t ran = 0;
  const auto end_by = st.t0 + spec.max_duration;
  // The tiered store's counters are the session's: this scenario's share is the difference.
  const uint64_t dropped_before =
      ctx.tiered ? static_cast<uint64_t>(ctx.tiered->Stats().values["write_behind_dropped"]) : 0;
  for (std::size_t i = 0; i < spec.phases.size(); ++i) {
    const PhaseSpec& p = spec.phases[i];
    if (SteadyClock::now() >= end_by) {
      result.truncated = true;
      break;
    }
    if (st.Interrupted()) break;
    st.phase = p.name;
    if (ctx.debug) {
      fmt::print(stderr, "agentload: debug: {:.3f} s {}: phase {} starts ({}, {} agents)\n",
                 st.Elapsed(), spec.name, p.name, Name(p.executor), p.agents);
    }
    PhaseResult& pr = result.phases[i];
    ran = i + 1;
    st.current = &pr;
    pr.start_s = st.Elapsed();
    // The harness pool stands in for a client pool only where the store has none.
    const bool store_has_pool = ctx.store.Stats().values.count("pool_size") > 0;
    if (p.pool_slots > 0 && !store_has_pool)
      st.pool = std::make_unique<Pool>(ex, p.pool_slots, p.pool_max_waiters, p.pool_wait, pr);
    st.phase_end = std::min(end_by, SteadyClock::now() + p.duration);
    // A fault phase: its driver injects and heals on a worker thread, the health poller
    // watches the store, and the load goes on until the last fault has been observed healed.
    std::vector<FaultWindow> windows;
    bool stop_polling = false;
    core::WaitGroup fault_tasks(ex);
    std::optional<asio::thread_pool> worker;
    if (!p.fault_events.empty()) {
      st.marking = true;
      st.phase_end = end_by;  // until the driver is done: the scenario's own bound
      worker.emplace(1);
      fault_tasks.Add(2);
      const TimePoint start = SteadyClock::now();
      asio::co_spawn(
          ex,
          [&, start]() -> Awaitable<void> {
            co_await DriveFaults(st, p, start, windows, *worker);
            st.phase_end = st.Interrupted()
                               ? SteadyClock::now()
                               : std::min(end_by, std::max(start + p.duration,
                                                           SteadyClock::now() + p.observe));
            fault_tasks.Done();
          },
          asio::detached);
      asio::co_spawn(
          ex,
          [&]() -> Awaitable<void> {
            co_await PollHealth(st, stop_polling);
            fault_tasks.Done();
          },
          asio::detached);
    }
    switch (p.executor) {
      case Executor::kWave: co_await RunWave(st, p, pr); break;
      case Executor::kConstant: co_await RunConstant(st, p, pr); break;
      case Executor::kArrivals: co_await RunArrivals(st, p, pr); break;
    }
    if (!p.fault_events.empty()) {
      stop_polling = true;
      co_await fault_tasks.Wait();
      st.marking = false;
      AssessFaults(st, windows, st.Elapsed());
      for (auto& w : windows) result.faults.push_back(std::move(w));
    }
    st.pool.reset();
    pr.end_s = st.Elapsed();
    result.latency.Merge(pr.latency);
    if (ctx.verbose) {
      if (ctx.progress) std::cerr << "\r\x1b[K";
      std::cerr << fmt::format(
          "  {} / {} ({}): {} agents, {} ok, p50 {:.2f} ms, p99 {:.2f} ms, {:.2f} s\n", spec.name,
          pr.name, Name(pr.executor), pr.executed, pr.succeeded,
          Ms(pr.latency.ValueAtPercentile(50)), Ms(pr.latency.ValueAtPercentile(99)),
          pr.end_s - pr.start_s);
    }
    if (spec.stop_early) {
      if (std::string why = spec.stop_early(result, i); !why.empty()) {
        result.stopped_early = why;
        break;
      }
    }
    // The pause between phases is part of the scenario's shape (idle time the store sees),
    // never counted as work.
    if (p.pause_after.count() > 0 && i + 1 < spec.phases.size() && !st.Interrupted()) {
      st.phase = "pause";
      asio::steady_timer pause(ex, std::min(SteadyClock::now() + p.pause_after, end_by));
      boost::system::error_code ec;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  result.phases.resize(ran);  // phases never started (time bound, early stop) are not results
  result.interrupted = st.Interrupted();
  st.phase = "verify";
  st.current = nullptr;
  result.ledger = co_await st.ledger.Verify(ctx.store, spec.op_timeout, 64);
  if (!ctx.tiered) ChargeLosses({&result.ledger}, st.t0, result.faults);
  if (ctx.tiered) {
    // The durable tier on its own, once the write-behind queue is empty: every acknowledged
    // write must be there (a flush failure shows as lost writes, not as a skipped check).
    co_await ctx.tiered->Flush(DeadlineIn(spec.op_timeout * 10));
    result.write_behind_dropped =
        static_cast<uint64_t>(ctx.tiered->Stats().values["write_behind_dropped"]) - dropped_before;
    spec.gates.push_back({"write_behind_dropped", "write_behind_dropped", Compare::kAtMost, 0, ""});
    result.durable_ledger = co_await st.ledger.Verify(ctx.tiered->durable(), spec.op_timeout, 64);
    ChargeLosses({&result.ledger, &*result.durable_ledger}, st.t0, result.faults);
    spec.gates.push_back({"durable_lost_writes", "durable_lost_writes", Compare::kAtMost, 0, ""});
    spec.gates.push_back(
        {"durable_resurrected_runs", "durable_resurrected_runs", Compare::kAtMost, 0, ""});
    if (auto* sink = ctx.tiered->analytics()) {
      // Every operation the store performed is an event on the server, or a counted drop.
      // (The session's figures are cumulative over the run's scenarios.)
      Status flushed = sink->Flush();
      auto counts = sink->EventsByOp();
      const auto a = sink->stats();
      AnalyticsCheck check;
      check.recorded = a.recorded;
      check.dropped = a.dropped_events;
      check.in_doubt = a.in_doubt_events;
      if (counts) {
        for (const auto& [op, n] : *counts) check.on_server += n;
      }
      check.reachable = flushed.ok() && counts.has_value();
      if (auto p99 = sink->P99MsByOp()) check.server_p99_ms = *p99;
      if (auto rate = sink->OpsPerMinuteByOp()) check.server_ops_per_min = *rate;
      result.analytics = check;
      spec.gates.push_back(
          {"analytics_missing_events", "analytics_missing_events", Compare::kAtMost, 0, ""});
      spec.gates.push_back({"analytics_unexplained_events", "analytics_unexplained_events",
                            Compare::kAtMost, 0, ""});
    }
  }
  done = true;
  tick.cancel();
  co_await ticker.Wait();
  if (ctx.progress) std::cerr << "\r\x1b[K" << std::flush;
  result.wall_s = st.Elapsed();
  // The last, partial intervals: short scenarios still get a row.
  for (auto& r : st.recorders) r.Close(result.wall_s);
  sampler.Stop();
  result.series = st.recorders[0].rows();
  for (const auto& r : st.recorders) {
    if (!gate_widths.count(r.width().count())) continue;
    result.windows[r.width().count()] = r.rows();
    result.window_histograms[r.width().count()] = r.histograms();
  }
  result.resources = sampler.Samples();
  result.peak_rss_mb = sampler.PeakRssMb();
  result.avg_cpu_percent = sampler.MeanCpuPercent();
  result.harness_thread_cpu_percent = sampler.MeanThreadCpuPercent();
  result.harness_thread_busy_percent = sampler.MeanThreadBusyPercent();
  result.spec = std::move(spec);
  FinishScenario(result);
  co_return result;
}

}  // namespace agentstate::load
