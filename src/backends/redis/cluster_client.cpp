#include "backends/redis/cluster_client.hpp"

#include <fmt/format.h>

#include <random>
#include <set>

namespace agentstate::backends::redis {
namespace {

// Waits `d` on the caller's executor (never past `deadline`).
Awaitable<void> Pause(std::chrono::milliseconds d, Deadline deadline) {
  asio::steady_timer t(co_await asio::this_coro::executor,
                       std::min(std::chrono::steady_clock::now() + d, deadline));
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// 10..20 ms, doubling per attempt up to 400..800 ms.
std::chrono::milliseconds Backoff(int attempt) {
  thread_local std::mt19937 rng(std::random_device{}());
  const int step = 10 << std::min(attempt, 6);
  return std::chrono::milliseconds(step + static_cast<int>(rng() % static_cast<unsigned>(step)));
}

bool IsClusterDown(const Reply& r) {
  return r.is_error() && (r.str.starts_with("CLUSTERDOWN") || r.str.starts_with("TRYAGAIN"));
}

}  // namespace

Result<RedisClusterOptions> ParseRedisClusterUri(std::string_view text,
                                                 std::initializer_list<std::string_view> extra) {
  auto parsed = core::ParseUri(text);
  if (!parsed) return Error(parsed.error());
  return ParseRedisClusterUri(*parsed, extra);
}

Result<RedisClusterOptions> ParseRedisClusterUri(const core::ParsedUri& uri,
                                                 std::initializer_list<std::string_view> extra) {
  const core::ParsedUri* parsed = &uri;
  RedisClusterOptions o;
  o.redacted_uri = core::RedactUri(*parsed);
  auto bad = [&](const std::string& why) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("malformed redis+cluster URI '{}': {}", o.redacted_uri, why));
  };
  if (parsed->scheme != "redis+cluster") return bad("the scheme must be redis+cluster://");
  const std::string& body = parsed->body;
  const auto at = body.rfind('@');
  const std::string userinfo = at == std::string::npos ? "" : body.substr(0, at + 1);
  const std::string hosts = at == std::string::npos ? body : body.substr(at + 1);
  if (hosts.find('/') != std::string::npos)
    return bad("a cluster has only database 0: leave out /DB");
  std::set<std::string> seen;
  for (std::size_t start = 0; start <= hosts.size();) {
    auto comma = hosts.find(',', start);
    if (comma == std::string::npos) comma = hosts.size();
    const std::string one = hosts.substr(start, comma - start);
    auto a = core::ParseAuthority(one);
    if (!a) return bad(fmt::format("seed '{}': {}", one, a.error().message()));
    if (!a->port) return bad(fmt::format("seed '{}' has no port; give HOST:PORT", one));
    const std::string address = fmt::format("{}:{}", a->host, *a->port);
    if (seen.insert(address).second) o.seeds.push_back(address);
    start = comma + 1;
  }
  // Each node's client reads the same parameters as a redis:// client would.
  core::ParsedUri node = *parsed;
  node.scheme = "redis";
  node.body = userinfo + o.seeds.front();
  auto n = ParseRedisUri(node, extra);
  if (!n) return bad(n.error().message());
  o.node = std::move(*n);
  return o;
}

RedisClusterClient::RedisClusterClient(RedisClusterOptions options)
    : options_(std::move(options)) {}

RedisClusterClient::~RedisClusterClient() = default;

std::shared_ptr<const SlotMap> RedisClusterClient::Map() const {
  std::lock_guard lock(mu_);
  return map_;
}

RedisClient& RedisClusterClient::NodeClient(const std::string& address) {
  std::lock_guard lock(mu_);
  auto& c = nodes_[address];
  if (!c) {
    RedisOptions o = options_.node;
    const auto colon = address.rfind(':');
    o.host = address.substr(0, colon);
    o.port = static_cast<uint16_t>(std::stoi(address.substr(colon + 1)));
    o.redacted_uri = fmt::format("redis://{}", address);
    c = std::make_unique<RedisClient>(std::move(o));
  }
  return *c;
}

Awaitable<Status> RedisClusterClient::Refresh(Deadline deadline) {
  ++refreshes_;
  // The seeds first, then every node the current map knows, each once.
  std::vector<std::string> ask = options_.seeds;
  std::set<std::string> known_ids;
  if (auto m = Map()) {
    for (const auto& n : m->nodes) {
      ask.push_back(n.address());
      known_ids.insert(n.id);
    }
  }
  std::set<std::string> asked;
  std::vector<std::string> why;
  std::vector<std::string_view> shards = {"CLUSTER", "SHARDS"};
  for (const auto& address : ask) {
    if (!asked.insert(address).second) continue;
    // Each node gets a share of what is left, so one that hangs cannot use it all.
    const auto share = std::max<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(50), (deadline - std::chrono::steady_clock::now()) / 2);
    auto reply =
        co_await NodeClient(address).Command(shards, std::chrono::steady_clock::now() + share);
    if (!reply) {
      why.push_back(fmt::format("{}: {}", address, reply.error().message()));
      continue;
    }
    if (reply->is_error() && reply->str.find("cluster support disabled") != std::string::npos) {
      co_return Status(StatusCode::kInvalidArgument,
                       fmt::format("{}: {} is not a cluster node (cluster support disabled); "
                                   "use redis://{} for a standalone server",
                                   options_.redacted_uri, address, address));
    }
    auto map = ParseClusterShards(*reply, address);
    if (!map) {
      why.push_back(map.error().message());
      continue;
    }
    if (map->Find(address) < 0) {
      co_return Status(StatusCode::kInvalidArgument,
                       fmt::format("{}: {} answers for a cluster it is not part of (its map names "
                                   "{} nodes, not itself); check the seeds",
                                   options_.redacted_uri, address, map->nodes.size()));
    }
    if (!known_ids.empty()) {
      bool shared = false;
      for (const auto& n : map->nodes) shared = shared || known_ids.count(n.id);
      if (!shared) {
        co_return Status(StatusCode::kInvalidArgument,
                         fmt::format("{}: {} answers with a foreign topology (no node in common "
                                     "with the cluster known so far); check the seeds",
                                     options_.redacted_uri, address));
      }
    }
    if (std::string gaps = map->Uncovered(); !gaps.empty()) {
      why.push_back(
          fmt::format("{}: slots {} have no primary (is the cluster created, or a "
                      "failover under way?)",
                      address, gaps));
      continue;
    }
    {
      std::lock_guard lock(mu_);
      map_ = std::make_shared<const SlotMap>(std::move(*map));
    }
    co_return Status();
  }
  co_return Status(StatusCode::kUnavailable,
                   fmt::format("{}: no node gave a complete slot map: {}", options_.redacted_uri,
                               fmt::join(why, "; ")));
}

