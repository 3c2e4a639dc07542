#include "backends/memory/memory_checkpoints.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <set>

#include "core/validate.hpp"

namespace agentstate::backends::memory {
namespace {

// The first key past every key whose leading strings are `s` (keys hold no NUL).
std::string After(const std::string& s) { return s + '\0'; }

}  // namespace

std::map<MemoryCheckpoints::CheckpointKey, MemoryCheckpoints::Stored>::const_iterator
MemoryCheckpoints::Head(const std::string& thread_id, const std::string& ns) const {
  auto end = checkpoints_.lower_bound({thread_id, After(ns), ""});
  if (end == checkpoints_.begin()) return checkpoints_.end();
  auto last = std::prev(end);
  const auto& [t, n, id] = last->first;
  return t == thread_id && n == ns ? last : checkpoints_.end();
}

std::pair<MemoryCheckpoints::CheckpointIt, MemoryCheckpoints::CheckpointIt>
MemoryCheckpoints::ThreadCheckpoints(const std::string& thread_id) {
  return {checkpoints_.lower_bound({thread_id, "", ""}),
          checkpoints_.lower_bound({After(thread_id), "", ""})};
}

Result<CheckpointTuple> MemoryCheckpoints::Tuple(const CheckpointKey& key, const Stored& s) const {
  const auto& [thread_id, ns, id] = key;
  CheckpointTuple out{thread_id, ns, id, s.parent_id, s.checkpoint, s.metadata, {}, {}};
  for (const auto& [channel, version] : s.versions) {
    auto v = values_.find({thread_id, ns, channel, version});
    if (v == values_.end() || v->second.type == "empty") continue;
    auto value = core::LoadValue(
        v->second.type, v->second.body.encoding, v->second.body.bytes, v->second.checksum,
        fmt::format("thread {} channel {}@{}", thread_id, channel, version));
    if (!value) return Error(value.error());
    out.values.push_back({channel, version, std::move(*value)});
  }
  for (auto w = writes_.lower_bound({thread_id, ns, id, "", std::numeric_limits<int64_t>::min()});
       w != writes_.end(); ++w) {
    const auto& [t, n, c, task, idx] = w->first;
    if (t != thread_id || n != ns || c != id) break;
    auto value = core::LoadValue(w->second.value.type, w->second.value.body.encoding,
                                 w->second.value.body.bytes, w->second.value.checksum,
                                 fmt::format("thread {} write {}/{}", thread_id, task, idx));
    if (!value) return Error(value.error());
    out.writes.push_back({task, w->second.task_path, w->second.channel, idx, std::move(*value)});
  }
  return out;
}

Awaitable<Status> MemoryCheckpoints::PutCheckpoint(CheckpointPut put, Deadline) {
  auto versions = core::ValidatePut(put, options_.max_id_bytes);
  if (!versions) co_return Status(versions.error());
  std::lock_guard lock(mu_);
  if (put.check_head) {
    auto head = Head(put.thread_id, put.ns);
    const std::string head_id = head == checkpoints_.end() ? "" : std::get<2>(head->first);
    if (head_id != put.parent_id)
      co_return Status(StatusCode::kConflict,
                       fmt::format("thread {}: its newest checkpoint is '{}', not the parent "
                                   "'{}' this put names; read the head and continue from it",
                                   put.thread_id, head_id, put.parent_id));
  }
  for (const auto& v : put.values)
    values_.try_emplace({put.thread_id, put.ns, v.channel, v.version}, core::StoreValue(v.value));
  checkpoints_[{put.thread_id, put.ns, put.checkpoint_id}] =
      Stored{std::move(put.parent_id), std::move(put.checkpoint), std::move(put.metadata),
             std::move(*versions)};
  touched_ms_[put.thread_id] = core::NowMs(options_);
  co_return Status();
}

Awaitable<Status> MemoryCheckpoints::PutWrites(
    std::string thread_id, std::string ns, std::string checkpoint_id, std::string task_id,
    std::string task_path, std::vector<std::pair<std::string, TypedValue>> writes, Deadline) {
  if (Status s = core::ValidateWrites(thread_id, ns, checkpoint_id, task_id, writes,
                                      options_.max_id_bytes);
      !s.ok())
    co_return s;
  std::lock_guard lock(mu_);
  if (!checkpoints_.contains({thread_id, ns, checkpoint_id}))
    co_return Status(StatusCode::kNotFound,
                     fmt::format("thread {}: no checkpoint '{}' in namespace '{}' to write to "
                                 "(put it first; a deleted thread takes no writes)",
                                 thread_id, checkpoint_id, ns));
  const bool replace = core::ReplacesWrites(writes);
  for (std::size_t i = 0; i < writes.size(); ++i) {
    auto& [channel, value] = writes[i];
    WriteKey key{thread_id, ns, checkpoint_id, task_id, core::WriteIndex(channel, i)};
    StoredWrite w{task_path, channel, core::StoreValue(value)};
    if (replace)
      writes_[key] = std::move(w);
    else
      writes_.try_emplace(std::move(key), std::move(w));
  }
  touched_ms_[thread_id] = core::NowMs(options_);
  co_return Status();
}

Awaitable<Result<std::optional<CheckpointTuple>>> MemoryCheckpoints::GetCheckpoint(
    std::string thread_id, std::string ns, std::string checkpoint_id, Deadline) {
  if (Status s = core::ValidateGet(thread_id, ns, checkpoint_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  std::lock_guard lock(mu_);
  auto it = checkpoint_id.empty() ? Head(thread_id, ns)
                                  : checkpoints_.find({thread_id, ns, checkpoint_id});
  if (it == checkpoints_.end()) co_return std::optional<CheckpointTuple>();
  auto t = Tuple(it->first, it->second);
  if (!t) co_return Error(t.error());
  co_return std::optional<CheckpointTuple>(std::move(*t));
}

Awaitable<Result<std::vector<CheckpointTuple>>> MemoryCheckpoints::ListCheckpoints(
    CheckpointListQuery q, Deadline) {
  auto filter = core::ValidateListQuery(q, options_.max_id_bytes);
  if (!filter) co_return Error(filter.error());
  std::lock_guard lock(mu_);
  auto [first, last] = q.thread_id ? ThreadCheckpoints(*q.thread_id)
                                   : std::pair{checkpoints_.lower_bound({q.thread_prefix, "", ""}),
                                               checkpoints_.end()};
  std::vector<decltype(first)> hits;
  for (auto it = first; it != last; ++it) {
    const auto& [t, ns, id] = it->first;
    if (!core::InThreads(t, q.thread_prefix)) break;  // past the prefix's range
    if (q.ns && ns != *q.ns) continue;
    if (q.checkpoint_id && id != *q.checkpoint_id) continue;
    if (q.before && !(id < *q.before)) continue;
    if (filter->Matches(it->second.metadata)) hits.push_back(it);
  }
  const auto order = [](auto a, auto b) {
    const auto& [ta, na, ia] = a->first;
    const auto& [tb, nb, ib] = b->first;
    return core::ListsBefore({ta, na, ia}, {tb, nb, ib});
  };
  const std::size_t n = std::min(q.limit, hits.size());
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(n), hits.end(), order);
  std::vector<CheckpointTuple> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto t = Tuple(hits[i]->first, hits[i]->second);
    if (!t) co_return Error(t.error());
    out.push_back(std::move(*t));
  }
  co_return out;
}

void MemoryCheckpoints::Erase(std::map<CheckpointKey, Stored>::iterator it, PurgeReport& report) {
  const auto& [t, ns, id] = it->first;
  auto w = writes_.lower_bound({t, ns, id, "", std::numeric_limits<int64_t>::min()});
  while (w != writes_.end() && std::get<0>(w->first) == t && std::get<1>(w->first) == ns &&
         std::get<2>(w->first) == id) {
    w = writes_.erase(w);
    ++report.writes;
  }
  checkpoints_.erase(it);
  ++report.checkpoints;
}

uint64_t MemoryCheckpoints::PurgeValues(const std::string& thread_id) {
  std::set<std::tuple<std::string, std::string, std::string>> used;  // ns, channel, version
  auto [first, last] = ThreadCheckpoints(thread_id);
  for (auto it = first; it != last; ++it) {
    for (const auto& [channel, version] : it->second.versions)
      used.emplace(std::get<1>(it->first), channel, version);
  }
  uint64_t purged = 0;
  for (auto v = values_.lower_bound({thread_id, "", "", ""});
       v != values_.end() && std::get<0>(v->first) == thread_id;) {
    const auto& [t, ns, channel, version] = v->first;
    if (used.contains({ns, channel, version})) {
      ++v;
    } else {
      v = values_.erase(v);
      ++purged;
    }
  }
  return purged;
}

Awaitable<Result<uint64_t>> MemoryCheckpoints::DeleteThread(std::string thread_id, Deadline) {
  if (Status s = core::ValidateId("thread_id", thread_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  std::lock_guard lock(mu_);
  PurgeReport report;
  for (auto [it, last] = ThreadCheckpoints(thread_id); it != last;) Erase(it++, report);
  PurgeValues(thread_id);
  touched_ms_.erase(thread_id);
  co_return report.checkpoints;
}

Awaitable<Result<uint64_t>> MemoryCheckpoints::CopyThread(std::string from, std::string to,
                                                          Deadline) {
  for (const auto& [what, id] :
       {std::pair{"from thread_id", &from}, std::pair{"to thread_id", &to}})
    if (Status s = core::ValidateId(what, *id, options_.max_id_bytes); !s.ok()) co_return Error(s);
  std::lock_guard lock(mu_);
  // A thread with anything in it has been touched (and loses its touch when emptied).
  if (touched_ms_.contains(to))
    co_return Error(StatusCode::kConflict,
                    fmt::format("thread {} already holds checkpoints; copy into a new thread id "
                                "or delete it first",
                                to));
  auto [first, last] = ThreadCheckpoints(from);
  if (first == last)
    co_return Error(StatusCode::kNotFound, fmt::format("thread {} has no checkpoints", from));
  uint64_t copied = 0;
  std::vector<std::pair<CheckpointKey, Stored>> cps;
  for (auto it = first; it != last; ++it, ++copied)
    cps.emplace_back(CheckpointKey{to, std::get<1>(it->first), std::get<2>(it->first)}, it->second);
  std::vector<std::pair<ValueKey, core::StoredValue>> vals;
  for (auto v = values_.lower_bound({from, "", "", ""});
       v != values_.end() && std::get<0>(v->first) == from; ++v)
    vals.emplace_back(
        ValueKey{to, std::get<1>(v->first), std::get<2>(v->first), std::get<3>(v->first)},
        v->second);
  std::vector<std::pair<WriteKey, StoredWrite>> ws;
  for (auto w = writes_.lower_bound({from, "", "", "", std::numeric_limits<int64_t>::min()});
       w != writes_.end() && std::get<0>(w->first) == from; ++w) {
    auto key = w->first;
    std::get<0>(key) = to;
    ws.emplace_back(std::move(key), w->second);
  }
  checkpoints_.insert(cps.begin(), cps.end());
  values_.insert(vals.begin(), vals.end());
  writes_.insert(ws.begin(), ws.end());
  touched_ms_[to] = core::NowMs(options_);
  co_return copied;
}

Awaitable<Result<PurgeReport>> MemoryCheckpoints::Prune(std::string thread_id,
                                                        std::string thread_prefix,
                                                        RetentionPolicy policy, Deadline) {
  if (Status s = core::ValidateThreads(thread_id, thread_prefix, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  std::lock_guard lock(mu_);
  std::vector<std::string> threads;
  if (!thread_id.empty()) {
    threads.push_back(thread_id);
  } else {
    for (auto it = touched_ms_.lower_bound(thread_prefix);
         it != touched_ms_.end() && core::InThreads(it->first, thread_prefix); ++it)
      threads.push_back(it->first);
  }
  const int64_t now_ms = core::NowMs(options_);
  PurgeReport report;
  for (const auto& t : threads) {
    const auto touched = touched_ms_.find(t);
    const bool expired = policy.thread_ttl.count() > 0 && touched != touched_ms_.end() &&
                         touched->second + policy.thread_ttl.count() <= now_ms;
    // Newest first within each namespace: keep the first keep_last of each.
    std::map<std::string, std::size_t> seen;  // ns -> kept so far
    auto [first, last] = ThreadCheckpoints(t);
    std::vector<CheckpointIt> doomed;
    for (auto it = std::make_reverse_iterator(last); it != std::make_reverse_iterator(first);
         ++it) {
      if (policy.delete_all || expired ||
          (policy.keep_last > 0 && ++seen[std::get<1>(it->first)] > policy.keep_last))
        doomed.push_back(std::prev(it.base()));
    }
    for (auto it : doomed) Erase(it, report);
    Settle(t, report);
  }
  co_return report;
}

void MemoryCheckpoints::Settle(const std::string& thread_id, PurgeReport& report) {
  report.values += PurgeValues(thread_id);
  if (auto [left, end] = ThreadCheckpoints(thread_id); left == end) {
    if (touched_ms_.erase(thread_id) > 0) ++report.threads;
  }
}

Awaitable<Result<PurgeReport>> MemoryCheckpoints::DeleteForRuns(std::vector<std::string> run_ids,
                                                                std::string thread_prefix,
                                                                Deadline) {
  auto runs = core::ValidateRunIds(std::move(run_ids), thread_prefix, options_.max_id_bytes);
  if (!runs) co_return Error(runs.error());
  std::lock_guard lock(mu_);
  PurgeReport report;
  std::set<std::string> threads;
  for (auto it = checkpoints_.lower_bound({thread_prefix, "", ""});
       it != checkpoints_.end() && core::InThreads(std::get<0>(it->first), thread_prefix);) {
    if (core::OfRuns(it->second.metadata, *runs)) {
      threads.insert(std::get<0>(it->first));
      Erase(it++, report);
    } else {
      ++it;
    }
  }
  for (const auto& t : threads) Settle(t, report);
  co_return report;
}

bool MemoryCheckpoints::CorruptValueForTest(const std::string& thread_id, const std::string& ns,
                                            const std::string& channel,
                                            const std::string& version) {
  std::lock_guard lock(mu_);
  auto v = values_.find({thread_id, ns, channel, version});
  if (v == values_.end() || v->second.body.bytes.empty()) return false;
  v->second.body.bytes[0] = static_cast<char>(v->second.body.bytes[0] ^ 1);
  return true;
}

}  // namespace agentstate::backends::memory
