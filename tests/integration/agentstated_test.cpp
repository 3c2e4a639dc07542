// agentstated against itself: the real binary on loopback, spoken to over raw sockets (so
// that the bytes an HTTP client would refuse to send can be sent), one server per test.
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

#include "integration/agentstated_harness.hpp"

namespace {

using namespace agentstated_test;

TEST_F(Tenants, ASavedStateLoadsBackByteForByteWithItsVersionAsETag) {
  Server s({"--store", "memory://", "--tokens", tokens()});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string state = R"({"b": 1,   "a" : [1, 2.50, "\u00e9"],"nested":{"x":null}})";
  Reply saved = Http(s.port(), Request("POST", kSave, state, Bearer("acme-token-0123456789")));
  ASSERT_EQ(saved.status, 200) << saved.body;
  EXPECT_EQ(saved.json()["version"], 1);
  EXPECT_THAT(saved.head, HasSubstr("ETag: \"1\""));
  Reply loaded =
      Http(s.port(), Request("GET", "/v1/runs/run-1", "", Bearer("acme-token-0123456789")));
  ASSERT_EQ(loaded.status, 200) << loaded.body;
  // The state is spliced in as saved: same bytes, same spacing, never re-serialised.
  EXPECT_THAT(loaded.body, HasSubstr("\"state\":" + state + "}"));
  EXPECT_EQ(loaded.json()["thread_id"], "th-1");
  EXPECT_EQ(loaded.json()["run_id"], "run-1");
}

TEST_F(Tenants, TheAccessLogHasOneJsonLinePerRequestAndNoSecretsOrIds) {
  Server s({"--store", "memory://", "--tokens", tokens(), "--access-log", "--log-level", "warn"});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string acme = Bearer("acme-token-0123456789");
  ASSERT_EQ(Http(s.port(), Request("POST", kSave, R"({"secret-state":1})", acme)).status, 200);
  ASSERT_EQ(Http(s.port(), Request("GET", "/v1/runs/run-1", "", acme)).status, 200);
  ASSERT_EQ(Http(s.port(), Request("GET", "/v1/runs/run-1", "", Bearer("wrong"))).status, 401);
  kill(s.pid(), SIGTERM);
  ASSERT_EQ(s.Wait(10s), 0);
  const std::string log = s.Drain();
  std::vector<nlohmann::json> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] == '{') lines.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(lines.size(), 3u) << log;
  EXPECT_EQ(lines[0]["method"], "POST");
  EXPECT_EQ(lines[0]["route"], "/v1/runs/{run_id}");
  EXPECT_EQ(lines[0]["status"], 200);
  EXPECT_EQ(lines[0]["tenant"], "acme");
  EXPECT_EQ(lines[0]["request_bytes"], 18);
  EXPECT_EQ(lines[2]["status"], 401);
  for (const auto& l : lines) {
    for (const char* key : {"ts_ms", "duration_us", "response_bytes"})
      EXPECT_TRUE(l.contains(key)) << l.dump();
  }
  for (const char* secret : {"acme-token", "wrong", "run-1", "th-1", "secret-state"})
    EXPECT_THAT(log, ::testing::Not(HasSubstr(secret))) << log;
  // warn: the server's life (draining, drained) is not logged; where it listens is.
  EXPECT_THAT(log, HasSubstr("listening on"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("draining")));
}

TEST_F(Tenants, ATenantOverItsRateLimitGets429AndTheOthersAreServed) {
  Server s({"--store", "memory://", "--tokens", tokens(), "--rate-limit", "5"});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string acme = Bearer("acme-token-0123456789");
  int ok = 0, limited = 0;
  Reply last;
  for (int i = 0; i < 20; ++i) {
    Reply r = Http(s.port(), Request("GET", "/v1/runs/run-1", "", acme));
    if (r.status == 429) {
      ++limited;
      last = r;
    } else {
      ++ok;
    }
  }
  // A bucket of 5, refilled at 5/s: 20 requests in well under a second get 5 or a few more.
  EXPECT_GE(ok, 5);
  EXPECT_LE(ok, 10);
  EXPECT_EQ(ok + limited, 20);
  ASSERT_GT(limited, 0);
  EXPECT_EQ(last.json()["code"], "rate_limited");
  EXPECT_THAT(last.json()["detail"].get<std::string>(), HasSubstr("tenant acme"));
  EXPECT_THAT(last.head, HasSubstr("Retry-After: 1"));
  // Another tenant has its own bucket; /healthz needs none.
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/runs/run-1", "", Bearer("globex-token-0123456789")))
                .status,
            404);
  EXPECT_EQ(Http(s.port(), Request("GET", "/healthz", "")).status, 200);
}

TEST_F(Tenants, MissingInvalidAndRevokedTokensAre401WithAProblemBody) {
  Server s({"--store", "memory://", "--tokens", tokens()});
  ASSERT_GT(s.port(), 0) << s.log();
  for (const std::string& auth : {std::string(), Bearer("not-a-token-at-all"),
                                  std::string("Authorization: Basic eA==\r\n")}) {
    Reply r = Http(s.port(), Request("GET", "/v1/runs/run-1", "", auth));
    EXPECT_EQ(r.status, 401) << auth;
    EXPECT_THAT(r.head, HasSubstr("application/problem+json"));
    EXPECT_THAT(r.head, HasSubstr("WWW-Authenticate: Bearer"));
    EXPECT_EQ(r.json()["code"], "unauthenticated");
    EXPECT_EQ(r.json()["status"], 401);
    EXPECT_FALSE(r.json()["detail"].get<std::string>().empty());
  }
  // Revoked: the token file without acme's line, reloaded on SIGHUP.
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/runs?limit=1", "", Bearer("acme-token-0123456789")))
                .status,
            200);
  WriteTokens({{"globex-token-0123456789", "globex", "agent"}});
  kill(s.pid(), SIGHUP);
  int status = 0;
  for (int i = 0; i < 200 && status != 401; ++i) {
    std::this_thread::sleep_for(10ms);
    status = Http(s.port(), Request("GET", "/v1/runs?limit=1", "", Bearer("acme-token-0123456789")))
                 .status;
  }
  EXPECT_EQ(status, 401) << "a revoked token still works after SIGHUP";
  EXPECT_EQ(
      Http(s.port(), Request("GET", "/v1/runs?limit=1", "", Bearer("globex-token-0123456789")))
          .status,
      200);
}

