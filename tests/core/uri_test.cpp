#include "core/uri.hpp"

#include <gtest/gtest.h>

namespace agentstate::core {
namespace {

TEST(ParseUri, SplitsSchemeBodyAndParameters) {
  auto u = ParseUri("SQLite://data/state.db?readers=4&queue=100");
  ASSERT_TRUE(u) << u.error().ToString();
  EXPECT_EQ(u->scheme, "sqlite");
  EXPECT_EQ(u->body, "data/state.db");
  EXPECT_EQ(u->params.at("readers"), "4");
  EXPECT_EQ(u->params.at("queue"), "100");
  auto m = ParseUri("memory://");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body, "");
}

TEST(ParseUri, MalformedUrisSayWhatIsWrong) {
  for (auto [uri, needle] : {std::pair{"state.db", "expected scheme://"},
                             {"://x", "empty scheme"},
                             {"sq lite://x", "bad character"},
                             {"sqlite://x?readers", "not key=value"},
                             {"sqlite://x?a=1&a=2", "given twice"}}) {
    auto r = ParseUri(uri);
    ASSERT_FALSE(r) << uri;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
  }
}

TEST(RedactUri, HidesPasswordsOnly) {
  EXPECT_EQ(RedactUri("redis://:s3cret@127.0.0.1:6379/0"), "redis://:***@127.0.0.1:6379/0");
  EXPECT_EQ(RedactUri("postgresql://bob:pw@host/db"), "postgresql://bob:***@host/db");
  EXPECT_EQ(RedactUri("postgresql://bob@host/db"), "postgresql://bob@host/db");
  // Where the user info alone is the secret: a Redis password, an agentstated token.
  EXPECT_EQ(RedactUri("redis://s3cret@127.0.0.1:6379/0"), "redis://***@127.0.0.1:6379/0");
  EXPECT_EQ(RedactUri("http://tok3n@127.0.0.1:8787?connections=4"),
            "http://***@127.0.0.1:8787?connections=4");
  EXPECT_EQ(RedactUri("http://127.0.0.1:8787"), "http://127.0.0.1:8787");
  EXPECT_EQ(RedactUri("sqlite://a/b@c.db"), "sqlite://a/b@c.db");
}

// Three ways a password was printed in clear (stdout, summary.json, the scenario JSON and
// index.html): libpq's ?password= parameter, a password holding '/', one holding '@'.
TEST(RedactUri, HidesPasswordsInTheQueryAndPasswordsHoldingSlashOrAt) {
  EXPECT_EQ(RedactUri("postgresql://bob@host:5432/db?password=s3cret&schema=x"),
            "postgresql://bob@host:5432/db?password=***&schema=x");
  EXPECT_EQ(RedactUri("postgresql://bob@host/db?schema=x&sslpassword=k3y"),
            "postgresql://bob@host/db?schema=x&sslpassword=***");
  EXPECT_EQ(RedactUri("redis://host:6379/0?Password=a&prefix=p:"),
            "redis://host:6379/0?Password=***&prefix=p:");
  EXPECT_EQ(RedactUri("postgresql://u:p/ss@host/db"), "postgresql://u:***@host/db");
  EXPECT_EQ(RedactUri("postgresql://u:p@ss@host/db"), "postgresql://u:***@host/db");
  EXPECT_EQ(RedactUri("postgresql://u:p@ss@host/db?password=p@ss"),
            "postgresql://u:***@host/db?password=***");
  for (const char* uri : {"postgresql://u:s3/cr@host/db", "postgresql://u:s3@cr@host/db",
                          "postgresql://bob@host/db?password=s3@cr/t"}) {
    EXPECT_EQ(RedactUri(uri).find("cr"), std::string::npos) << RedactUri(uri);
  }
}

TEST(ParseDuration, AcceptsWholeNumbersWithUnits) {
  EXPECT_EQ(*ParseDuration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(*ParseDuration("24h"), std::chrono::hours(24));
  EXPECT_EQ(*ParseDuration("7d"), std::chrono::hours(168));
  EXPECT_EQ(*ParseDuration("15us"), std::chrono::microseconds(15));
  for (const char* bad : {"", "ms", "10", "-5s", "1.5s", "10 s", "5y"}) {
    EXPECT_FALSE(ParseDuration(bad)) << bad;
  }
}

}  // namespace
}  // namespace agentstate::core

namespace agentstate::core {
namespace {

TEST(ParseAuthority, SplitsUserPasswordHostPortAndPath) {
  auto a = ParseAuthority("user:pw@127.0.0.1:6379/3");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->user, "user");
  EXPECT_EQ(a->password, "pw");
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 6379);
  EXPECT_EQ(a->path, "3");
  auto bare = ParseAuthority("localhost");
  ASSERT_TRUE(bare);
  EXPECT_FALSE(bare->port);
  EXPECT_EQ(ParseAuthority("host:0").error().message(), "port must be 1..65535");
  EXPECT_EQ(ParseAuthority(":pw@:80/x").error().message(), "no host");
  EXPECT_EQ(WithParams("redis://h/0", "a=1"), "redis://h/0?a=1");
  EXPECT_EQ(WithParams("redis://h/0?a=1", "b=2"), "redis://h/0?a=1&b=2");
}

TEST(RedactUri, AParsedUriIsRedactedParametersIncluded) {
  auto parsed = ParseUri("http://tok3n@h:1?token=abc&connections=2");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(RedactUri(*parsed), "http://***@h:1?connections=2&token=***");
}

TEST(PercentEncode, KeepsUnreservedCharactersAndEscapesTheRest) {
  EXPECT_EQ(PercentEncode("run-1_a.b~c"), "run-1_a.b~c");
  EXPECT_EQ(PercentEncode("a/b c?d&e=%"), "a%2Fb%20c%3Fd%26e%3D%25");
  EXPECT_EQ(PercentEncode("\xc3\xa9"), "%C3%A9");
}

}  // namespace
}  // namespace agentstate::core
