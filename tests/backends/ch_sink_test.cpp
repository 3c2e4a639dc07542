// The analytics sink against a fake ClickHouse on loopback that answers DDL at once and
// closes the connection on the first INSERT after reading it whole, as a server killed
// after running an insert, before its answer went out, would. That try is in doubt: the
// sink must count its rows so that the harness can tell a duplicate from a bug.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "backends/clickhouse/ch_sink.hpp"

namespace agentstate {
namespace {

using namespace std::chrono_literals;

class FakeClickHouse {
 public:
  FakeClickHouse() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeClickHouse() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  int inserts() const { return inserts_; }

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      timeval tv{2, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      Connection(c);
      ::close(c);
    }
  }

  // Requests on one connection until the client closes it or an INSERT is left unanswered.
  void Connection(int c) {
    std::string in;
    char buf[4096];
    auto fill = [&](std::size_t want) {
      while (in.size() < want) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) return false;
        in.append(buf, static_cast<std::size_t>(n));
      }
      return true;
    };
    while (!stop_) {
      std::size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        if (!fill(in.size() + 1)) return;
      }
      const std::string head = in.substr(0, end);
      std::size_t length = 0;
      if (auto at = head.find("Content-Length: "); at != std::string::npos)
        length = std::stoul(head.substr(at + 16));
      if (!fill(end + 4 + length)) return;
      in.erase(0, end + 4 + length);
      if (head.find("INSERT") != std::string::npos && ++inserts_ == 1)
        return;  // read whole, never answered
      const std::string ok =
          "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n";
      ::send(c, ok.data(), ok.size(), MSG_NOSIGNAL);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> inserts_{0};
  std::thread thread_;
};

TEST(AnalyticsSinkDoubt, AnInsertSentWholeButNeverAnsweredCountsItsRowsAsInDoubt) {
  FakeClickHouse server;
  auto sink = backends::clickhouse::AnalyticsSink::Open(
      "clickhouse://127.0.0.1:" + std::to_string(server.port()) +
      "/default?timeout=200ms&flush=50ms");
  ASSERT_TRUE(sink) << sink.error().ToString();
  for (int i = 0; i < 10; ++i) {
    backends::clickhouse::Event e;
    e.at_ms = 1'800'000'000'000 + i;
    e.op = "save";
    e.run_id = "run-" + std::to_string(i);
    e.user_id = "u";
    e.outcome = "ok";
    (*sink)->Record(std::move(e));
  }
  ASSERT_TRUE((*sink)->Flush().ok());
  const auto s = (*sink)->stats();
  EXPECT_EQ(server.inserts(), 2) << "the unanswered INSERT, then its retry";
  EXPECT_EQ(s.recorded, 10u);
  EXPECT_EQ(s.sent, 10u);
  EXPECT_EQ(s.dropped_events, 0u);
  EXPECT_EQ(s.in_doubt_events, 10u) << "the first try was sent whole and never answered";
}

}  // namespace
}  // namespace agentstate
