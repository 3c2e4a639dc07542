#include "backends/redis/redis_store.hpp"

#include <fmt/format.h>

#include <charconv>
#include <map>
#include <mutex>

#include "core/asio.hpp"
#include "core/codec.hpp"
#include "core/connect_hint.hpp"
#include "core/record.hpp"
#include "core/validate.hpp"

namespace agentstate::backends::redis {

using core::CheckDeadline;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------
// The Lua scripts. Times are Unix ms on the store's clock (ARGV), TTLs are ms (0 = never).

struct RedisStore::Script {
  std::size_t index;  // into the store's SHA1s
  const char* name;
  std::string source;  // the prelude, then the script's own body
};

namespace {

// Helpers every script shares.
constexpr const char* kPrelude = R"lua(
local function set_ttl(key, ttl)
  if tonumber(ttl) == 0 then redis.call('PERSIST', key) else redis.call('PEXPIRE', key, ttl) end
end
-- At least ttl ms from now: never shortens a longer TTL (a run's version outlives its record
-- while a recovery checkpoint lives).
local function extend(key, ttl)
  local left = redis.call('PTTL', key)
  if tonumber(ttl) == 0 then
    if left >= 0 then redis.call('PERSIST', key) end
  elseif left == -1 or left < tonumber(ttl) then
    redis.call('PEXPIRE', key, ttl)
  end
end
-- Drops expired checkpoints, then returns the run's current version (its live record's, or
-- the last one assigned while checkpoints live, else 0), the record's status or false, and
-- whether live checkpoints remain (only then is the version key kept: once the record and
-- every checkpoint are gone, the run is gone and its versions start again).
local function current(rec, ver, cpz, now)
  local r = redis.call('HMGET', rec, 'v', 'ex', 'st')
  local live = r[1] and tonumber(r[2]) > tonumber(now)
  if redis.call('EXISTS', cpz) == 0 then
    if live then return tonumber(r[1]), r[3], false end
    return 0, false, false
  end
  local dead = redis.call('ZRANGEBYSCORE', cpz, '-inf', now)
  for _, id in ipairs(dead) do redis.call('DEL', cpz .. ':' .. id) end
  if #dead > 0 then redis.call('ZREMRANGEBYSCORE', cpz, '-inf', now) end
  local any = #dead == 0 or redis.call('EXISTS', cpz) == 1
  if live then return tonumber(r[1]), r[3], any end
  if not any then return 0, false, false end
  local v = tonumber(redis.call('GET', ver) or '0')
  for _, id in ipairs(redis.call('ZRANGE', cpz, 0, -1)) do
    v = math.max(v, tonumber(string.sub(id, 2)))
  end
  return v, false, true
end
-- Copies the record into the run's history as checkpoint v (one per version).
local function snapshot(rec, ver, cpz, v, ctype, crp, ttl, ex, now)
  local id = string.format('v%012d', v)
  local k = cpz .. ':' .. id
  redis.call('COPY', rec, k, 'REPLACE')
  redis.call('HSET', k, 'cid', id, 'cty', ctype, 'crp', crp, 'cts', now, 'cex', ex)
  set_ttl(k, ttl)
  redis.call('ZADD', cpz, ex, id)
  extend(cpz, ttl)
  extend(ver, ttl)
  return id
end
-- A checkpoint the run's index lists live whose copy is not on this node: on a cluster, the
-- run's slot is being migrated and the copy has moved already (a script sees this node's
-- keys only). TRYAGAIN makes the client retry, and it finds the run whole on its new node.
local function migrating(id)
  return redis.error_reply('TRYAGAIN checkpoint ' .. id .. ' is being migrated with its slot')
end
-- Points the thread at run version vs, unless it points at a save made later (the saves of
-- one thread's runs may arrive out of order on a cluster, where this is a step of its own).
local function move_thread(tk, run, vs, ts, ex, ttl)
  local cur = redis.call('HGET', tk, 'ts')
  if cur and tonumber(cur) > tonumber(ts) then return 0 end
  redis.call('HSET', tk, 'run', run, 'v', vs, 'ts', ts, 'ex', ex)
  set_ttl(tk, ttl)
  return 1
end
)lua";

// KEYS rec ver cpz stage [thread]. The stage holds the payload (field p) and already has
// the record's TTL, both set by the commands in front of this script in one MULTI ... EXEC:
// the payload never passes through Lua. The script fills in the stage and renames it over
// the live record (which keeps the stage's TTL), or drops the stage when it writes nothing.
// ARGV now expected thread user agent_type step phase ctype rp checksum enc bytes rec_ttl
// rec_ex keep cp_ttl cp_ex crp thread_ttl thread_ex run forced_version ('' for a save; a
// put's version) saved_at idempotency_key ('' = none).
// Returns the new version, 0 for a put that was not newer, or {version, checksum} when the
// live record was written with this save's idempotency key (the caller compares checksums).
// Without KEYS[5] (on a cluster, where the thread's key lives in another slot) the caller
// moves the thread with kThread. Each redis.call costs the server about as much as carrying
// the payload did: the common save (no checkpoints) makes seven.
constexpr const char* kSave = R"lua(
local now = ARGV[1]
local function drop(reply)
  redis.call('DEL', KEYS[4])
  return reply
end
local v, st, checkpoints = current(KEYS[1], KEYS[2], KEYS[3], now)
if ARGV[22] == '' and ARGV[24] ~= '' and st then
  local r = redis.call('HMGET', KEYS[1], 'ik', 'cs')
  if r[1] == ARGV[24] then return drop({v, r[2]}) end
end
if ARGV[22] ~= '' then
  -- a put: exactly this version, when it is newer; else nothing
  local want = tonumber(ARGV[22])
  if want <= v then return drop(0) end
  v = want - 1
else
  if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= v then
    return drop(redis.error_reply('CONFLICT ' .. string.format('%d', v)))
  end
  if st == 'c' then return drop(redis.error_reply('COMPLETED the run is completed')) end
end
v = v + 1
local vs = string.format('%d', v)
local ts = ARGV[23]
redis.call('HSET', KEYS[4], 'v', vs, 'th', ARGV[3], 'u', ARGV[4], 'at', ARGV[5], 'sc', ARGV[6],
  'ph', ARGV[7], 'ct', ARGV[8], 'rp', ARGV[9], 'st', 'a', 'ts', ts, 'ex', ARGV[14],
  'cs', ARGV[10], 'enc', ARGV[11], 'n', ARGV[12], 'ik', ARGV[24])
redis.call('RENAME', KEYS[4], KEYS[1])
if tonumber(ARGV[13]) == 0 then redis.call('PERSIST', KEYS[1]) end
if checkpoints or ARGV[15] == '1' then
  redis.call('SET', KEYS[2], vs, 'KEEPTTL')
  extend(KEYS[2], ARGV[13])
end
if ARGV[15] == '1' then snapshot(KEYS[1], KEYS[2], KEYS[3], v, ARGV[8], ARGV[18], ARGV[16], ARGV[17], ts) end
if KEYS[5] then move_thread(KEYS[5], ARGV[21], vs, ts, ARGV[20], ARGV[19]) end
return v
)lua";

// KEYS rec ver cpz. ARGV now expected_version ctype crp cp_ttl cp_ex
constexpr const char* kCheckpoint = R"lua(
local v, st = current(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
if not st then return redis.error_reply('NOTFOUND no such run or checkpoint') end
if v ~= tonumber(ARGV[2]) then return redis.error_reply('CHANGED a newer version landed') end
local id = string.format('v%012d', v)
if not redis.call('ZSCORE', KEYS[3], id) then
  snapshot(KEYS[1], KEYS[2], KEYS[3], v, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[1])
elseif redis.call('EXISTS', KEYS[3] .. ':' .. id) == 0 then
  return migrating(id)
end
return redis.call('HMGET', KEYS[3] .. ':' .. id, 'cid', 'v', 'cty', 'crp', 'cts', 'n', 'cs')
)lua";

