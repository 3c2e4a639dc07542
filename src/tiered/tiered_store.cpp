#include "tiered/tiered_store.hpp"

#include <fmt/format.h>

#include <vector>

#include "core/asio.hpp"
#include "core/codec.hpp"
#include "core/log2_histogram.hpp"
#include "core/record.hpp"
#include "core/validate.hpp"
#include "core/wait_group.hpp"

namespace agentstate::tiered {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

class TieredStoreImpl::Lag : public core::Log2Histogram {};

namespace {

// How long the durable tier counts as failing after an error: critical saves fail fast
// meanwhile instead of waiting out a deadline each.
constexpr auto kDurableBackoff = 1s;
// Write-behind: runs per PutMany (one durable transaction), and PutMany calls at once.
constexpr std::size_t kPutBatch = 64;
constexpr std::size_t kParallelChunks = 4;
// A write-behind record the durable tier refuses this often for another reason than an
// outage (bad data, a constraint) can never succeed: it is dropped and counted, not retried
// forever. Outages are retried until the tier is back (the queue is bounded).
constexpr int kMaxRefusals = 3;
// How often a Delete looks again whether a write-behind of its run is still under way.
constexpr auto kDeleteWaitSlice = 2ms;

bool Outage(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kTimeout;
}
// Refusals that say nothing about the record: retrying it later may succeed.
bool Transient(const Status& s) { return Outage(s) || s.code() == StatusCode::kPoolExhausted; }

// The saved record with its payload, made from the request (moved from: the payload is not
// copied again).
StateRecord RecordWithPayload(SaveRequest&& req, int64_t version, uint64_t checksum,
                              SystemTime at) {
  std::string payload = std::move(req.payload);
  StateRecord m = core::RecordOf(std::move(req), version, checksum, at);
  m.payload = std::move(payload);
  return m;
}

}  // namespace

TieredStoreImpl::TieredStoreImpl(std::unique_ptr<StateStore> hot,
                                 std::unique_ptr<StateStore> durable,
                                 std::unique_ptr<backends::clickhouse::AnalyticsSink> analytics,
                                 TieredOptions tiered, StoreOptions options)
    : hot_(std::move(hot)),
      durable_(std::move(durable)),
      analytics_(std::move(analytics)),
      tiered_(tiered),
      options_(std::move(options)),
      lag_(std::make_unique<Lag>()),
      io_(1),
      wake_(io_) {
  asio::co_spawn(io_, FlushLoop(), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

TieredStoreImpl::~TieredStoreImpl() {
  asio::post(io_, [this] {
    stopping_ = true;
    wake_.cancel();
  });
  thread_.join();
}

std::string TieredStoreImpl::Describe() const {
  return fmt::format(
      "tiered(hot={}, durable={}{}, flush_window={}ms)", hot_->Describe(), durable_->Describe(),
      analytics_ ? ", analytics=" + analytics_->Describe() : "", tiered_.flush_window.count());
}

void TieredStoreImpl::Note(std::string_view op, const std::string& run_id,
                           const std::string& user_id, uint64_t bytes, SteadyClock::time_point t0,
                           const Status& outcome) {
  if (!analytics_) return;
  backends::clickhouse::Event e;
  e.at_ms = core::ToUnixMillis(core::Now(options_));
  e.op = std::string(op);
  e.run_id = run_id;
  e.user_id = user_id;
  e.bytes = bytes;
  e.latency_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t0).count());
  e.outcome = outcome.ok() ? "ok" : std::string(CodeName(outcome.code()));
  analytics_->Record(std::move(e));
}

// ---------------------------------------------------------------------------------------
// The write-behind queue.

void TieredStoreImpl::Enqueue(StateRecord record) {
  std::lock_guard lock(mu_);
  auto it = pending_.find(record.run_id);
  if (it == pending_.end()) {
    std::string key = record.run_id;  // not record.run_id itself: the record is moved from below
    pending_.emplace(std::move(key), Pending{std::make_shared<const StateRecord>(std::move(record)),
                                             SteadyClock::now()});
  } else if (record.version > it->second.record->version) {
    // Coalesced: the older version is never written.
    it->second.record = std::make_shared<const StateRecord>(std::move(record));
    ++coalesced_;
  }
}

std::optional<TieredStoreImpl::Pending> TieredStoreImpl::TakeRun(const std::string& run_id) {
  std::lock_guard lock(mu_);
  if (auto it = pending_.find(run_id); it != pending_.end()) {
    Pending p = std::move(it->second);
    pending_.erase(it);
    Inflight& f = inflight_[run_id];
    f.record = p.record;
    ++f.writers;
    return p;
  }
  if (auto it = inflight_.find(run_id); it != inflight_.end()) {
    ++it->second.writers;
    return Pending{it->second.record, SteadyClock::now()};
  }
  return std::nullopt;
}

std::vector<TieredStoreImpl::Pending> TieredStoreImpl::TakeAll() {
  std::vector<Pending> items;
  std::lock_guard lock(mu_);
  items.reserve(pending_.size());
  for (auto& [run, p] : pending_) {
    Inflight& f =
        inflight_[run];  // in the same step: FlushRun and Delete must see one or the other
    f.record = p.record;
    ++f.writers;
    items.push_back(std::move(p));
  }
  pending_.clear();
  return items;
}

void TieredStoreImpl::Finished(const std::string& run_id) {
  std::lock_guard lock(mu_);
  if (auto it = inflight_.find(run_id); it != inflight_.end() && --it->second.writers <= 0)
    inflight_.erase(it);
}

bool TieredStoreImpl::DurableFailing() const {
  std::lock_guard lock(mu_);
  return SteadyClock::now() < durable_failing_until_;
}

void TieredStoreImpl::NoteDurable(const Status& s) {
  if (!s.ok() && !Outage(s)) return;
  std::lock_guard lock(mu_);
  // A success ends the fail-fast at once: the flusher's retries are what find the tier back.
  durable_failing_until_ =
      s.ok() ? SteadyClock::time_point{} : SteadyClock::now() + kDurableBackoff;
}

bool TieredStoreImpl::IsStale(const std::string& run_id) const {
  std::lock_guard lock(mu_);
  return stale_.count(run_id) > 0;
}

void TieredStoreImpl::SetStale(const std::string& run_id, bool stale) {
  std::lock_guard lock(mu_);
  if (stale) {
    stale_.insert(run_id);
  } else {
    stale_.erase(run_id);
  }
}

Awaitable<Status> TieredStoreImpl::FlushOne(Pending p, Deadline deadline) {
  StateRecord copy = *p.record;
  auto r = co_await durable_->Put(std::move(copy), deadline);
  if (r) {
    NoteDurable(Status());
    lag_->Record(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - p.since)
            .count()));
    ++flushed_;
    co_return Status();
  }
  ++flush_failures_;
  NoteDurable(r.error());
  if (!Transient(r.error()) && ++p.failures >= kMaxRefusals) {
    // The durable tier refuses this record itself: retrying cannot help. The hot tier keeps
    // it; the durable tier misses it, which the count (and a ledger of the durable tier)
    // shows.
    ++write_behind_dropped_;
    co_return r.error();
  }
  {
    // Back on the queue, unless a newer version of the run arrived meanwhile.
    std::lock_guard lock(mu_);
    auto it = pending_.find(p.record->run_id);
    if (it == pending_.end()) {
      std::string key = p.record->run_id;
      pending_.emplace(std::move(key), std::move(p));
    } else if (it->second.record->version < p.record->version) {
      it->second.record = std::move(p.record);
      it->second.since = std::min(it->second.since, p.since);
      it->second.failures = p.failures;
    } else {
      it->second.since = std::min(it->second.since, p.since);
    }
  }
  co_return r.error();
}

