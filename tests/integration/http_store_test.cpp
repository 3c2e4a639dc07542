// http:// against agentstated's server: the shared StateStore contract suite, then what only
// the trip over the wire shows (the token, a server that goes away and comes back, a damaged
// response).
//
// The server here is agentstated's own code (server::HttpServer and server::Api, what the
// binary runs) in this process, on a loopback port, serving memory:// or sqlite://: the
// contract suite sets the store's clock (expiry) and damages stored bytes behind its back,
// which it cannot do to another process. The agentstated binary itself is tested in
// agentstated_test.cpp, and the CTest load runs go through it (load.*.http_*).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "backends/embedded_traits.hpp"
#include "backends/store_contract.hpp"
#include "server/api.hpp"
#include "server/http_server.hpp"
#include "server/tenant_store.hpp"
#include "server/tokens.hpp"

namespace agentstate {
namespace {

using ::testing::HasSubstr;

// A certificate for 127.0.0.1 (an IP subjectAltName), signed by itself: made once per
// process with openssl, for the https:// runs of the suite.
struct TestCertificate {
  std::string cert, key;
};
const TestCertificate& Certificate() {
  static const TestCertificate made = [] {
    const auto dir =
        std::filesystem::temp_directory_path() / ("agentstate-https-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    TestCertificate c{(dir / "cert.pem").string(), (dir / "key.pem").string()};
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
        c.key + " -out " + c.cert + " >/dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return c;
  }();
  return made;
}

// agentstated's server on a free loopback port, serving `store`, until destroyed; over TLS
// when `tls`.
class InProcessServer {
 public:
  explicit InProcessServer(StateStore& store,
                           std::function<std::shared_ptr<const server::Tokens>()> tokens = {},
                           server::Api::Options options = {}, bool tls = false)
      : tls_(tls), api_(store, std::move(tokens), options), server_(Options(tls), api_) {
    Status s = server_.Listen();
    EXPECT_TRUE(s.ok()) << s.ToString();
    thread_ = std::thread([this] { server_.Run(); });
  }
  ~InProcessServer() {
    server_.Drain();
    thread_.join();
  }
  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  std::string Uri(std::string_view token = "") const {
    const std::string scheme = tls_ ? "https" : "http";
    const std::string ca = tls_ ? "?ca=" + Certificate().cert : "";
    return token.empty() ? fmt::format("{}://127.0.0.1:{}{}", scheme, server_.port(), ca)
                         : fmt::format("{}://{}@127.0.0.1:{}{}", scheme, token, server_.port(), ca);
  }
  uint16_t port() const { return server_.port(); }

 private:
  static server::ServerOptions Options(bool tls) {
    server::ServerOptions o;
    o.port = 0;
    o.threads = 2;
    o.drain_timeout = std::chrono::milliseconds(2000);
    if (tls) {
      o.tls_cert = Certificate().cert;
      o.tls_key = Certificate().key;
    }
    return o;
  }
  bool tls_;
  server::Api api_;
  server::HttpServer server_;
  std::thread thread_;
};

// The contract over http://: the inner traits open the server's store with the suite's
// options (its clock, its limits); the suite's store is the http:// client of that server.
// Without a token file every request is the tenant "default", whose ids the server stores
// as "default/<id>". With kTls, the same over https:// (the server's certificate verified).
template <typename Inner, bool kTls = false>
struct OverHttp {
  static constexpr bool kSortedActiveRuns = Inner::kSortedActiveRuns;
  // The client has no prefix delete (the server's admin route drops a tenant).
  static constexpr bool kNoDeletePrefix = true;
  Inner inner;
  std::unique_ptr<InProcessServer> server;
  std::unique_ptr<StateStore> backend;

  ~OverHttp() { Stop(); }
  void Stop() {
    server.reset();
    backend.reset();
  }
  Result<std::unique_ptr<StateStore>> Open(const StoreOptions& o) {
    Stop();
    // As agentstated opens it: with room for the tenant's prefix on every id.
    StoreOptions room = o;
    room.max_id_bytes += server::kTenantPrefixBytes;
    auto opened = OpenStore(inner.Uri(), room);
    if (!opened) return Error(opened.error());
    backend = std::move(*opened);
    server::Api::Options api;
    api.max_id_bytes = o.max_id_bytes;
    server = std::make_unique<InProcessServer>(*backend, nullptr, api, kTls);
    return OpenStore(server->Uri(), o);
  }
  bool Corrupt(StateStore&, const std::string& run_id) {
    return inner.Corrupt(*backend, "default/" + run_id);
  }
};

struct HttpMemoryTraits : OverHttp<testing::MemoryTraits> {
  static constexpr const char* kName = "http_memory";
};
struct HttpSqliteTraits : OverHttp<testing::SqliteTraits> {
  static constexpr const char* kName = "http_sqlite";
};

struct HttpsSqliteTraits : OverHttp<testing::SqliteTraits, /*kTls=*/true> {
  static constexpr const char* kName = "https_sqlite";
};

using HttpStores = ::testing::Types<HttpMemoryTraits, HttpSqliteTraits, HttpsSqliteTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(OverHttp, StoreContractTest, HttpStores, TraitsName);

// --- What only the wire shows -------------------------------------------------------------

std::unique_ptr<StateStore> OpenOrFail(const std::string& uri) {
  auto s = OpenStore(uri, {});
  EXPECT_TRUE(s) << s.error().ToString();
  return s ? std::move(*s) : nullptr;
}

TEST(HttpStore, AnUnreachableServerIsASetupErrorNamingTheUriAndHowToStartIt) {
  // A port nothing listens on: bind one, then close it.
  uint16_t port = 0;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  auto s = OpenStore(fmt::format("http://s3cret@127.0.0.1:{}?connect_timeout=300ms", port), {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), StatusCode::kUnavailable);
  EXPECT_THAT(s.error().message(), HasSubstr("cannot use agentstated at http://***@127.0.0.1"));
  EXPECT_THAT(s.error().message(), HasSubstr("build/agentstated"));
  EXPECT_THAT(s.error().message(), ::testing::Not(HasSubstr("s3cret")));
}

TEST(HttpStore, BadUrisSayWhatIsWrong) {
  auto path = OpenStore("http://127.0.0.1:8787/v1", {});
  ASSERT_FALSE(path);
  EXPECT_THAT(path.error().message(), HasSubstr("give HOST:PORT alone"));
  auto param = OpenStore("http://127.0.0.1:8787?bogus=1", {});
  ASSERT_FALSE(param);
  EXPECT_THAT(param.error().message(), HasSubstr("bogus"));
  auto connections = OpenStore("http://127.0.0.1:8787?connections=0", {});
  ASSERT_FALSE(connections);
  EXPECT_THAT(connections.error().message(), HasSubstr("connections"));
}

TEST(HttpStore, TheTokenIsSentAndAnotherTenantsRunsStayInvisible) {
  auto backend = OpenOrFail("memory://");
  ASSERT_TRUE(backend);
  auto parsed = server::Tokens::Parse(
      fmt::format("{}  acme  agent\n{}  globex  agent\n", server::HashToken("acme-token"),
                  server::HashToken("globex-token")),
      "test tokens");
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  std::shared_ptr<const server::Tokens> tokens = *parsed;
  InProcessServer server(*backend, [tokens] { return tokens; });

  // No token: the store cannot be opened, and says why.
  auto none = OpenStore(server.Uri(), {});
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message(), HasSubstr("refused the request"));
  EXPECT_THAT(none.error().message(), HasSubstr("AGENTSTATE_TOKEN"));

  auto acme = OpenOrFail(server.Uri("acme-token"));
  auto globex = OpenOrFail(server.Uri("globex-token"));
  ASSERT_TRUE(acme && globex);
  auto saved = RunSync([&]() -> Awaitable<Result<SaveAck>> {
    co_return co_await acme->Save(testing::SampleSave("run-a", R"({"secret":1})", "t-1"),
                                  DeadlineIn(5s));
  });
  ASSERT_TRUE(saved) << saved.error().ToString();
  auto seen = RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
    co_return co_await globex->Load("run-a", DeadlineIn(5s));
  });
  ASSERT_TRUE(seen) << seen.error().ToString();
  EXPECT_FALSE(*seen);  // another tenant's run does not exist for globex
  auto mine = RunSync([&]() -> Awaitable<Result<std::optional<StateRecord>>> {
    co_return co_await acme->Load("run-a", DeadlineIn(5s));
  });
  ASSERT_TRUE(mine && *mine);
  EXPECT_EQ((*mine)->run_id, "run-a");  // the tenant's prefix never shows
  EXPECT_EQ((*mine)->payload, R"({"secret":1})");
}

