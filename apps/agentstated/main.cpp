// agentstated: the engine as an HTTP service (docs/http-api.md).
//
//   agentstated [--listen 127.0.0.1:8787] [--store URI | --redis URI --postgres URI
//               [--clickhouse URI]] [--tokens FILE] [--threads N] ...
//   agentstated hash-token < token      prints the token file line for a token read on stdin
//
// Without a token file it listens on loopback only. SIGTERM or SIGINT drains (stop
// accepting, finish what is in flight within --drain-timeout, flush the store) and exits 0;
// SIGHUP reloads the token file.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

#include "agentstate/registry.hpp"
#include "core/asio.hpp"
#include "core/uri.hpp"
#include "server/api.hpp"
#include "server/http_server.hpp"
#include "server/tenant_store.hpp"
#include "server/tokens.hpp"

namespace {

using namespace agentstate;

constexpr int kExitSetup = 2;
constexpr const char* kDefaultStore = "sqlite://agentstated-data/agentstate.db";

int Fail(const std::string& message) {
  std::cerr << "agentstated: error: " << message << '\n';
  return kExitSetup;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool Loopback(const std::string& address) {
  boost::system::error_code ec;
  const auto a = asio::ip::make_address(address, ec);
  return !ec && a.is_loopback();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"agentstated: agentstate's engine as an HTTP service (docs/http-api.md)"};
  std::string listen = "127.0.0.1:8787", store, redis, postgres, clickhouse, tokens_path;
  int threads = 0;
  std::string drain = "10s", request_timeout = "5s", read_timeout = "10s";
  std::size_t max_body = 16 * 1024 * 1024 + 64 * 1024, max_connections = 10000, pipeline_depth = 64;
  app.add_option("--listen", listen, "HOST:PORT to listen on (default 127.0.0.1:8787)");
  app.add_option(
      "--store", store,
      "the store's URI (default " + std::string(kDefaultStore) + ", or AGENTSTATE_STORE_URL)");
  app.add_option("--redis", redis, "the tiered store's hot tier (with --postgres)");
  app.add_option("--postgres", postgres, "the tiered store's durable tier (with --redis)");
  app.add_option("--clickhouse", clickhouse, "the tiered store's analytics tier");
  app.add_option("--tokens", tokens_path,
                 "token file (agentstated hash-token); required to listen beyond loopback");
  app.add_option("--threads", threads, "I/O threads (default: one per core)");
  app.add_option("--drain-timeout", drain, "on SIGTERM, how long in-flight requests may take");
  app.add_option("--request-timeout", request_timeout, "deadline of each store call");
  app.add_option("--read-timeout", read_timeout,
                 "how long a connection may take to send a request (idle time included)");
  app.add_option("--max-body", max_body, "largest request body in bytes");
  app.add_option("--max-connections", max_connections, "open connections at most");
  app.add_option("--pipeline-depth", pipeline_depth,
                 "requests of one connection served at once (1..1024, default 64)");
  std::string tls_cert, tls_key;
  app.add_option("--tls-cert", tls_cert, "serve HTTPS: the PEM certificate chain (with --tls-key)");
  app.add_option("--tls-key", tls_key, "the PEM private key of --tls-cert");
  double rate_limit = 0;
  app.add_option("--rate-limit", rate_limit,
                 "requests per second per tenant, bursts of one second's worth (default 0: none)");
  std::string log_level = "info";
  bool access_log = false;
  app.add_option("--log-level", log_level,
                 "error (errors, and where it listens), warn (and warnings) or info (and the "
                 "server's life: reloads, drain); default info");
  app.add_flag("--access-log", access_log,
               "one JSON line per request on stderr: time, method, route, status, duration, "
               "tenant, sizes (never a token, a body or an id)");
  auto* hash = app.add_subcommand("hash-token", "print the token file line for a token on stdin");
  std::string tenant = "default", role = "agent";
  hash->add_option("--tenant", tenant, "the token's tenant");
  hash->add_option("--role", role, "agent or admin");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    return Fail(fmt::format("{}; see agentstated --help", e.what()));
  }

  if (hash->parsed()) {
    std::string token;
    std::getline(std::cin, token);
    if (token.size() < 16) return Fail("a token must be at least 16 characters (read from stdin)");
    if (!server::ValidTenant(tenant))
      return Fail("--tenant must be 1..64 of a-z 0-9 _ -, starting with a letter or digit");
    if (role != "agent" && role != "admin") return Fail("--role must be agent or admin");
    std::cout << server::HashToken(token) << ' ' << tenant << ' ' << role << '\n';
    return 0;
  }

