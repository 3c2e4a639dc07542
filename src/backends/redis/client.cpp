#include "backends/redis/client.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <charconv>

#include "core/asio.hpp"
#include "core/tcp_connect.hpp"
#include "core/uri.hpp"

namespace agentstate::backends::redis {

using tcp = asio::ip::tcp;

namespace {
constexpr std::string_view kAsking = "*1\r\n$6\r\nASKING\r\n";
constexpr std::string_view kMulti = "*1\r\n$5\r\nMULTI\r\n";
constexpr std::string_view kExec = "*1\r\n$4\r\nEXEC\r\n";
}  // namespace

Result<RedisOptions> ParseRedisUri(std::string_view text,
                                   std::initializer_list<std::string_view> extra) {
  auto uri = core::ParseUri(text);
  if (!uri) return Error(uri.error());
  return ParseRedisUri(*uri, extra);
}

Result<RedisOptions> ParseRedisUri(const core::ParsedUri& parsed,
                                   std::initializer_list<std::string_view> extra) {
  const core::ParsedUri* uri = &parsed;
  RedisOptions o;
  o.redacted_uri = core::RedactUri(parsed);
  auto bad = [&](const std::string& why) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("malformed redis URI '{}': {}", o.redacted_uri, why));
  };
  if (uri->scheme != "redis") return bad("the scheme must be redis://");
  std::vector<std::string_view> known = {"connect_timeout", "timeout", "connections",
                                         "max_in_flight", "pool_wait"};
  known.insert(known.end(), extra.begin(), extra.end());
  if (Status s = core::CheckKnownParams(*uri, known); !s.ok()) return Error(s);
  auto authority = core::ParseAuthority(uri->body);
  if (!authority) return bad(authority.error().message());
  // redis://PASSWORD@host and redis://:PASSWORD@host both name the password.
  o.password = authority->password.empty() ? authority->user : authority->password;
  o.host = authority->host;
  if (authority->port) o.port = *authority->port;
  if (const std::string& db = authority->path; !db.empty()) {
    auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), o.db);
    if (ec != std::errc() || end != db.data() + db.size() || o.db < 0 || o.db > 1000)
      return bad("database must be 0..1000");
  }
  auto connect_timeout = core::DurationParam(*uri, "connect_timeout", o.connect_timeout, true);
  if (!connect_timeout) return bad(connect_timeout.error().message());
  o.connect_timeout = *connect_timeout;
  auto timeout = core::DurationParam(*uri, "timeout", o.command_timeout, true);
  if (!timeout) return bad(timeout.error().message());
  o.command_timeout = *timeout;
  auto pool_wait = core::DurationParam(*uri, "pool_wait", o.pool_wait, false);
  if (!pool_wait) return bad(pool_wait.error().message());
  o.pool_wait = *pool_wait;
  auto n = core::UintParam(*uri, "connections", 2, 1, 64);
  if (!n) return Error(n.error());
  o.connections = static_cast<int>(*n);
  auto limit = core::UintParam(*uri, "max_in_flight", o.max_in_flight, 1, 1000000);
  if (!limit) return Error(limit.error());
  o.max_in_flight = static_cast<std::size_t>(*limit);
  return o;
}

// One TCP connection speaking RESP2 on the pipelined-connection core. Everything here runs
// on the client's one thread.
class RedisConnection final : public core::Connection<RedisRequest, Reply> {
 public:
  RedisConnection(asio::io_context& io, const RedisOptions& o)
      : Connection(io, {.endpoint = o.redacted_uri,
                        .request = "redis command",
                        .answer = "reply",
                        .dead_after_timeouts = kDeadAfterTimeouts}),
        o_(o),
        socket_(io) {}

 private:
  // Commands timed out in a row, with no reply in between, that presume the connection dead.
  static constexpr int kDeadAfterTimeouts = 3;