Awaitable<void> RedisClusterClient::RefreshSoon() {
  if (refreshing_.exchange(true)) co_return;  // one refresh at a time serves every MOVED
  (void)co_await Refresh(DeadlineIn(std::chrono::seconds(2)));
  refreshing_ = false;
}

Awaitable<Result<Reply>> RedisClusterClient::Command(std::string_view key,
                                                     const std::vector<std::string_view>& args,
                                                     Deadline deadline) {
  RedisRequest request;
  EncodeCommand(request.bytes, args);
  return Route(key, std::move(request), deadline);
}

Awaitable<Result<Reply>> RedisClusterClient::Transaction(
    std::string_view key, const std::vector<std::vector<std::string_view>>& commands,
    Deadline deadline) {
  return Route(key, RedisClient::TransactionRequest(commands), deadline);
}

Awaitable<Result<Reply>> RedisClusterClient::Route(std::string_view key, RedisRequest encoded,
                                                   Deadline deadline) {
  const uint16_t slot = KeySlot(key);
  std::string target;  // set by a redirection: where to send next
  bool asking = false;
  Result<Reply> last = Error(StatusCode::kUnavailable,
                             fmt::format("{}: slot {} unreachable", options_.redacted_uri, slot));
  int waits = 0;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (std::chrono::steady_clock::now() >= deadline) break;
    if (target.empty()) {
      auto map = Map();
      if (!map || map->primary[slot] < 0) {
        if (Status s = co_await Refresh(deadline); !s.ok()) {
          if (s.code() == StatusCode::kInvalidArgument) co_return Error(s);
          last = Error(s);
          co_await Pause(Backoff(waits++), deadline);
          continue;
        }
        map = Map();
      }
      target = map->nodes[static_cast<std::size_t>(map->primary[slot])].address();
    }
    // Named, not a conditional temporary inside co_await: GCC 12 destroys such a temporary
    // twice (AddressSanitizer's double free).
    RedisRequest request = asking ? RedisClient::WithAsking(encoded) : encoded;
    auto reply = co_await NodeClient(target).Send(std::move(request), deadline);
    asking = false;
    if (!reply) {
      // The primary is down or unreachable: a replica may be taking over its slots.
      last = std::move(reply);
      if (last.error().code() == StatusCode::kTimeout &&
          std::chrono::steady_clock::now() >= deadline)
        break;
      ++retried_;
      target.clear();
      co_await Pause(Backoff(waits++), deadline);
      (void)co_await Refresh(deadline);
      continue;
    }
    if (reply->is_error()) {
      if (auto r = ParseRedirect(reply->str)) {
        target = r->address;
        if (r->kind == Redirect::Kind::kAsk) {
          ++asked_;
          asking = true;
        } else {
          ++moved_;
          asio::co_spawn(co_await asio::this_coro::executor, RefreshSoon(), asio::detached);
        }
        last = std::move(reply);
        continue;
      }
      if (IsClusterDown(*reply)) {
        ++retried_;
        last = std::move(reply);
        target.clear();
        co_await Pause(Backoff(waits++), deadline);
        continue;
      }
    }
    co_return reply;
  }
  // What stopped it: a redirection or CLUSTERDOWN to the end, or the last transport error.
  if (last) {
    co_return Error(StatusCode::kUnavailable,
                    fmt::format("{}: slot {}: gave up (attempts or deadline spent): {}",
                                options_.redacted_uri, slot, last->str));
  }
  co_return last;
}

std::vector<std::string> RedisClusterClient::Primaries() const {
  std::vector<std::string> out;
  if (auto m = Map()) {
    std::set<int16_t> seen;
    for (int16_t p : m->primary) {
      if (p >= 0 && seen.insert(p).second)
        out.push_back(m->nodes[static_cast<std::size_t>(p)].address());
    }
  }
  return out;
}

Awaitable<Result<Reply>> RedisClusterClient::CommandOn(std::string_view address,
                                                       const std::vector<std::string_view>& args,
                                                       Deadline deadline) {
  co_return co_await NodeClient(std::string(address)).Command(args, deadline);
}

RedisClusterClient::Stats RedisClusterClient::stats() const {
  Stats s{moved_.load(), asked_.load(), retried_.load(), refreshes_.load()};
  std::lock_guard lock(mu_);
  for (const auto& [address, c] : nodes_) s.reconnects += c->reconnects();
  return s;
}

}  // namespace agentstate::backends::redis
