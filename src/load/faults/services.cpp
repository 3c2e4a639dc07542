#include "load/faults/services.hpp"

#include "core/uri.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace agentstate::load {
namespace {

using Clock = std::chrono::steady_clock;

std::string ReadFirstLine(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The recorded start command, without the newline the script ends it with (a redirection
// appended after it would otherwise be a command of its own).
std::string ReadCommand(const std::filesystem::path& p) {
  std::string s = ReadAll(p);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// /proc/<pid>/cmdline with NULs as spaces; empty when the process is gone.
std::string CmdLine(int pid) {
  std::string s = ReadAll(fmt::format("/proc/{}/cmdline", pid));
  for (char& c : s) {
    if (c == '\0') c = ' ';
  }
  return s;
}

// "T (stopped)" and friends: the state letter from /proc/<pid>/stat.
char State(int pid) {
  const std::string stat = ReadAll(fmt::format("/proc/{}/stat", pid));
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
}

// Tasks (threads) still listed for the process: a zombie main thread whose other threads
// still run (unmapping a big heap, holding the process's sockets) keeps more than itself.
std::size_t Tasks(int pid) {
  std::error_code ec;
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& t :
       std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), ec))
    ++n;
  return n;
}

template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // polling the process table
  }
  return true;
}

std::chrono::microseconds Since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
}

}  // namespace

// No init reaps a zombie in some containers, so an exited process may stay listed.
bool ProcessAlive(int pid) {
  return pid > 0 && ::kill(pid, 0) == 0 && (State(pid) != 'Z' || Tasks(pid) > 1);
}

ServiceControl::ServiceControl(std::filesystem::path dir) : dir_(std::move(dir)) {}

std::filesystem::path ServiceControl::DefaultDir() {
  const char* d = std::getenv("AGENTSTATE_SERVICES_DIR");
  return d && *d ? d : "/tmp/agentstate-services";
}

Result<LocalService> ServiceControl::Find(std::string_view name) const {
  static constexpr std::pair<std::string_view, std::string_view> kPrograms[] = {
      {"redis", "redis-server"},
      {"postgres", "postgres"},
      {"pgbouncer", "pgbouncer"},
      {"clickhouse", "clickhouse-server"}};
  LocalService s;
  s.name = std::string(name);
  for (auto [n, program] : kPrograms) {
    if (n == name) s.program = std::string(program);
  }
  // The cluster's nodes (scripts/services.sh up --cluster): redis-cluster-0..5.
  if (name.size() == 15 && name.starts_with("redis-cluster-") && name[14] >= '0' &&
      name[14] <= '5') {
    s.program = "redis-server";
  }
  if (s.program.empty()) {
    return Error(
        StatusCode::kInvalidArgument,
        fmt::format(
            "'{}' is not a service scripts/services.sh manages (redis, postgres, pgbouncer, "
            "clickhouse, redis-cluster-0..5)",
            name));
  }
  const auto record = dir_ / (s.name + ".pidfile");
  s.pidfile = ReadFirstLine(record);
  s.start_command = ReadCommand(dir_ / (s.name + ".cmd"));
  if (s.pidfile.empty() || s.start_command.empty()) {
    return Error(
        StatusCode::kUnavailable,
        fmt::format(
            "{} was not started by scripts/services.sh in {} (no {}); run: scripts/services.sh up",
            s.name, dir_.string(), record.filename().string()));
  }
  s.pid = std::atoi(ReadFirstLine(s.pidfile).c_str());
  if (!ProcessAlive(s.pid)) {
    return Error(StatusCode::kUnavailable,
                 fmt::format("{} is not running (pid file {}); run: scripts/services.sh up", s.name,
                             s.pidfile.string()));
  }
  // The PID must run the program the script started: a recycled PID is someone else's.
  if (CmdLine(s.pid).find(s.program) == std::string::npos ||
      s.start_command.find(s.program == "postgres" ? "pg_ctl" : s.program) == std::string::npos) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("refused: pid {} in {} is not the {} scripts/services.sh started",
                             s.pid, s.pidfile.string(), s.program));
  }
  return s;
}

Result<std::chrono::microseconds> ServiceControl::Pause(std::string_view name) {
  auto s = Find(name);
  if (!s) return Error(s.error());
  const auto t0 = Clock::now();
  if (::kill(s->pid, SIGSTOP) != 0)
    return Error(StatusCode::kUnavailable, fmt::format("SIGSTOP {}: failed", s->pid));
  if (!WaitFor([&] { return State(s->pid) == 'T'; }, std::chrono::milliseconds(2000))) {
    return Error(StatusCode::kUnavailable,
                 fmt::format("{} (pid {}) did not stop", s->name, s->pid));
  }
  return Since(t0);
}

Result<std::chrono::microseconds> ServiceControl::Resume(std::string_view name) {
  auto s = Find(name);
  if (!s) return Error(s.error());
  const auto t0 = Clock::now();
  if (::kill(s->pid, SIGCONT) != 0)
    return Error(StatusCode::kUnavailable, fmt::format("SIGCONT {}: failed", s->pid));
  if (!WaitFor([&] { return State(s->pid) != 'T'; }, std::chrono::milliseconds(2000))) {
    return Error(StatusCode::kUnavailable,
                 fmt::format("{} (pid {}) did not resume", s->name, s->pid));
  }
  return Since(t0);
}

