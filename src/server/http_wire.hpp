// The bytes of agentstated's HTTP/1.1 exchanges around server::Api, apart from the sockets:
// a parsed request to an ApiRequest, a read error to the problem the server answers with,
// an ApiResponse to its bytes on the wire. http_server.cpp reads and writes with them, and
// the request fuzzer (fuzz/fuzz_http_request.cpp) drives the same functions in-process.
#pragma once

#include <boost/beast/http.hpp>
#include <string>
#include <string_view>

#include "server/api.hpp"

namespace agentstate::server {

// The fields of `req` the API reads; its body is moved out.
ApiRequest ToApiRequest(boost::beast::http::request<boost::beast::http::string_body>& req);

// What a request that cannot be read whole is answered with: 413 over the body limit, 431
// over the header limit, else 400 naming Beast's reason.
ApiResponse ReadProblem(boost::beast::error_code ec, std::size_t max_body_bytes,
                        std::size_t max_header_bytes);

// A response's bytes on the wire: status line, headers, Content-Length, body. Responses
// are built whole so that the ones ready together go out in one write.
std::string ToWire(const ApiResponse& r, unsigned version, bool keep_alive);

// The run a request is about: the {run_id} of /v1/runs/{run_id}[/...] as sent, or "*". An
// id with a percent escape is "*" too: two spellings of one run must not run at once.
std::string ScopeOf(std::string_view target);

}  // namespace agentstate::server
