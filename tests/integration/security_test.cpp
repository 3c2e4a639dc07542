// agentstated under attack: the real binary on loopback, spoken to over raw sockets. One
// tenant against another on every route of docs/openapi.json (a route the table below does
// not cover fails the test), a tenant's token on every admin route, hostile ids and bodies,
// ten thousand idle connections, and secrets kept out of logs, metrics and error bodies.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <set>

#include "core/base64.hpp"
#include "integration/agentstated_harness.hpp"
#include "server/tokens.hpp"

namespace {

using namespace agentstated_test;
using ::testing::Not;

const std::string kMark = "acme-secret-MARK";

nlohmann::json OpenApi() {
  std::ifstream in(std::string(AGENTSTATE_SOURCE_DIR) + "/docs/openapi.json");
  return nlohmann::json::parse(in);
}

bool AdminRoute(const std::string& path) {
  return path == "/metrics" || path == "/v1/stats" || path.rfind("/v1/admin/", 0) == 0;
}

bool Unauthenticated(const std::string& path) { return path == "/healthz" || path == "/readyz"; }

// The responses a tenant gets to read its own data: what must not change when another
// tenant does anything at all.
std::map<std::string, std::string> AcmesView(int port, const std::string& acme) {
  std::map<std::string, std::string> view;
  for (const char* target :
       {"/v1/runs/r1", "/v1/runs/r1/checkpoints", "/v1/threads/th-run", "/v1/runs",
        "/v1/threads/th1/checkpoints/c1", "/v1/threads/th1/head", "/v1/checkpoints?thread_id=th1",
        "/v1/checkpoints", "/v1/threads/th-stolen/head"}) {
    Reply r = Http(port, Request("GET", target, "", acme));
    view[target] = std::to_string(r.status) + " " + r.body;
  }
  return view;
}

// Tenant globex, holding only its own token and acme's ids, calls every tenant route of
// the OpenAPI document: reads, overwrites, restores, copies, prunes and deletes. Not one
// byte of acme's comes back, and acme's every view is as it was, byte for byte.
TEST_F(Tenants, NoRouteLetsOneTenantReadChangeOrDeleteAnothersData) {
  Server s({"--store", "sqlite://" + (dir_ / "cross.db").string(), "--tokens", tokens()});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string acme = Bearer("acme-token-0123456789");
  const std::string globex = Bearer("globex-token-0123456789");
  const std::string save = "/v1/runs/r1?thread_id=th-run&user_id=u&agent_type=planner";
  ASSERT_EQ(
      Http(s.port(), Request("POST", save, R"({"mark":")" + kMark + R"(","n":1})", acme)).status,
      200);
  Reply cp = Http(s.port(), Request("POST", "/v1/runs/r1/checkpoints?type=manual", "", acme));
  ASSERT_EQ(cp.status, 200) << cp.body;
  const std::string checkpoint_id = cp.json()["checkpoint_id"];
  ASSERT_EQ(
      Http(s.port(), Request("POST", save, R"({"mark":")" + kMark + R"(","n":2})", acme)).status,
      200);
  // A checkpoint and a write batch carrying `mark` in plain text and in their value bytes.
  const auto put_of = [](const std::string& mark) {
    return R"({"parent_id":null,"checkpoint":{"v":4,"id":"c1","channel_versions":{"msgs":1}},)"
           R"("metadata":{"run_id":"r1","mark":")" +
           mark + R"("},"values":[{"channel":"msgs","version":"1","type":"json","bytes":")" +
           agentstate::core::Base64Encode("\"" + mark + "\"") + R"("}]})";
  };
  const auto writes_of = [](const std::string& mark) {
    return R"({"writes":[{"channel":"msgs","type":"json","bytes":")" +
           agentstate::core::Base64Encode(mark) + R"("}]})";
  };
  const std::string put = put_of(kMark);
  ASSERT_EQ(Http(s.port(), Request("PUT", "/v1/threads/th1/checkpoints/c1", put, acme)).status,
            200);
  const std::string writes = writes_of(kMark);
  ASSERT_EQ(
      Http(s.port(), Request("PUT", "/v1/threads/th1/checkpoints/c1/writes/task1", writes, acme))
          .status,
      200);
  // A whole record under acme's run id, as a replication PUT would send it: globex's own
  // record, renamed.
  ASSERT_EQ(Http(s.port(), Request("POST", "/v1/runs/g1" + save.substr(save.find('?')),
                                   R"({"globex":0})", globex))
                .status,
            200);
  nlohmann::json replayed = Http(s.port(), Request("GET", "/v1/runs/g1", "", globex)).json();
  replayed["run_id"] = "r1";
  replayed["version"] = 9;
  const auto before = AcmesView(s.port(), acme);
  ASSERT_THAT(before.at("/v1/runs/r1"), HasSubstr(kMark));

  struct Call {
    std::string target, body;
  };
  const std::map<std::string, std::vector<Call>> calls = {
      {"GET /v1/health", {{"/v1/health"}}},
      {"GET /v1/runs", {{"/v1/runs"}, {"/v1/runs?thread_id=th-run"}}},
      {"GET /v1/runs/{run_id}", {{"/v1/runs/r1"}}},
      {"POST /v1/runs/{run_id}", {{save, R"({"globex":1})"}}},
      {"PUT /v1/runs/{run_id}", {{"/v1/runs/r1", replayed.dump()}}},
      {"DELETE /v1/runs/{run_id}", {{"/v1/runs/r1"}}},
      {"POST /v1/runs/{run_id}/complete", {{"/v1/runs/r1/complete"}}},
      {"GET /v1/runs/{run_id}/checkpoints", {{"/v1/runs/r1/checkpoints"}}},
      {"POST /v1/runs/{run_id}/checkpoints", {{"/v1/runs/r1/checkpoints?type=manual"}}},
      {"POST /v1/runs/{run_id}/restore",
       {{"/v1/runs/r1/restore"}, {"/v1/runs/r1/restore?checkpoint_id=" + checkpoint_id}}},
      {"GET /v1/threads/{thread_id}", {{"/v1/threads/th-run"}}},
      {"DELETE /v1/threads/{thread_id}/checkpoints", {{"/v1/threads/th1/checkpoints"}}},
      {"GET /v1/threads/{thread_id}/checkpoints/{checkpoint_id}",
       {{"/v1/threads/th1/checkpoints/c1"}}},
      {"PUT /v1/threads/{thread_id}/checkpoints/{checkpoint_id}",
       {{"/v1/threads/th1/checkpoints/c1", put_of("globex-own")}}},
      {"PUT /v1/threads/{thread_id}/checkpoints/{checkpoint_id}/writes/{task_id}",
       {{"/v1/threads/th1/checkpoints/c1/writes/task1", writes_of("globex-own")}}},
      {"GET /v1/threads/{thread_id}/head", {{"/v1/threads/th1/head"}}},
      {"POST /v1/threads/{thread_id}/copy", {{"/v1/threads/th1/copy?to=th-stolen"}}},
      {"GET /v1/checkpoints",
       {{"/v1/checkpoints"}, {"/v1/checkpoints?thread_id=th1"}, {"/v1/checkpoints?before=zz"}}},
      {"POST /v1/checkpoints/prune",
       {{"/v1/checkpoints/prune?thread_id=th1&strategy=delete"},
        {"/v1/checkpoints/prune?strategy=delete"}}},
      {"POST /v1/checkpoints/delete-for-runs",
       {{"/v1/checkpoints/delete-for-runs", R"({"run_ids":["r1"]})"}}},
  };
  const nlohmann::json api = OpenApi();
  std::size_t covered = 0;
  for (const auto& [path, ops] : api["paths"].items()) {
    if (AdminRoute(path) || Unauthenticated(path)) continue;
    for (const auto& [method, op] : ops.items()) {
      if (method == "parameters") continue;
      std::string verb = method;
      std::transform(verb.begin(), verb.end(), verb.begin(), ::toupper);
      const std::string key = verb + " " + path;
      auto it = calls.find(key);
      ASSERT_NE(it, calls.end()) << "no cross-tenant case for " << key << ": add one above";
      ++covered;
      // Twice: the second call meets what globex's first one made of its own.
      for (int round = 0; round < 2; ++round) {
        for (const auto& c : it->second) {
          Reply r = Http(s.port(), Request(verb, c.target, c.body, globex));
          EXPECT_LT(r.status, 500) << key << " " << c.target << " -> " << r.body;
          EXPECT_THAT(r.body, Not(HasSubstr(kMark))) << key << " " << c.target;
          EXPECT_THAT(r.body, Not(HasSubstr("acme"))) << key << " " << c.target;
        }
      }
    }
  }
  EXPECT_GE(covered, 20u);
  const auto after = AcmesView(s.port(), acme);
  for (const auto& [target, seen] : before)
    EXPECT_EQ(after.at(target), seen) << "acme's " << target << " changed";
}

