#include "load/faults/server_process.hpp"

#include "load/faults/services.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace agentstate::load {
namespace {

namespace fs = std::filesystem;

// The inode of the IPv4 socket listening on 127.0.0.1:port, or "" (/proc/net/tcp: local
// address as little-endian hex, state 0A = LISTEN, the inode the 10th field).
std::string ListenerInode(uint16_t port) {
  std::ifstream in("/proc/net/tcp");
  const std::string want = fmt::format("0100007F:{:04X}", port);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    f >> sl >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >>
        inode;
    if (local == want && state == "0A") return inode;
  }
  return "";
}

// The NUL-separated strings of a /proc file (cmdline, environ).
std::vector<std::string> NulSeparated(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> out;
  for (std::string s; std::getline(in, s, '\0');) out.push_back(s);
  return out;
}

std::string LinkOf(const fs::path& p) {
  std::error_code ec;
  auto target = fs::read_symlink(p, ec);
  return ec ? "" : target.string();
}

// What a process was started with, enough to start it again the same way.
struct Launch {
  std::string program;  // the executable's path
  std::vector<std::string> argv, env;
  std::string cwd, out, err;  // out, err: files appended to ("" = /dev/null)
};

// A file a descriptor of `pid` writes to, if it is a regular file.
std::string OutputFile(int pid, int fd) {
  const std::string target = LinkOf(fmt::format("/proc/{}/fd/{}", pid, fd));
  std::error_code ec;
  return !target.empty() && target[0] == '/' && fs::is_regular_file(target, ec) ? target : "";
}

Result<Launch> ReadLaunch(int pid, uint16_t port) {
  Launch l;
  l.program = LinkOf(fmt::format("/proc/{}/exe", pid));
  if (const auto deleted = l.program.find(" (deleted)"); deleted != std::string::npos)
    l.program.erase(deleted);
  if (fs::path(l.program).filename() != "agentstated") {
    return Error(StatusCode::kUnavailable,
                 fmt::format("the process on 127.0.0.1:{} (pid {}) runs {}, not agentstated", port,
                             pid, l.program.empty() ? "a program of another user" : l.program));
  }
  l.argv = NulSeparated(fmt::format("/proc/{}/cmdline", pid));
  l.env = NulSeparated(fmt::format("/proc/{}/environ", pid));
  l.cwd = LinkOf(fmt::format("/proc/{}/cwd", pid));
  l.out = OutputFile(pid, 1);
  l.err = OutputFile(pid, 2);
  if (l.argv.empty() || l.cwd.empty())
    return Error(StatusCode::kUnavailable,
                 fmt::format("cannot read how agentstated (pid {}) was started", pid));
  // The same port again, even if it was started on port 0.
  for (std::size_t i = 1; i < l.argv.size(); ++i) {
    if (l.argv[i] == "--listen" && i + 1 < l.argv.size()) {
      l.argv[i + 1] = fmt::format("127.0.0.1:{}", port);
    } else if (l.argv[i].rfind("--listen=", 0) == 0) {
      l.argv[i] = fmt::format("--listen=127.0.0.1:{}", port);
    }
  }
  return l;
}