TEST_F(Tenants, ATenantNeverSeesAnotherTenantsRunsWhateverIdsItSends) {
  Server s({"--store", "memory://", "--tokens", tokens()});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string acme = Bearer("acme-token-0123456789"),
                    globex = Bearer("globex-token-0123456789");
  ASSERT_EQ(Http(s.port(), Request("POST", kSave, R"({"secret":"acme"})", acme)).status, 200);
  // globex asks for the same id, and for ids that would name acme's storage key.
  for (const std::string id : {"run-1", "acme%2Frun-1", "..%2Facme%2Frun-1"}) {
    Reply r = Http(s.port(), Request("GET", "/v1/runs/" + id, "", globex));
    EXPECT_EQ(r.status, 404) << id << ": " << r.body;
    EXPECT_EQ(r.body.find("acme\"}"), std::string::npos);
  }
  Reply del = Http(s.port(), Request("DELETE", "/v1/runs/run-1", "", globex));
  EXPECT_EQ(del.json()["deleted"], false);
  Reply list = Http(s.port(), Request("GET", "/v1/runs", "", globex));
  EXPECT_TRUE(list.json()["runs"].empty()) << list.body;
  Reply thread = Http(s.port(), Request("GET", "/v1/threads/th-1", "", globex));
  EXPECT_EQ(thread.status, 404);
  // globex's own save of the same id is its own run, at version 1.
  Reply own = Http(s.port(), Request("POST", kSave, R"({"secret":"globex"})", globex));
  EXPECT_EQ(own.json()["version"], 1);
  // acme's run is untouched, and its list holds its own run, without any prefix.
  Reply mine = Http(s.port(), Request("GET", "/v1/runs/run-1", "", acme));
  EXPECT_THAT(mine.body, HasSubstr(R"("state":{"secret":"acme"})"));
  Reply acme_list = Http(s.port(), Request("GET", "/v1/runs", "", acme));
  ASSERT_EQ(acme_list.json()["runs"].size(), 1u) << acme_list.body;
  EXPECT_EQ(acme_list.json()["runs"][0]["run_id"], "run-1");
}

TEST_F(Tenants, BadInputGetsItsStatusAndNothingIsWritten) {
  Server s({"--store", "memory://", "--tokens", tokens(), "--max-body", "4096"});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string acme = Bearer("acme-token-0123456789");
  struct Case {
    std::string request;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {Request("POST", kSave, R"({"a":)", acme), 400, "invalid_argument"},
      {Request("POST", kSave, "a=1", acme, "application/x-www-form-urlencoded"), 415,
       "unsupported_media_type"},
      {Request("POST", kSave, std::string(5000, ' ') + "{}", acme), 413, "content_too_large"},
      {Request("POST", "/v1/runs/run-1?user_id=u&agent_type=a", "{}", acme), 400,
       "invalid_argument"},
      {Request("POST", kSave, "{}", acme + "If-Match: \"x\"\r\n"), 400, "invalid_argument"},
      {Request("GET", "/v1/runs/%zz", "", acme), 400, "invalid_argument"},
      {Request("GET", "/v2/runs", "", acme), 404, "not_found"},
      {Request("PATCH", "/v1/runs/run-1", "{}", acme), 405, "method_not_allowed"},
      {Request("PUT", "/v1/runs/run-1", "{}", acme), 400, "invalid_argument"},  // no record
      {Request("GET", "/v1/runs?limit=0", "", acme), 400, "invalid_argument"},
      {Request("GET", "/v1/stats", "", acme), 403, "forbidden"},
      // Found by schemathesis: an empty key was taken as none; ids past the tenant's limit
      // where the tenant prefix is not added (user_id, agent_type) were taken.
      {Request("POST", kSave, "{}", acme + "Idempotency-Key: \r\n"), 400, "invalid_argument"},
      {Request("POST", "/v1/runs/run-1?thread_id=t&agent_type=a&user_id=" + std::string(257, 'u'),
               "{}", acme),
       400, "invalid_argument"},
  };
  for (const auto& c : cases) {
    Reply r = Http(s.port(), c.request);
    EXPECT_EQ(r.status, c.status) << c.request.substr(0, 60) << " -> " << r.body;
    EXPECT_EQ(r.json()["code"], c.code) << r.body;
    EXPECT_THAT(r.head, HasSubstr("application/problem+json"));
  }
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/runs/run-1", "", acme)).status, 404)
      << "a refused save left something behind";
  Reply wrong = Http(s.port(), Request("PATCH", "/v1/runs/run-1", "{}", acme));
  EXPECT_THAT(wrong.head, HasSubstr("Allow: GET, POST, PUT, DELETE"));
  // Every 405 names what the route takes (RFC 9110; schemathesis found three that did not).
  for (const char* target : {"/healthz", "/readyz", "/metrics", "/v1/health", "/v1/stats"}) {
    wrong = Http(s.port(), Request("TRACE", target, "", Bearer("admin-token-0123456789")));
    EXPECT_EQ(wrong.status, 405) << target;
    EXPECT_THAT(wrong.head, HasSubstr("Allow: GET")) << target;
  }
  // The server goes on serving.
  EXPECT_EQ(Http(s.port(), Request("POST", kSave, "{}", acme)).status, 200);
}

