#include "backends/postgres/pg_checkpoints.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "core/checkpoint_rules.hpp"
#include "core/validate.hpp"

namespace agentstate::backends::postgres {
namespace {

// Rows of three kinds, after the CTE `cps`: 0 a checkpoint (a parent, b document, c
// metadata), 1 a joined value (a channel, b version, c type), 2 a write (a task, b channel,
// c type, d task path); e encoding, f bytes, g checksum, idx the write's index.
constexpr const char* kTupleRows = R"sql(
SELECT * FROM (
SELECT 0::bigint AS kind, thread_id, ns, checkpoint_id, parent_id AS a, checkpoint AS b,
       metadata AS c, ''::text AS d, 0::bigint AS e, '\x'::bytea AS f, 0::bigint AS g, 0::bigint AS idx
  FROM cps
UNION ALL
SELECT 1, cps.thread_id, cps.ns, cps.checkpoint_id, v.channel, v.version, v.type, '', v.encoding,
       v.bytes, v.checksum, 0
  FROM cps CROSS JOIN LATERAL jsonb_each_text(cps.checkpoint::jsonb -> 'channel_versions') AS cv
  JOIN lg_values v ON v.thread_id = cps.thread_id AND v.ns = cps.ns AND v.channel = cv.key
                  AND v.version = cv.value
 WHERE v.type <> 'empty'
UNION ALL
SELECT 2, w.thread_id, w.ns, w.checkpoint_id, w.task_id, w.channel, w.type, w.task_path, w.encoding,
       w.bytes, w.checksum, w.idx
  FROM cps JOIN lg_writes w USING (thread_id, ns, checkpoint_id)) AS rows
 ORDER BY kind, a COLLATE "C", idx)sql";

std::string Col(const PGresult* r, int row, int col) { return std::string(GetBytes(r, row, col)); }

// Stored values as the array parameters our functions take: types, encodings, bytes and
// checksums, one element a value.
struct ValueArrays {
  std::vector<Param> types, encodings, bytes, checksums;
  void Add(const TypedValue& value) {
    const auto stored = core::StoreValue(value);
    types.push_back(Text(stored.type));
    encodings.push_back(Int8(static_cast<int64_t>(stored.body.encoding)));
    bytes.push_back(Bytea(stored.body.bytes));
    checksums.push_back(Int8(static_cast<int64_t>(stored.checksum)));
  }
  void AppendTo(std::vector<Param>& p) const {
    p.push_back(ArrayOf(types, kTextOid));
    p.push_back(ArrayOf(encodings, kInt8Oid));
    p.push_back(ArrayOf(bytes, kByteaOid));
    p.push_back(ArrayOf(checksums, kInt8Oid));
  }
};

// A row of (checkpoints, values, writes, threads), as prune and delete_runs return.
PurgeReport Report(const PGresult* res) {
  return PurgeReport{
      static_cast<uint64_t>(GetInt8(res, 0, 0)), static_cast<uint64_t>(GetInt8(res, 0, 1)),
      static_cast<uint64_t>(GetInt8(res, 0, 2)), static_cast<uint64_t>(GetInt8(res, 0, 3))};
}

Param Texts(const std::vector<std::string>& v) {
  std::vector<Param> e;
  e.reserve(v.size());
  for (const auto& s : v) e.push_back(Text(s));
  return ArrayOf(e, kTextOid);
}

}  // namespace