// A tenant's token on every admin route of the document: 403, and nothing changes.
TEST_F(Tenants, EveryAdminRouteRefusesATenantsToken) {
  Server s({"--store", "memory://", "--tokens", tokens()});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string acme = Bearer("acme-token-0123456789");
  const std::string admin = Bearer("admin-token-0123456789");
  const std::string tenants = Http(s.port(), Request("GET", "/v1/admin/tenants", "", admin)).body;
  const nlohmann::json api = OpenApi();
  std::size_t routes = 0;
  for (const auto& [path, ops] : api["paths"].items()) {
    if (!AdminRoute(path)) continue;
    std::string target = path;
    if (auto at = target.find("{tenant}"); at != std::string::npos) target.replace(at, 8, "globex");
    for (const auto& [method, op] : ops.items()) {
      if (method == "parameters") continue;
      std::string verb = method;
      std::transform(verb.begin(), verb.end(), verb.begin(), ::toupper);
      Reply r = Http(s.port(), Request(verb, target, "", acme));
      EXPECT_EQ(r.status, 403) << verb << " " << target << " -> " << r.body;
      EXPECT_EQ(r.json()["code"], "forbidden") << r.body;
      ++routes;
    }
  }
  EXPECT_GE(routes, 5u);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/admin/tenants", "", admin)).body, tenants);
  EXPECT_EQ(
      Http(s.port(), Request("GET", "/v1/runs", "", Bearer("globex-token-0123456789"))).status, 200)
      << "globex lost its token to a tenant's call";
}