// KEYS cpz. ARGV now. Live checkpoints (any order; the caller sorts by id).
constexpr const char* kList = R"lua(
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  if redis.call('EXISTS', KEYS[1] .. ':' .. id) == 0 then return migrating(id) end
  out[#out + 1] = redis.call('HMGET', KEYS[1] .. ':' .. id, 'cid', 'v', 'cty', 'crp', 'cts', 'n', 'cs')
end
return out
)lua";

// KEYS cpz. ARGV now checkpoint_id ('' = the newest). The snapshot's record fields + cid crp.
constexpr const char* kRestoreRead = R"lua(
local chosen = false
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  if ARGV[2] == '' then
    if (not chosen) or id > chosen then chosen = id end
  elseif id == ARGV[2] then
    chosen = id
  end
end
if not chosen then return redis.error_reply('NOTFOUND no such run or checkpoint') end
if redis.call('EXISTS', KEYS[1] .. ':' .. chosen) == 0 then return migrating(chosen) end
return redis.call('HMGET', KEYS[1] .. ':' .. chosen,
  'v', 'th', 'u', 'at', 'sc', 'ph', 'ct', 'rp', 'st', 'ts', 'ex', 'cs', 'enc', 'n', 'p', 'ik', 'cid',
  'crp')
)lua";

// KEYS rec ver cpz. ARGV now checkpoint_id rec_ttl rec_ex thread_prefix thread_ttl thread_ex run
// Returns the new version; with thread_prefix '' (a cluster) {version, thread} instead, and
// the caller moves the thread with kThread.
constexpr const char* kRestoreWrite = R"lua(
local now = ARGV[1]
local v = current(KEYS[1], KEYS[2], KEYS[3], now)
local k = KEYS[3] .. ':' .. ARGV[2]
local cex = redis.call('HGET', k, 'cex')
if (not cex) and redis.call('ZSCORE', KEYS[3], ARGV[2]) then return migrating(ARGV[2]) end
if (not cex) or tonumber(cex) <= tonumber(now) then return redis.error_reply('NOTFOUND no such run or checkpoint') end
v = v + 1
local vs = string.format('%d', v)
redis.call('COPY', k, KEYS[1], 'REPLACE')
local crp = redis.call('HGET', KEYS[1], 'crp')
redis.call('HDEL', KEYS[1], 'cid', 'cty', 'crp', 'cts', 'cex', 'ik')
redis.call('HSET', KEYS[1], 'v', vs, 'st', 'a', 'ct', 'recovery', 'rp', crp, 'ts', now, 'ex', ARGV[4])
set_ttl(KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], vs, 'KEEPTTL')
extend(KEYS[2], ARGV[3])
local th = redis.call('HGET', KEYS[1], 'th')
if ARGV[5] == '' then return {v, th} end
move_thread(ARGV[5] .. th .. '}', ARGV[8], vs, now, ARGV[7], ARGV[6])
return v
)lua";

// KEYS rec. ARGV now ttl ex. 1 when it completed the run, 0 when it already was.
constexpr const char* kComplete = R"lua(
local r = redis.call('HMGET', KEYS[1], 'ex', 'st')
if (not r[1]) or tonumber(r[1]) <= tonumber(ARGV[1]) then return redis.error_reply('NOTFOUND no such run or checkpoint') end
if r[2] == 'c' then return 0 end
redis.call('HSET', KEYS[1], 'st', 'c', 'ex', ARGV[3])
set_ttl(KEYS[1], ARGV[2])
return 1
)lua";

// KEYS rec ver cpz. ARGV now thread_prefix run. 1 when a live record existed; with
// thread_prefix '' (a cluster) {1, thread} instead, and the caller runs kThreadClear.
constexpr const char* kDelete = R"lua(
local r = redis.call('HMGET', KEYS[1], 'ex', 'th')
local existed = r[1] and tonumber(r[1]) > tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do redis.call('DEL', KEYS[3] .. ':' .. id) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if not existed then return 0 end
if ARGV[2] == '' then return {1, r[2]} end
local tk = ARGV[2] .. r[2] .. '}'
if redis.call('HGET', tk, 'run') == ARGV[3] then redis.call('DEL', tk) end
return 1
)lua";

// KEYS: record keys from one SCAN batch. ARGV now thread ('' = any). One row per key, empty
// when the run is not an active, live match.
constexpr const char* kActiveRows = R"lua(
local out = {}
for i, k in ipairs(KEYS) do
  local r = redis.call('HMGET', k, 'v', 'th', 'u', 'at', 'ts', 'ex', 'st')
  if r[1] and r[7] == 'a' and tonumber(r[6]) > tonumber(ARGV[1]) and (ARGV[2] == '' or r[2] == ARGV[2]) then
    out[i] = r
  else
    out[i] = {}
  end
end
return out
)lua";

// KEYS thread. ARGV run version saved_at expiry ttl. 1 when it moved the thread.
constexpr const char* kThread = R"lua(
return move_thread(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
)lua";

// KEYS thread. ARGV run. Forgets the thread's context if it points at that (deleted) run.
constexpr const char* kThreadClear = R"lua(
if redis.call('HGET', KEYS[1], 'run') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

enum ScriptId : std::size_t {
  kSaveScript,
  kCheckpointScript,
  kListScript,
  kRestoreReadScript,
  kRestoreWriteScript,
  kCompleteScript,
  kDeleteScript,
  kActiveRowsScript,
  kThreadScript,
  kThreadClearScript
};

// Every script, built once: the prelude plus its body.
const std::array<RedisStore::Script, RedisStore::kScriptCount>& Scripts() {
  static const std::array<RedisStore::Script, RedisStore::kScriptCount> all = {{
      {kSaveScript, "save", std::string(kPrelude) + kSave},
      {kCheckpointScript, "checkpoint", std::string(kPrelude) + kCheckpoint},
      {kListScript, "list_checkpoints", std::string(kPrelude) + kList},
      {kRestoreReadScript, "restore_read", std::string(kPrelude) + kRestoreRead},
      {kRestoreWriteScript, "restore_write", std::string(kPrelude) + kRestoreWrite},
      {kCompleteScript, "complete", std::string(kPrelude) + kComplete},
      {kDeleteScript, "delete", std::string(kPrelude) + kDelete},
      {kActiveRowsScript, "active_rows", std::string(kPrelude) + kActiveRows},
      {kThreadScript, "thread", std::string(kPrelude) + kThread},
      {kThreadClearScript, "thread_clear", std::string(kPrelude) + kThreadClear},
  }};
  return all;
}

// ---------------------------------------------------------------------------------------
// Replies to values.