TEST_F(Tenants, AStaleWriterGets409AndTheWinnerKeepsItsVersion) {
  Server s({"--store", "memory://", "--tokens", tokens()});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string acme = Bearer("acme-token-0123456789");
  ASSERT_EQ(
      Http(s.port(), Request("POST", kSave, R"({"n":1})", acme + "If-None-Match: *\r\n")).status,
      200);
  EXPECT_EQ(
      Http(s.port(), Request("POST", kSave, R"({"n":2})", acme + "If-None-Match: *\r\n")).status,
      409);
  EXPECT_EQ(
      Http(s.port(), Request("POST", kSave, R"({"n":2})", acme + "If-Match: \"1\"\r\n")).status,
      200);
  Reply stale = Http(s.port(), Request("POST", kSave, R"({"n":3})", acme + "If-Match: \"1\"\r\n"));
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(stale.json()["code"], "conflict");
  EXPECT_EQ(stale.body.find("acme/"), std::string::npos)
      << "the storage prefix leaked: " << stale.body;
  EXPECT_THAT(Http(s.port(), Request("GET", "/v1/runs/run-1", "", acme)).body,
              HasSubstr(R"("state":{"n":2})"));
}

// A client whose answer was lost retries with the same Idempotency-Key: the server answers
// the first acknowledgement, marked as a replay, and the run has one version. The key is the
// tenant's own: another tenant with the same key and run id writes its own run.
TEST_F(Tenants, ARetryWithTheSameIdempotencyKeyIsAnsweredWithTheFirstAcknowledgement) {
  Server s({"--store", "sqlite://" + (dir_ / "idem.db").string(), "--tokens", tokens()});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string acme = Bearer("acme-token-0123456789");
  const std::string keyed = acme + "If-None-Match: *\r\nIdempotency-Key: \"req-7f3a\"\r\n";
  Reply first = Http(s.port(), Request("POST", kSave, R"({"n":1})", keyed));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json()["version"], 1);
  EXPECT_EQ(first.json()["replayed"], false);
  Reply retry = Http(s.port(), Request("POST", kSave, R"({"n":1})", keyed));
  ASSERT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(retry.json()["version"], 1);
  EXPECT_EQ(retry.json()["checksum"], first.json()["checksum"]);
  EXPECT_EQ(retry.json()["replayed"], true);
  EXPECT_THAT(retry.head, HasSubstr("Idempotent-Replayed: true"));
  Reply other = Http(s.port(), Request("POST", kSave, R"({"n":2})", keyed));
  EXPECT_EQ(other.status, 409);
  EXPECT_EQ(other.json()["code"], "conflict");
  EXPECT_THAT(other.json()["detail"].get<std::string>(), HasSubstr("idempotency key"));
  EXPECT_EQ(other.body.find("acme/"), std::string::npos) << other.body;
  Reply bad = Http(s.port(), Request("POST", kSave, R"({"n":1})",
                                     acme + "Idempotency-Key: " + std::string(300, 'k') + "\r\n"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json()["code"], "invalid_argument");
  const std::string globex = Bearer("globex-token-0123456789");
  Reply theirs =
      Http(s.port(), Request("POST", kSave, R"({"n":1})",
                             globex + "If-None-Match: *\r\nIdempotency-Key: req-7f3a\r\n"));
  ASSERT_EQ(theirs.status, 200) << theirs.body;
  EXPECT_EQ(theirs.json()["replayed"], false);
  Reply loaded = Http(s.port(), Request("GET", "/v1/runs/run-1", "", acme));
  EXPECT_EQ(loaded.json()["version"], 1);
  EXPECT_EQ(loaded.json()["idempotency_key"], "req-7f3a");
}

// A checkpoint put's body (docs/http-api.md, "Checkpoints"): values as base64.
const std::string kPutBody =
    R"({"parent_id":null,"checkpoint":{"v":4,"id":"c1","ts":"2026-12-02T07:00:00Z",)"
    R"("channel_versions":{"msgs":1,"bin":"v.1"},"versions_seen":{}},)"
    R"("metadata":{"source":"input","step":-1,"parents":{}},)"
    R"("values":[{"channel":"msgs","version":"1","type":"json","bytes":"WyJoaSJd"},)"
    R"({"channel":"bin","version":"v.1","type":"bytes","bytes":"AP8="}]})";

