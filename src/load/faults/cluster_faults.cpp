#include "load/faults/cluster_faults.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "core/uri.hpp"
#include "load/faults/fault_proxy.hpp"
#include "load/faults/services.hpp"

extern char** environ;

namespace agentstate::load {
namespace {

using namespace std::chrono_literals;
constexpr int kNodes = 6;  // redis-cluster-0..5

using ReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;

// One command to a node at "host:port", on a connection of its own with a 2 s timeout; null
// when the node does not answer.
ReplyPtr Ask(const std::string& address, const std::vector<std::string>& args) {
  ReplyPtr none(nullptr, freeReplyObject);
  const auto colon = address.rfind(':');
  const timeval tv{2, 0};
  redisContext* c = redisConnectWithTimeout(address.substr(0, colon).c_str(),
                                            std::atoi(address.c_str() + colon + 1), tv);
  if (!c || c->err) {
    if (c) redisFree(c);
    return none;
  }
  redisSetTimeout(c, tv);
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  redisFree(c);
  return ReplyPtr(r, freeReplyObject);
}

std::string Str(const redisReply* r) { return r && r->str ? std::string(r->str, r->len) : ""; }

// "master", "slave", or "" when the node does not answer.
std::string Role(const std::string& node) {
  auto r = Ask(node, {"ROLE"});
  return r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? Str(r->element[0]) : "";
}

// A primary's first replica as "host:port"; "" when it has none.
std::string ReplicaOf(const std::string& primary) {
  auto r = Ask(primary, {"ROLE"});
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return "";
  const redisReply* replicas = r->element[2];
  if (replicas->type != REDIS_REPLY_ARRAY || replicas->elements == 0) return "";
  const redisReply* first = replicas->element[0];
  if (first->type != REDIS_REPLY_ARRAY || first->elements < 2) return "";
  return Str(first->element[0]) + ":" + Str(first->element[1]);
}

// Whether a replica's link to its primary is up (it has caught up and streams).
bool LinkUp(const std::string& node) {
  auto r = Ask(node, {"INFO", "replication"});
  return r && Str(r.get()).find("master_link_status:up") != std::string::npos;
}

// Polls `done` every 50 ms (a cluster changing its configuration) for up to `limit`.
Status WaitFor(const std::function<bool()>& done, std::chrono::seconds limit,
               const std::string& what) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end)
      return Status(StatusCode::kUnavailable,
                    fmt::format("{}: not within {} s", what, limit.count()));
    std::this_thread::sleep_for(50ms);
  }
  return Status();
}

// Makes replica `to` the primary of `from`'s slots by CLUSTER FAILOVER (it waits for the
// replica to catch up first), and returns once both ends say so.
Status Failover(const std::string& to, const std::string& from) {
  if (Status s = WaitFor([&] { return LinkUp(to); }, 60s,
                         fmt::format("{} to catch up as the replica of {}", to, from));
      !s.ok())
    return s;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto r = Ask(to, {"CLUSTER", "FAILOVER"});
    if (!r || r->type == REDIS_REPLY_ERROR)
      return Status(StatusCode::kUnavailable,
                    fmt::format("CLUSTER FAILOVER on {}: {}", to, r ? Str(r.get()) : "no reply"));
    if (WaitFor([&] { return Role(to) == "master" && Role(from) == "slave"; }, 10s, "").ok())
      return Status();
  }
  return Status(StatusCode::kUnavailable,
                fmt::format("{} did not take over from {} in 3 manual failovers", to, from));
}

// The cluster's nodes as the script recorded them, by index: {name, "host:port"}.
struct Node {
  std::string name, address;
};
std::vector<Node> NodesOf(const ServiceControl& control) {
  std::vector<Node> out;
  for (int i = 0; i < kNodes; ++i) {
    const std::string name = fmt::format("redis-cluster-{}", i);
    if (std::string at = control.Authority(name); !at.empty()) out.push_back({name, at});
  }
  return out;
}

// The primaries in node order.
std::vector<Node> Primaries(const std::vector<Node>& nodes) {
  std::vector<Node> out;
  for (const auto& n : nodes) {
    if (Role(n.address) == "master") out.push_back(n);
  }
  return out;
}

const Node* ByAddress(const std::vector<Node>& nodes, const std::string& address) {
  for (const auto& n : nodes) {
    if (n.address == address) return &n;
  }
  return nullptr;
}

class ClusterFault : public Fault {
 public:
  explicit ClusterFault(const std::filesystem::path& dir) : dir_(dir), control_(dir) {}

 protected:
  // The first primary and its replica, now.
  Status PickPair() {
    nodes_ = NodesOf(control_);
    auto primaries = Primaries(nodes_);
    if (primaries.empty()) return Status(StatusCode::kUnavailable, "no cluster primary answers");
    primary_ = primaries.front();
    const Node* r = ByAddress(nodes_, ReplicaOf(primary_.address));
    if (!r)
      return Status(
          StatusCode::kUnavailable,
          fmt::format("{} has no replica known to scripts/services.sh", primary_.address));
    replica_ = *r;
    return Status();
  }

  std::filesystem::path dir_;
  ServiceControl control_;
  std::vector<Node> nodes_;
  Node primary_, replica_;
};