// Ids that try to climb out of the tenant's prefix are opaque ids of its own; ids with NUL
// or invalid UTF-8, ids of 10 KB, JSON 100,000 deep and a body one byte over the limit
// each get their status, and the server goes on serving.
TEST_F(Tenants, HostileIdsAndBodiesGetTheirStatusAndReachNoOneElse) {
  Server s({"--store", "memory://", "--tokens", tokens(), "--max-body", "262144"});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string acme = Bearer("acme-token-0123456789");
  const std::string globex = Bearer("globex-token-0123456789");
  const std::string q = "?thread_id=t&user_id=u&agent_type=a";
  ASSERT_EQ(Http(s.port(), Request("POST", "/v1/runs/r1" + q, R"({"acme":1})", acme)).status, 200);
  const std::string acme_r1 = Http(s.port(), Request("GET", "/v1/runs/r1", "", acme)).body;
  for (const char* climb : {"..%2Facme%2Fr1", "%2E%2E%2F%2E%2E%2Facme%2Fr1", "..%5Cacme%5Cr1"}) {
    Reply got = Http(s.port(), Request("GET", std::string("/v1/runs/") + climb, "", globex));
    EXPECT_EQ(got.status, 404) << climb << " -> " << got.body;
    Reply saved =
        Http(s.port(), Request("POST", std::string("/v1/runs/") + climb + q, R"({"g":1})", globex));
    EXPECT_EQ(saved.status, 200) << climb << " -> " << saved.body;
    EXPECT_EQ(
        Http(s.port(), Request("DELETE", std::string("/v1/runs/") + climb, "", globex)).status,
        200);
  }
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/runs/r1", "", acme)).body, acme_r1);

  struct Case {
    std::string request;
    int status;
  };
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::vector<Case> cases = {
      {Request("GET", "/v1/runs/r%001", "", acme), 400},
      {Request("POST", "/v1/runs/r%001" + q, "{}", acme), 400},
      {Request("POST", "/v1/runs/r%FF%FE" + q, "{}", acme), 400},
      {Request("POST", "/v1/runs/r1?thread_id=%C3%28&user_id=u&agent_type=a", "{}", acme), 400},
      {Request("PUT", "/v1/threads/t%00/checkpoints/c1", "{}", acme), 400},
      {Request("POST", "/v1/runs/" + std::string(10240, 'x') + q, "{}", acme), 400},
      {Request("POST", "/v1/runs/r2" + q, deep, acme), 400},
      {Request("PUT", "/v1/threads/t/checkpoints/c1",
               R"({"checkpoint":)" + deep + R"(,"metadata":{}})", acme),
       400},
      {Request("POST", "/v1/runs/r2" + q, "\"" + std::string(262144, 'b'), acme), 413},
  };
  for (const auto& c : cases) {
    Reply r = Http(s.port(), c.request);
    EXPECT_EQ(r.status, c.status) << c.request.substr(0, 90) << " -> " << r.body.substr(0, 200);
    EXPECT_THAT(r.head, HasSubstr("application/problem+json")) << c.request.substr(0, 60);
  }
  // The limit itself is taken: a JSON string of exactly --max-body bytes.
  Reply at = Http(s.port(), Request("POST", "/v1/runs/r3" + q,
                                    "\"" + std::string(262144 - 2, 'b') + "\"", acme));
  EXPECT_EQ(at.status, 200) << at.body.substr(0, 200);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/runs/r2", "", acme)).status, 404)
      << "a refused body left a run";
  EXPECT_EQ(Http(s.port(), Request("GET", "/healthz")).status, 200);
}