// Starts `l` as a session of its own; its PID.
Result<int> Start(const Launch& l) {
  // Everything the child needs, made before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv, env;
  for (const auto& a : l.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : l.env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const char* out = l.out.empty() ? "/dev/null" : l.out.c_str();
  const char* err = l.err.empty() ? "/dev/null" : l.err.c_str();
  const pid_t child = fork();
  if (child < 0) return Error(StatusCode::kUnavailable, "fork failed: cannot restart agentstated");
  if (child == 0) {
    setsid();
    if (chdir(l.cwd.c_str()) != 0) _exit(126);
    const int in_fd = open("/dev/null", O_RDONLY);
    const int out_fd = open(out, O_WRONLY | O_APPEND | O_CREAT, 0644);
    const int err_fd = open(err, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (in_fd < 0 || out_fd < 0 || err_fd < 0) _exit(126);
    dup2(in_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execve(l.program.c_str(), argv.data(), env.data());
    _exit(127);
  }
  return static_cast<int>(child);
}

// Whether `pid` has exited, reaping it when it is our own child (after a restart).
bool Exited(int pid) { return waitpid(pid, nullptr, WNOHANG) == pid || !ProcessAlive(pid); }

class ServerKill final : public Fault {
 public:
  ServerKill(uint16_t port, int pid, Launch launch, int signal)
      : port_(port), pid_(pid), launch_(std::move(launch)), signal_(signal) {}

  std::string Describe() const override {
    if (signal_ == SIGKILL)
      return fmt::format(
          "agentstated on 127.0.0.1:{} killed (SIGKILL), then started again as it was", port_);
    return fmt::format(
        "agentstated on 127.0.0.1:{} stopped (SIGTERM: it drains and exits), then started again "
        "as it was",
        port_);
  }

  Status Begin() override {
    // The process listening now, checked again: another fault may have restarted it.
    const int pid = ListenerPid(port_);
    if (pid == 0)
      return Status(StatusCode::kUnavailable,
                    fmt::format("no agentstated listens on 127.0.0.1:{} to stop", port_));
    if (pid != pid_) {
      auto launch = ReadLaunch(pid, port_);
      if (!launch) return launch.error();
      pid_ = pid;
      launch_ = std::move(*launch);
    }
    const char* name = signal_ == SIGKILL ? "SIGKILL" : "SIGTERM";
    if (kill(pid_, signal_) != 0)
      return Status(StatusCode::kUnavailable,
                    fmt::format("cannot signal agentstated (pid {}): it is gone", pid_));
    // Gone once the process is: a killed one at once, a stopped one once it has drained
    // (--drain-timeout, 10 s by default) and flushed its store.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!Exited(pid_)) {
      if (std::chrono::steady_clock::now() >= until)
        return Status(StatusCode::kUnavailable,
                      fmt::format("agentstated (pid {}) still runs 60 s after {}", pid_, name));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a dying process
    }
    return Status();
  }

  Status End() override {
    auto child = Start(launch_);
    if (!child) return child.error();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (ListenerPid(port_) != *child) {
      int status = 0;
      if (waitpid(*child, &status, WNOHANG) == *child) {
        return Status(
            StatusCode::kUnavailable,
            fmt::format("agentstated exited while starting again (status {}); its log: {}", status,
                        launch_.err.empty() ? "none" : launch_.err));
      }
      if (std::chrono::steady_clock::now() >= until)
        return Status(StatusCode::kUnavailable,
                      fmt::format("agentstated started again but does not listen on 127.0.0.1:{} "
                                  "after 60 s",
                                  port_));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a starting server
    }
    pid_ = *child;
    return Status();
  }

 private:
  uint16_t port_;
  int pid_;
  Launch launch_;
  int signal_;
};

}  // namespace

int ListenerPid(uint16_t port) {
  const std::string inode = ListenerInode(port);
  if (inode.empty() || inode == "0") return 0;
  const std::string socket = "socket:[" + inode + "]";
  // Processes come and go while /proc is read: errors end a listing, never throw.
  std::error_code ec;
  for (auto proc = fs::directory_iterator("/proc", ec); !ec && proc != fs::directory_iterator();
       proc.increment(ec)) {
    const std::string name = proc->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code fd_ec;
    for (auto fd = fs::directory_iterator(proc->path() / "fd", fd_ec);
         !fd_ec && fd != fs::directory_iterator(); fd.increment(fd_ec)) {
      if (LinkOf(fd->path()) == socket) return std::stoi(name);
    }
  }
  return 0;
}

Result<std::unique_ptr<Fault>> MakeServerKillFault(uint16_t port, int signal) {
  const int pid = ListenerPid(port);
  if (pid == 0)
    return Error(StatusCode::kUnavailable,
                 fmt::format("no process of this user's listens on 127.0.0.1:{}", port));
  auto launch = ReadLaunch(pid, port);
  if (!launch) return Error(launch.error());
  return std::unique_ptr<Fault>(
      std::make_unique<ServerKill>(port, pid, std::move(*launch), signal));
}

}  // namespace agentstate::load
