// agentstated's request handling in-process: bytes as a client sends them through Beast's
// parser with the server's limits, then the API (tokens, routing, every route's decoding,
// the store beneath, the problem-body writer) on a fresh memory store with two tenants and
// an admin, then the response's bytes. Whatever comes in, the answer is a status the API
// documents, a problem body on an error, and never a crash or a hang.
#include "agentstate/asio.hpp"  // first: it fixes Asio 1.18's includes

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "agentstate/registry.hpp"
#include "server/api.hpp"
#include "server/http_server.hpp"
#include "server/http_wire.hpp"
#include "server/tenant_store.hpp"
#include "server/tokens.hpp"

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace server = agentstate::server;

namespace {

// The tokens of the seed corpus and of fuzz/fuzz_http_request.dict: tenant a, tenant b, an admin.
std::shared_ptr<const server::Tokens> FuzzTokens() {
  static const auto tokens = [] {
    const std::string text = server::HashToken("token-a") + " a agent\n" +
                             server::HashToken("token-b") + " b agent\n" +
                             server::HashToken("token-admin") + " ops admin\n";
    return *server::Tokens::Parse(text, "fuzz");
  }();
  return tokens;
}

void CheckAnswer(const server::ApiResponse& r) {
  if (r.status < 200 || r.status > 599) __builtin_trap();
  if (r.status >= 400) {
    // Every error is an RFC 9457 problem document carrying the engine's code.
    if (r.content_type != "application/problem+json") __builtin_trap();
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("code") || j.value("status", 0u) != r.status)
      __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const server::ServerOptions limits;
  // A fresh store for every input, so that a crash is reproduced by its input alone; the
  // input's requests run one after another against it, as on one keep-alive connection.
  agentstate::StoreOptions options;
  options.max_id_bytes += server::kTenantPrefixBytes;
  auto store = agentstate::OpenStore("memory://", options);
  if (!store) __builtin_trap();
  server::Api::Options ao;
  ao.max_id_bytes = agentstate::StoreOptions{}.max_id_bytes;
  server::Api api(**store, FuzzTokens, ao);
  asio::const_buffer rest(data, size);
  for (int request = 0; request < 16 && rest.size() > 0; ++request) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(limits.max_body_bytes);
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.eager(true);
    boost::beast::error_code ec;
    while (!ec && !parser.is_done()) {
      if (rest.size() == 0) {
        parser.put_eof(ec);
        break;
      }
      const std::size_t used = parser.put(rest, ec);
      rest += used;
      if (ec == http::error::need_more && rest.size() > 0) ec = {};
      if (!ec && used == 0 && !parser.is_done()) break;
    }
    if (ec == http::error::need_more || (!ec && !parser.is_done()))
      return 0;  // the server would wait for more bytes
    server::ApiResponse answer;
    unsigned version = 11;
    bool keep_alive = false;
    if (ec) {
      answer = server::ReadProblem(ec, limits.max_body_bytes, limits.max_header_bytes);
    } else {
      auto& req = parser.get();
      version = req.version();
      keep_alive = req.keep_alive();
      (void)server::ScopeOf(std::string_view(req.target().data(), req.target().size()));
      asio::io_context io;
      auto done = asio::co_spawn(io, api.Handle(server::ToApiRequest(req)), asio::use_future);
      io.run();
      answer = done.get();
    }
    CheckAnswer(answer);
    if (server::ToWire(answer, version, keep_alive).empty()) __builtin_trap();
    if (!keep_alive) break;
  }
  return 0;
}
