#include "server/http_wire.hpp"

#include <fmt/format.h>

#include <iterator>

namespace agentstate::server {

namespace http = boost::beast::http;

ApiRequest ToApiRequest(http::request<http::string_body>& req) {
  ApiRequest call;
  call.method = std::string(req.method_string());
  call.target = std::string(req.target());
  call.content_type = std::string(req[http::field::content_type]);
  call.authorization = std::string(req[http::field::authorization]);
  call.if_match = std::string(req[http::field::if_match]);
  call.if_none_match = std::string(req[http::field::if_none_match]);
  if (auto key = req.find("Idempotency-Key"); key != req.end())
    call.idempotency_key = std::string(key->value());
  call.body = std::move(req.body());
  return call;
}

ApiResponse ReadProblem(boost::beast::error_code ec, std::size_t max_body_bytes,
                        std::size_t max_header_bytes) {
  if (ec == http::error::body_limit)
    return Problem(413, "content_too_large",
                   fmt::format("the body is over the server's limit of {} bytes", max_body_bytes));
  if (ec == http::error::header_limit)
    return Problem(431, "header_too_large",
                   fmt::format("the request's headers are over the server's limit of {} bytes",
                               max_header_bytes));
  return Problem(400, "bad_request",
                 fmt::format("the request is not valid HTTP/1.1: {}", ec.message()));
}

std::string ToWire(const ApiResponse& r, unsigned version, bool keep_alive) {
  std::string out;
  out.reserve(160 + r.body.size());
  fmt::format_to(std::back_inserter(out), "HTTP/{}.{} {} {}\r\nServer: agentstated\r\n",
                 version / 10, version % 10, r.status, [&] {
                   const auto reason = http::obsolete_reason(static_cast<http::status>(r.status));
                   return std::string_view(reason.data(), reason.size());
                 }());
  fmt::format_to(std::back_inserter(out), "Content-Type: {}\r\n", r.content_type);
  for (const auto& [k, v] : r.headers) fmt::format_to(std::back_inserter(out), "{}: {}\r\n", k, v);
  // HTTP/1.1 keeps a connection unless told; HTTP/1.0 closes it unless told.
  if (version >= 11 && !keep_alive) out += "Connection: close\r\n";
  if (version < 11 && keep_alive) out += "Connection: keep-alive\r\n";
  fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n\r\n", r.body.size());
  out += r.body;
  return out;
}

std::string ScopeOf(std::string_view target) {
  constexpr std::string_view kRuns = "/v1/runs/";
  if (!target.starts_with(kRuns)) return "*";
  target.remove_prefix(kRuns.size());
  const std::string_view id = target.substr(0, target.find_first_of("/?"));
  if (id.empty() || id.find('%') != std::string_view::npos) return "*";
  return std::string(id);
}

}  // namespace agentstate::server
