// agentstated's test harness: the real binary started on a free loopback port, raw-socket
// HTTP (so the bytes an HTTP client would refuse to send can be sent), and two tenants and
// an admin in a token file of hashes. Shared by agentstated_test.cpp and security_test.cpp.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace agentstated_test {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

inline const char* Binary() { return AGENTSTATED_BINARY; }

// A raw HTTP exchange: the response's status, headers and body.
struct Reply {
  int status = 0;
  std::string head, body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

class Server {
 public:
  // Starts agentstated with `args` on a free loopback port; reads the port it printed.
  explicit Server(std::vector<std::string> args) {
    int err[2];
    if (pipe(err) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(err[1], STDERR_FILENO);
      close(err[0]);
      std::vector<std::string> all{Binary(), "--listen", "127.0.0.1:0", "--threads", "2"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(err[1]);
    err_ = err[0];
    // "agentstated: listening on 127.0.0.1:PORT (...)", within 10 s.
    std::string line;
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
      pollfd p{err_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char c[256];
      const ssize_t n = read(err_, c, sizeof c);
      if (n <= 0) break;
      line.append(c, static_cast<std::size_t>(n));
    }
    log_ = line;
    if (auto at = line.find("127.0.0.1:"); at != std::string::npos)
      port_ = std::atoi(line.c_str() + at + 10);
  }
  ~Server() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (err_ >= 0) close(err_);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& log() const { return log_; }
  // Waits (bounded) for the process to exit; its exit status, or -1.
  int Wait(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }
  // Everything it wrote to stderr since start (after it exited).
  std::string Drain() {
    char c[4096];
    ssize_t n;
    fcntl(err_, F_SETFL, O_NONBLOCK);
    while ((n = read(err_, c, sizeof c)) > 0) log_.append(c, static_cast<std::size_t>(n));
    return log_;
  }

 private:
  pid_t pid_ = -1;
  int err_ = -1;
  int port_ = 0;
  bool exited_ = false;
  std::string log_;
};

inline int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

inline void SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads one response (Content-Length framed) from `buffer` + the socket.
inline std::optional<Reply> ReadReply(int fd, std::string& buffer) {
  while (true) {
    const auto end = buffer.find("\r\n\r\n");
    if (end != std::string::npos) {
      Reply r;
      r.head = buffer.substr(0, end);
      r.status = std::atoi(r.head.c_str() + 9);
      std::size_t length = 0;
      std::string lower = r.head;
      for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (auto at = lower.find("content-length: "); at != std::string::npos)
        length = std::stoul(lower.substr(at + 16));
      if (buffer.size() >= end + 4 + length) {
        r.body = buffer.substr(end + 4, length);
        buffer.erase(0, end + 4 + length);
        return r;
      }
    }
    char c[65536];
    const ssize_t n = recv(fd, c, sizeof c, 0);
    if (n <= 0) return std::nullopt;
    buffer.append(c, static_cast<std::size_t>(n));
  }
}

// One request on a new connection.
inline Reply Http(int port, const std::string& request) {
  const int fd = Connect(port);
  EXPECT_GE(fd, 0) << "cannot connect to agentstated";
  if (fd < 0) return {};
  SendAll(fd, request);
  std::string buffer;
  auto r = ReadReply(fd, buffer);
  close(fd);
  EXPECT_TRUE(r) << "no response to: " << request.substr(0, 80);
  return r.value_or(Reply{});
}

inline std::string Request(const std::string& method, const std::string& target,
                           const std::string& body = "", const std::string& extra = "",
                           const std::string& type = "application/json") {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra;
  if (!body.empty() || method == "POST")
    r += "Content-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

inline const std::string kSave = "/v1/runs/run-1?thread_id=th-1&user_id=u-1&agent_type=planner";

inline std::string Bearer(const std::string& token) {
  return "Authorization: Bearer " + token + "\r\n";
}

// Two tenants (acme and globex) and an admin, in a token file of hashes.
class Tenants : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("agentstated-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    WriteTokens({{"acme-token-0123456789", "acme", "agent"},
                 {"globex-token-0123456789", "globex", "agent"},
                 {"admin-token-0123456789", "ops", "admin"}});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void WriteTokens(const std::vector<std::array<std::string, 3>>& entries) {
    std::ofstream out(dir_ / "tokens");
    out << "# agentstated token file\n";
    for (const auto& [token, tenant, role] : entries) {
      const std::string cmd = "printf '%s\\n' '" + token + "' | " + Binary() +
                              " hash-token --tenant " + tenant + " --role " + role;
      FILE* p = popen(cmd.c_str(), "r");
      char line[256] = {0};
      ASSERT_TRUE(p && fgets(line, sizeof line, p)) << cmd;
      pclose(p);
      out << line;
    }
  }
  std::string tokens() const { return (dir_ / "tokens").string(); }
  std::filesystem::path dir_;
};

}  // namespace agentstated_test