std::optional<int64_t> ToInt(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}
std::optional<uint64_t> ToUint(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string Ms(std::chrono::seconds ttl) {
  return std::to_string(std::chrono::milliseconds(ttl).count());
}

std::chrono::seconds TtlOf(const TtlPolicy& ttl, RunStatus status, bool recovery) {
  if (status == RunStatus::kCompleted) return ttl.completed;
  return recovery ? ttl.recovery_point : ttl.active;
}

// A server error reply as a Status: the server out of memory or read-only is an outage;
// anything else we did not expect is kInternal.
Status ServerError(const Reply& r, std::string_view what) {
  const bool outage = r.str.rfind("OOM", 0) == 0 || r.str.rfind("READONLY", 0) == 0 ||
                      r.str.rfind("MASTERDOWN", 0) == 0 || r.str.rfind("BUSY", 0) == 0;
  return Status(outage ? StatusCode::kUnavailable : StatusCode::kInternal,
                fmt::format("redis {}: {}", what, r.str));
}

// Our scripts' error replies start with a code word ("NOTFOUND ...", "CONFLICT 3").
bool IsCode(const Reply& r, std::string_view code) {
  return r.is_error() && r.str.size() > code.size() && r.str.compare(0, code.size(), code) == 0 &&
         r.str[code.size()] == ' ';
}

// The 16 record fields, in the order kRestoreRead and Load ask for them. The last, the
// idempotency key, is absent from records written before it existed.
constexpr std::string_view kRecordFields[] = {"v",  "th", "u",  "at", "sc",  "ph", "ct", "rp",
                                              "st", "ts", "ex", "cs", "enc", "n",  "p",  "ik"};
constexpr std::size_t kKeyField = 15;
constexpr std::size_t kFieldCount = std::size(kRecordFields);

// Parses a record's fields (from element `first` of an HMGET-shaped array) and verifies the
// payload. nullopt when the record is absent; kCorruption when a field or the payload is bad.
Result<std::optional<StateRecord>> ParseRecord(const Reply& r, std::size_t first,
                                               const std::string& run_id, std::size_t max_payload,
                                               std::string* raw_expiry = nullptr) {
  if (r.type != Reply::Type::kArray || r.elements.size() < first + kFieldCount) {
    return Error(StatusCode::kInternal,
                 fmt::format("redis: unexpected reply shape reading run {}", run_id));
  }
  const auto& e = r.elements;
  auto f = [&](std::size_t i) -> const std::string& { return e[first + i].str; };
  if (e[first].type == Reply::Type::kNil) return std::optional<StateRecord>();
  auto bad = [&](std::string_view field) {
    return Error(StatusCode::kCorruption,
                 fmt::format("run {}: stored field '{}' is unreadable", run_id, field));
  };
  for (std::size_t i = 0; i < kFieldCount; ++i) {
    if (e[first + i].type == Reply::Type::kNil && i == kKeyField) continue;
    if (e[first + i].type != Reply::Type::kString) return bad(kRecordFields[i]);
  }
  StateRecord rec;
  rec.run_id = run_id;
  auto v = ToInt(f(0)), sc = ToInt(f(4)), ts = ToInt(f(9));
  auto cs = ToUint(f(11));
  auto enc = ToInt(f(12));
  auto ct = ParseCheckpointType(f(6));
  if (!v) return bad("v");
  if (!sc) return bad("sc");
  if (!ts) return bad("ts");
  if (!cs) return bad("cs");
  if (!enc || (*enc != 0 && *enc != 1)) return bad("enc");
  if (!ct) return bad("ct");
  rec.version = *v;
  rec.thread_id = f(1);
  rec.user_id = f(2);
  rec.agent_type = f(3);
  rec.step_count = *sc;
  rec.phase = f(5);
  rec.checkpoint_type = *ct;
  rec.is_recovery_point = f(7) == "1";
  rec.status = f(8) == "c" ? RunStatus::kCompleted : RunStatus::kActive;
  rec.saved_at = core::FromUnixMillis(*ts);
  rec.checksum = *cs;
  rec.idempotency_key = f(kKeyField);
  if (raw_expiry) *raw_expiry = f(10);
  auto payload = core::DecodeVerified(static_cast<core::Encoding>(*enc), f(14), rec.checksum,
                                      max_payload, fmt::format("run {}", run_id));
  if (!payload) return Error(payload.error());
  rec.payload = std::move(*payload);
  return std::optional<StateRecord>(std::move(rec));
}

Result<CheckpointInfo> ParseCheckpoint(const Reply& r, const std::string& run_id) {
  // cid v cty crp cts n cs
  auto bad = [&] {
    return Error(StatusCode::kCorruption,
                 fmt::format("run {}: a checkpoint's stored fields are unreadable", run_id));
  };
  if (r.type != Reply::Type::kArray || r.elements.size() != 7) return bad();
  for (const auto& e : r.elements) {
    if (e.type != Reply::Type::kString) return bad();
  }
  const auto& e = r.elements;
  auto v = ToInt(e[1].str), ts = ToInt(e[4].str);
  auto n = ToUint(e[5].str);
  auto cs = ToUint(e[6].str);
  auto type = ParseCheckpointType(e[2].str);
  if (!v || !ts || !n || !cs || !type) return bad();
  CheckpointInfo c;
  c.checkpoint_id = e[0].str;
  c.run_id = run_id;
  c.version = *v;
  c.type = *type;
  c.is_recovery_point = e[3].str == "1";
  c.created_at = core::FromUnixMillis(*ts);
  c.payload_bytes = *n;
  c.checksum = *cs;
  return c;
}

// A glob pattern matching `text` literally (SCAN MATCH).
std::string GlobEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// How long a staged payload may outlive a save that never committed it, when the record
// would never expire.
constexpr std::string_view kStageTtlMs = "30000";

template <typename T>
T Block(asio::io_context::executor_type ex, Awaitable<T> op) {
  return asio::co_spawn(ex, std::move(op), asio::use_future).get();
}

}  // namespace

// The server's INFO figures, refreshed in the background; shared with the refresh coroutine
// so that a refresh finishing after the store is gone touches nothing freed.
struct RedisStore::ServerInfo {
  std::mutex mu;
  std::map<std::string, std::map<std::string, double>> nodes;  // each server's figures
  std::chrono::steady_clock::time_point last{};
  int refreshing = 0;  // INFO calls under way
};

RedisStore::RedisStore(RedisOptions client_options, std::string prefix, StoreOptions options)
    : client_(std::make_unique<RedisClient>(std::move(client_options))),
      prefix_(std::move(prefix)),
      options_(std::move(options)),
      info_(std::make_shared<ServerInfo>()) {}

RedisStore::RedisStore(RedisClusterOptions cluster_options, std::string prefix,
                       StoreOptions options)
    : cluster_(std::make_unique<RedisClusterClient>(std::move(cluster_options))),
      prefix_(std::move(prefix)),
      options_(std::move(options)),
      info_(std::make_shared<ServerInfo>()) {}

RedisStore::~RedisStore() = default;

Result<std::unique_ptr<StateStore>> RedisStore::Open(const core::ParsedUri& uri,
                                                     const StoreOptions& options) {
  std::string prefix;
  if (auto it = uri.params.find("prefix"); it != uri.params.end()) prefix = it->second;
  auto replicas = core::UintParam(uri, "wait_replicas", 0, 0, 16);
  if (!replicas) return Error(replicas.error());
  auto wait_timeout = core::DurationParam(uri, "wait_timeout", 100ms, true);
  if (!wait_timeout) return Error(wait_timeout.error());
  const std::initializer_list<std::string_view> extra = {"prefix", "wait_replicas", "wait_timeout"};
  std::unique_ptr<RedisStore> store;
  if (uri.scheme == "redis+cluster") {
    auto o = ParseRedisClusterUri(uri, extra);
    if (!o) return Error(o.error());
    if (*replicas > 0) o->node.connections = 1;  // WAIT covers its own connection's writes
    // A brace in the prefix would move the hash tag off the run id: a run's keys would
    // land in different slots.
    if (prefix.find_first_of("{}") != std::string::npos) {
      return Error(StatusCode::kInvalidArgument,
                   fmt::format("{}: prefix '{}' holds a brace, which would break the hash tag "
                               "that keeps a run's keys in one slot; choose one without",
                               o->redacted_uri, prefix));
    }
    store = std::make_unique<RedisStore>(std::move(*o), std::move(prefix), options);
  } else {
    auto o = ParseRedisUri(uri, extra);
    if (!o) return Error(o.error());
    if (*replicas > 0) o->connections = 1;
    store = std::make_unique<RedisStore>(std::move(*o), std::move(prefix), options);
  }
  store->wait_replicas_ = *replicas;
  store->wait_timeout_ = *wait_timeout;
  if (Status s = store->Init(); !s.ok()) return Error(s);
  return std::unique_ptr<StateStore>(std::move(store));
}

asio::io_context::executor_type RedisStore::Executor() const {
  return client_ ? client_->executor() : cluster_->executor();
}