  server::ServerOptions so;
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return Fail("--listen takes HOST:PORT, e.g. 127.0.0.1:8787");
  so.address = listen.substr(0, colon);
  if (so.address.size() > 2 && so.address.front() == '[' && so.address.back() == ']')
    so.address = so.address.substr(1, so.address.size() - 2);
  try {
    const int port = std::stoi(listen.substr(colon + 1));
    if (port < 0 || port > 65535) throw std::out_of_range("port");
    so.port = static_cast<uint16_t>(port);
  } catch (const std::exception&) {
    return Fail(fmt::format("--listen {}: the port must be 0..65535", listen));
  }
  if (tokens_path.empty() && !Loopback(so.address)) {
    return Fail(fmt::format(
        "--listen {}: without --tokens agentstated listens on loopback only (127.0.0.1 or ::1); "
        "give a token file to listen beyond it",
        listen));
  }
  for (auto [flag, text, field] : {std::tuple{"--drain-timeout", &drain, &so.drain_timeout},
                                   std::tuple{"--read-timeout", &read_timeout, &so.read_timeout}}) {
    auto d = core::ParseDuration(*text);
    if (!d || d->count() <= 0)
      return Fail(fmt::format("{} '{}': a duration such as 500ms or 10s", flag, *text));
    *field = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  server::Api::Options ao;
  if (auto d = core::ParseDuration(request_timeout); d && d->count() > 0) {
    ao.request_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  } else {
    return Fail(fmt::format("--request-timeout '{}': a duration such as 5s", request_timeout));
  }
  if (log_level != "error" && log_level != "warn" && log_level != "info")
    return Fail(fmt::format("--log-level '{}': use error, warn or info", log_level));
  const bool info = log_level == "info", warn = info || log_level == "warn";
  if (access_log) {
    // One write per line: lines from several I/O threads never interleave.
    ao.access_log = [](const std::string& line) {
      const std::string out = line + '\n';
      [[maybe_unused]] const auto n = ::write(STDERR_FILENO, out.data(), out.size());
    };
  }
  if (!(rate_limit >= 0 && rate_limit <= 1e9))
    return Fail("--rate-limit must be a number of requests per second, 0 (none) or more");
  ao.rate_limit_per_s = rate_limit;
  if (threads < 0 || threads > 256) return Fail("--threads must be 0..256");
  so.threads = threads;
  so.max_body_bytes = max_body;
  so.max_connections = max_connections;
  if (pipeline_depth < 1 || pipeline_depth > 1024)
    return Fail("--pipeline-depth must be 1..1024 requests");
  so.pipeline_depth = pipeline_depth;
  so.tls_cert = tls_cert;
  so.tls_key = tls_key;

  // The token file and the tokens in force: reloaded on SIGHUP, changed by the admin routes.
  std::unique_ptr<server::TokenFile> token_file;
  if (!tokens_path.empty()) {
    auto loaded = server::TokenFile::Open(tokens_path);
    if (!loaded) return Fail(loaded.error().message());
    token_file = std::move(*loaded);
  }
  ao.token_file = token_file.get();

  // The store: the same flags and environment as agentload.
  if (redis.empty()) redis = Env("AGENTSTATE_REDIS_URL");
  if (postgres.empty()) postgres = Env("AGENTSTATE_POSTGRES_URL");
  if (clickhouse.empty()) clickhouse = Env("AGENTSTATE_CLICKHOUSE_URL");
  if (store.empty()) store = Env("AGENTSTATE_STORE_URL");
  // Room for the tenant's prefix on every id: each tenant gets the default limit on its own.
  StoreOptions options;
  ao.max_id_bytes = options.max_id_bytes;
  options.max_id_bytes += server::kTenantPrefixBytes;
  Result<std::unique_ptr<StateStore>> opened = Error(StatusCode::kInternal, "no store");
  if (store.empty() && !redis.empty() && !postgres.empty()) {
    auto t = OpenTieredStore(redis, postgres, TieredOptions{}, options, clickhouse);
    if (t)
      opened = std::unique_ptr<StateStore>(std::move(*t));
    else
      opened = Error(t.error());
  } else {
    opened = OpenStore(store.empty() ? kDefaultStore : store, options);
  }
  if (!opened) return Fail(opened.error().message());
  std::unique_ptr<StateStore> state = std::move(*opened);

  server::Api api(
      *state,
      [&]() -> std::shared_ptr<const server::Tokens> {
        return token_file ? token_file->Current() : nullptr;
      },
      ao);
  // Without a token file the getter above returns null: every request is the default
  // tenant's. With one, it returns the tokens in force.
  server::HttpServer http(so, api);
  if (Status s = http.Listen(); !s.ok()) return Fail(s.message());
  // At every level: where it listens (with --listen HOST:0, the only place that says it).
  std::cerr << fmt::format("agentstated: listening on {}:{} (store {}, {}{})\n", so.address,
                           http.port(), state->Describe(),
                           token_file ? fmt::format("{} tokens", token_file->Current()->size())
                                      : std::string("no token file: loopback only"),
                           tls_cert.empty() ? "" : ", TLS");

  // Signals on a thread of their own: SIGTERM/SIGINT drain, SIGHUP reloads the tokens.
  asio::io_context signals_io(1);
  asio::signal_set signals(signals_io, SIGTERM, SIGINT, SIGHUP);
  std::function<void()> wait = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        if (!token_file) {
          if (warn) std::cerr << "agentstated: SIGHUP: no token file to reload\n";
        } else if (auto loaded = token_file->Reload(); loaded) {
          if (info) std::cerr << fmt::format("agentstated: SIGHUP: {} tokens\n", (*loaded)->size());
        } else if (warn) {
          std::cerr << "agentstated: SIGHUP: kept the tokens in force: " << loaded.error().message()
                    << '\n';
        }
        wait();
        return;
      }
      if (info)
        std::cerr << fmt::format("agentstated: {}: draining\n",
                                 signo == SIGTERM ? "SIGTERM" : "SIGINT");
      http.Drain();
    });
  };
  wait();
  std::thread signal_thread([&] { signals_io.run(); });
  http.Run();
  signals_io.stop();
  signal_thread.join();
  // The store's destructor flushes what it holds (the tiered store's write-behind).
  state.reset();
  if (info) std::cerr << "agentstated: drained, store flushed; exiting\n";
  return 0;
}