// An admin makes a tenant (its first token is shown once) and drops one: its tokens stop
// working at once, and every run, checkpoint and thread of it is gone, active or completed;
// the other tenants and the rest of the token file are untouched.
TEST_F(Tenants, AnAdminMakesAndDropsTenantsAndADroppedTenantLeavesNothing) {
  Server s({"--store", "sqlite://" + (dir_ / "tenants.db").string(), "--tokens", tokens()});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string admin = Bearer("admin-token-0123456789");
  const std::string acme = Bearer("acme-token-0123456789");
  const std::string globex = Bearer("globex-token-0123456789");
  Reply made = Http(s.port(), Request("POST", "/v1/admin/tenants/initech", "", admin));
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string token = made.json()["token"];
  EXPECT_EQ(token.size(), 67u);
  Reply saved = Http(s.port(), Request("POST", kSave, R"({"n":1})", Bearer(token)));
  EXPECT_EQ(saved.status, 200) << saved.body;
  EXPECT_EQ(Http(s.port(), Request("POST", "/v1/admin/tenants/initech", "", admin)).status, 409);
  EXPECT_EQ(Http(s.port(), Request("POST", "/v1/admin/tenants/hooli", "", acme)).status, 403);
  EXPECT_EQ(Http(s.port(), Request("POST", "/v1/admin/tenants/Not_A_Name", "", admin)).status, 400);
  EXPECT_EQ(Http(s.port(), Request("PUT", "/v1/admin/tenants/hooli", "", admin)).status, 405);
  Reply listed = Http(s.port(), Request("GET", "/v1/admin/tenants", "", admin));
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_THAT(listed.body, HasSubstr(R"({"admin_tokens":0,"agent_tokens":1,"tenant":"initech"})"));
  EXPECT_THAT(listed.body, HasSubstr(R"({"admin_tokens":1,"agent_tokens":0,"tenant":"ops"})"));
  // acme: an active run with a checkpoint, a completed run, a thread; globex: one run.
  ASSERT_EQ(
      Http(s.port(), Request("POST", kSave + "&checkpoint=manual", R"({"n":1})", acme)).status,
      200);
  const std::string done = "/v1/runs/run-2?thread_id=th-2&user_id=u&agent_type=a";
  ASSERT_EQ(Http(s.port(), Request("POST", done, R"({"n":2})", acme)).status, 200);
  ASSERT_EQ(Http(s.port(), Request("POST", "/v1/runs/run-2/complete", "", acme)).status, 200);
  ASSERT_EQ(Http(s.port(), Request("POST", kSave, R"({"theirs":1})", globex)).status, 200);
  // And a checkpoint thread of each, under the same thread id.
  for (const auto& who : {acme, globex})
    ASSERT_EQ(
        Http(s.port(), Request("PUT", "/v1/threads/th-1/checkpoints/c1", kPutBody, who)).status,
        200);
  Reply dropped = Http(s.port(), Request("DELETE", "/v1/admin/tenants/acme", "", admin));
  ASSERT_EQ(dropped.status, 200) << dropped.body;
  EXPECT_EQ(dropped.json()["tokens_revoked"], 1);
  EXPECT_EQ(dropped.json()["runs_deleted"], 2);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/runs/run-1", "", acme)).status, 401);
  // Its data is gone below the HTTP layer too: made again, the tenant starts empty.
  Reply again = Http(s.port(), Request("POST", "/v1/admin/tenants/acme", "", admin));
  ASSERT_EQ(again.status, 201) << again.body;
  const std::string fresh = Bearer(again.json()["token"].get<std::string>());
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/runs/run-1", "", fresh)).status, 404);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/runs/run-2", "", fresh)).status, 404);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/threads/th-1", "", fresh)).status, 404);
  EXPECT_THAT(Http(s.port(), Request("GET", "/v1/runs/run-1/checkpoints", "", fresh)).body,
              HasSubstr(R"("checkpoints":[])"));
  EXPECT_THAT(Http(s.port(), Request("GET", "/v1/runs/run-1", "", globex)).body,
              HasSubstr(R"("state":{"theirs":1})"));
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/checkpoints", "", fresh)).body,
            R"({"checkpoints":[]})");
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/threads/th-1/head", "", globex)).status, 200);
  // An admin's tenant is never dropped by the API; the file keeps its comment and lines.
  EXPECT_EQ(Http(s.port(), Request("DELETE", "/v1/admin/tenants/ops", "", admin)).status, 409);
  std::ifstream in(tokens());
  std::stringstream file;
  file << in.rdbuf();
  EXPECT_THAT(file.str(), HasSubstr("# agentstated token file"));
  EXPECT_THAT(file.str(), HasSubstr(" globex "));
  EXPECT_EQ(file.str().find(token), std::string::npos) << "a token, not its hash, in the file";
  // SIGHUP reads the same file: the tokens in force stay as they are.
  kill(s.pid(), SIGHUP);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/runs/run-1", "", globex)).status, 200);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/runs/run-1", "", fresh)).status, 404);
  EXPECT_EQ(s.log().find(token), std::string::npos) << "the token was logged";
}

// LangGraph's checkpoint model over HTTP (docs/http-api.md, "Checkpoints"): a put with its
// values as base64, writes, the head, one checkpoint, a list by metadata; value bytes come
// back exactly, and another tenant with the same thread id sees none of it.
TEST_F(Tenants, ACheckpointRoundTripsOverHttpAndAnotherTenantSeesNoneOfIt) {
  Server s({"--store", "sqlite://" + (dir_ / "lg.db").string(), "--tokens", tokens()});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string acme = Bearer("acme-token-0123456789");
  const std::string globex = Bearer("globex-token-0123456789");
  Reply put = Http(s.port(), Request("PUT", "/v1/threads/t%201/checkpoints/c1", kPutBody, acme));
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.body, R"({"checkpoint_id":"c1","ns":"","thread_id":"t 1"})");
  Reply writes =
      Http(s.port(),
           Request("PUT", "/v1/threads/t%201/checkpoints/c1/writes/task-b",
                   R"({"task_path":"p","writes":[{"channel":"out","type":"json","bytes":"MQ=="},)"
                   R"({"channel":"__error__","type":"json","bytes":"Mg=="}]})",
                   acme));
  ASSERT_EQ(writes.status, 200) << writes.body;
  Reply head = Http(s.port(), Request("GET", "/v1/threads/t%201/head?ns=", "", acme));
  ASSERT_EQ(head.status, 200) << head.body;
  const nlohmann::json t = head.json();
  EXPECT_EQ(t["thread_id"], "t 1");
  EXPECT_EQ(t["parent_id"], nullptr);
  EXPECT_EQ(t["checkpoint"]["channel_versions"]["msgs"], 1) << "a version keeps its JSON type";
  EXPECT_EQ(t["metadata"], nlohmann::json::parse(R"({"source":"input","step":-1,"parents":{}})"));
  EXPECT_EQ(t["values"],
            nlohmann::json::parse(
                R"([{"channel":"bin","version":"v.1","type":"bytes","bytes":"AP8="},)"
                R"({"channel":"msgs","version":"1","type":"json","bytes":"WyJoaSJd"}])"));
  EXPECT_EQ(t["writes"],
            nlohmann::json::parse(
                R"([{"task_id":"task-b","task_path":"p","channel":"__error__","idx":-1,)"
                R"("type":"json","bytes":"Mg=="},{"task_id":"task-b","task_path":"p",)"
                R"("channel":"out","idx":0,"type":"json","bytes":"MQ=="}])"));
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/threads/t%201/checkpoints/c1", "", acme)).body,
            head.body);
  Reply listed =
      Http(s.port(),
           Request("GET", "/v1/checkpoints?filter=%7B%22source%22%3A%22input%22%7D", "", acme));
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(listed.json()["checkpoints"].size(), 1u);
  EXPECT_EQ(Http(s.port(),
                 Request("GET", "/v1/checkpoints?filter=%7B%22source%22%3A%22loop%22%7D", "", acme))
                .json()["checkpoints"]
                .size(),
            0u);
  // globex: the same thread id is another thread; nothing of acme's is readable or
  // writable, and a list of every thread is of globex's threads only.
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/threads/t%201/head", "", globex)).status, 404);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/threads/t%201/checkpoints/c1", "", globex)).status,
            404);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/checkpoints", "", globex)).body,
            R"({"checkpoints":[]})");
  EXPECT_EQ(Http(s.port(), Request("PUT", "/v1/threads/t%201/checkpoints/c1/writes/x",
                                   R"({"writes":[]})", globex))
                .status,
            404);
  EXPECT_EQ(Http(s.port(), Request("POST", "/v1/threads/t%201/copy?to=mine", "", globex)).status,
            404);
  EXPECT_EQ(Http(s.port(), Request("DELETE", "/v1/threads/t%201/checkpoints", "", globex)).body,
            R"({"deleted":0,"thread_id":"t 1"})");
  EXPECT_EQ(Http(s.port(), Request("POST", "/v1/checkpoints/prune?strategy=delete", "", globex))
                .json()["checkpoints"],
            0);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/threads/t%201/head", "", acme)).body, head.body);
  // delete_for_runs: globex deleting a run of the same id as acme's removes only its own.
  std::string of_run = kPutBody;
  of_run.replace(of_run.find(R"("parents":{}})"), 13, R"("parents":{},"run_id":"r1"})");
  const std::string runs = R"({"run_ids":["r1"]})";
  for (const std::string& who : {acme, globex})
    ASSERT_EQ(Http(s.port(), Request("PUT", "/v1/threads/r/checkpoints/c1", of_run, who)).status,
              200);
  Reply deleted = Http(s.port(), Request("POST", "/v1/checkpoints/delete-for-runs", runs, globex));
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(deleted.body, R"({"checkpoints":1,"threads":1,"values":2,"writes":0})");
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/threads/r/head", "", acme)).status, 200);
  EXPECT_EQ(Http(s.port(), Request("POST", "/v1/checkpoints/delete-for-runs", runs, acme)).body,
            R"({"checkpoints":1,"threads":1,"values":2,"writes":0})");
  // acme's own copy, prune and delete.
  Reply copied = Http(s.port(), Request("POST", "/v1/threads/t%201/copy?to=t2", "", acme));
  ASSERT_EQ(copied.status, 200) << copied.body;
  EXPECT_EQ(copied.json()["copied"], 1);
  Reply pruned = Http(
      s.port(), Request("POST", "/v1/checkpoints/prune?thread_id=t2&strategy=delete", "", acme));
  ASSERT_EQ(pruned.status, 200) << pruned.body;
  EXPECT_EQ(pruned.body, R"({"checkpoints":1,"threads":1,"values":2,"writes":2})");
  EXPECT_EQ(Http(s.port(), Request("DELETE", "/v1/threads/t%201/checkpoints", "", acme)).body,
            R"({"deleted":1,"thread_id":"t 1"})");
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/threads/t%201/head", "", acme)).status, 404);
}

