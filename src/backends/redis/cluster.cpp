#include "backends/redis/cluster.hpp"

#include <fmt/format.h>

#include <charconv>

namespace agentstate::backends::redis {
namespace {

// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection; the
// specification's test vector is CRC16("123456789") = 0x31C3.
uint16_t Crc16(std::string_view bytes) {
  uint16_t crc = 0;
  for (unsigned char b : bytes) {
    crc ^= static_cast<uint16_t>(b << 8);
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

// A field of a CLUSTER SHARDS map (a flat array of name, value, name, value...).
const Reply* Field(const Reply& map, std::string_view name) {
  if (map.type != Reply::Type::kArray) return nullptr;
  for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2) {
    const Reply& k = map.elements[i];
    if ((k.type == Reply::Type::kString || k.type == Reply::Type::kStatus) && k.str == name)
      return &map.elements[i + 1];
  }
  return nullptr;
}

bool IsText(const Reply* r) {
  return r && (r->type == Reply::Type::kString || r->type == Reply::Type::kStatus);
}

}  // namespace

uint16_t KeySlot(std::string_view key) {
  if (auto open = key.find('{'); open != std::string_view::npos) {
    if (auto close = key.find('}', open + 1); close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & (kClusterSlots - 1);
}

std::string ClusterNode::address() const { return fmt::format("{}:{}", host, port); }

std::string SlotMap::Uncovered() const {
  std::string out;
  for (int s = 0; s < kClusterSlots;) {
    if (primary[s] >= 0) {
      ++s;
      continue;
    }
    int e = s;
    while (e + 1 < kClusterSlots && primary[e + 1] < 0) ++e;
    out += fmt::format("{}{}", out.empty() ? "" : ", ",
                       s == e ? std::to_string(s) : fmt::format("{}-{}", s, e));
    s = e + 1;
  }
  return out;
}

int SlotMap::Find(std::string_view address) const {
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].address() == address) return static_cast<int>(i);
  }
  return -1;
}

Result<SlotMap> ParseClusterShards(const Reply& reply, std::string_view from) {
  auto bad = [&](std::string_view why) {
    return Error(StatusCode::kInternal,
                 fmt::format("{}: CLUSTER SHARDS reply not understood: {}", from, why));
  };
  if (reply.is_error()) {
    return Error(StatusCode::kUnavailable, fmt::format("{}: CLUSTER SHARDS: {}", from, reply.str));
  }
  if (reply.type != Reply::Type::kArray) return bad("not an array of shards");
  SlotMap map;
  for (const Reply& shard : reply.elements) {
    const Reply* slots = Field(shard, "slots");
    const Reply* nodes = Field(shard, "nodes");
    if (!slots || slots->type != Reply::Type::kArray || !nodes ||
        nodes->type != Reply::Type::kArray || slots->elements.size() % 2) {
      return bad("a shard without its slots and nodes");
    }
    int primary = -1;
    for (const Reply& n : nodes->elements) {
      const Reply* id = Field(n, "id");
      const Reply* port = Field(n, "port");
      const Reply* ip = Field(n, "ip");
      const Reply* endpoint = Field(n, "endpoint");
      const Reply* role = Field(n, "role");
      const Reply* health = Field(n, "health");
      if (!IsText(id) || !port || port->type != Reply::Type::kInteger || port->integer <= 0 ||
          port->integer > 65535 || !IsText(role) || (!IsText(ip) && !IsText(endpoint))) {
        return bad("a node without its id, port, address or role");
      }
      ClusterNode node;
      node.id = id->str;
      // The endpoint is what clients are to use; "?" or empty means it is unknown.
      node.host = IsText(endpoint) && !endpoint->str.empty() && endpoint->str != "?"
                      ? endpoint->str
                      : (IsText(ip) ? ip->str : "");
      if (node.host.empty()) return bad("a node without an address");
      node.port = static_cast<uint16_t>(port->integer);
      node.primary = role->str == "master";
      node.health = IsText(health) ? health->str : "online";
      if (node.primary) primary = static_cast<int>(map.nodes.size());
      map.nodes.push_back(std::move(node));
    }
    for (std::size_t i = 0; i < slots->elements.size(); i += 2) {
      const Reply& lo = slots->elements[i];
      const Reply& hi = slots->elements[i + 1];
      if (lo.type != Reply::Type::kInteger || hi.type != Reply::Type::kInteger || lo.integer < 0 ||
          hi.integer >= kClusterSlots || lo.integer > hi.integer) {
        return bad("a slot range outside 0..16383");
      }
      if (primary < 0) continue;  // a shard whose primary is gone: its slots stay uncovered
      for (int64_t s = lo.integer; s <= hi.integer; ++s)
        map.primary[static_cast<std::size_t>(s)] = static_cast<int16_t>(primary);
    }
  }
  return map;
}

std::optional<Redirect> ParseRedirect(std::string_view error) {
  Redirect r;
  if (error.starts_with("MOVED ")) {
    r.kind = Redirect::Kind::kMoved;
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    r.kind = Redirect::Kind::kAsk;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  unsigned slot = 0;
  auto [end, ec] = std::from_chars(error.data(), error.data() + space, slot);
  if (ec != std::errc() || end != error.data() + space || slot >= kClusterSlots)
    return std::nullopt;
  r.slot = static_cast<uint16_t>(slot);
  r.address = std::string(error.substr(space + 1));
  const auto colon = r.address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == r.address.size())
    return std::nullopt;
  return r;
}

}  // namespace agentstate::backends::redis