// Raises this process's open-file limit (the server inherits it) to at least `want`.
bool RaiseFileLimit(rlim_t want) {
  rlimit l{};
  getrlimit(RLIMIT_NOFILE, &l);
  if (l.rlim_cur >= want) return true;
  rlimit up{std::max(want, l.rlim_cur), std::max(want, l.rlim_max)};
  if (setrlimit(RLIMIT_NOFILE, &up) == 0) return true;
  up = {l.rlim_max, l.rlim_max};
  return setrlimit(RLIMIT_NOFILE, &up) == 0 && l.rlim_max >= want;
}

long RssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

// Ten thousand connections that send nothing: a well-behaved client is served beside them,
// the server's memory stays bounded, and each idle one is cut at --read-timeout.
TEST_F(Tenants, TenThousandIdleConnectionsNeitherStarveAClientNorOutliveTheReadTimeout) {
  constexpr int kIdle = 10000;
  // Each side (this process, the server) holds one descriptor per connection.
  ASSERT_TRUE(RaiseFileLimit(kIdle + 512))
      << "this test needs ulimit -n of at least " << kIdle + 512 << " (as root, it raises it)";
  Server s({"--store", "memory://", "--tokens", tokens(), "--max-connections", "10100",
            "--read-timeout", "4s"});
  ASSERT_GT(s.port(), 0) << s.log();
  std::vector<int> idle;
  idle.reserve(kIdle);
  for (int i = 0; i < kIdle; ++i) {
    const int fd = Connect(s.port());
    ASSERT_GE(fd, 0) << "connection " << i << " refused";
    idle.push_back(fd);
  }
  const auto opened = std::chrono::steady_clock::now();
  const std::string acme = Bearer("acme-token-0123456789");
  for (int i = 0; i < 50; ++i) {
    Reply r = Http(s.port(), Request("POST", kSave, "{\"i\":" + std::to_string(i) + "}", acme));
    ASSERT_EQ(r.status, 200) << "request " << i << " beside " << kIdle << " idle: " << r.body;
  }
  const long rss = RssKb(s.pid());
  EXPECT_GT(rss, 0);
  EXPECT_LT(rss, 512 * 1024) << "agentstated holds " << rss << " KB for " << kIdle << " idle";
  // Each idle connection is closed by the server (recv sees the end) within the timeout
  // and a margin for 10,000 timers on two cores.
  int closed = 0;
  for (int fd : idle) {
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    for (int tries = 0; tries < 10; ++tries) {
      const ssize_t n = recv(fd, &c, 1, 0);
      if (n >= 0 || errno == ECONNRESET) {
        ++closed;  // 0 or a reset: closed; a 408 answer first counts too
        break;
      }
      if (std::chrono::steady_clock::now() - opened > 15s) break;
    }
    close(fd);
  }
  EXPECT_EQ(closed, kIdle) << "idle connections outlived --read-timeout 4s";
  EXPECT_EQ(Http(s.port(), Request("GET", "/healthz")).status, 200);
}

