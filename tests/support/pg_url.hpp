// The PostgreSQL URL a live suite opens its store on. CTest runs the contract suites twice:
// on the server itself, and with AGENTSTATE_PG_THROUGH=pgbouncer through pgbouncer in
// transaction pooling mode in front of it (scripts/services.sh up starts both). A test's own
// connections, which act behind the store's back, always go to the server directly.
#pragma once

#include <cstdlib>
#include <string>

namespace agentstate::testing {

inline std::string EnvOr(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

inline bool ThroughPgbouncer() { return EnvOr("AGENTSTATE_PG_THROUGH") == "pgbouncer"; }

// The variable that names it, and the URL: empty when that variable is not set (the suites
// fail on that, naming it).
inline const char* StorePgVariable() {
  return ThroughPgbouncer() ? "AGENTSTATE_PGBOUNCER_URL" : "AGENTSTATE_POSTGRES_URL";
}
inline std::string StorePgUrl() { return EnvOr(StorePgVariable()); }

}  // namespace agentstate::testing
