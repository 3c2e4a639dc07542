// Redis Cluster, sans I/O (the cluster specification, redis.io/docs/reference/cluster-spec):
// which slot a key lives in, the slot map a node reports with CLUSTER SHARDS, and the
// redirections (MOVED, ASK) a node answers with when a slot is elsewhere.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agentstate/status.hpp"
#include "backends/redis/resp.hpp"

namespace agentstate::backends::redis {

inline constexpr int kClusterSlots = 16384;

// CRC16 (XMODEM) of the key's hash tag, or of the whole key when it has none, modulo 16384.
// The hash tag is what lies between the first '{' and the first '}' after it, when that is
// not empty: "agent_state:{run-1}" and "agent_state_version:{run-1}" share a slot.
uint16_t KeySlot(std::string_view key);

struct ClusterNode {
  std::string id;
  std::string host;
  uint16_t port = 0;
  bool primary = false;
  std::string health;           // "online", "failed" or "loading", as the node reported it
  std::string address() const;  // "host:port"
};

struct SlotMap {
  std::vector<ClusterNode> nodes;  // every node of every shard
  // The index in `nodes` of each slot's primary, -1 for a slot no shard serves.
  std::array<int16_t, kClusterSlots> primary;
  SlotMap() { primary.fill(-1); }
  // "0-5460, 10923" for the slots without a primary; empty when every slot has one.
  std::string Uncovered() const;
  // The index of the node at host:port, or -1.
  int Find(std::string_view address) const;
};

// Reads a CLUSTER SHARDS reply (Redis 7). `from` names the node that sent it, for errors.
// kInternal when the reply is not shaped as the command documents.
Result<SlotMap> ParseClusterShards(const Reply& reply, std::string_view from);

struct Redirect {
  enum class Kind { kMoved, kAsk };
  Kind kind = Kind::kMoved;
  uint16_t slot = 0;
  std::string address;  // "host:port"
};
// "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381"; nullopt for any other error.
std::optional<Redirect> ParseRedirect(std::string_view error);

}  // namespace agentstate::backends::redis