namespace {

// The P99 in microseconds of `n` saves by tenant acme, one at a time on one keep-alive
// connection, each a fresh version of its own run.
double SaveP99Us(int port, int n, int& next) {
  const int fd = Connect(port);
  EXPECT_GE(fd, 0);
  std::string buffer;
  std::vector<double> us;
  const std::string acme = Bearer("acme-token-0123456789");
  for (int i = 0; i < n; ++i, ++next) {
    const std::string req = Request("POST", kSave, "{\"i\":" + std::to_string(next) + "}", acme);
    const auto t0 = std::chrono::steady_clock::now();
    SendAll(fd, req);
    auto r = ReadReply(fd, buffer);
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    EXPECT_TRUE(r && r->status == 200) << "save " << i << ": " << (r ? r->body : "no answer");
    if (!r) break;
  }
  close(fd);
  std::sort(us.begin(), us.end());
  return us.empty() ? 0 : us[std::min(us.size() - 1, us.size() * 99 / 100)];
}

}  // namespace

// One tenant floods the server (4 connections, 16 requests pipelined on each, as fast as it
// answers) while another makes its saves one at a time: the well-behaved tenant's P99 stays
// within twice its P99 on the idle server. The flooding tenant gets its rate limit's worth
// and no more; past it, each connection's burst is answered 429 and its next one waits
// (http_server.cpp, kHoldAfter429), so the flood cannot take the server's cores. Five
// rounds of idle then flooded, the medians compared: one P99 of a few hundred calls on a
// shared machine is noisy.
TEST_F(Tenants, AFloodFromOneTenantKeepsAnothersP99WithinTwiceIdle) {
  constexpr double kRate = 5000;
  Server s({"--store", "memory://", "--tokens", tokens(), "--rate-limit", "5000"});
  ASSERT_GT(s.port(), 0) << s.log();
  int next = 0;
  SaveP99Us(s.port(), 200, next);  // warm: connections, allocator, the run's record
  const std::string globex = Bearer("globex-token-0123456789");
  std::string burst;
  for (int i = 0; i < 16; ++i) burst += Request("GET", "/v1/runs/flood-run", "", globex);
  std::vector<double> idle, flooded;
  uint64_t total_limited = 0;
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(1100ms);  // both tenants' buckets full again
    SaveP99Us(s.port(), 100, next);       // and the cores awake, as they are beside a flood
    idle.push_back(SaveP99Us(s.port(), 300, next));
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> served{0}, limited{0}, other{0};
    std::vector<std::thread> flood;
    const auto started = std::chrono::steady_clock::now();
    for (int c = 0; c < 4; ++c) {
      flood.emplace_back([&] {
        const int fd = Connect(s.port());
        if (fd < 0) return;
        std::string buffer;
        while (!stop) {
          SendAll(fd, burst);
          for (int i = 0; i < 16; ++i) {
            auto r = ReadReply(fd, buffer);
            if (!r) {
              close(fd);
              return;
            }
            (r->status == 429 ? limited : r->status == 404 ? served : other)++;
          }
        }
        close(fd);
      });
    }
    // The flood is past its limit (or has tried for ten seconds) before acme measures.
    while (limited == 0 && std::chrono::steady_clock::now() - started < 10s)
      std::this_thread::sleep_for(2ms);
    flooded.push_back(SaveP99Us(s.port(), 300, next));
    stop = true;
    for (auto& t : flood) t.join();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::cout << "round " << round << ": acme's save P99 idle " << idle.back()
              << " us, beside the flood " << flooded.back() << " us; the flood in " << seconds
              << " s: " << served << " served, " << limited << " limited\n";
    EXPECT_EQ(other, 0u);
    EXPECT_GT(limited, 0u) << "the flood never passed the rate limit";
    // A full bucket (one second's worth) and what refilled meanwhile, at most.
    EXPECT_LE(static_cast<double>(served), kRate + kRate * seconds);
    total_limited += limited;
  }
  std::sort(idle.begin(), idle.end());
  std::sort(flooded.begin(), flooded.end());
  EXPECT_LE(flooded[2], 2 * idle[2]) << "median P99s, idle " << idle[2] << " us";
}