Result<std::chrono::microseconds> ServiceControl::Kill(std::string_view name,
                                                       std::chrono::seconds timeout) {
  auto s = Find(name);
  if (!s) return Error(s.error());
  const auto t0 = Clock::now();
  ::kill(s->pid, SIGCONT);  // a paused process must be able to die
  const int sig = s->name == "postgres" ? SIGQUIT : SIGKILL;
  if (::kill(s->pid, sig) != 0) {
    return Error(StatusCode::kUnavailable,
                 fmt::format("{} {}: failed", sig == SIGQUIT ? "SIGQUIT" : "SIGKILL", s->pid));
  }
  if (!WaitFor([&] { return !ProcessAlive(s->pid); }, timeout)) {
    return Error(StatusCode::kUnavailable,
                 fmt::format("{} (pid {}) survived signal {}", s->name, s->pid, sig));
  }
  // A zombie still answers kill(pid, 0), and servers that check their pid file that way
  // (ClickHouse, PostgreSQL) refuse to start while it does. Wait a little for it to be
  // reaped, then remove a pid file that still names it: that process is dead.
  WaitFor([&] { return ::kill(s->pid, 0) != 0; }, std::chrono::seconds(5));
  if (std::atoi(ReadFirstLine(s->pidfile).c_str()) == s->pid) {
    std::error_code ec;
    std::filesystem::remove(s->pidfile, ec);
  }
  return Since(t0);
}

Result<std::chrono::microseconds> ServiceControl::Restart(std::string_view name,
                                                          std::chrono::seconds timeout) {
  auto running = Find(name);
  if (running) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("{} is running (pid {}); kill it first", name, running->pid));
  }
  if (running.error().code() != StatusCode::kUnavailable) return Error(running.error());
  const std::filesystem::path record = dir_ / (std::string(name) + ".pidfile");
  const std::filesystem::path pidfile = ReadFirstLine(record);
  const std::string command = ReadCommand(dir_ / (std::string(name) + ".cmd"));
  if (pidfile.empty() || command.empty())
    return Error(running.error());  // never started by the script
  const int old = std::atoi(ReadFirstLine(pidfile).c_str());
  const auto t0 = Clock::now();
  // The exact command the script ran; it daemonizes (or waits, for pg_ctl -w) and returns.
  const int rc = std::system((command + " >/dev/null 2>&1").c_str());
  if (rc != 0) {
    return Error(StatusCode::kUnavailable,
                 fmt::format("restarting {} failed (exit {}): {}", name, WEXITSTATUS(rc), command));
  }
  if (!WaitFor(
          [&] {
            const int pid = std::atoi(ReadFirstLine(pidfile).c_str());
            return pid != old && ProcessAlive(pid);
          },
          timeout)) {
    return Error(StatusCode::kUnavailable,
                 fmt::format("{} did not come back within {} s", name, timeout.count()));
  }
  return Since(t0);
}

Result<std::chrono::microseconds> ServiceControl::KillAndRestart(std::string_view name,
                                                                 std::chrono::seconds timeout) {
  auto down = Kill(name, timeout);
  if (!down) return down;
  auto up = Restart(name, timeout);
  if (!up) return up;
  return *down + *up;
}

bool ServiceControl::Serves(std::string_view name, std::string_view authority) const {
  const std::string at = Authority(name);
  return !at.empty() && at == authority;
}

std::string ServiceControl::Authority(std::string_view name) const {
  // A cluster node: its recorded start command names its address (--bind, --port).
  if (name.starts_with("redis-cluster-")) {
    const std::string text = ReadCommand(dir_ / (std::string(name) + ".cmd"));
    auto arg = [&](std::string_view flag) -> std::string {
      const auto at = text.find(std::string(flag) + " ");
      if (at == std::string::npos) return "";
      const auto start = at + flag.size() + 1;
      return text.substr(start, text.find_first_of(" \n", start) - start);
    };
    const std::string host = arg("--bind"), port = arg("--port");
    return host.empty() || port.empty() ? "" : host + ":" + port;
  }
  static constexpr std::pair<std::string_view, std::string_view> kVars[] = {
      {"redis", "AGENTSTATE_REDIS_URL="},
      {"postgres", "AGENTSTATE_POSTGRES_URL="},
      {"pgbouncer", "AGENTSTATE_PGBOUNCER_URL="},
      {"clickhouse", "AGENTSTATE_CLICKHOUSE_URL="}};
  std::ifstream in(dir_ / "env");
  for (std::string line; std::getline(in, line);) {
    for (auto [n, var] : kVars) {
      if (n != name) continue;
      const auto at = line.find(var);
      if (at == std::string::npos) continue;
      auto uri = core::ParseUri(line.substr(at + var.size()));
      if (!uri) continue;
      auto a = core::ParseAuthority(uri->body);
      if (a && a->port) return fmt::format("{}:{}", a->host, *a->port);
    }
  }
  return "";
}

}  // namespace agentstate::load