class PrimaryKill final : public ClusterFault {
 public:
  using ClusterFault::ClusterFault;
  std::string Describe() const override {
    return "the first Redis Cluster primary killed (SIGKILL); its replica takes over";
  }
  Status Begin() override {
    if (Status s = PickPair(); !s.ok()) return s;
    auto killed = control_.Kill(primary_.name, 30s);
    if (!killed) return killed.error();
    // In force once the replica serves the slots (failure detection, then an election).
    return WaitFor(
        [&] { return Role(replica_.address) == "master"; }, 30s,
        fmt::format("{} to take over from the killed {}", replica_.address, primary_.address));
  }
  Status End() override {
    if (!control_.Find(primary_.name)) {
      auto r = control_.Restart(primary_.name, 60s);
      if (!r) return r.error();
    }
    return Failover(primary_.address, replica_.address);
  }
};

class ManualFailover final : public ClusterFault {
 public:
  using ClusterFault::ClusterFault;
  std::string Describe() const override {
    return "a manual failover (CLUSTER FAILOVER) of the first Redis Cluster primary to its "
           "replica";
  }
  Status Begin() override {
    if (Status s = PickPair(); !s.ok()) return s;
    return Failover(replica_.address, primary_.address);
  }
  Status End() override { return Failover(primary_.address, replica_.address); }
};

class Reshard final : public ClusterFault {
 public:
  static constexpr int kSlots = 200;
  using ClusterFault::ClusterFault;
  std::string Describe() const override {
    return fmt::format(
        "redis-cli --cluster reshard: {} slots with their keys from the first Redis Cluster "
        "primary to the second",
        kSlots);
  }
  Status Begin() override {
    nodes_ = NodesOf(control_);
    auto primaries = Primaries(nodes_);
    if (primaries.size() < 2)
      return Status(StatusCode::kUnavailable, "a reshard needs two cluster primaries");
    from_ = primaries[0].address;
    to_ = primaries[1].address;
    return Move(from_, to_);
  }
  Status End() override { return Move(to_, from_); }

 private:
  Status Move(const std::string& from, const std::string& to) {
    auto id = [](const std::string& node) { return Str(Ask(node, {"CLUSTER", "MYID"}).get()); };
    const std::string from_id = id(from), to_id = id(to);
    if (from_id.empty() || to_id.empty())
      return Status(StatusCode::kUnavailable, fmt::format("{} or {} does not answer", from, to));
    const std::string slots = std::to_string(kSlots);
    std::vector<std::string> args = {"redis-cli",       "--cluster", "reshard",      from,
                                     "--cluster-from",  from_id,     "--cluster-to", to_id,
                                     "--cluster-slots", slots,       "--cluster-yes"};
    return Run(args, dir_ / "redis-cluster-reshard.log", 180s);
  }

  // Runs a program (stdout and stderr to `log`) and waits for it, at most `limit`.
  static Status Run(const std::vector<std::string>& args, const std::filesystem::path& log,
                    std::chrono::seconds limit) {
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, argv[0], &files, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    if (rc != 0)
      return Status(StatusCode::kUnavailable,
                    fmt::format("cannot run {}: {}", args[0], std::strerror(rc)));
    const auto end = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= end) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return Status(StatusCode::kUnavailable,
                      fmt::format("{} {} did not finish within {} s; see {}", args[0], args[2],
                                  limit.count(), log.string()));
      }
      std::this_thread::sleep_for(50ms);  // waiting on a child process
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return Status(StatusCode::kUnavailable,
                    fmt::format("{} {} failed; see {}", args[0], args[2], log.string()));
    return Status();
  }

  std::string from_, to_;
};

}  // namespace

void AddClusterFaults(RunFaults& out, std::string_view cluster_uri,
                      const std::filesystem::path& services_dir) {
  static constexpr const char* kNames[] = {"redis_cluster_primary_kill", "redis_cluster_failover",
                                           "redis_cluster_reshard"};
  auto skip = [&](const std::string& why) {
    for (const char* name : kNames) out.skipped.push_back(fmt::format("{}: {}", name, why));
  };
  // Every seed must be a node of the cluster the script started, on loopback.
  auto parsed = core::ParseUri(cluster_uri);
  const std::string body = parsed ? parsed->body.substr(parsed->body.rfind('@') + 1) : "";
  const ServiceControl control(services_dir);
  const auto nodes = NodesOf(control);
  for (std::size_t start = 0; start <= body.size();) {
    auto comma = body.find(',', start);
    if (comma == std::string::npos) comma = body.size();
    const std::string seed = body.substr(start, comma - start);
    const Node* n = ByAddress(nodes, seed);
    if (!n || !IsLoopback(seed.substr(0, seed.rfind(':')))) {
      skip(
          fmt::format("{} is not a node of the cluster scripts/services.sh up --cluster "
                      "started (see {})",
                      seed, services_dir.string()));
      return;
    }
    start = comma + 1;
  }
  out.faults.emplace_back(kNames[0], std::make_unique<PrimaryKill>(services_dir));
  out.faults.emplace_back(kNames[1], std::make_unique<ManualFailover>(services_dir));
  out.faults.emplace_back(kNames[2], std::make_unique<Reshard>(services_dir));
}

}  // namespace agentstate::load