// No secret reaches a log line, the metrics or an error body: not the tokens in force, not
// a wrong one sent, not one an admin just made, not the token file's hashes.
TEST_F(Tenants, SecretsNeverReachLogsMetricsOrErrorBodies) {
  Server s({"--store", "memory://", "--tokens", tokens(), "--access-log", "--log-level", "info"});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string admin = Bearer("admin-token-0123456789");
  const std::string leak = "sk-leak-0123456789abcdef";
  std::vector<std::string> bodies;
  const auto call = [&](const std::string& request) {
    Reply r = Http(s.port(), request);
    if (r.status >= 400) bodies.push_back(r.body);
    return r;
  };
  call(Request("POST", kSave, "{}", Bearer("acme-token-0123456789")));
  call(Request("GET", "/v1/runs/run-1", "", Bearer(leak)));
  call(Request("GET", "/v1/runs/run-1", "", "Authorization: Basic " + leak + "\r\n"));
  call(Request("GET", "/v1/runs/run-1", "", "Authorization: Bearer " + leak + " extra\r\n"));
  call(Request("GET", "/v1/stats", "", Bearer("acme-token-0123456789")));
  Reply made = call(Request("POST", "/v1/admin/tenants/initech", "", admin));
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string minted = made.json()["token"];
  call(Request("GET", "/v1/runs", "", Bearer(minted)));
  call(Request("POST", "/v1/admin/tenants/initech", "", admin));  // 409: it exists
  kill(s.pid(), SIGHUP);
  std::this_thread::sleep_for(300ms);  // the reload is logged; then the metrics are read
  Reply metrics = call(Request("GET", "/metrics", "", admin));
  ASSERT_EQ(metrics.status, 200);
  kill(s.pid(), SIGTERM);
  ASSERT_EQ(s.Wait(10s), 0);
  const std::string log = s.Drain();
  std::vector<std::string> secrets = {"acme-token-0123456789", "globex-token-0123456789",
                                      "admin-token-0123456789", leak, minted};
  std::ifstream file(tokens());
  for (std::string line; std::getline(file, line);)
    if (line.rfind("sha256:", 0) == 0) secrets.push_back(line.substr(7, 64));
  ASSERT_GE(bodies.size(), 4u);
  for (const auto& secret : secrets) {
    EXPECT_THAT(log, Not(HasSubstr(secret))) << "in the log";
    EXPECT_THAT(metrics.body, Not(HasSubstr(secret))) << "in the metrics";
    for (const auto& b : bodies) EXPECT_THAT(b, Not(HasSubstr(secret))) << "in " << b;
  }
  EXPECT_THAT(log, HasSubstr("SIGHUP: 4 tokens")) << log;
}

// How long Authenticate takes does not depend on how much of a token matches: a token
// hashes before it is compared, and every hash is compared in full. Interleaved rounds,
// medians compared, so that the machine's noise falls on both alike.
TEST(Tokens, ComparisonTimeDoesNotDependOnHowMuchOfATokenMatches) {
  const std::string real = "acme-token-0123456789abcdef0123456789";
  std::string file;
  for (int i = 0; i < 50; ++i)
    file += agentstate::server::HashToken(real + std::to_string(i)) + " t" + std::to_string(i) +
            " agent\n";
  file += agentstate::server::HashToken(real) + " acme agent\n";
  auto tokens = agentstate::server::Tokens::Parse(file, "test");
  ASSERT_TRUE(tokens) << tokens.error().ToString();
  std::string nearly = real, far(real.size(), 'z');
  nearly.back() = 'X';
  ASSERT_TRUE((*tokens)->Authenticate(real));
  ASSERT_FALSE((*tokens)->Authenticate(nearly));
  const auto time = [&](const std::string& token) {
    const auto t0 = std::chrono::steady_clock::now();
    bool any = false;
    for (int i = 0; i < 2000; ++i) any |= (*tokens)->Authenticate(token).has_value();
    EXPECT_FALSE(any);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<double> near_s, far_s;
  for (int round = 0; round < 41; ++round) {
    near_s.push_back(time(nearly));
    far_s.push_back(time(far));
  }
  std::sort(near_s.begin(), near_s.end());
  std::sort(far_s.begin(), far_s.end());
  const double ratio = near_s[20] / far_s[20];
  EXPECT_GT(ratio, 0.8) << "all but one byte matching is faster than none";
  EXPECT_LT(ratio, 1.25) << "all but one byte matching is slower than none";
}

}  // namespace