// INFO server's answer from `where`: a Redis of the kind this URI names, 7.0 or newer.
Status RedisStore::CheckServer(const std::string& where, const Reply& info) const {
  if (info.is_error()) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("redis at {} refused INFO: {}", where, info.str));
  }
  if (client_ && info.str.find("redis_mode:cluster") != std::string::npos) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} is a Redis Cluster node; use redis+cluster://{}:{} (any "
                              "nodes of the cluster, comma-separated) instead of redis://",
                              where, client_->options().host, client_->options().port));
  }
  // COPY and PEXPIRE NX/GT need Redis 7.0.
  const auto at = info.str.find("redis_version:");
  int major = 0;
  if (at != std::string::npos)
    std::from_chars(info.str.data() + at + 14, info.str.data() + info.str.size(), major);
  if (major < 7) {
    return Status(
        StatusCode::kUnavailable,
        fmt::format("redis at {} is version {}; agentstate needs Redis 7.0 or newer", where,
                    at == std::string::npos
                        ? "unknown"
                        : info.str.substr(at + 14, info.str.find('\r', at) - at - 14)));
  }
  return Status();
}

Status RedisStore::Init() {
  const std::string uri = Describe();
  const auto timeout =
      client_ ? client_->options().connect_timeout : cluster_->options().node.connect_timeout;
  const Deadline deadline = DeadlineIn(timeout + 2s);
  if (cluster_) {
    if (Status s = Block(Executor(), cluster_->Refresh(deadline)); !s.ok()) return s;
  }
  // Every server that holds keys checks out and has every script (on a cluster, a primary
  // that takes over later gets them from EVAL on its first NOSCRIPT).
  for (const std::string& node : Nodes()) {
    const std::string where = node.empty() ? uri : fmt::format("{} (node {})", uri, node);
    auto call = [&](std::vector<std::string_view> args) {
      return Block(Executor(), CallOn(node, args, deadline));
    };
    auto info = call({"INFO", "server"});
    if (!info) {
      return Status(StatusCode::kUnavailable,
                    fmt::format("cannot use redis at {}: {}; {}", where, info.error().message(),
                                core::ConnectHint(info.error().message())));
    }
    if (Status s = CheckServer(where, *info); !s.ok()) return s;
    for (const Script& s : Scripts()) {
      auto r = call({"SCRIPT", "LOAD", s.source});
      if (!r)
        return Status(StatusCode::kUnavailable,
                      fmt::format("redis at {}: loading scripts: {}", where, r.error().message()));
      if (r->is_error() || r->type != Reply::Type::kString) {
        return Status(StatusCode::kInternal,
                      fmt::format("redis at {} rejected the {} script: {}", where, s.name, r->str));
      }
      shas_[s.index] = r->str;  // a script's SHA1 is the same on every server
    }
  }
  return Status();
}

std::string RedisStore::Describe() const {
  return client_ ? client_->options().redacted_uri : cluster_->options().redacted_uri;
}

std::string RedisStore::Key(std::string_view kind, std::string_view id) const {
  std::string k;
  k.reserve(prefix_.size() + kind.size() + id.size() + 3);
  k += prefix_;
  k += kind;
  k += ":{";
  k += id;
  k += '}';
  return k;
}

std::string RedisStore::RecordKey(const std::string& run_id) const {
  return Key("agent_state", run_id);
}

Awaitable<Result<Reply>> RedisStore::Call(std::string_view key,
                                          const std::vector<std::string_view>& args,
                                          Deadline deadline) {
  if (cluster_) return cluster_->Command(key, args, deadline);
  return client_->Command(args, deadline);
}

Awaitable<Result<Reply>> RedisStore::CallAll(
    std::string_view key, const std::vector<std::vector<std::string_view>>& commands,
    Deadline deadline) {
  if (cluster_) return cluster_->Transaction(key, commands, deadline);
  return client_->Transaction(commands, deadline);
}

std::vector<std::string> RedisStore::Nodes() const {
  if (client_) return {""};
  return cluster_->Primaries();
}

Awaitable<Result<Reply>> RedisStore::CallOn(const std::string& node,
                                            const std::vector<std::string_view>& args,
                                            Deadline deadline) {
  if (client_) return client_->Command(args, deadline);
  return cluster_->CommandOn(node, args, deadline);
}

Awaitable<Status> RedisStore::MoveThread(const std::string& thread_id, const std::string& run_id,
                                         int64_t version, SystemTime at, Deadline deadline) {
  const std::string tk = Key("thread_context", thread_id), v = std::to_string(version),
                    ts = std::to_string(core::ToUnixMillis(at)),
                    ex = std::to_string(
                        core::ExpiryMillis(options_.ttl, RunStatus::kActive, false, at)),
                    ttl = Ms(options_.ttl.active);
  const std::vector<std::string_view> keys = {tk};
  const std::vector<std::string_view> args = {run_id, v, ts, ex, ttl};
  auto r = co_await Eval(Scripts()[kThreadScript], keys, args, deadline);
  if (!r) co_return r.error();
  if (r->is_error()) co_return ServerError(*r, "thread_context");
  co_return Status();
}

Awaitable<Status> RedisStore::WaitForReplicas(const std::string& key, const std::string& run_id,
                                              int64_t version, uint64_t generation,
                                              Deadline deadline) {
  ++waits_;
  const std::string n = std::to_string(wait_replicas_), ms = std::to_string(wait_timeout_.count());
  const std::vector<std::string_view> cmd = {"WAIT", n, ms};
  auto r = co_await Call(key, cmd, std::min(deadline, DeadlineIn(wait_timeout_ + 1s)));
  // A reconnect since the save means this WAIT went out on another connection than the
  // save did, and says nothing of it.
  const bool same_connection = Generation() == generation;
  if (r && !r->is_error() && r->type == Reply::Type::kInteger && same_connection &&
      r->integer >= static_cast<int64_t>(wait_replicas_))
    co_return Status();
  ++waits_short_;
  const std::string why =
      !r                 ? r.error().message()
      : r->is_error()    ? r->str
      : !same_connection ? std::string("the connection was replaced between the save and its WAIT")
                         : fmt::format("{} of {} replicas had it within {} ms", r->integer,
                                       wait_replicas_, wait_timeout_.count());
  co_return Status(StatusCode::kUnavailable,
                   fmt::format("run {} version {}: saved on the primary but not confirmed by "
                               "its replicas ({}); it is in doubt: a failover now may lose it",
                               run_id, version, why));
}

Awaitable<Status> RedisStore::ClearThread(const std::string& thread_id, const std::string& run_id,
                                          Deadline deadline) {
  const std::string tk = Key("thread_context", thread_id);
  const std::vector<std::string_view> keys = {tk};
  const std::vector<std::string_view> args = {run_id};
  auto r = co_await Eval(Scripts()[kThreadClearScript], keys, args, deadline);
  if (!r) co_return r.error();
  if (r->is_error()) co_return ServerError(*r, "thread_context");
  co_return Status();
}

Awaitable<Result<Reply>> RedisStore::Eval(
    const Script& script, const std::vector<std::string_view>& keys,
    const std::vector<std::string_view>& args, Deadline deadline,
    const std::vector<std::vector<std::string_view>>& before) {
  // On a cluster every key of a script must be in one slot. Ours share a hash tag; this
  // is the check that they do, so CROSSSLOT never reaches the server (an id such as "}x"
  // yields an empty tag, and is refused here by name).
  if (cluster_) {
    for (std::string_view k : keys) {
      if (KeySlot(k) != KeySlot(keys.front())) {
        co_return Error(StatusCode::kInvalidArgument,
                        fmt::format("keys '{}' and '{}' fall in different cluster slots; an id "
                                    "that begins with '}}' cannot be used on Redis Cluster",
                                    keys.front(), k));
      }
    }
  }
  const std::string& sha = shas_[script.index];
  const std::string nkeys = std::to_string(keys.size());
  std::vector<std::string_view> cmd;
  cmd.reserve(3 + keys.size() + args.size());
  cmd.push_back("EVALSHA");
  cmd.push_back(sha);
  cmd.push_back(nkeys);
  cmd.insert(cmd.end(), keys.begin(), keys.end());
  cmd.insert(cmd.end(), args.begin(), args.end());
  const std::string_view key = keys.empty() ? std::string_view() : keys.front();
  auto send = [&]() -> Awaitable<Result<Reply>> {
    if (before.empty()) co_return co_await Call(key, cmd, deadline);
    std::vector<std::vector<std::string_view>> all = before;
    all.push_back(cmd);
    auto r = co_await CallAll(key, all, deadline);
    if (!r || r->is_error()) co_return r;
    // EXEC's array: the commands' replies, then the script's, which is the answer unless
    // a command before it failed.
    if (r->type != Reply::Type::kArray || r->elements.size() != all.size()) {
      co_return Error(StatusCode::kInternal,
                      fmt::format("redis {}: EXEC answered with {} replies for {} commands",
                                  script.name, r->elements.size(), all.size()));
    }
    for (std::size_t i = 0; i + 1 < all.size(); ++i) {
      if (r->elements[i].is_error()) co_return std::move(r->elements[i]);
    }
    co_return std::move(r->elements.back());
  };
  auto r = co_await send();
  if (r && r->is_error() && r->str.rfind("NOSCRIPT", 0) == 0) {
    // A restarted, flushed or newly promoted server lacks the script: send it whole (which
    // caches it there). Commands staged before it ran, and run again with it.
    ++noscript_reloads_;
    cmd[0] = "EVAL";
    cmd[1] = script.source;
    r = co_await send();
  }
  co_return r;
}

