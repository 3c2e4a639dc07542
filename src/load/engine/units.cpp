// The unit of work every agent does (save, load, verify; and its variants), and the three
// executors that drive agents through a phase: waves, constant concurrency, open arrivals.
#include <fmt/format.h>

#include <array>
#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <iostream>
#include <random>

#include "core/asio.hpp"
#include "core/wait_group.hpp"
#include "load/engine/run_state.hpp"

namespace agentstate::load::detail {
namespace {

constexpr auto kLateStart = std::chrono::milliseconds(10);
constexpr int kDefaultMaxInFlight = 10000;

// One unit's context: where it records, its deadline per call, and what it does (a read
// in a writers' phase does Work::kRead; the phase's own spec is shared, never copied).
struct Unit {
  State& st;
  PhaseResult& phase;
  const PhaseSpec& spec;
  Work work;
  // Idempotent saves, in phases that retry: the unit's number, the same in each of its
  // attempts, the place of the attempt's next save, and how many saves in each place were
  // in doubt so far.
  uint64_t seq = 0;
  std::size_t save_index = 0;
  std::array<uint32_t, 4> doubts{};
  bool keyed() const { return spec.max_retries > 0; }
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

// A prefix no other agentload process shares, so two never send each other's keys.
const std::string& KeyPrefix() {
  static const std::string prefix = fmt::format("al{:08x}", std::random_device{}());
  return prefix;
}
std::atomic<uint64_t> next_unit{0};

// Saves and records the outcome in the ledger: acknowledged, refused, or in doubt. Where the
// phase retries, the save carries an idempotency key, the same for the same save in each
// attempt of the unit (as the original's clients would retry one); once a retry with it is
// acknowledged, the attempts in doubt before it are settled: they made no other version.
Awaitable<Result<SaveAck>> LedgeredSave(Unit& u, SaveRequest req) {
  const std::string run_id = req.run_id;
  const CheckpointType durability = req.checkpoint_type;
  const std::size_t place = u.save_index++;
  const bool keyed = u.keyed() && place < u.doubts.size();
  if (keyed) req.idempotency_key = fmt::format("{}.{:x}.{}", KeyPrefix(), u.seq, place);
  auto ack = co_await Save(u, std::move(req));
  if (ack) {
    // A replay of a save an earlier attempt saw acknowledged (its read failed, not its save)
    // is that acknowledgement again, not a second one.
    const bool seen = ack->replayed && u.st.ledger.LastAck(run_id) ==
                                           std::optional(std::pair(ack->version, ack->checksum));
    if (!seen)
      u.st.ledger.Record(run_id, WriteOutcome::kAcked, ack->version, ack->checksum, durability);
    if (ack->replayed) ++u.phase.replayed_saves;
    if (keyed && u.doubts[place] > 0) {
      u.st.ledger.Settle(run_id, u.doubts[place]);
      u.doubts[place] = 0;
    }
  } else {
    // Refused before reaching the store (the harness pool) is a definite "not written".
    const bool doubt = InDoubt(ack.error()) && ack.error().code() != StatusCode::kPoolExhausted;
    u.st.ledger.Record(run_id, doubt ? WriteOutcome::kUnknown : WriteOutcome::kFailed, 0, 0,
                       durability);
    if (doubt && keyed) ++u.doubts[place];
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
  if (u.keyed()) u.seq = next_unit.fetch_add(1, std::memory_order_relaxed);
  for (int attempt = 0;; ++attempt) {
    u.save_index = 0;
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

}  // namespace

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

}  // namespace agentstate::load::detail
