// The faults of a Redis Cluster that scripts/services.sh started (up --cluster: nodes
// redis-cluster-0..5, three primaries and three replicas on loopback), for a store or hot
// tier on redis+cluster:// whose seeds are among those nodes:
//   redis_cluster_primary_kill  the first primary (in node order) killed with SIGKILL; its
//                               replica takes over by itself (cluster-node-timeout, then an
//                               election). Healed: the node started again, caught up as a
//                               replica, and given its slots back by CLUSTER FAILOVER.
//   redis_cluster_failover      a manual failover (CLUSTER FAILOVER on that primary's
//                               replica: no write lost, clients redirected). Healed: back.
//   redis_cluster_reshard       `redis-cli --cluster reshard` moves 200 slots, keys and all,
//                               from the first primary to the second, under load (ASK, then
//                               MOVED). Healed: 200 slots moved back the same way.
// Each fault's Begin returns once its change is done (for the kill: once the process is
// gone); End returns once the cluster is as it was, so that the next fault finds it whole.
#pragma once

#include <filesystem>
#include <string_view>

#include "load/faults/faults.hpp"

namespace agentstate::load {

// Adds the three faults to `out` when `cluster_uri`'s seeds are nodes of the cluster the
// script started (else one line each in out.skipped saying why).
void AddClusterFaults(RunFaults& out, std::string_view cluster_uri,
                      const std::filesystem::path& services_dir);

}  // namespace agentstate::load