Awaitable<void> TieredStoreImpl::FlushChunk(std::vector<Pending> chunk, Deadline deadline) {
  std::vector<StateRecord> records;
  records.reserve(chunk.size());
  for (const auto& p : chunk) records.push_back(*p.record);
  auto r = co_await durable_->PutMany(std::move(records), deadline);
  if (r) {
    NoteDurable(Status());
    const auto now = SteadyClock::now();
    for (const auto& p : chunk) {
      lag_->Record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - p.since).count()));
      Finished(p.record->run_id);
    }
    flushed_ += chunk.size();
    ++batches_;
    co_return;
  }
  NoteDurable(r.error());
  for (auto& p : chunk) {
    const std::string run = p.record->run_id;
    (void)co_await FlushOne(std::move(p), deadline);  // it counts a failure and requeues
    Finished(run);
  }
}

Awaitable<Status> TieredStoreImpl::FlushRun(const std::string& run_id, Deadline deadline) {
  auto p = TakeRun(run_id);
  if (!p) co_return Status();
  Status s = co_await FlushOne(std::move(*p), deadline);
  Finished(run_id);
  co_return s;
}

Awaitable<Status> TieredStoreImpl::Flush(Deadline deadline) {
  // What the flusher is writing right now is written here too (Put is idempotent), so that
  // the durable tier has everything when this returns, not when the flusher's Puts land.
  std::vector<Pending> writing;
  {
    std::lock_guard lock(mu_);
    for (auto& [run, f] : inflight_) {
      if (pending_.count(run)) continue;
      ++f.writers;
      writing.push_back(Pending{f.record, SteadyClock::now()});
    }
  }
  std::vector<Pending> items = TakeAll();
  for (auto& p : writing) items.push_back(std::move(p));
  Status first;
  std::size_t failed = 0;
  for (auto& p : items) {
    const std::string run = p.record->run_id;
    Status s = co_await FlushOne(std::move(p), deadline);
    Finished(run);
    if (!s.ok()) {
      ++failed;
      if (first.ok()) first = s;
    }
  }
  if (failed == 0) co_return Status();
  co_return Status(StatusCode::kUnavailable,
                   fmt::format("{} of {} pending runs did not reach the durable tier: {}", failed,
                               items.size(), first.message()));
}

