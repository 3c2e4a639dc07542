// The local services scripts/services.sh starts, checked the way the tiers will use them:
// on loopback, answering, with the durability settings the reports promise in force.
// Label `integration`. A missing service is a failure, never a skip.
//
// These tests check the configuration, not only that a server answers: the durability
// contract every report prints (AOF everysec, no RDB forks, synchronous_commit on) rests on
// it. On a server configured by anyone but scripts/services.sh they fail on purpose, and
// each failure says which setting differs from what the script sets. What they write
// (one ClickHouse table) is named per process, so they are safe on a shared server.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include <unistd.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>
#include <memory>
#include <string>

#include "core/asio.hpp"
#include "core/uri.hpp"

namespace agentstate {
namespace {

namespace http = boost::beast::http;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

#define REQUIRE_ENV(var, name)                           \
  const std::string var = Env(name);                     \
  ASSERT_FALSE(var.empty())                              \
      << name << " is not set: start the services with " \
      << "`scripts/services.sh up` and `eval \"$(scripts/services.sh env)\"`"

// "scheme://[user@]host:port/db" -> host, port, db; just enough for the test's own clients.
struct Endpoint {
  std::string host, port, db;
};
Endpoint Split(const std::string& uri) {
  auto p = core::ParseUri(uri);
  std::string body = p ? p->body : "";
  auto at = body.find('@');
  if (at != std::string::npos) body = body.substr(at + 1);
  auto slash = body.find('/');
  std::string hostport = body.substr(0, slash);
  auto colon = hostport.rfind(':');
  return {hostport.substr(0, colon), hostport.substr(colon + 1),
          slash == std::string::npos ? "" : body.substr(slash + 1)};
}

bool Loopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "::1" || host == "localhost";
}

struct RedisFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};

std::unique_ptr<redisReply, ReplyFree> Command(redisContext* c, const char* fmt,
                                               const char* arg = nullptr) {
  return std::unique_ptr<redisReply, ReplyFree>(
      static_cast<redisReply*>(redisCommand(c, fmt, arg)));
}

TEST(Services, RedisAnswersOnLoopbackWithAofEverysec) {
  REQUIRE_ENV(url, "AGENTSTATE_REDIS_URL");
  Endpoint e = Split(url);
  ASSERT_TRUE(Loopback(e.host)) << url;
  timeval tv{2, 0};
  std::unique_ptr<redisContext, RedisFree> c(
      redisConnectWithTimeout(e.host.c_str(), std::stoi(e.port), tv));
  ASSERT_TRUE(c && !c->err) << "cannot connect to " << url << ": "
                            << (c ? c->errstr : "out of memory");
  auto pong = Command(c.get(), "PING");
  ASSERT_TRUE(pong);
  EXPECT_STREQ(pong->str, "PONG");
  const char* kNotOurs = " (scripts/services.sh sets it; this server was configured otherwise)";
  auto aof = Command(c.get(), "CONFIG GET %s", "appendonly");
  ASSERT_TRUE(aof && aof->type == REDIS_REPLY_ARRAY && aof->elements == 2)
      << "CONFIG GET refused" << kNotOurs;
  EXPECT_STREQ(aof->element[1]->str, "yes") << "appendonly" << kNotOurs;
  auto fsync = Command(c.get(), "CONFIG GET %s", "appendfsync");
  ASSERT_TRUE(fsync && fsync->elements == 2);
  EXPECT_STREQ(fsync->element[1]->str, "everysec") << "appendfsync" << kNotOurs;
  auto save = Command(c.get(), "CONFIG GET %s", "save");
  ASSERT_TRUE(save && save->elements == 2);
  EXPECT_STREQ(save->element[1]->str, "") << "RDB snapshots must be off when AOF is on" << kNotOurs;
}

TEST(Services, PostgresAcceptsOurRoleWithSynchronousCommit) {
  REQUIRE_ENV(url, "AGENTSTATE_POSTGRES_URL");
  ASSERT_TRUE(Loopback(Split(url).host)) << url;
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(
      PQconnectdb((url + "?connect_timeout=5").c_str()), &PQfinish);
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(conn.get(), "SHOW synchronous_commit"),
                                                  &PQclear);
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), "on")
      << "synchronous_commit (scripts/services.sh keeps the default, on; this server was "
         "configured otherwise)";
  r.reset(PQexec(conn.get(), "SELECT current_user, current_database()"));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK);
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), "agentstate") << "the role scripts/services.sh creates";
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 1), "agentstate")
      << "the database scripts/services.sh creates";
  EXPECT_EQ(PQserverVersion(conn.get()) / 10000, 15);
}

// One HTTP request to ClickHouse's HTTP interface; returns status and body.
std::pair<unsigned, std::string> ClickHouse(const Endpoint& e, http::verb verb,
                                            const std::string& target,
                                            const std::string& body = "") {
  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(10));
  boost::asio::ip::tcp::resolver resolver(io);
  stream.connect(resolver.resolve(e.host, e.port));
  http::request<http::string_body> req(verb, target, 11);
  req.set(http::field::host, e.host);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  return {res.result_int(), res.body()};
}

TEST(Services, ClickHouseAnswersAndStoresRowsInMergeTree) {
  REQUIRE_ENV(url, "AGENTSTATE_CLICKHOUSE_URL");
  Endpoint e = Split(url);
  ASSERT_TRUE(Loopback(e.host)) << url;
  auto [status, body] = ClickHouse(e, http::verb::get, "/ping");
  ASSERT_EQ(status, 200u);
  EXPECT_EQ(body, "Ok.\n");
  auto q = [&](const std::string& sql) { return ClickHouse(e, http::verb::post, "/", sql); };
  const std::string table = "services_probe_" + std::to_string(::getpid());
  ASSERT_EQ(q("DROP TABLE IF EXISTS " + table).first, 200u);
  auto created = q("CREATE TABLE " + table +
                   " (t DateTime, op String, us UInt32) ENGINE = MergeTree() ORDER BY t");
  ASSERT_EQ(created.first, 200u) << created.second;
  auto inserted = q("INSERT INTO " + table + " VALUES (now(), 'save', 1200), (now(), 'load', 300)");
  ASSERT_EQ(inserted.first, 200u) << inserted.second;
  auto sum = q("SELECT count(), sum(us) FROM " + table + " FORMAT TabSeparated");
  ASSERT_EQ(sum.first, 200u) << sum.second;
  EXPECT_EQ(sum.second, "2\t1500\n");
  auto version = q("SELECT version()");
  EXPECT_EQ(version.second.rfind("18.16", 0), 0u)
      << version.second << " (scripts/services.sh runs Debian's 18.16)";
  q("DROP TABLE " + table);
}

}  // namespace
}  // namespace agentstate
