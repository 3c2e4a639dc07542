// What a store's acknowledgement means, stated in every report ("durability") and on the
// report page.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace agentstate::load {

// What a store's acknowledgement means, by URI scheme, for the reports' "durability".
std::string DurabilityContract(const std::string& store_uri);
// The tiered store's: its tiers (passwords removed), its flush window, and whether the Redis
// hot tier persists (its INFO aof_enabled), and whether PostgreSQL's synchronous_commit
// waits for the WAL flush; nullopt when unknown.
std::string DurabilityContract(const std::string& hot, const std::string& durable,
                               std::chrono::milliseconds window, std::optional<bool> aof,
                               std::optional<bool> synchronous_commit = std::nullopt);

}  // namespace agentstate::load