// Bad input on the checkpoint routes: each gets its status and a problem body naming what is
// wrong, and a refused put leaves nothing behind.
TEST_F(Tenants, BadCheckpointInputGetsItsStatusAndNothingIsHalfWritten) {
  Server s({"--store", "sqlite://" + (dir_ / "lg.db").string(), "--tokens", tokens()});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string acme = Bearer("acme-token-0123456789");
  const auto put = [&](const std::string& body,
                       const std::string& target = "/v1/threads/t/checkpoints/c1") {
    return Http(s.port(), Request("PUT", target, body, acme));
  };
  std::string bad_base64 = kPutBody;
  bad_base64.replace(bad_base64.find("AP8="), 4, "AP8");
  Reply r = put(bad_base64);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.json()["detail"].get<std::string>(),
              HasSubstr("body.values[1].bytes is not base64"));
  r = put(R"({"checkpoint":{"channel_versions":{}},"metadata":{},"check_heads":true})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.json()["detail"].get<std::string>(), HasSubstr("body.check_heads is not a field"));
  EXPECT_EQ(put(R"({"metadata":{}})").status, 400) << "no checkpoint document";
  EXPECT_EQ(put(R"({"checkpoint":[],"metadata":{}})").status, 400);
  EXPECT_EQ(put(kPutBody + "{}").status, 400) << "trailing bytes after the body";
  EXPECT_EQ(put("{\"checkpoint\":").status, 400);
  // A value whose version the document does not hold: refused whole.
  std::string wrong = kPutBody;
  wrong.replace(wrong.find(R"("version":"v.1")"), 15, R"("version":"v.2")");
  r = put(wrong);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/threads/t/head", "", acme)).status, 404)
      << "a refused put left a checkpoint";
  EXPECT_EQ(
      Http(s.port(), Request("PUT", "/v1/threads/t/checkpoints/c1", kPutBody, acme, "text/plain"))
          .status,
      415);
  // Writes to a checkpoint that does not exist; a put over a head that moved on.
  EXPECT_EQ(
      Http(s.port(), Request("PUT", "/v1/threads/t/checkpoints/c9/writes/task",
                             R"({"writes":[{"channel":"a","type":"json","bytes":""}]})", acme))
          .status,
      404);
  ASSERT_EQ(put(kPutBody).status, 200);
  std::string forked = kPutBody;
  forked.replace(forked.find(R"("parent_id":null)"), 16, R"("parent_id":"c0","check_head":true)");
  r = put(forked, "/v1/threads/t/checkpoints/c2");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.json()["code"], "conflict");
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/threads/t/checkpoints/c2", "", acme)).status, 404);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/checkpoints?limit=0", "", acme)).status, 400);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/checkpoints?filter=%5B1%5D", "", acme)).status, 400);
  EXPECT_EQ(Http(s.port(), Request("POST", "/v1/checkpoints/prune", "", acme)).status, 400)
      << "a prune that would keep everything is a mistake";
  EXPECT_EQ(Http(s.port(), Request("POST", "/v1/threads/t/copy", "", acme)).status, 400);
  for (const char* runs :
       {R"({"run_ids":[1]})", R"({"runs":["r"]})", "{}", R"({"run_ids":[""]})"}) {
    r = Http(s.port(), Request("POST", "/v1/checkpoints/delete-for-runs", runs, acme));
    EXPECT_EQ(r.status, 400) << runs;
    EXPECT_EQ(r.json()["code"], "invalid_argument") << runs;
  }
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/checkpoints/delete-for-runs", "", acme)).status,
            405);
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/threads/t/checkpoints/c1/writes", "", acme)).status,
            404);
  // Found by schemathesis: a write without its bytes was taken as empty bytes, and a
  // namespace past the tenant's id limit was stored (the prefix goes on the thread only).
  r = Http(s.port(), Request("PUT", "/v1/threads/t/checkpoints/c1/writes/task",
                             R"({"writes":[{"channel":"a","type":"json"}]})", acme));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.json()["detail"].get<std::string>(), HasSubstr("body.writes[0].bytes is required"));
  r = put(kPutBody, "/v1/threads/t/checkpoints/c3?ns=" + std::string(257, 'n'));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.json()["detail"].get<std::string>(), HasSubstr("the limit is 256"));
}

