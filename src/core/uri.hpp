// Store URIs: `scheme://body?key=value&...`. The body's meaning is the backend's
// (a file path for sqlite://, an authority for network stores).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agentstate/status.hpp"

namespace agentstate::core {

struct ParsedUri {
  std::string scheme;  // lower case, without "://"
  std::string body;    // between "://" and "?"
  std::map<std::string, std::string> params;
};

// kInvalidArgument naming the problem: no "://", an empty or non-alphanumeric scheme, a
// parameter without "=", an empty or repeated key.
Result<ParsedUri> ParseUri(std::string_view uri);

// The URI with any password in its authority replaced by "***", for logs and errors.
std::string RedactUri(std::string_view uri);

// "250ms", "5s", "10m", "24h", "7d", "1500us": a non-negative integer and a unit.
// kInvalidArgument otherwise.
Result<std::chrono::microseconds> ParseDuration(std::string_view text);

// A parameter as an unsigned integer in [min, max]; `fallback` when absent.
Result<uint64_t> UintParam(const ParsedUri& uri, const std::string& key, uint64_t fallback,
                           uint64_t min, uint64_t max);

// A network URI's body, "[USER[:PASSWORD]@]HOST[:PORT][/PATH]", split. kInvalidArgument
// (the reason alone, never the password) for an empty host or a port outside 1..65535.
struct Authority {
  std::string user, password, host;
  std::optional<uint16_t> port;
  std::string path;  // after the first '/', may be empty
};
Result<Authority> ParseAuthority(std::string_view body);

// A duration parameter ("250ms", "5s"); `fallback` when absent. kInvalidArgument when it is
// malformed, or zero while `positive`.
Result<std::chrono::milliseconds> DurationParam(const ParsedUri& uri, const std::string& key,
                                                std::chrono::milliseconds fallback, bool positive);

// `text` with every byte but A-Z a-z 0-9 - _ . ~ as %XX (RFC 3986's unreserved characters),
// fit for a path segment or a query value.
std::string PercentEncode(std::string_view text);

// `uri` with "key=value&..." `params` appended after '?' or '&', whichever it needs.
std::string WithParams(std::string_view uri, std::string_view params);

// The URI, parameters included, with any password in its authority replaced by "***".
std::string RedactUri(const ParsedUri& uri);

// Fails with kInvalidArgument naming the first parameter not in `known`.
Status CheckKnownParams(const ParsedUri& uri, std::initializer_list<std::string_view> known);
Status CheckKnownParams(const ParsedUri& uri, const std::vector<std::string_view>& known);

}  // namespace agentstate::core