// The save script's arguments for `m` (its payload already encoded as `body`; m.version is
// ignored for a save, and is the version to write for a put; m.saved_at is the save's time).
Awaitable<Result<Reply>> RedisStore::WriteRecord(const StateRecord& m, std::size_t payload_bytes,
                                                 const core::Encoded& body, std::string expected,
                                                 bool put, Deadline deadline) {
  const SystemTime now = core::Now(options_);
  const SystemTime at = m.saved_at;  // a save's is now (Save sets it), a put's its own
  const bool keep = KeepsCheckpoint(m.checkpoint_type, m.is_recovery_point);
  const bool cp_recovery = m.is_recovery_point || m.checkpoint_type == CheckpointType::kRecovery;
  const std::string rec = Key("agent_state", m.run_id), ver = Key("agent_state_version", m.run_id),
                    cpz = Key("checkpoint", m.run_id), stage = Key("agent_state_stage", m.run_id),
                    thr = Key("thread_context", m.thread_id);
  const std::string now_ms = std::to_string(core::ToUnixMillis(now)),
                    at_ms = std::to_string(core::ToUnixMillis(at));
  const std::string step = std::to_string(m.step_count), cs = std::to_string(m.checksum),
                    enc = std::to_string(static_cast<int>(body.encoding)),
                    n = std::to_string(payload_bytes);
  const std::string rec_ttl = Ms(TtlOf(options_.ttl, RunStatus::kActive, m.is_recovery_point));
  const std::string rec_ex =
      std::to_string(core::ExpiryMillis(options_.ttl, RunStatus::kActive, m.is_recovery_point, at));
  const std::string cp_ttl = Ms(TtlOf(options_.ttl, RunStatus::kActive, cp_recovery));
  const std::string cp_ex =
      std::to_string(core::ExpiryMillis(options_.ttl, RunStatus::kActive, cp_recovery, at));
  const std::string th_ttl = Ms(options_.ttl.active);
  const std::string th_ex =
      std::to_string(core::ExpiryMillis(options_.ttl, RunStatus::kActive, false, at));
  const std::string forced = put ? std::to_string(m.version) : "";
  std::vector<std::string_view> keys = {rec, ver, cpz, stage, thr};
  if (cluster_) keys.pop_back();  // the thread's slot is not the run's: Save moves it after
  const std::vector<std::string_view> args = {now_ms,
                                              expected,
                                              m.thread_id,
                                              m.user_id,
                                              m.agent_type,
                                              step,
                                              m.phase,
                                              Name(m.checkpoint_type),
                                              m.is_recovery_point ? "1" : "0",
                                              cs,
                                              enc,
                                              n,
                                              rec_ttl,
                                              rec_ex,
                                              keep ? "1" : "0",
                                              cp_ttl,
                                              cp_ex,
                                              cp_recovery ? "1" : "0",
                                              th_ttl,
                                              th_ex,
                                              m.run_id,
                                              forced,
                                              at_ms,
                                              m.idempotency_key};
  // The payload goes into the stage by a plain HSET, in the transaction of the script that
  // commits it, with the record's TTL (which the rename keeps). That TTL also bounds a stage
  // whose script never ran (NOSCRIPT, then the client gone before it sent the script whole);
  // a record that never expires gets it from the script.
  const std::vector<std::vector<std::string_view>> staging = {
      {"HSET", stage, "p", body.bytes},
      {"PEXPIRE", stage, rec_ttl == "0" ? kStageTtlMs : std::string_view(rec_ttl)}};
  co_return co_await Eval(Scripts()[kSaveScript], keys, args, deadline, staging);
}

Awaitable<Result<SaveAck>> RedisStore::Save(SaveRequest req, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "save"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateSave(req, options_); !s.ok()) co_return Error(s);
  const uint64_t checksum = core::Checksum(req.payload);
  const core::Encoded body = core::Encode(
      req.payload, options_.compress_threshold_bytes.value_or(core::kDefaultCompressThreshold));
  const std::size_t payload_bytes = req.payload.size();
  const std::string expected = req.expected_version ? std::to_string(*req.expected_version) : "";
  // The version is the server's (the save script assigns it); the time is now.
  StateRecord m = core::RecordOf(std::move(req), 0, checksum, core::Now(options_));
  const bool wait =
      wait_replicas_ > 0 && (m.checkpoint_type == CheckpointType::kCritical ||
                             m.checkpoint_type == CheckpointType::kRecovery || m.is_recovery_point);
  const uint64_t generation = wait ? Generation() : 0;
  auto r = co_await WriteRecord(m, payload_bytes, body, expected, /*put=*/false, deadline);
  if (!r) co_return Error(r.error());
  if (r->is_error()) {
    if (IsCode(*r, "CONFLICT")) {
      ++conflicts_;
      co_return Error(StatusCode::kConflict, fmt::format("run {} is at version {}, expected {}",
                                                         m.run_id, r->str.substr(9), expected));
    }
    if (IsCode(*r, "COMPLETED")) {
      ++conflicts_;
      co_return Error(StatusCode::kConflict,
                      fmt::format("run {} is completed; restore it or start a new run", m.run_id));
    }
    co_return Error(ServerError(*r, "save"));
  }
  if (r->type == Reply::Type::kArray && r->elements.size() == 2 &&
      r->elements[0].type == Reply::Type::kInteger) {
    // The live record was written with this key: its acknowledgement, if the bytes match.
    auto stored = ToUint(r->elements[1].str);
    if (!stored)
      co_return Error(StatusCode::kCorruption,
                      fmt::format("run {}: stored field 'cs' is unreadable", m.run_id));
    co_return *core::Replay(m.run_id, m.idempotency_key, checksum, m.idempotency_key,
                            r->elements[0].integer, *stored);
  }
  if (r->type != Reply::Type::kInteger)
    co_return Error(StatusCode::kInternal, "redis save: the script returned no version");
  ++saves_;
  if (wait) {
    Status replicated = co_await WaitForReplicas(Key("agent_state", m.run_id), m.run_id, r->integer,
                                                 generation, deadline);
    if (!replicated.ok()) co_return Error(replicated);
  }
  if (cluster_) {
    // The save stands whatever this step does; a failed move leaves the thread pointer
    // behind until the thread's next save (counted: thread_moves_failed).
    Status moved = co_await MoveThread(m.thread_id, m.run_id, r->integer, m.saved_at, deadline);
    if (!moved.ok()) ++thread_moves_failed_;
  }
  co_return SaveAck{r->integer, checksum};
}