// A store without the checkpoint model answers its routes with 501, naming the store.
TEST_F(Tenants, AStoreWithoutACheckpointModelAnswers501) {
  Server s({"--store",
            std::string(std::getenv("AGENTSTATE_REDIS_URL") ? std::getenv("AGENTSTATE_REDIS_URL")
                                                            : "redis://127.0.0.1:16379") +
                "?prefix=ctest-lg501:",
            "--tokens", tokens()});
  ASSERT_GT(s.port(), 0) << s.log();
  Reply r =
      Http(s.port(), Request("GET", "/v1/threads/t/head", "", Bearer("acme-token-0123456789")));
  EXPECT_EQ(r.status, 501) << r.body;
  EXPECT_EQ(r.json()["code"], "not_implemented");
}

// docs/openapi.json against the real server: every documented operation answers with one of
// its documented statuses and bodies, and every method a documented path does not list is
// refused with 405, so the document and the routes cannot drift apart.
TEST_F(Tenants, TheOpenApiDocumentMatchesTheServersRoutesAndResponses) {
  std::ifstream in(std::string(AGENTSTATE_SOURCE_DIR) + "/docs/openapi.json");
  const nlohmann::json api = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(api.is_object()) << "docs/openapi.json is missing or not JSON";
  ASSERT_EQ(api["openapi"], "3.1.0");
  Server s({"--store", "memory://", "--tokens", tokens()});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string admin = Bearer("admin-token-0123456789");
  ASSERT_EQ(Http(s.port(), Request("POST", kSave, R"({"n":1})", admin)).status, 200);
  auto resolve = [&](const nlohmann::json& schema) -> const nlohmann::json& {
    if (!schema.contains("$ref")) return schema;
    const std::string ref = schema["$ref"];  // "#/components/schemas/Record"
    return api["components"]["schemas"][ref.substr(ref.rfind('/') + 1)];
  };
  // Deletes last, so that the other operations find the run.
  std::vector<std::pair<std::string, std::string>> ops;
  for (const auto& [path, item] : api["paths"].items()) {
    for (const char* method : {"get", "post", "put"})
      if (item.contains(method)) ops.emplace_back(path, method);
  }
  for (const auto& [path, item] : api["paths"].items()) {
    if (item.contains("delete")) ops.emplace_back(path, "delete");
  }
  int checked = 0;
  for (const auto& [path, method] : ops) {
    const nlohmann::json& op = api["paths"][path][method];
    std::string target = path;
    for (auto [name, value] :
         {std::pair{"{run_id}", "run-1"}, std::pair{"{thread_id}", "th-1"},
          std::pair{"{tenant}", "initech"}, std::pair{"{checkpoint_id}", "c-1"},
          std::pair{"{task_id}", "task-1"}}) {
      if (auto at = target.find(name); at != std::string::npos)
        target.replace(at, std::string(name).size(), value);
    }
    std::string query;
    for (const auto& param : op.value("parameters", nlohmann::json::array())) {
      if (param["in"] == "query" && param.value("required", false))
        query += (query.empty() ? "?" : "&") + param["name"].get<std::string>() + "=x-1";
    }
    std::string upper = method;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const bool has_body = op.contains("requestBody");
    Reply r = Http(s.port(), Request(upper, target + query, has_body ? R"({"doc":1})" : "", admin));
    const std::string status = std::to_string(r.status);
    ASSERT_TRUE(op["responses"].contains(status)) << upper << " " << path << " answered " << status
                                                  << ", which it does not document: " << r.body;
    const nlohmann::json& documented = op["responses"][status];
    if (r.status < 300) {
      const auto& content = documented["content"];
      ASSERT_FALSE(content.empty()) << path;
      const std::string type = content.begin().key();
      EXPECT_THAT(r.head, HasSubstr("Content-Type: " + type)) << upper << " " << path;
      if (type == "application/json") {
        const nlohmann::json body = r.json();
        ASSERT_TRUE(body.is_object()) << upper << " " << path << ": " << r.body;
        for (const auto& key :
             resolve(content[type]["schema"]).value("required", nlohmann::json::array()))
          EXPECT_TRUE(body.contains(key.get<std::string>()))
              << upper << " " << path << " lacks " << key;
      }
    } else {
      EXPECT_THAT(r.head, HasSubstr("application/problem+json"));
      for (const auto& key : api["components"]["schemas"]["Problem"]["required"])
        EXPECT_TRUE(r.json().contains(key.get<std::string>())) << upper << " " << path;
    }
    ++checked;
    // The methods the document does not list on this path are not routes of the server.
    for (const char* other : {"get", "post", "put", "patch", "delete"}) {
      if (api["paths"][path].contains(other)) continue;
      std::string m = other;
      for (auto& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      EXPECT_EQ(Http(s.port(), Request(m, target, "", admin)).status, 405)
          << m << " " << path << " is served but not documented";
    }
  }
  EXPECT_EQ(checked, 27) << "the 27 operations of API v1";
  // And a path the document does not have is no route either.
  EXPECT_EQ(Http(s.port(), Request("GET", "/v1/undocumented", "", admin)).status, 404);
}

// Framing the HTTP clients would not send: pipelining, HTTP/1.0, chunked bodies, floods.
class Wire : public ::testing::Test {
 protected:
  Server s_{{"--store", "memory://", "--read-timeout", "500ms"}};
};

TEST_F(Wire, PipelinedRequestsAreAnsweredInOrderOnOneConnection) {
  ASSERT_GT(s_.port(), 0) << s_.log();
  const int fd = Connect(s_.port());
  ASSERT_GE(fd, 0);
  SendAll(fd, Request("POST", kSave, R"({"p":1})") + Request("GET", "/v1/runs/run-1") +
                  Request("GET", "/v1/runs/missing") + Request("GET", "/healthz"));
  std::string buffer;
  std::vector<int> statuses;
  for (int i = 0; i < 4; ++i) {
    auto r = ReadReply(fd, buffer);
    ASSERT_TRUE(r) << "response " << i << " missing";
    statuses.push_back(r->status);
    if (i == 1) {
      EXPECT_THAT(r->body, HasSubstr(R"("state":{"p":1})"));
    }
  }
  close(fd);
  EXPECT_EQ(statuses, (std::vector<int>{200, 200, 404, 200}));
}

// 300 runs, a save and a load of each, in one burst: more than the server's pipeline depth
// (64) at once, served concurrently across runs, yet each load sees its run's save and every
// answer comes back in the order asked.
TEST_F(Wire, ManyPipelinedSavesAndLoadsOnManyRunsComeBackInOrderAndEachLoadSeesItsSave) {
  // On memory:// and on SQLite, whose reader and writer threads finish requests out of order.
  const auto db = std::filesystem::temp_directory_path() /
                  ("agentstated-wire-" + std::to_string(getpid()) + ".db");
  Server sqlite({"--store", "sqlite://" + db.string()});
  for (const Server* server : {&s_, &sqlite}) {
    ASSERT_GT(server->port(), 0) << server->log();
    const int fd = Connect(server->port());
    ASSERT_GE(fd, 0);
    constexpr int kRuns = 300;
    std::string burst;
    for (int i = 0; i < kRuns; ++i) {
      const std::string run = "/v1/runs/r-" + std::to_string(i);
      burst += Request("POST", run + "?thread_id=th-1&user_id=u-1&agent_type=planner",
                       R"({"i":)" + std::to_string(i) + "}");
      burst += Request("GET", run);
    }
    SendAll(fd, burst);
    std::string buffer;
    for (int i = 0; i < kRuns; ++i) {
      auto saved = ReadReply(fd, buffer);
      ASSERT_TRUE(saved) << "save " << i << " not answered";
      ASSERT_EQ(saved->status, 200) << saved->body;
      EXPECT_EQ(saved->json()["run_id"], "r-" + std::to_string(i));
      auto loaded = ReadReply(fd, buffer);
      ASSERT_TRUE(loaded) << "load " << i << " not answered";
      ASSERT_EQ(loaded->status, 200) << loaded->body;
      EXPECT_EQ(loaded->json()["state"]["i"], i);
    }
    close(fd);
  }
  std::filesystem::remove(db);
}

TEST_F(Wire, ARequestThatCannotBeReadIsAnsweredAfterThoseBeforeItAndClosesTheConnection) {
  ASSERT_GT(s_.port(), 0) << s_.log();
  const int fd = Connect(s_.port());
  ASSERT_GE(fd, 0);
  SendAll(fd, Request("POST", kSave, R"({"p":2})") + Request("GET", "/v1/runs/run-1") +
                  "BREW /pot HTCPCP/1.0\r\n\r\n" + Request("GET", "/healthz"));
  std::string buffer;
  std::vector<int> statuses;
  while (auto r = ReadReply(fd, buffer)) statuses.push_back(r->status);
  close(fd);
  EXPECT_EQ(statuses, (std::vector<int>{200, 200, 400}))
      << "the answers before the bad request, its 400, then the end of the connection";
}

TEST_F(Wire, Http10ChunkedBodiesAndHeaderFloodsGetTheirAnswers) {
  ASSERT_GT(s_.port(), 0) << s_.log();
  Reply old = Http(s_.port(), "GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(old.status, 200);
  EXPECT_THAT(old.head, HasSubstr("HTTP/1.0 200"));
  Reply chunked =
      Http(s_.port(), "POST " + kSave +
                          " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n4\r\n{\"c\"\r\n3\r\n:1}\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.status, 200) << chunked.body;
  EXPECT_THAT(Http(s_.port(), Request("GET", "/v1/runs/run-1")).body,
              HasSubstr(R"("state":{"c":1})"));
  std::string flood = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 2000; ++i) flood += "X-Flood-" + std::to_string(i) + ": aaaaaaaaaaaaaaaa\r\n";
  Reply big = Http(s_.port(), flood + "\r\n");
  EXPECT_EQ(big.status, 431);
  EXPECT_EQ(big.json()["code"], "header_too_large");
  Reply garbage = Http(s_.port(), "BREW /pot HTCPCP/1.0\r\n\r\n");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_EQ(Http(s_.port(), Request("GET", "/healthz")).status, 200)
      << "the server stopped serving";
}

TEST_F(Wire, AClientSendingAByteEveryFewHundredMillisecondsIsCutOff) {
  ASSERT_GT(s_.port(), 0) << s_.log();
  const int fd = Connect(s_.port());
  ASSERT_GE(fd, 0);
  const std::string request = Request("GET", "/healthz");
  const auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  for (char c : request) {
    if (send(fd, &c, 1, MSG_NOSIGNAL) <= 0) {
      closed = true;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) > 0) {
      char buf[64];
      if (recv(fd, buf, sizeof buf, 0) <= 0) {
        closed = true;
        break;
      }
    }
    if (std::chrono::steady_clock::now() - t0 > 5s) break;
  }
  close(fd);
  EXPECT_TRUE(closed) << "a slow client kept its connection past the 500 ms read timeout";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_EQ(Http(s_.port(), Request("GET", "/healthz")).status, 200);
}

TEST_F(Wire, SigtermDrainsAndExitsZero) {
  ASSERT_GT(s_.port(), 0) << s_.log();
  ASSERT_EQ(Http(s_.port(), Request("POST", kSave, "{}")).status, 200);
  kill(s_.pid(), SIGTERM);
  EXPECT_EQ(s_.Wait(10s), 0);
  EXPECT_THAT(s_.Drain(), HasSubstr("drained"));
}

// The output of a shell command, and its exit status.
std::pair<std::string, int> Shell(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {"", -1};
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

// agentload's quick baseline on `store`: its output and exit status. Its latency gates are
// relaxed: this proves the path through the server, every gate on the data held, and the
// sanitizer builds run it too, several times slower (ASan read a P50 of 84 ms in CI).
std::pair<std::string, int> Baseline(const std::string& store,
                                     const std::filesystem::path& reports) {
  return Shell(std::string(AGENTLOAD_BINARY) +
               " --quick --test 100_concurrent_agents_baseline --gate p50_ms=5000 "
               "--gate p99_ms=10000 --report-dir " +
               reports.string() + " --store '" + store + "' 2>&1");
}

TEST(Agentstated, ServesHttpsWithItsCertificateAndNothingInPlainText) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("agentstated-tls-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  // A certificate for 127.0.0.1 (an IP subjectAltName), signed by itself, for one day.
  auto made = Shell(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " 2>&1");
  ASSERT_EQ(made.second, 0) << made.first;
  {
    Server s({"--store", "memory://", "--tls-cert", cert, "--tls-key", key});
    ASSERT_GT(s.port(), 0) << s.log();
    EXPECT_THAT(s.log(), HasSubstr("TLS"));
    const std::string base = "https://127.0.0.1:" + std::to_string(s.port());
    auto health = Shell("curl -sS --max-time 5 --cacert " + cert + " " + base + "/healthz 2>&1");
    EXPECT_EQ(health.second, 0) << health.first;
    EXPECT_THAT(health.first, HasSubstr(R"("status":"ok")"));
    auto saved = Shell("curl -sS --max-time 5 --cacert " + cert + " -X POST -H 'Content-Type: " +
                       "application/json' -d '{\"over\":\"tls\"}' '" + base + kSave + "' 2>&1");
    EXPECT_THAT(saved.first, HasSubstr(R"("version":1)")) << saved.first;
    auto loaded =
        Shell("curl -sS --max-time 5 --cacert " + cert + " " + base + "/v1/runs/run-1 2>&1");
    EXPECT_THAT(loaded.first, HasSubstr(R"("state":{"over":"tls"})")) << loaded.first;
    // Without the certificate a client refuses the server; plain HTTP gets no answer.
    EXPECT_NE(Shell("curl -sS --max-time 5 " + base + "/healthz 2>&1").second, 0);
    const int fd = Connect(s.port());
    ASSERT_GE(fd, 0);
    SendAll(fd, Request("GET", "/healthz", ""));
    std::string buffer;
    EXPECT_FALSE(ReadReply(fd, buffer)) << "a plain-text request was answered";
    close(fd);
    // And the server goes on serving over TLS.
    EXPECT_EQ(Shell("curl -sS --max-time 5 --cacert " + cert + " " + base + "/healthz 2>&1").second,
              0);
    // The https:// store: agentload's baseline through TLS, every gate held, the server's
    // certificate verified against ca=, its name against the URI's host.
    auto run = Baseline(base + "?ca=" + cert, dir / "reports");
    EXPECT_EQ(run.second, 0) << run.first;
    // Without ca= the system's CAs do not vouch for it: refused, saying why, exit 2.
    auto untrusted = Baseline(base, dir / "reports");
    EXPECT_EQ(untrusted.second, 2) << untrusted.first;
    EXPECT_THAT(untrusted.first, HasSubstr("certificate verify failed"));
    // The certificate names 127.0.0.1, not localhost.
    auto misnamed =
        Baseline("https://localhost:" + std::to_string(s.port()) + "?ca=" + cert, dir / "reports");
    EXPECT_EQ(misnamed.second, 2) << misnamed.first;
    EXPECT_THAT(misnamed.first, HasSubstr("TLS handshake"));
  }
  {
    // https:// to a server that speaks plain HTTP, and ca= on http://: one line each, exit 2.
    Server plain({"--store", "memory://"});
    ASSERT_GT(plain.port(), 0) << plain.log();
    const std::string at = "127.0.0.1:" + std::to_string(plain.port()) + "?ca=" + cert;
    auto mismatched = Baseline("https://" + at, dir / "reports");
    EXPECT_EQ(mismatched.second, 2) << mismatched.first;
    EXPECT_THAT(mismatched.first, HasSubstr("TLS handshake"));
    auto stray = Baseline("http://" + at, dir / "reports");
    EXPECT_EQ(stray.second, 2) << stray.first;
    EXPECT_THAT(stray.first, HasSubstr("ca= is for https://"));
  }
  // A key that is not the certificate's, or a missing file: one line naming it, exit 2.
  auto bad = Shell(std::string(Binary()) + " --listen 127.0.0.1:0 --store memory:// --tls-cert " +
                   (dir / "missing.pem").string() + " --tls-key " + key + " 2>&1");
  EXPECT_EQ(bad.second, 2);
  EXPECT_THAT(bad.first, HasSubstr("--tls-cert"));
  auto half = Shell(std::string(Binary()) + " --listen 127.0.0.1:0 --store memory:// --tls-cert " +
                    cert + " 2>&1");
  EXPECT_EQ(half.second, 2);
  EXPECT_THAT(half.first, HasSubstr("--tls-key"));
  std::filesystem::remove_all(dir);
}

TEST(Agentstated, RefusesToListenBeyondLoopbackWithoutATokenFile) {
  const std::string cmd = std::string(Binary()) + " --listen 0.0.0.0:0 --store memory:// 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_TRUE(p);
  char line[512] = {0};
  const bool got = fgets(line, sizeof line, p) != nullptr;
  const int status = pclose(p);
  ASSERT_TRUE(got);
  EXPECT_THAT(line, HasSubstr("loopback only"));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