// Every flush window: everything pending goes to the durable tier, in chunks of kPutBatch a
// time. A failing durable tier is retried at the next window; the queue holds the newest
// version of each run, so a retry never writes an older one.
Awaitable<void> TieredStoreImpl::FlushLoop() {
  auto ex = co_await asio::this_coro::executor;
  while (true) {
    wake_.expires_after(tiered_.flush_window);
    boost::system::error_code ec;
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    std::vector<Pending> items = TakeAll();
    // Chunks of kPutBatch runs, each one PutMany (one durable transaction for backends
    // that batch), kParallelChunks at a time. A chunk that fails is retried run by run, so
    // one bad record cannot hold back the others.
    for (std::size_t at = 0; at < items.size(); at += kPutBatch * kParallelChunks) {
      core::WaitGroup group(ex);
      for (std::size_t c = at; c < items.size() && c < at + kPutBatch * kParallelChunks;
           c += kPutBatch) {
        std::vector<Pending> chunk;
        for (std::size_t i = c; i < std::min(items.size(), c + kPutBatch); ++i)
          chunk.push_back(std::move(items[i]));
        group.Add(1);
        asio::co_spawn(
            ex,
            [this, &group, chunk = std::move(chunk)]() mutable -> Awaitable<void> {
              co_await FlushChunk(std::move(chunk), DeadlineIn(tiered_.put_timeout));
              group.Done();
            },
            asio::detached);
      }
      co_await group.Wait();
    }
    if (stopping_) {
      // One last pass for what arrived during the final flush, then stop.
      (void)co_await Flush(DeadlineIn(tiered_.put_timeout));
      co_return;
    }
  }
}

// ---------------------------------------------------------------------------------------
// The operations with an analytics event each.

Awaitable<Result<SaveAck>> TieredStoreImpl::Save(SaveRequest req, Deadline deadline) {
  const auto t0 = SteadyClock::now();
  const std::string run_id = req.run_id, user_id = req.user_id;
  const uint64_t bytes = req.payload.size();
  const bool durable_class = KeepsCheckpoint(req.checkpoint_type, req.is_recovery_point);
  auto r = co_await SaveImpl(std::move(req), deadline);
  Note(durable_class ? "save_durable" : "save", run_id, user_id, bytes, t0,
       r ? Status() : r.error());
  co_return r;
}

Awaitable<Result<std::optional<StateRecord>>> TieredStoreImpl::Load(std::string run_id,
                                                                    Deadline deadline) {
  const auto t0 = SteadyClock::now();
  const std::string run = run_id;
  auto r = co_await LoadImpl(std::move(run_id), deadline);
  Note("load", run, r && *r ? (*r)->user_id : "", r && *r ? (*r)->payload.size() : 0, t0,
       r ? Status() : r.error());
  co_return r;
}