Awaitable<Result<bool>> RedisStore::Put(StateRecord record, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "put"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidatePut(record, options_); !s.ok()) co_return Error(s);
  const core::Encoded body = core::Encode(
      record.payload, options_.compress_threshold_bytes.value_or(core::kDefaultCompressThreshold));
  const std::size_t payload_bytes = record.payload.size();
  auto r = co_await WriteRecord(record, payload_bytes, body, "", /*put=*/true, deadline);
  if (!r) co_return Error(r.error());
  if (r->is_error()) co_return Error(ServerError(*r, "put"));
  if (r->type != Reply::Type::kInteger)
    co_return Error(StatusCode::kInternal, "redis put: the script returned no version");
  if (r->integer > 0) {
    ++saves_;
    if (cluster_) {
      Status moved = co_await MoveThread(record.thread_id, record.run_id, record.version,
                                         record.saved_at, deadline);
      if (!moved.ok()) ++thread_moves_failed_;
    }
  }
  co_return r->integer > 0;
}

Awaitable<Result<std::optional<StateRecord>>> RedisStore::Load(std::string run_id,
                                                               Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "load"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const std::string rec = Key("agent_state", run_id);
  std::vector<std::string_view> cmd = {"HMGET", rec};
  cmd.insert(cmd.end(), std::begin(kRecordFields), std::end(kRecordFields));
  auto r = co_await Call(rec, cmd, deadline);
  if (!r) co_return Error(r.error());
  if (r->is_error()) co_return Error(ServerError(*r, "load"));
  ++loads_;
  std::string expiry;
  auto parsed = ParseRecord(*r, 0, run_id, options_.max_payload_bytes, &expiry);
  if (!parsed) {
    if (parsed.error().code() == StatusCode::kCorruption) ++corruptions_;
    co_return Error(parsed.error());
  }
  if (*parsed) {
    auto ex = ToInt(expiry);
    if (!ex) {
      ++corruptions_;
      co_return Error(StatusCode::kCorruption,
                      fmt::format("run {}: stored field 'ex' is unreadable", run_id));
    }
    if (*ex <= core::ToUnixMillis(core::Now(options_))) co_return std::optional<StateRecord>();
  }
  co_return parsed;
}

Awaitable<Result<bool>> RedisStore::Delete(std::string run_id, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "delete"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const std::string rec = Key("agent_state", run_id), ver = Key("agent_state_version", run_id),
                    cpz = Key("checkpoint", run_id),
                    th_prefix = cluster_ ? "" : prefix_ + "thread_context:{";
  const std::string now_ms = std::to_string(core::ToUnixMillis(core::Now(options_)));
  const std::vector<std::string_view> keys = {rec, ver, cpz};
  const std::vector<std::string_view> args = {now_ms, th_prefix, run_id};
  auto r = co_await Eval(Scripts()[kDeleteScript], keys, args, deadline);
  if (!r) co_return Error(r.error());
  if (r->is_error()) co_return Error(ServerError(*r, "delete"));
  if (r->type == Reply::Type::kArray && r->elements.size() == 2) {
    // A cluster: the run is gone; now the thread's pointer to it, in the thread's slot
    // (the delete stands whatever this step does, as a save does).
    if (Status s = co_await ClearThread(r->elements[1].str, run_id, deadline); !s.ok())
      ++thread_moves_failed_;
    co_return true;
  }
  co_return r->integer == 1;
}

Awaitable<Done> RedisStore::Complete(std::string run_id, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "complete"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const SystemTime now = core::Now(options_);
  const std::string rec = Key("agent_state", run_id);
  const std::string now_ms = std::to_string(core::ToUnixMillis(now)),
                    ttl = Ms(options_.ttl.completed),
                    ex = std::to_string(
                        core::ExpiryMillis(options_.ttl, RunStatus::kCompleted, false, now));
  const std::vector<std::string_view> keys = {rec};
  const std::vector<std::string_view> args = {now_ms, ttl, ex};
  auto r = co_await Eval(Scripts()[kCompleteScript], keys, args, deadline);
  if (!r) co_return Error(r.error());
  if (r->is_error()) {
    if (IsCode(*r, "NOTFOUND"))
      co_return Error(StatusCode::kNotFound, fmt::format("run {} does not exist", run_id));
    co_return Error(ServerError(*r, "complete"));
  }
  co_return Done();
}

Awaitable<Result<CheckpointInfo>> RedisStore::Checkpoint(std::string run_id, CheckpointType type,
                                                         Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "checkpoint"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  // Verify the bytes first (never snapshot damaged bytes as if they were good), then copy
  // that version; if a save landed in between, verify the newer one. Bounded: 3 tries.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto cur = co_await Load(run_id, deadline);
    if (!cur) co_return Error(cur.error());
    if (!*cur) co_return Error(StatusCode::kNotFound, fmt::format("run {} does not exist", run_id));
    const StateRecord& rec = **cur;
    const SystemTime now = core::Now(options_);
    const bool rp = rec.is_recovery_point || type == CheckpointType::kRecovery;
    const std::string rk = Key("agent_state", run_id), ver = Key("agent_state_version", run_id),
                      cpz = Key("checkpoint", run_id);
    const std::string now_ms = std::to_string(core::ToUnixMillis(now)),
                      v = std::to_string(rec.version),
                      ttl = Ms(TtlOf(options_.ttl, RunStatus::kActive, rp)),
                      ex = std::to_string(
                          core::ExpiryMillis(options_.ttl, RunStatus::kActive, rp, now));
    const std::vector<std::string_view> keys = {rk, ver, cpz};
    const std::vector<std::string_view> args = {now_ms, v, Name(type), rp ? "1" : "0", ttl, ex};
    auto r = co_await Eval(Scripts()[kCheckpointScript], keys, args, deadline);
    if (!r) co_return Error(r.error());
    if (r->is_error()) {
      if (IsCode(*r, "CHANGED")) continue;
      if (IsCode(*r, "NOTFOUND"))
        co_return Error(StatusCode::kNotFound, fmt::format("run {} does not exist", run_id));
      co_return Error(ServerError(*r, "checkpoint"));
    }
    co_return ParseCheckpoint(*r, run_id);
  }
  co_return Error(
      StatusCode::kConflict,
      fmt::format("run {} changed during each of 3 checkpoint attempts; retry", run_id));
}

Awaitable<Result<std::vector<CheckpointInfo>>> RedisStore::ListCheckpoints(std::string run_id,
                                                                           Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "list_checkpoints"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const std::string cpz = Key("checkpoint", run_id);
  const std::string now_ms = std::to_string(core::ToUnixMillis(core::Now(options_)));
  const std::vector<std::string_view> keys = {cpz};
  const std::vector<std::string_view> args = {now_ms};
  auto r = co_await Eval(Scripts()[kListScript], keys, args, deadline);
  if (!r) co_return Error(r.error());
  if (r->is_error()) co_return Error(ServerError(*r, "list_checkpoints"));
  std::vector<CheckpointInfo> out;
  for (const auto& e : r->elements) {
    auto c = ParseCheckpoint(e, run_id);
    if (!c) co_return Error(c.error());
    out.push_back(std::move(*c));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.version < b.version; });
  co_return out;
}