  void Interrupt() override {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  Awaitable<Status> Connect() override {
    boost::system::error_code ec;
    if (Status s = co_await core::ConnectTcp(io_, socket_, o_.host, o_.port, o_.connect_timeout,
                                             o_.redacted_uri);
        !s.ok())
      co_return s;
    // AUTH and SELECT before anything else goes out on this connection.
    std::vector<std::vector<std::string_view>> hello;
    if (!o_.password.empty()) hello.push_back({"AUTH", o_.password});
    if (o_.db > 0) hello.push_back({"SELECT", db_text_ = std::to_string(o_.db)});
    parser_ = std::make_unique<ReplyParser>();
    front_read_ = 0;
    front_error_.reset();
    for (const auto& cmd : hello) {
      std::string out;
      EncodeCommand(out, cmd);
      co_await asio::async_write(socket_, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec)
        co_return Status(StatusCode::kUnavailable,
                         fmt::format("{}: {}", o_.redacted_uri, ec.message()));
      auto reply = co_await ReadReply(ec);
      if (!reply) co_return reply.error();
      if (reply->is_error()) {
        Refused(true);  // a wrong password or database will not fix itself on retry
        co_return Status(StatusCode::kUnavailable,
                         fmt::format("{} refused {}: {}", o_.redacted_uri, cmd[0], reply->str));
      }
    }
    co_return Status();
  }

  Awaitable<Result<Reply>> ReadReply(boost::system::error_code& ec) {
    while (true) {
      auto r = parser_->Next();
      if (!r) co_return Error(r.error());
      if (*r) co_return std::move(**r);
      std::size_t n = co_await socket_.async_read_some(
          asio::buffer(buf_), asio::redirect_error(asio::use_awaitable, ec));
      if (ec)
        co_return Error(StatusCode::kUnavailable,
                        fmt::format("{}: connection lost: {}", o_.redacted_uri, ec.message()));
      parser_->Feed(std::string_view(buf_.data(), n));
    }
  }

  Awaitable<Status> Writer() override { co_return co_await WriteQueuedBytes(socket_); }

  Awaitable<Status> Reader() override {
    while (true) {
      boost::system::error_code ec;
      auto reply = co_await ReadReply(ec);
      if (!reply) co_return reply.error();
      if (!Front()) {
        co_return Status(
            StatusCode::kInternal,
            fmt::format("{}: a reply arrived with no command waiting for it", o_.redacted_uri));
      }
      if (++front_read_ < Front()->request.replies) {
        // A reply before the request's last (ASKING's +OK, MULTI's, each +QUEUED): not the
        // answer, unless it is the first error.
        if (reply->is_error() && !front_error_) front_error_ = std::move(*reply);
        continue;
      }
      front_read_ = 0;
      if (front_error_) {
        Answered(std::move(*front_error_));
        front_error_.reset();
        continue;
      }
      if (reply->is_error() && reply->str.rfind("LOADING", 0) == 0) {
        // A restarted server answers before its data is back: not an answer, an outage.
        Answered(Error(StatusCode::kUnavailable,
                       fmt::format("{} is loading its dataset: {}", o_.redacted_uri, reply->str)));
        continue;
      }
      Answered(std::move(*reply));
    }
  }

  uint32_t front_read_ = 0;           // replies read of the front request's
  std::optional<Reply> front_error_;  // the first of them that was an error
  const RedisOptions& o_;
  tcp::socket socket_;
  std::unique_ptr<ReplyParser> parser_;
  std::array<char, 64 * 1024> buf_{};
  std::string db_text_;
};

RedisClient::RedisClient(RedisOptions options)
    : options_(std::move(options)),
      pipeline_(options_.redacted_uri, "commands", options_.max_in_flight, options_.pool_wait,
                options_.command_timeout) {
  std::vector<std::shared_ptr<core::Connection<RedisRequest, Reply>>> connections;
  for (int i = 0; i < options_.connections; ++i)
    connections.push_back(std::make_shared<RedisConnection>(pipeline_.io(), options_));
  pipeline_.Start(std::move(connections));
}

RedisClient::~RedisClient() = default;

Awaitable<Result<Reply>> RedisClient::Command(std::vector<std::string> args, Deadline deadline) {
  std::vector<std::string_view> views(args.begin(), args.end());
  return Command(views, deadline);
}

Awaitable<Result<Reply>> RedisClient::Command(const std::vector<std::string_view>& args,
                                              Deadline deadline) {
  RedisRequest r;
  EncodeCommand(r.bytes, args);
  return pipeline_.Submit(std::move(r), deadline);
}

RedisRequest RedisClient::TransactionRequest(
    const std::vector<std::vector<std::string_view>>& commands) {
  RedisRequest r;
  std::size_t size = kMulti.size() + kExec.size();
  for (const auto& c : commands) {
    size += 16;
    for (std::string_view a : c) size += a.size() + 16;
  }
  r.bytes.reserve(size);
  r.bytes = kMulti;
  for (const auto& c : commands) EncodeCommand(r.bytes, c);
  r.bytes += kExec;
  r.replies = static_cast<uint32_t>(commands.size() + 2);
  return r;
}

Awaitable<Result<Reply>> RedisClient::Transaction(
    const std::vector<std::vector<std::string_view>>& commands, Deadline deadline) {
  return pipeline_.Submit(TransactionRequest(commands), deadline);
}

Awaitable<Result<Reply>> RedisClient::Send(RedisRequest request, Deadline deadline) {
  return pipeline_.Submit(std::move(request), deadline);
}

RedisRequest RedisClient::WithAsking(const RedisRequest& request) {
  RedisRequest r;
  r.bytes.reserve(kAsking.size() + request.bytes.size());
  r.bytes = kAsking;
  r.bytes += request.bytes;
  r.replies = request.replies + 1;
  return r;
}

}  // namespace agentstate::backends::redis