Awaitable<Result<std::vector<CheckpointTuple>>> PgCheckpoints::Tuples(std::string cps,
                                                                      std::vector<Param> params,
                                                                      Deadline deadline) {
  auto r = co_await client_.Run("WITH cps AS (" + cps + ")" + kTupleRows, std::move(params),
                                deadline, "read checkpoints");
  if (!r) co_return Error(r.error());
  const PGresult* res = r->get();
  std::vector<CheckpointTuple> out;
  std::map<std::tuple<std::string, std::string, std::string>, std::size_t> at;
  for (int i = 0; i < PQntuples(res); ++i) {
    const int64_t kind = GetInt8(res, i, 0);
    std::tuple key{Col(res, i, 1), Col(res, i, 2), Col(res, i, 3)};
    if (kind == 0) {
      at.emplace(key, out.size());
      out.push_back({std::get<0>(key),
                     std::get<1>(key),
                     std::get<2>(key),
                     Col(res, i, 4),
                     Col(res, i, 5),
                     Col(res, i, 6),
                     {},
                     {}});
      continue;
    }
    auto it = at.find(key);
    if (it == at.end()) continue;
    CheckpointTuple& t = out[it->second];
    auto value =
        core::LoadValue(Col(res, i, 6), static_cast<core::Encoding>(GetInt8(res, i, 8)),
                        GetBytes(res, i, 9), static_cast<uint64_t>(GetInt8(res, i, 10)),
                        fmt::format("thread {} checkpoint {} {} {}", t.thread_id, t.checkpoint_id,
                                    kind == 1 ? "channel" : "write", GetBytes(res, i, 4)));
    if (!value) co_return Error(value.error());
    if (kind == 1)
      t.values.push_back({Col(res, i, 4), Col(res, i, 5), std::move(*value)});
    else
      t.writes.push_back(
          {Col(res, i, 4), Col(res, i, 7), Col(res, i, 5), GetInt8(res, i, 11), std::move(*value)});
  }
  co_return out;
}

Awaitable<Status> PgCheckpoints::PutCheckpoint(CheckpointPut put, Deadline deadline) {
  auto versions = core::ValidatePut(put, options_.max_id_bytes);
  if (!versions) co_return Status(versions.error());
  std::vector<Param> channels, vers;
  ValueArrays values;
  for (const auto& v : put.values) {
    channels.push_back(Text(v.channel));
    vers.push_back(Text(v.version));
    values.Add(v.value);
  }
  std::vector<Param> p;
  for (const auto* s : {&put.thread_id, &put.ns, &put.checkpoint_id, &put.parent_id,
                        &put.checkpoint, &put.metadata})
    p.push_back(Text(*s));
  p.push_back(Bool(put.check_head));
  p.push_back(ArrayOf(channels, kTextOid));
  p.push_back(ArrayOf(vers, kTextOid));
  values.AppendTo(p);
  p.push_back(Int8(core::NowMs(options_)));
  auto r = co_await client_.Run(
      "SELECT agentstate_lg_put($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
      std::move(p), deadline, "put checkpoint");
  co_return r ? Status() : r.error();
}

Awaitable<Status> PgCheckpoints::PutWrites(std::string thread_id, std::string ns,
                                           std::string checkpoint_id, std::string task_id,
                                           std::string task_path,
                                           std::vector<std::pair<std::string, TypedValue>> writes,
                                           Deadline deadline) {
  if (Status s = core::ValidateWrites(thread_id, ns, checkpoint_id, task_id, writes,
                                      options_.max_id_bytes);
      !s.ok())
    co_return s;
  std::vector<Param> idx, channels;
  ValueArrays values;
  for (std::size_t i = 0; i < writes.size(); ++i) {
    idx.push_back(Int8(core::WriteIndex(writes[i].first, i)));
    channels.push_back(Text(writes[i].first));
    values.Add(writes[i].second);
  }
  std::vector<Param> p;
  for (const auto* s : {&thread_id, &ns, &checkpoint_id, &task_id, &task_path})
    p.push_back(Text(*s));
  p.push_back(Bool(core::ReplacesWrites(writes)));
  p.push_back(ArrayOf(idx, kInt8Oid));
  p.push_back(ArrayOf(channels, kTextOid));
  values.AppendTo(p);
  p.push_back(Int8(core::NowMs(options_)));
  auto r = co_await client_.Run(
      "SELECT agentstate_lg_put_writes($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
      std::move(p), deadline, "put writes");
  co_return r ? Status() : r.error();
}