Awaitable<Done> TieredStoreImpl::Complete(std::string run_id, Deadline deadline) {
  const auto t0 = SteadyClock::now();
  const std::string run = run_id;
  auto r = co_await CompleteImpl(std::move(run_id), deadline);
  Note("complete", run, "", 0, t0, r ? Status() : r.error());
  if (r && analytics_) {
    // The archive of the completed run: its final state, from the durable tier.
    auto rec = co_await durable_->Load(run, deadline);
    if (rec && *rec) analytics_->Archive(**rec, core::ToUnixMillis(core::Now(options_)));
  }
  co_return r;
}

// ---------------------------------------------------------------------------------------
// Writes.

Awaitable<Result<SaveAck>> TieredStoreImpl::SaveImpl(SaveRequest req, Deadline deadline) {
  if (Status s = core::CheckDeadline(deadline, "save"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateSave(req, options_); !s.ok()) co_return Error(s);
  const bool durable_class = KeepsCheckpoint(req.checkpoint_type, req.is_recovery_point);
  if (durable_class && DurableFailing()) {
    co_return Error(
        StatusCode::kUnavailable,
        fmt::format(
            "run {}: the durable tier ({}) is failing; {} saves are acknowledged only after its "
            "commit",
            req.run_id, durable_->Describe(), Name(req.checkpoint_type)));
  }
  const std::string run_id = req.run_id;
  // A run whose hot copy is behind (written on the durable tier while the hot one was down)
  // is saved on the durable tier until a read re-hydrates it.
  bool hot_down = IsStale(run_id);
  Result<SaveAck> ack = Error(StatusCode::kUnavailable, "not tried");
  if (!hot_down) {
    SaveRequest copy = req;
    ack = co_await hot_->Save(std::move(copy), deadline);
    hot_down = !ack && ack.error().code() == StatusCode::kUnavailable;
  }
  if (hot_down) {
    ++hot_fallbacks_;
    if (Status s = co_await FlushRun(run_id, deadline); !s.ok()) co_return Error(s);
    auto d = co_await durable_->Save(std::move(req), deadline);
    NoteDurable(d ? Status() : d.error());
    if (d) SetStale(run_id, true);
    co_return d;
  }
  if (!ack) co_return Error(ack.error());
  const std::optional<int64_t> expected = req.expected_version;
  StateRecord record =
      RecordWithPayload(std::move(req), ack->version, ack->checksum, core::Now(options_));
  // The hot tier's version is checked once per run: on a version 1 (the run is new, or the
  // hot tier lost it), and after the hot tier may have lost writes (a dropped connection:
  // Redis may have restarted with less than it acknowledged). A run the queue or the
  // durable tier knows at this version or later is re-based onto that version + 1.
  // A replayed save (its idempotency key wrote this version) was re-based, if at all, when
  // it was first written; it still goes on to the durable tier below, which ignores it when
  // it has the version already.
  uint64_t generation = 0;
  const bool checked = Checked(run_id, &generation);
  if (!ack->replayed && (ack->version == 1 || !checked)) {
    Behind behind = co_await NewestBehindHot(run_id, deadline);
    // With the durable tier unreadable, what the queue and the flusher hold still counts (a
    // run on the hot path was written through them); the run stays unchecked.
    const int64_t known = behind.newest ? behind.newest->version : 0;
    if (known >= ack->version) {
      ++rebased_;
      if (expected && *expected != known) {
        co_await hot_->Delete(run_id,
                              deadline);  // the hot copy is behind; the next read re-hydrates
        co_return Error(StatusCode::kConflict, fmt::format("run {} is at version {}, expected {}",
                                                           run_id, known, *expected));
      }
      record.version = known + 1;
      StateRecord copy = record;
      auto put = co_await hot_->Put(std::move(copy), deadline);
      if (!put) co_return Error(put.error());
      ack->version = record.version;
    }
    if (behind.durable.ok()) MarkChecked(run_id, generation);
  }
  if (durable_class) {
    StateRecord copy = record;
    auto put = co_await durable_->Put(std::move(copy), deadline);
    if (!put) {
      NoteDurable(put.error());
      Enqueue(std::move(record));  // it reaches the durable tier later; the caller is told now
      co_return Error(put.error().code() == StatusCode::kTimeout ? StatusCode::kTimeout
                                                                 : StatusCode::kUnavailable,
                      fmt::format("run {} v{}: in the hot tier, but the durable commit failed: {}",
                                  run_id, ack->version, put.error().message()));
    }
    co_return *ack;
  }
  bool full = false;
  {
    std::lock_guard lock(mu_);
    full = pending_.size() >= tiered_.max_pending_runs && !pending_.count(run_id);
  }
  if (full) {
    // The queue is full: this save writes through, so the lag stays bounded.
    ++write_throughs_;
    StateRecord copy = record;
    auto put = co_await durable_->Put(std::move(copy), deadline);
    if (!put) {
      NoteDurable(put.error());
      co_return Error(StatusCode::kUnavailable,
                      fmt::format("run {}: the write-behind queue is full ({} runs) and the "
                                  "durable tier is failing: {}",
                                  run_id, tiered_.max_pending_runs, put.error().message()));
    }
    co_return *ack;
  }
  Enqueue(std::move(record));
  co_return *ack;
}

Awaitable<Result<bool>> TieredStoreImpl::Put(StateRecord record, Deadline deadline) {
  // The durable tier first catches up with the run, so both tiers judge "newer" alike.
  if (Status s = co_await FlushRun(record.run_id, deadline); !s.ok()) co_return Error(s);
  StateRecord copy = record;
  auto hot = co_await hot_->Put(std::move(copy), deadline);
  auto durable = co_await durable_->Put(std::move(record), deadline);
  if (!durable) co_return Error(durable.error());
  co_return (hot && *hot) || *durable;
}

// A deleted run must stay deleted whatever the timing: no write of it acknowledged before
// the delete may land in a tier after it, and no read may re-hydrate it meanwhile.
// A write-behind already on its way (its Put not yet committed) would land after a durable
// delete and bring its run back: waits until none of the runs `key` names (the run, or with
// `prefix` every run under it) is on its way, then drops their queued writes in the same
// step, so that no new one starts in between. false when the deadline came first.
Awaitable<bool> TieredStoreImpl::DropQueuedWrites(const std::string& key, bool prefix,
                                                  Deadline deadline) {
  auto named = [&](const std::string& id) { return prefix ? id.starts_with(key) : id == key; };
  asio::steady_timer wait(co_await asio::this_coro::executor);
  while (true) {
    {
      std::lock_guard lock(mu_);
      // Both maps are ordered: the runs named are one range from lower_bound(key).
      auto f = inflight_.lower_bound(key);
      if (f == inflight_.end() || !named(f->first)) {
        for (auto p = pending_.lower_bound(key); p != pending_.end() && named(p->first);)
          p = pending_.erase(p);
        co_return true;
      }
    }
    if (SteadyClock::now() + kDeleteWaitSlice >= deadline) co_return false;
    wait.expires_after(kDeleteWaitSlice);
    boost::system::error_code ec;
    co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

Awaitable<Result<bool>> TieredStoreImpl::Delete(std::string run_id, Deadline deadline) {
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  ++deletes_started_;
  // Other runs of the run's thread still queued go first: written behind after the delete,
  // each would point the durable tier's thread context back at itself (found by CI: the
  // contract test's thread context came back when the flusher ran between delete and read).
  std::vector<std::string> same_thread;
  {
    std::lock_guard lock(mu_);
    std::string thread;
    if (auto it = pending_.find(run_id); it != pending_.end()) {
      thread = it->second.record->thread_id;
    } else if (auto f = inflight_.find(run_id); f != inflight_.end() && f->second.record) {
      thread = f->second.record->thread_id;
    }
    for (const auto& [id, p] : pending_) {
      if (!thread.empty() && id != run_id && p.record->thread_id == thread)
        same_thread.push_back(id);
    }
  }
  for (const auto& id : same_thread) {
    if (Status s = co_await FlushRun(id, deadline); !s.ok()) co_return Error(s);
  }
  // Then the durable tier catches up with the run, so that its thread context names this
  // run and goes with it (else it would still name the thread's previous run, which the
  // durable tier then answers once the hot tier's context is gone).
  if (Status s = co_await FlushRun(run_id, deadline); !s.ok()) co_return Error(s);
  if (!co_await DropQueuedWrites(run_id, /*prefix=*/false, deadline)) {
    co_return Error(
        StatusCode::kTimeout,
        fmt::format("run {}: a write of it is still on its way to the durable tier ({}); nothing "
                    "was deleted, retry the delete",
                    run_id, durable_->Describe()));
  }
  // The durable tier first: a read that misses the hot tier meanwhile finds nothing behind it.
  auto durable = co_await durable_->Delete(run_id, deadline);
  if (!durable) co_return Error(durable.error());
  auto hot = co_await hot_->Delete(run_id, deadline);
  // A hot tier that could not delete may still hold the run: it is bypassed (stale) until a
  // read or save finds the run's state behind it.
  SetStale(run_id, !hot);
  co_return *durable || (hot && *hot);
}

Awaitable<Result<uint64_t>> TieredStoreImpl::DeletePrefix(std::string prefix, Deadline deadline) {
  if (Status s = core::ValidateDeletePrefix(prefix); !s.ok()) co_return Error(s);
  if (!co_await DropQueuedWrites(prefix, /*prefix=*/true, deadline)) {
    co_return Error(StatusCode::kTimeout,
                    fmt::format("runs under {}: writes of them are still on their way to the "
                                "durable tier ({}); nothing was deleted, retry",
                                prefix, durable_->Describe()));
  }
  auto durable = co_await durable_->DeletePrefix(prefix, deadline);
  if (!durable) co_return Error(durable.error());
  auto hot = co_await hot_->DeletePrefix(prefix, deadline);
  if (!hot) co_return Error(hot.error());
  co_return std::max(*durable, *hot);
}

Awaitable<Done> TieredStoreImpl::CompleteImpl(std::string run_id, Deadline deadline) {
  if (Status s = co_await FlushRun(run_id, deadline); !s.ok()) co_return Error(s);
  auto durable = co_await durable_->Complete(run_id, deadline);
  if (!durable) co_return durable;
  auto hot = co_await hot_->Complete(run_id, deadline);
  if (!hot && hot.error().code() != StatusCode::kNotFound &&
      hot.error().code() != StatusCode::kUnavailable) {
    co_return hot;
  }
  co_return Done();
}

Awaitable<Result<CheckpointInfo>> TieredStoreImpl::Checkpoint(std::string run_id,
                                                              CheckpointType type,
                                                              Deadline deadline) {
  if (Status s = co_await FlushRun(run_id, deadline); !s.ok()) co_return Error(s);
  co_return co_await durable_->Checkpoint(std::move(run_id), type, deadline);
}

Awaitable<Result<std::vector<CheckpointInfo>>> TieredStoreImpl::ListCheckpoints(std::string run_id,
                                                                                Deadline deadline) {
  if (Status s = co_await FlushRun(run_id, deadline); !s.ok()) co_return Error(s);
  co_return co_await durable_->ListCheckpoints(std::move(run_id), deadline);
}

Awaitable<Result<StateRecord>> TieredStoreImpl::Restore(std::string run_id,
                                                        std::optional<std::string> checkpoint_id,
                                                        Deadline deadline) {
  if (Status s = co_await FlushRun(run_id, deadline); !s.ok()) co_return Error(s);
  auto rec = co_await durable_->Restore(run_id, std::move(checkpoint_id), deadline);
  if (!rec) co_return rec;
  StateRecord copy = *rec;
  auto hot = co_await hot_->Put(std::move(copy), deadline);
  SetStale(run_id, !hot);
  co_return rec;
}

// ---------------------------------------------------------------------------------------
// Reads.

bool TieredStoreImpl::Checked(const std::string& run_id, uint64_t* generation) {
  const uint64_t now = hot_->Generation();
  *generation = now;
  std::lock_guard lock(mu_);
  if (!checked_generation_ || *checked_generation_ != now) {
    checked_generation_ = now;
    checked_.clear();
  }
  return checked_.count(run_id) > 0;
}

void TieredStoreImpl::MarkChecked(const std::string& run_id, uint64_t generation) {
  std::lock_guard lock(mu_);
  if (checked_generation_ != generation) return;  // checked against a hot tier since replaced
  if (checked_.size() >= tiered_.max_pending_runs)
    checked_.clear();  // bounded: rechecks cost a read each
  checked_.insert(run_id);
}

// The newest of the queue's record, the one the flusher is writing now (its Put may not
// have committed) and the durable tier's. The durable tier's can be the newest: saves made
// while the hot tier was down go to it directly while the flusher may still be writing an
// older version of the run. Memory is read first, so a flush that commits in between is
// seen in one place or the other. When the durable tier fails, `newest` is memory's alone.
Awaitable<TieredStoreImpl::Behind> TieredStoreImpl::NewestBehindHot(const std::string& run_id,
                                                                    Deadline deadline) {
  Behind behind;
  {
    std::lock_guard lock(mu_);
    const StateRecord* newest = nullptr;
    if (auto it = pending_.find(run_id); it != pending_.end()) newest = it->second.record.get();
    if (auto it = inflight_.find(run_id);
        it != inflight_.end() && (!newest || it->second.record->version > newest->version)) {
      newest = it->second.record.get();
    }
    if (newest) {
      const int64_t expires = core::ExpiryMillis(options_.ttl, RunStatus::kActive,
                                                 newest->is_recovery_point, newest->saved_at);
      if (expires > core::ToUnixMillis(core::Now(options_)))
        behind.newest = *newest;  // an expired one is gone
    }
  }
  auto durable = co_await durable_->Load(run_id, deadline);
  if (!durable) {
    behind.durable = durable.error();
  } else if (*durable && (!behind.newest || (*durable)->version > behind.newest->version)) {
    behind.newest = std::move(*durable);
  }
  co_return behind;
}

Awaitable<Result<std::optional<StateRecord>>> TieredStoreImpl::LoadImpl(std::string run_id,
                                                                        Deadline deadline) {
  // The hot tier answers, once its copy of the run has been checked in this generation (see
  // SaveImpl); otherwise its record is compared with what lies behind it first.
  const bool stale = IsStale(run_id);
  const uint64_t deletes = deletes_started_.load();
  std::optional<StateRecord> from_hot;
  uint64_t generation = 0;
  if (!stale) {
    auto hot = co_await hot_->Load(run_id, deadline);
    if (hot && *hot) {
      if (Checked(run_id, &generation)) co_return hot;
      from_hot = std::move(**hot);
    } else if (!hot && hot.error().code() != StatusCode::kUnavailable) {
      co_return hot;
    } else if (!hot) {
      ++hot_fallbacks_;
    }
  }
  Behind behind = co_await NewestBehindHot(run_id, deadline);
  if (!behind.durable.ok()) {
    // Without the durable tier: memory alone is complete only for a run that was never
    // written to the durable tier directly (not stale); the hot copy then stays unchecked.
    if (stale || (!from_hot && !behind.newest)) co_return Error(behind.durable);
  }
  if (from_hot && (!behind.newest || behind.newest->version <= from_hot->version)) {
    if (behind.durable.ok()) MarkChecked(run_id, generation);
    co_return std::optional<StateRecord>(std::move(*from_hot));
  }
  std::optional<StateRecord> found = std::move(behind.newest);
  if (!found) co_return std::optional<StateRecord>();
  // Re-hydrate the hot tier (a miss, a stale run, or a hot copy behind).
  StateRecord copy = *found;
  auto put = co_await hot_->Put(std::move(copy), deadline);
  if (put && !*put) {
    // The hot tier already has this version or a newer one. A newer one is a save that
    // landed meanwhile: it stays (replacing it lost acknowledged versions, and two writers
    // then won the same one). The same version with other bytes is a save in doubt that
    // landed while the run was written to the durable tier (the version numbers collide):
    // the durable tier's is the acknowledged one.
    auto now_hot = co_await hot_->Load(run_id, deadline);
    const bool collides = now_hot && *now_hot && (*now_hot)->version == found->version &&
                          (*now_hot)->checksum != found->checksum;
    if (collides) {
      if (auto gone = co_await hot_->Delete(run_id, deadline); gone) {
        StateRecord again = *found;
        put = co_await hot_->Put(std::move(again), deadline);
      }
    }
  }
  if (put && *put && deletes_started_.load() != deletes) {
    // A delete began since this read looked behind the hot tier: what it re-hydrated may be
    // the deleted run. Taken back; the next read looks again.
    co_await hot_->Delete(run_id, deadline);
    co_return found;
  }
  if (put && *put) {
    ++rehydrated_;
    SetStale(run_id, false);
    if (from_hot && behind.durable.ok()) MarkChecked(run_id, generation);
  }
  co_return found;
}

Awaitable<Result<std::optional<ThreadContextRecord>>> TieredStoreImpl::ThreadContext(
    std::string thread_id, Deadline deadline) {
  auto hot = co_await hot_->ThreadContext(thread_id, deadline);
  if (hot && *hot) co_return hot;
  if (!hot && hot.error().code() != StatusCode::kUnavailable) co_return hot;
  co_return co_await durable_->ThreadContext(std::move(thread_id), deadline);
}

Awaitable<Result<ActiveRunsPage>> TieredStoreImpl::ActiveRuns(ActiveRunsQuery query,
                                                              Deadline deadline) {
  ActiveRunsQuery copy = query;
  auto hot = co_await hot_->ActiveRuns(std::move(copy), deadline);
  if (hot || hot.error().code() != StatusCode::kUnavailable) co_return hot;
  co_return co_await durable_->ActiveRuns(std::move(query), deadline);
}

Awaitable<Result<HealthReport>> TieredStoreImpl::Health(Deadline deadline) {
  HealthReport out;
  for (StateStore* tier : {hot_.get(), durable_.get()}) {
    auto h = co_await tier->Health(deadline);
    if (!h) co_return h;
    out.tiers.insert(out.tiers.end(), h->tiers.begin(), h->tiers.end());
  }
  if (out.tiers.size() >= 2) {
    out.tiers[0].tier = "hot";
    out.tiers[1].tier = "durable";
  }
  if (analytics_) {
    // The sink never blocks the store; its health is how its last batch went.
    TierHealth a;
    a.tier = "analytics";
    a.backend = analytics_->Describe();
    a.healthy = !analytics_->stats().failing;
    if (!a.healthy)
      a.detail = "the last batch was refused after its retries; events are dropped and counted";
    out.tiers.push_back(std::move(a));
  }
  co_return out;
}

StoreStats TieredStoreImpl::Stats() const {
  StoreStats s;
  s.backend = Describe();
  for (const auto& [k, v] : hot_->Stats().values) s.values["hot_" + k] = v;
  for (const auto& [k, v] : durable_->Stats().values) s.values["durable_" + k] = v;
  {
    std::lock_guard lock(mu_);
    s.values["write_behind_queue"] = static_cast<double>(pending_.size());
    s.values["stale_runs"] = static_cast<double>(stale_.size());
    s.values["durable_failing"] = SteadyClock::now() < durable_failing_until_ ? 1 : 0;
  }
  s.values["flush_window_ms"] = static_cast<double>(tiered_.flush_window.count());
  if (analytics_) {
    const auto a = analytics_->stats();
    s.values["analytics_recorded"] = static_cast<double>(a.recorded);
    s.values["analytics_sent"] = static_cast<double>(a.sent);
    s.values["analytics_dropped_events"] = static_cast<double>(a.dropped_events);
    s.values["analytics_in_doubt_events"] = static_cast<double>(a.in_doubt_events);
    s.values["analytics_dropped_rows"] = static_cast<double>(a.dropped);
    s.values["analytics_buffered"] = static_cast<double>(a.buffered);
    s.values["analytics_batches"] = static_cast<double>(a.batches);
    s.values["analytics_retries"] = static_cast<double>(a.retries);
    s.values["analytics_archived"] = static_cast<double>(a.archived);
    s.values["analytics_failing"] = a.failing ? 1 : 0;
  }
  s.values["write_behind_flushed"] = static_cast<double>(flushed_.load());
  s.values["write_behind_batches"] = static_cast<double>(batches_.load());
  s.values["write_behind_failures"] = static_cast<double>(flush_failures_.load());
  s.values["write_behind_coalesced"] = static_cast<double>(coalesced_.load());
  s.values["write_behind_dropped"] = static_cast<double>(write_behind_dropped_.load());
  s.values["write_throughs"] = static_cast<double>(write_throughs_.load());
  s.values["hot_fallbacks"] = static_cast<double>(hot_fallbacks_.load());
  s.values["rebased"] = static_cast<double>(rebased_.load());
  s.values["rehydrated"] = static_cast<double>(rehydrated_.load());
  s.values["write_behind_lag_p50_ms"] = static_cast<double>(lag_->Percentile(0.50)) / 1000.0;
  s.values["write_behind_lag_p99_ms"] = static_cast<double>(lag_->Percentile(0.99)) / 1000.0;
  s.values["write_behind_lag_max_ms"] = static_cast<double>(lag_->Max()) / 1000.0;
  // What a report needs for the contract: saves and the like as one number each.
  s.values["saves"] = s.values["hot_saves"];
  s.values["loads"] = s.values["hot_loads"];
  return s;
}

}  // namespace agentstate::tiered