TEST(HttpStore, AServerThatGoesAwayFailsCallsFastAndTheStoreServesAgainWhenItIsBack) {
  auto backend = OpenOrFail("memory://");
  ASSERT_TRUE(backend);
  auto server = std::make_unique<InProcessServer>(*backend);
  const uint16_t port = server->port();
  auto store = OpenOrFail(server->Uri() + "?connections=2&connect_timeout=200ms");
  ASSERT_TRUE(store);
  auto save = [&](std::string run) {
    return RunSync([&]() -> Awaitable<Result<SaveAck>> {
      co_return co_await store->Save(testing::SampleSave(run, R"({"n":1})", "t"), DeadlineIn(2s));
    });
  };
  ASSERT_TRUE(save("before"));
  const uint64_t generation = store->Generation();
  server.reset();  // the server drains and is gone
  auto during = save("during");
  ASSERT_FALSE(during);
  EXPECT_EQ(during.error().code(), StatusCode::kUnavailable) << during.error().ToString();

  // The same port again, the same store behind it: the client reconnects by itself.
  server::ServerOptions o;
  o.port = port;
  o.threads = 1;
  server::Api api(*backend, {}, {});
  server::HttpServer again(o, api);
  ASSERT_TRUE(again.Listen().ok());
  std::thread t([&] { again.Run(); });
  Result<SaveAck> after = Error(StatusCode::kUnavailable, "not tried");
  for (int i = 0; i < 100 && !after; ++i) {
    after = save("after");
    if (!after) std::this_thread::sleep_for(50ms);  // the reconnect's backoff
  }
  EXPECT_TRUE(after) << after.error().ToString();
  EXPECT_GT(store->Generation(), generation);  // it tells the caller a server was lost
  again.Drain();
  t.join();
}

}  // namespace
}  // namespace agentstate
