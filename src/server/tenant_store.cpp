#include "server/tenant_store.hpp"

#include "core/asio.hpp"
#include "core/validate.hpp"

namespace agentstate::server {

bool ValidTenant(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return false;
  for (char c : name) {
    if (!alnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

// The checkpoint model's view: thread ids in and out with the tenant's prefix, as for runs;
// a call over every thread (a list without a thread id, a prune of all) covers the tenant's
// prefix only.
class TenantStore::TenantCheckpoints final : public CheckpointStore {
 public:
  TenantCheckpoints(const TenantStore& owner, CheckpointStore& inner)
      : owner_(owner), inner_(inner) {}

  Awaitable<Status> PutCheckpoint(CheckpointPut put, Deadline deadline) override {
    if (Status c = owner_.Check("thread_id", put.thread_id); !c.ok()) co_return c;
    if (Status c = owner_.Check("checkpoint_id", put.checkpoint_id); !c.ok()) co_return c;
    if (Status c = owner_.CheckIfGiven("checkpoint_ns", put.ns); !c.ok()) co_return c;
    if (Status c = owner_.CheckIfGiven("parent checkpoint_id", put.parent_id); !c.ok()) co_return c;
    for (const auto& v : put.values)
      if (Status c = owner_.Check("channel", v.channel); !c.ok()) co_return c;
    put.thread_id = owner_.In(put.thread_id);
    co_return owner_.Scrub(co_await inner_.PutCheckpoint(std::move(put), deadline));
  }

  Awaitable<Status> PutWrites(std::string thread_id, std::string ns, std::string checkpoint_id,
                              std::string task_id, std::string task_path,
                              std::vector<std::pair<std::string, TypedValue>> writes,
                              Deadline deadline) override {
    if (Status c = owner_.Check("thread_id", thread_id); !c.ok()) co_return c;
    if (Status c = owner_.CheckIfGiven("checkpoint_ns", ns); !c.ok()) co_return c;
    if (Status c = owner_.Check("checkpoint_id", checkpoint_id); !c.ok()) co_return c;
    if (Status c = owner_.Check("task_id", task_id); !c.ok()) co_return c;
    for (const auto& w : writes)
      if (Status c = owner_.Check("channel", w.first); !c.ok()) co_return c;
    co_return owner_.Scrub(co_await inner_.PutWrites(
        owner_.In(thread_id), std::move(ns), std::move(checkpoint_id), std::move(task_id),
        std::move(task_path), std::move(writes), deadline));
  }

  Awaitable<Result<std::optional<CheckpointTuple>>> GetCheckpoint(std::string thread_id,
                                                                  std::string ns,
                                                                  std::string checkpoint_id,
                                                                  Deadline deadline) override {
    if (Status c = owner_.Check("thread_id", thread_id); !c.ok()) co_return Error(c);
    if (Status c = owner_.CheckIfGiven("checkpoint_ns", ns); !c.ok()) co_return Error(c);
    if (Status c = owner_.CheckIfGiven("checkpoint_id", checkpoint_id); !c.ok()) co_return Error(c);
    auto r = co_await inner_.GetCheckpoint(owner_.In(thread_id), std::move(ns),
                                           std::move(checkpoint_id), deadline);
    if (!r) co_return Error(owner_.Scrub(r.error()));
    if (*r) (*r)->thread_id = owner_.Out((*r)->thread_id);
    co_return r;
  }

  Awaitable<Result<std::vector<CheckpointTuple>>> ListCheckpoints(CheckpointListQuery q,
                                                                  Deadline deadline) override {
    if (q.thread_id) {
      if (Status c = owner_.Check("thread_id", *q.thread_id); !c.ok()) co_return Error(c);
      q.thread_id = owner_.In(*q.thread_id);
    }
    for (const auto& [what, id] :
         {std::pair{"checkpoint_ns", &q.ns}, std::pair{"checkpoint_id", &q.checkpoint_id},
          std::pair{"before", &q.before}}) {
      if (!id->has_value()) continue;
      if (Status c = owner_.CheckIfGiven(what, **id); !c.ok()) co_return Error(c);
    }
    q.thread_prefix = owner_.In(q.thread_prefix);
    auto r = co_await inner_.ListCheckpoints(std::move(q), deadline);
    if (!r) co_return Error(owner_.Scrub(r.error()));
    for (auto& t : *r) t.thread_id = owner_.Out(t.thread_id);
    co_return r;
  }

  Awaitable<Result<uint64_t>> DeleteThread(std::string thread_id, Deadline deadline) override {
    if (Status c = owner_.Check("thread_id", thread_id); !c.ok()) co_return Error(c);
    auto r = co_await inner_.DeleteThread(owner_.In(thread_id), deadline);
    if (!r) co_return Error(owner_.Scrub(r.error()));
    co_return r;
  }

  Awaitable<Result<uint64_t>> CopyThread(std::string from, std::string to,
                                         Deadline deadline) override {
    if (Status c = owner_.Check("from thread_id", from); !c.ok()) co_return Error(c);
    if (Status c = owner_.Check("to thread_id", to); !c.ok()) co_return Error(c);
    auto r = co_await inner_.CopyThread(owner_.In(from), owner_.In(to), deadline);
    if (!r) co_return Error(owner_.Scrub(r.error()));
    co_return r;
  }

  Awaitable<Result<PurgeReport>> Prune(std::string thread_id, std::string thread_prefix,
                                       RetentionPolicy policy, Deadline deadline) override {
    if (!thread_id.empty()) {
      if (Status c = owner_.Check("thread_id", thread_id); !c.ok()) co_return Error(c);
      thread_id = owner_.In(thread_id);
    }
    auto r =
        co_await inner_.Prune(std::move(thread_id), owner_.In(thread_prefix), policy, deadline);
    if (!r) co_return Error(owner_.Scrub(r.error()));
    co_return r;
  }

  Awaitable<Result<PurgeReport>> DeleteForRuns(std::vector<std::string> run_ids,
                                               std::string thread_prefix,
                                               Deadline deadline) override {
    for (const auto& id : run_ids)
      if (Status c = owner_.Check("run_id", id); !c.ok()) co_return Error(c);
    auto r = co_await inner_.DeleteForRuns(std::move(run_ids), owner_.In(thread_prefix), deadline);
    if (!r) co_return Error(owner_.Scrub(r.error()));
    co_return r;
  }

 private:
  const TenantStore& owner_;
  CheckpointStore& inner_;
};

TenantStore::TenantStore(StateStore& inner, std::string tenant, std::size_t max_id_bytes)
    : inner_(inner), prefix_(std::move(tenant) + "/"), max_id_bytes_(max_id_bytes) {}

Status TenantStore::Check(std::string_view what, std::string_view id) const {
  return core::ValidateId(what, id, max_id_bytes_);
}

Status TenantStore::CheckIfGiven(std::string_view what, std::string_view id) const {
  return id.empty() ? Status() : Check(what, id);
}

std::string TenantStore::Out(std::string_view id) const {
  return id.substr(0, prefix_.size()) == prefix_ ? std::string(id.substr(prefix_.size()))
                                                 : std::string(id);
}

Status TenantStore::Scrub(const Status& s) const {
  std::string m = s.message();
  for (auto at = m.find(prefix_); at != std::string::npos; at = m.find(prefix_, at))
    m.erase(at, prefix_.size());
  return Status(s.code(), std::move(m));
}

void TenantStore::Strip(StateRecord& r) const {
  r.run_id = Out(r.run_id);
  r.thread_id = Out(r.thread_id);
}

Awaitable<Result<SaveAck>> TenantStore::Save(SaveRequest request, Deadline deadline) {
  if (Status c = Check("run_id", request.run_id); !c.ok()) co_return Error(c);
  if (Status c = Check("thread_id", request.thread_id); !c.ok()) co_return Error(c);
  if (Status c = Check("user_id", request.user_id); !c.ok()) co_return Error(c);
  if (Status c = Check("agent_type", request.agent_type); !c.ok()) co_return Error(c);
  request.run_id = In(request.run_id);
  request.thread_id = In(request.thread_id);
  auto r = co_await inner_.Save(std::move(request), deadline);
  if (!r) co_return Error(Scrub(r.error()));
  co_return r;
}

Awaitable<Result<bool>> TenantStore::Put(StateRecord record, Deadline deadline) {
  if (Status c = Check("run_id", record.run_id); !c.ok()) co_return Error(c);
  if (Status c = Check("thread_id", record.thread_id); !c.ok()) co_return Error(c);
  if (Status c = Check("user_id", record.user_id); !c.ok()) co_return Error(c);
  if (Status c = Check("agent_type", record.agent_type); !c.ok()) co_return Error(c);
  record.run_id = In(record.run_id);
  record.thread_id = In(record.thread_id);
  auto r = co_await inner_.Put(std::move(record), deadline);
  if (!r) co_return Error(Scrub(r.error()));
  co_return r;
}

Awaitable<Result<std::optional<StateRecord>>> TenantStore::Load(std::string run_id,
                                                                Deadline deadline) {
  if (Status c = Check("run_id", run_id); !c.ok()) co_return Error(c);
  auto r = co_await inner_.Load(In(run_id), deadline);
  if (!r) co_return Error(Scrub(r.error()));
  if (*r) Strip(**r);
  co_return r;
}

Awaitable<Result<bool>> TenantStore::Delete(std::string run_id, Deadline deadline) {
  if (Status c = Check("run_id", run_id); !c.ok()) co_return Error(c);
  auto r = co_await inner_.Delete(In(run_id), deadline);
  if (!r) co_return Error(Scrub(r.error()));
  co_return r;
}

Awaitable<Done> TenantStore::Complete(std::string run_id, Deadline deadline) {
  if (Status c = Check("run_id", run_id); !c.ok()) co_return Error(c);
  auto r = co_await inner_.Complete(In(run_id), deadline);
  if (!r) co_return Error(Scrub(r.error()));
  co_return r;
}

Awaitable<Result<CheckpointInfo>> TenantStore::Checkpoint(std::string run_id, CheckpointType type,
                                                          Deadline deadline) {
  if (Status c = Check("run_id", run_id); !c.ok()) co_return Error(c);
  auto r = co_await inner_.Checkpoint(In(run_id), type, deadline);
  if (!r) co_return Error(Scrub(r.error()));
  r->run_id = Out(r->run_id);
  co_return r;
}

Awaitable<Result<std::vector<CheckpointInfo>>> TenantStore::ListCheckpoints(std::string run_id,
                                                                            Deadline deadline) {
  if (Status c = Check("run_id", run_id); !c.ok()) co_return Error(c);
  auto r = co_await inner_.ListCheckpoints(In(run_id), deadline);
  if (!r) co_return Error(Scrub(r.error()));
  for (auto& c : *r) c.run_id = Out(c.run_id);
  co_return r;
}

Awaitable<Result<StateRecord>> TenantStore::Restore(std::string run_id,
                                                    std::optional<std::string> checkpoint_id,
                                                    Deadline deadline) {
  if (Status c = Check("run_id", run_id); !c.ok()) co_return Error(c);
  if (checkpoint_id) {
    if (Status c = Check("checkpoint_id", *checkpoint_id); !c.ok()) co_return Error(c);
  }
  auto r = co_await inner_.Restore(In(run_id), std::move(checkpoint_id), deadline);
  if (!r) co_return Error(Scrub(r.error()));
  Strip(*r);
  co_return r;
}

Awaitable<Result<std::optional<ThreadContextRecord>>> TenantStore::ThreadContext(
    std::string thread_id, Deadline deadline) {
  if (Status c = Check("thread_id", thread_id); !c.ok()) co_return Error(c);
  auto r = co_await inner_.ThreadContext(In(thread_id), deadline);
  if (!r) co_return Error(Scrub(r.error()));
  if (*r) {
    (*r)->thread_id = Out((*r)->thread_id);
    (*r)->run_id = Out((*r)->run_id);
  }
  co_return r;
}

Awaitable<Result<ActiveRunsPage>> TenantStore::ActiveRuns(ActiveRunsQuery query,
                                                          Deadline deadline) {
  if (query.thread_id) {
    if (Status c = Check("thread_id", *query.thread_id); !c.ok()) co_return Error(c);
  }
  // The tenant's cursor: "" (the start); "i" and one of its own run ids, to go on after it
  // (a store that pages by id, whose cursor is the last id it returned); or "c" and the
  // store's own cursor (Redis's SCAN position). Each page of the store is asked for no more
  // runs than this page still needs, so this page never ends inside one of the store's and
  // the store's cursor is exact; and it ends only on one of the tenant's runs, so the
  // cursor is never another tenant's id. The store orders runs in its own way, which need
  // not keep a prefix together: pages are read on and filtered until `limit` of the
  // tenant's runs or the end; the call's deadline bounds the scan.
  ActiveRunsQuery inner = query;
  if (inner.thread_id) inner.thread_id = In(*inner.thread_id);
  if (query.cursor.empty()) {
    inner.cursor.clear();
  } else if (query.cursor[0] == 'i') {
    inner.cursor = In(std::string_view(query.cursor).substr(1));
  } else if (query.cursor[0] == 'c') {
    inner.cursor = query.cursor.substr(1);
  } else {
    co_return Error(StatusCode::kInvalidArgument,
                    "malformed active-runs cursor; pass back next_cursor as returned");
  }
  const uint32_t limit = query.limit;
  ActiveRunsPage page;
  while (true) {
    inner.limit = limit - static_cast<uint32_t>(page.runs.size());
    auto r = co_await inner_.ActiveRuns(inner, deadline);
    if (!r) co_return Error(Scrub(r.error()));
    for (auto& run : r->runs) {
      if (run.run_id.compare(0, prefix_.size(), prefix_) != 0) continue;
      run.run_id = Out(run.run_id);
      run.thread_id = Out(run.thread_id);
      page.runs.push_back(std::move(run));
    }
    if (r->next_cursor.empty()) co_return page;
    if (page.runs.size() == limit) {
      page.next_cursor = r->next_cursor.compare(0, prefix_.size(), prefix_) == 0
                             ? "i" + Out(r->next_cursor)
                             : "c" + r->next_cursor;
      co_return page;
    }
    inner.cursor = std::move(r->next_cursor);
  }
}

Awaitable<Result<uint64_t>> TenantStore::DeletePrefix(std::string prefix, Deadline deadline) {
  if (Status s = core::ValidateDeletePrefix(prefix); !s.ok()) co_return Error(s);
  auto r = co_await inner_.DeletePrefix(In(prefix), deadline);
  if (!r) co_return Error(Scrub(r.error()));
  co_return r;
}

Awaitable<Result<HealthReport>> TenantStore::Health(Deadline deadline) {
  co_return co_await inner_.Health(deadline);
}

TenantStore::~TenantStore() = default;

CheckpointStore* TenantStore::Checkpoints() {
  if (!checkpoints_) {
    CheckpointStore* inner = inner_.Checkpoints();
    if (!inner) return nullptr;
    checkpoints_ = std::make_unique<TenantCheckpoints>(*this, *inner);
  }
  return checkpoints_.get();
}

}  // namespace agentstate::server
