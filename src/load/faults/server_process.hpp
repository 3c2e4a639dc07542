// The faults of an http:// store on loopback: the agentstated behind it killed as a crash
// would (SIGKILL), or stopped as an operator would (SIGTERM: it drains, flushes its store and
// exits), then started again exactly as it was, and healed once it listens again.
//
// The process is the one listening on the store's port (its socket in /proc/net/tcp, and
// the process holding that socket in /proc/PID/fd); it must be this user's and run a program
// named agentstated, or the fault is refused. What it was started with is read before the
// kill: its program, arguments (a --listen HOST:0 becomes the port it had, so that clients
// find it again), working directory, environment, and where its stdout and stderr went (a
// file is appended to; anything else becomes /dev/null). The new process is a session of
// its own: it outlives agentload, as the one it replaces would have.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "agentstate/status.hpp"
#include "load/engine/scenario.hpp"

namespace agentstate::load {

// kUnavailable naming why when no agentstated of this user's listens on 127.0.0.1:port.
// `signal` is SIGKILL or SIGTERM. The process is found again at each injection: after a
// restart by another fault, the listener is another PID.
Result<std::unique_ptr<Fault>> MakeServerKillFault(uint16_t port, int signal);

// The PID listening on 127.0.0.1:port (IPv4), or 0.
int ListenerPid(uint16_t port);

}  // namespace agentstate::load