Awaitable<Result<StateRecord>> RedisStore::Restore(std::string run_id,
                                                   std::optional<std::string> checkpoint_id,
                                                   Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "restore"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const std::string rk = Key("agent_state", run_id), ver = Key("agent_state_version", run_id),
                    cpz = Key("checkpoint", run_id);
  auto not_found = [&] {
    return Error(StatusCode::kNotFound,
                 checkpoint_id ? fmt::format("run {} has no checkpoint {}", run_id, *checkpoint_id)
                               : fmt::format("run {} has no checkpoints", run_id));
  };
  // 1. Read and verify the snapshot: checkpoints never change once written.
  const std::string read_now = std::to_string(core::ToUnixMillis(core::Now(options_)));
  const std::string wanted = checkpoint_id.value_or("");
  const std::vector<std::string_view> read_keys = {cpz};
  const std::vector<std::string_view> read_args = {read_now, wanted};
  auto snap = co_await Eval(Scripts()[kRestoreReadScript], read_keys, read_args, deadline);
  if (!snap) co_return Error(snap.error());
  if (snap->is_error()) {
    if (IsCode(*snap, "NOTFOUND")) co_return not_found();
    co_return Error(ServerError(*snap, "restore"));
  }
  auto parsed = ParseRecord(*snap, 0, run_id, options_.max_payload_bytes);
  if (!parsed) {
    if (parsed.error().code() == StatusCode::kCorruption) ++corruptions_;
    co_return Error(parsed.error());
  }
  if (!*parsed || snap->elements.size() != kFieldCount + 2) co_return not_found();
  StateRecord out = std::move(**parsed);
  const std::string cid = snap->elements[kFieldCount].str;
  const bool rp = snap->elements[kFieldCount + 1].str == "1";
  // 2. Make it the latest version, atomically with the version bump and thread context.
  const SystemTime now = core::Now(options_);
  const std::string now_ms = std::to_string(core::ToUnixMillis(now)),
                    rec_ttl = Ms(TtlOf(options_.ttl, RunStatus::kActive, rp)),
                    rec_ex = std::to_string(
                        core::ExpiryMillis(options_.ttl, RunStatus::kActive, rp, now)),
                    th_prefix = cluster_ ? "" : prefix_ + "thread_context:{",
                    th_ttl = Ms(options_.ttl.active),
                    th_ex = std::to_string(
                        core::ExpiryMillis(options_.ttl, RunStatus::kActive, false, now));
  const std::vector<std::string_view> keys = {rk, ver, cpz};
  const std::vector<std::string_view> args = {now_ms,    cid,    rec_ttl, rec_ex,
                                              th_prefix, th_ttl, th_ex,   run_id};
  auto r = co_await Eval(Scripts()[kRestoreWriteScript], keys, args, deadline);
  if (!r) co_return Error(r.error());
  if (r->is_error()) {
    if (IsCode(*r, "NOTFOUND")) co_return not_found();
    co_return Error(ServerError(*r, "restore"));
  }
  if (r->type == Reply::Type::kArray && r->elements.size() == 2) {
    // A cluster: the run is restored; now the thread's pointer, in the thread's slot.
    out.version = r->elements[0].integer;
    if (Status s = co_await MoveThread(r->elements[1].str, run_id, out.version, now, deadline);
        !s.ok())
      ++thread_moves_failed_;
  } else {
    out.version = r->integer;
  }
  out.status = RunStatus::kActive;
  out.idempotency_key.clear();  // written by the restore
  out.checkpoint_type = CheckpointType::kRecovery;
  out.is_recovery_point = rp;
  out.saved_at = now;
  co_return out;
}

Awaitable<Result<std::optional<ThreadContextRecord>>> RedisStore::ThreadContext(
    std::string thread_id, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "thread_context"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("thread_id", thread_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const std::string key = Key("thread_context", thread_id);
  const std::vector<std::string_view> cmd = {"HMGET", key, "run", "v", "ts", "ex"};
  auto r = co_await Call(key, cmd, deadline);
  if (!r) co_return Error(r.error());
  if (r->is_error()) co_return Error(ServerError(*r, "thread_context"));
  if (r->type != Reply::Type::kArray || r->elements.size() != 4 ||
      r->elements[0].type == Reply::Type::kNil) {
    co_return std::optional<ThreadContextRecord>();
  }
  const auto& e = r->elements;
  auto v = ToInt(e[1].str), ts = ToInt(e[2].str), ex = ToInt(e[3].str);
  if (!v || !ts || !ex) {
    co_return Error(StatusCode::kCorruption,
                    fmt::format("thread {}: stored context is unreadable", thread_id));
  }
  if (*ex <= core::ToUnixMillis(core::Now(options_)))
    co_return std::optional<ThreadContextRecord>();
  co_return std::optional<ThreadContextRecord>(
      ThreadContextRecord{thread_id, e[0].str, *v, core::FromUnixMillis(*ts)});
}

Awaitable<Result<uint64_t>> RedisStore::DeletePrefix(std::string prefix, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "delete_prefix"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateDeletePrefix(prefix); !s.ok()) co_return Error(s);
  // Every key family whose ids start with the prefix, a SCAN batch at a time on each server,
  // unlinked as found (the checkpoint pattern takes each run's snapshots too). Records
  // first: a run whose record is gone reads as absent while the rest goes.
  uint64_t records = 0;
  const std::vector<std::string> nodes = Nodes();
  for (std::string_view kind :
       {"agent_state", "agent_state_version", "checkpoint", "thread_context"}) {
    const std::string pattern = GlobEscape(prefix_ + std::string(kind) + ":{" + prefix) + "*";
    for (const std::string& node : nodes) {
      std::string cursor = "0";
      do {
        const std::vector<std::string_view> scan = {"SCAN",  cursor,  "MATCH",
                                                    pattern, "COUNT", "1000"};
        auto r = co_await CallOn(node, scan, deadline);
        if (!r) co_return Error(r.error());
        if (r->is_error()) co_return Error(ServerError(*r, "scan"));
        if (r->type != Reply::Type::kArray || r->elements.size() != 2)
          co_return Error(StatusCode::kInternal, "redis scan: unexpected reply shape");
        cursor = r->elements[0].str;
        // One UNLINK per slot on a cluster (a node's batch spans its slots), else one.
        std::map<uint16_t, std::vector<std::string_view>> by_slot;
        for (const auto& k : r->elements[1].elements)
          by_slot[cluster_ ? KeySlot(k.str) : 0].push_back(k.str);
        for (const auto& [slot, keys] : by_slot) {
          std::vector<std::string_view> unlink = {"UNLINK"};
          unlink.insert(unlink.end(), keys.begin(), keys.end());
          auto gone = co_await Call(keys.front(), unlink, deadline);
          if (!gone) co_return Error(gone.error());
          if (gone->is_error()) co_return Error(ServerError(*gone, "unlink"));
          if (kind == "agent_state") records += static_cast<uint64_t>(gone->integer);
        }
      } while (cursor != "0");
    }
  }
  co_return records;
}