Awaitable<Result<std::optional<CheckpointTuple>>> PgCheckpoints::GetCheckpoint(
    std::string thread_id, std::string ns, std::string checkpoint_id, Deadline deadline) {
  if (Status s = core::ValidateGet(thread_id, ns, checkpoint_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  std::vector<Param> p;
  p.push_back(Text(thread_id));
  p.push_back(Text(ns));
  p.push_back(Text(checkpoint_id));
  auto t = co_await Tuples(
      "SELECT thread_id, ns, checkpoint_id, parent_id, checkpoint, metadata FROM lg_checkpoints "
      "WHERE thread_id = $1 AND ns = $2 AND ($3 = '' OR checkpoint_id = $3) "
      "ORDER BY checkpoint_id DESC LIMIT 1",
      std::move(p), deadline);
  if (!t) co_return Error(t.error());
  if (t->empty()) co_return std::optional<CheckpointTuple>();
  co_return std::optional<CheckpointTuple>(std::move(t->front()));
}

Awaitable<Result<std::vector<CheckpointTuple>>> PgCheckpoints::ListCheckpoints(
    CheckpointListQuery q, Deadline deadline) {
  auto filter = core::ValidateListQuery(q, options_.max_id_bytes);
  if (!filter) co_return Error(filter.error());
  // First the keys, a page at a time in list order, filtered by metadata here (one rule for
  // every backend); then the tuples of those that match, in one statement.
  std::vector<std::string> threads, namespaces, ids;
  std::optional<std::tuple<std::string, std::string, std::string>> after;  // id, thread, ns
  const int64_t page = static_cast<int64_t>(std::max<std::size_t>(q.limit, 100));
  while (ids.size() < q.limit) {
    std::vector<Param> p;
    p.push_back(Bool(q.thread_id.has_value()));
    p.push_back(Text(q.thread_id.value_or("")));
    p.push_back(Bool(q.ns.has_value()));
    p.push_back(Text(q.ns.value_or("")));
    p.push_back(Bool(q.checkpoint_id.has_value()));
    p.push_back(Text(q.checkpoint_id.value_or("")));
    p.push_back(Bool(q.before.has_value()));
    p.push_back(Text(q.before.value_or("")));
    p.push_back(Bool(after.has_value()));
    p.push_back(Text(after ? std::get<0>(*after) : ""));
    p.push_back(Text(after ? std::get<1>(*after) : ""));
    p.push_back(Text(after ? std::get<2>(*after) : ""));
    p.push_back(Int8(page));
    p.push_back(Text(q.thread_id ? "" : q.thread_prefix));
    auto r = co_await client_.Run(
        "SELECT thread_id, ns, checkpoint_id, metadata FROM lg_checkpoints WHERE "
        "(NOT $1 OR thread_id = $2) AND (NOT $3 OR ns = $4) AND (NOT $5 OR checkpoint_id = $6) "
        "AND (NOT $7 OR checkpoint_id < $8) AND (NOT $9 OR checkpoint_id < $10 OR "
        "(checkpoint_id = $10 AND (thread_id, ns) > ($11, $12))) AND starts_with(thread_id, $14) "
        "ORDER BY checkpoint_id DESC, thread_id, ns LIMIT $13",
        std::move(p), deadline, "list checkpoints");
    if (!r) co_return Error(r.error());
    const PGresult* res = r->get();
    const int n = PQntuples(res);
    for (int i = 0; i < n && ids.size() < q.limit; ++i) {
      if (!filter->Matches(GetBytes(res, i, 3))) continue;
      threads.push_back(Col(res, i, 0));
      namespaces.push_back(Col(res, i, 1));
      ids.push_back(Col(res, i, 2));
    }
    if (n < page) break;
    after.emplace(Col(res, n - 1, 2), Col(res, n - 1, 0), Col(res, n - 1, 1));
  }
  if (ids.empty()) co_return std::vector<CheckpointTuple>();
  std::vector<Param> p;
  p.push_back(Texts(threads));
  p.push_back(Texts(namespaces));
  p.push_back(Texts(ids));
  auto t = co_await Tuples(
      "SELECT c.thread_id, c.ns, c.checkpoint_id, c.parent_id, c.checkpoint, c.metadata "
      "FROM lg_checkpoints c JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(t, n, i) "
      "ON c.thread_id = k.t AND c.ns = k.n AND c.checkpoint_id = k.i",
      std::move(p), deadline);
  if (!t) co_return Error(t.error());
  std::sort(t->begin(), t->end(), [](const CheckpointTuple& a, const CheckpointTuple& b) {
    return core::ListsBefore({a.thread_id, a.ns, a.checkpoint_id},
                             {b.thread_id, b.ns, b.checkpoint_id});
  });
  co_return std::move(*t);
}

Awaitable<Result<uint64_t>> PgCheckpoints::DeleteThread(std::string thread_id, Deadline deadline) {
  if (Status s = core::ValidateId("thread_id", thread_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  std::vector<Param> p;
  p.push_back(Text(thread_id));
  // One statement, so one transaction: every data-modifying WITH runs, referenced or not.
  auto r = co_await client_.Run(
      "WITH c AS (DELETE FROM lg_checkpoints WHERE thread_id = $1 RETURNING 1), "
      "v AS (DELETE FROM lg_values WHERE thread_id = $1), "
      "w AS (DELETE FROM lg_writes WHERE thread_id = $1), "
      "t AS (DELETE FROM lg_threads WHERE thread_id = $1) SELECT count(*) FROM c",
      std::move(p), deadline, "delete thread");
  if (!r) co_return Error(r.error());
  co_return static_cast<uint64_t>(GetInt8(r->get(), 0, 0));
}

Awaitable<Result<uint64_t>> PgCheckpoints::CopyThread(std::string from, std::string to,
                                                      Deadline deadline) {
  for (const auto& [what, id] :
       {std::pair{"from thread_id", &from}, std::pair{"to thread_id", &to}}) {
    if (Status s = core::ValidateId(what, *id, options_.max_id_bytes); !s.ok()) co_return Error(s);
  }
  std::vector<Param> p;
  p.push_back(Text(from));
  p.push_back(Text(to));
  p.push_back(Int8(core::NowMs(options_)));
  auto r = co_await client_.Run("SELECT agentstate_lg_copy($1, $2, $3)", std::move(p), deadline,
                                "copy thread");
  if (!r) co_return Error(r.error());
  co_return static_cast<uint64_t>(GetInt8(r->get(), 0, 0));
}

Awaitable<Result<PurgeReport>> PgCheckpoints::Prune(std::string thread_id,
                                                    std::string thread_prefix,
                                                    RetentionPolicy policy, Deadline deadline) {
  if (Status s = core::ValidateThreads(thread_id, thread_prefix, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  std::vector<Param> p;
  p.push_back(Text(thread_id));
  p.push_back(Text(thread_prefix));
  p.push_back(Int8(static_cast<int64_t>(policy.keep_last)));
  p.push_back(Int8(policy.thread_ttl.count()));
  p.push_back(Bool(policy.delete_all));
  p.push_back(Int8(core::NowMs(options_)));
  auto r = co_await client_.Run("SELECT * FROM agentstate_lg_prune($1, $2, $3, $4, $5, $6)",
                                std::move(p), deadline, "prune");
  if (!r) co_return Error(r.error());
  co_return Report(r->get());
}

Awaitable<Result<PurgeReport>> PgCheckpoints::DeleteForRuns(std::vector<std::string> run_ids,
                                                            std::string thread_prefix,
                                                            Deadline deadline) {
  auto runs = core::ValidateRunIds(std::move(run_ids), thread_prefix, options_.max_id_bytes);
  if (!runs) co_return Error(runs.error());
  if (runs->empty()) co_return PurgeReport{};
  std::vector<Param> p;
  p.push_back(Text(thread_prefix));
  p.push_back(Texts(*runs));
  auto r = co_await client_.Run("SELECT * FROM agentstate_lg_delete_runs($1, $2)", std::move(p),
                                deadline, "delete for runs");
  if (!r) co_return Error(r.error());
  co_return Report(r->get());
}

}  // namespace agentstate::backends::postgres