Awaitable<Result<ActiveRunsPage>> RedisStore::ActiveRuns(ActiveRunsQuery query, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "active_runs"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateActiveRunsQuery(query, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  // The cursor is "[<server>/]<scan cursor>:<matched keys of that batch already returned>",
  // the server an index into Nodes() (absent for the first).
  std::size_t node = 0;
  uint64_t scan = 0, skip = 0;
  if (!query.cursor.empty()) {
    std::string_view c = query.cursor;
    std::optional<uint64_t> n = 0;
    if (const auto slash = c.find('/'); slash != std::string_view::npos) {
      n = ToUint(c.substr(0, slash));
      c = c.substr(slash + 1);
    }
    const auto colon = c.find(':');
    auto a = ToUint(c.substr(0, colon));
    auto b = colon == std::string::npos ? std::nullopt : ToUint(c.substr(colon + 1));
    if (!n || !a || !b) {
      co_return Error(
          StatusCode::kInvalidArgument,
          fmt::format("malformed active-runs cursor '{}'; pass back next_cursor as returned",
                      query.cursor));
    }
    node = static_cast<std::size_t>(*n);
    scan = *a;
    skip = *b;
  }
  const std::vector<std::string> nodes = Nodes();
  if (node >= nodes.size()) {
    co_return Error(StatusCode::kInvalidArgument,
                    fmt::format("active-runs cursor '{}' names server {} of {}; the cluster "
                                "changed: start the listing again",
                                query.cursor, node, nodes.size()));
  }
  auto cursor_of = [](std::size_t node, uint64_t scan, uint64_t skip) {
    return node == 0 ? fmt::format("{}:{}", scan, skip) : fmt::format("{}/{}:{}", node, scan, skip);
  };
  const std::string head = prefix_ + "agent_state:{";
  const std::string pattern = GlobEscape(head) + "*";
  const std::string count = std::to_string(std::max<uint32_t>(query.limit, 1000));
  const std::string thread = query.thread_id.value_or("");
  ActiveRunsPage page;
  // Bounded work per page: at most 64 SCAN steps, then a partial page and a cursor.
  for (int step = 0; step < 64; ++step) {
    const std::string cur = std::to_string(scan);
    const std::vector<std::string_view> cmd = {"SCAN", cur, "MATCH", pattern, "COUNT", count};
    auto r = co_await CallOn(nodes[node], cmd, deadline);
    if (!r) co_return Error(r.error());
    if (r->is_error()) co_return Error(ServerError(*r, "scan"));
    if (r->type != Reply::Type::kArray || r->elements.size() != 2) {
      co_return Error(StatusCode::kInternal, "redis scan: unexpected reply shape");
    }
    auto next = ToUint(r->elements[0].str);
    if (!next) co_return Error(StatusCode::kInternal, "redis scan: unreadable cursor");
    const auto& batch = r->elements[1].elements;
    std::vector<std::string_view> keys;
    for (std::size_t i = skip; i < batch.size(); ++i) keys.push_back(batch[i].str);
    // One row per key, empty when not an active, live match: one script for the batch, or
    // on a cluster one per key (a node's batch spans its slots).
    std::vector<Reply> rows;
    if (!keys.empty()) {
      const std::string now_ms = std::to_string(core::ToUnixMillis(core::Now(options_)));
      const std::vector<std::string_view> args = {now_ms, thread};
      const std::size_t calls = cluster_ ? keys.size() : 1;
      for (std::size_t c = 0; c < calls; ++c) {
        const std::vector<std::string_view> some =
            cluster_ ? std::vector<std::string_view>{keys[c]} : keys;
        auto got = co_await Eval(Scripts()[kActiveRowsScript], some, args, deadline);
        if (!got) co_return Error(got.error());
        if (got->is_error()) co_return Error(ServerError(*got, "active_runs"));
        for (auto& row : got->elements) rows.push_back(std::move(row));
      }
    }
    for (std::size_t i = 0; i < rows.size() && i < keys.size(); ++i) {
      const auto& row = rows[i].elements;  // v th u at ts ex st
      if (row.size() != 7) continue;
      if (page.runs.size() == query.limit) {
        page.next_cursor = cursor_of(node, scan, skip + i);
        co_return page;
      }
      auto v = ToInt(row[0].str);
      auto ts = ToInt(row[4].str);
      if (!v || !ts) continue;
      std::string_view key = keys[i];
      std::string run(key.substr(head.size(), key.size() - head.size() - 1));
      page.runs.push_back(
          {std::move(run), row[1].str, row[2].str, row[3].str, *v, core::FromUnixMillis(*ts)});
    }
    skip = 0;
    scan = *next;
    if (scan == 0) {
      if (node + 1 == nodes.size()) co_return page;  // the end of the last server's keyspace
      ++node;
    }
    if (page.runs.size() == query.limit) break;
  }
  page.next_cursor = cursor_of(node, scan, 0);
  co_return page;
}

Awaitable<Result<HealthReport>> RedisStore::Health(Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "health"); !s.ok()) co_return Error(s);
  const auto start = std::chrono::steady_clock::now();
  TierHealth t;
  t.tier = "hot";
  t.backend = Describe();
  std::vector<std::string> why;
  // A cluster's map first (it names a primary that is gone, or slots left uncovered), then
  // a PING of every server that holds keys, each named when it fails.
  if (cluster_) {
    if (Status s = co_await cluster_->Refresh(deadline); !s.ok()) why.push_back(s.message());
  }
  if (why.empty()) {
    const std::vector<std::string_view> cmd = {"PING"};
    for (const std::string& node : Nodes()) {
      auto r = co_await CallOn(node, cmd, deadline);
      const std::string who = node.empty() ? "" : fmt::format("node {}: ", node);
      if (!r) {
        why.push_back(who + r.error().message());
      } else if (r->is_error()) {
        why.push_back(who + r->str);
      }
    }
  }
  t.latency = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  t.healthy = why.empty();
  t.detail = fmt::format("{}", fmt::join(why, "; "));
  HealthReport h;
  h.tiers.push_back(std::move(t));
  co_return h;
}

void RedisStore::RefreshInfo() const {
  const std::vector<std::string> nodes = Nodes();
  {
    std::lock_guard lock(info_->mu);
    const auto now = std::chrono::steady_clock::now();
    if (info_->refreshing > 0 || nodes.empty() || now - info_->last < 1s) return;
    info_->refreshing = static_cast<int>(nodes.size());
    info_->last = now;
  }
  // Started here, on each server's own client, it needs no thread of its own; it holds the
  // shared figures, not the store.
  auto op = [](std::shared_ptr<ServerInfo> info, RedisClient* client,
               std::string node) -> Awaitable<void> {
    const std::vector<std::string_view> cmd = {"INFO"};
    auto r = co_await client->Command(cmd, DeadlineIn(500ms));
    std::map<std::string, double> parsed;
    if (r && !r->is_error()) {
      static const std::map<std::string_view, std::string_view> kWanted = {
          {"used_memory", "server_used_memory_bytes"},
          {"used_memory_rss", "server_rss_bytes"},
          {"connected_clients", "server_connected_clients"},
          {"instantaneous_ops_per_sec", "server_ops_per_sec"},
          {"used_cpu_sys", "server_cpu_sys_seconds"},
          {"used_cpu_user", "server_cpu_user_seconds"},
          {"aof_enabled", "server_aof_enabled"},
          {"total_commands_processed", "server_commands_processed"},
      };
      std::string_view text = r->str;
      while (!text.empty()) {
        const auto eol = text.find("\r\n");
        std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 2);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        auto it = kWanted.find(line.substr(0, colon));
        if (it == kWanted.end()) continue;
        try {
          parsed[std::string(it->second)] = std::stod(std::string(line.substr(colon + 1)));
        } catch (const std::exception&) {
        }
      }
    }
    std::lock_guard lock(info->mu);
    if (!parsed.empty()) info->nodes[node] = std::move(parsed);
    --info->refreshing;
  };
  for (const std::string& node : nodes) {
    RedisClient* c = client_ ? client_.get() : &cluster_->NodeClient(node);
    asio::co_spawn(c->executor(), op(info_, c, node), asio::detached);
  }
}

uint64_t RedisStore::Generation() const {
  return client_ ? client_->reconnects() : cluster_->stats().reconnects;
}

StoreStats RedisStore::Stats() const {
  RefreshInfo();
  StoreStats s;
  s.backend = Describe();
  s.values["saves"] = static_cast<double>(saves_.load());
  s.values["loads"] = static_cast<double>(loads_.load());
  s.values["conflicts"] = static_cast<double>(conflicts_.load());
  s.values["corruptions"] = static_cast<double>(corruptions_.load());
  s.values["noscript_reloads"] = static_cast<double>(noscript_reloads_.load());
  if (client_) {
    const auto c = client_->stats();
    s.values["connections"] = static_cast<double>(c.connections);
    s.values["reconnects"] = static_cast<double>(c.reconnects);
    c.AppendTo(s.values);
  } else {
    const auto c = cluster_->stats();
    s.values["reconnects"] = static_cast<double>(c.reconnects);
    s.values["cluster_moved"] = static_cast<double>(c.moved);
    s.values["cluster_asked"] = static_cast<double>(c.asked);
    s.values["cluster_retried"] = static_cast<double>(c.retried);
    s.values["cluster_refreshes"] = static_cast<double>(c.refreshes);
    s.values["cluster_primaries"] = static_cast<double>(cluster_->Primaries().size());
    s.values["thread_moves_failed"] = static_cast<double>(thread_moves_failed_.load());
  }
  if (wait_replicas_ > 0) {
    s.values["replica_waits"] = static_cast<double>(waits_.load());
    s.values["replica_waits_short"] = static_cast<double>(waits_short_.load());
  }
  // The servers' INFO figures, summed over a cluster's primaries (AOF: on only if on all).
  std::lock_guard lock(info_->mu);
  std::map<std::string, double> sum;
  for (const auto& [node, values] : info_->nodes) {
    for (const auto& [k, v] : values) {
      if (k == "server_aof_enabled" && sum.count(k))
        sum[k] = std::min(sum[k], v);
      else
        sum[k] += v;
    }
  }
  for (const auto& [k, v] : sum) s.values[k] = v;
  return s;
}

}  // namespace agentstate::backends::redis
