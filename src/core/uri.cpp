#include "core/uri.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>

#include <simdjson.h>

namespace agentstate::core {

Result<ParsedUri> ParseUri(std::string_view uri) {
  // A URI is text: invalid UTF-8 here (a path from a broken script) would reach every
  // report and message it is printed in.
  if (!simdjson::validate_utf8(uri.data(), uri.size())) {
    return Error(
        StatusCode::kInvalidArgument,
        "malformed store URI: it is not valid UTF-8; percent-encode or rename what it names");
  }
  auto sep = uri.find("://");
  if (sep == std::string_view::npos) {
    return Error(
        StatusCode::kInvalidArgument,
        fmt::format("malformed store URI '{}': expected scheme://..., e.g. sqlite://state.db",
                    RedactUri(uri)));
  }
  ParsedUri out;
  for (char c : uri.substr(0, sep)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return Error(
          StatusCode::kInvalidArgument,
          fmt::format("malformed store URI '{}': bad character in scheme", RedactUri(uri)));
    }
    out.scheme.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (out.scheme.empty()) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("malformed store URI '{}': empty scheme", RedactUri(uri)));
  }
  std::string_view rest = uri.substr(sep + 3);
  auto q = rest.find('?');
  out.body = std::string(rest.substr(0, q));
  if (q == std::string_view::npos) return out;
  std::string_view query = rest.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Error(StatusCode::kInvalidArgument,
                   fmt::format("malformed store URI '{}': parameter '{}' is not key=value",
                               RedactUri(uri), kv));
    }
    std::string key(kv.substr(0, eq));
    if (!out.params.emplace(key, std::string(kv.substr(eq + 1))).second) {
      return Error(
          StatusCode::kInvalidArgument,
          fmt::format("malformed store URI '{}': parameter '{}' given twice", RedactUri(uri), key));
    }
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return out;
}

namespace {

// Query parameters that carry a secret: libpq honours ?password= and ?sslpassword=.
bool IsSecretKey(std::string_view key) {
  std::string k;
  for (char c : key) k.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (std::string_view word : {"password", "passwd", "secret", "token"}) {
    if (k.find(word) != std::string::npos) return true;
  }
  return k == "pass" || k == "pwd" || k == "auth";
}

// Schemes whose user info, without a ':', is a password or a token rather than a user name.
bool UserIsASecret(std::string_view scheme) {
  std::string k;
  for (char c : scheme) k.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return k == "redis" || k == "rediss" || k == "redis+cluster" || k == "http" || k == "https";
}

}  // namespace

std::string RedactUri(std::string_view uri) {
  std::string out(uri);
  auto sep = out.find("://");
  if (sep == std::string::npos) return out;
  const std::size_t start = sep + 3;
  // The password runs from the first ':' of the user info to the last '@' before the query:
  // it may itself hold '@' or '/' (u:p@ss@host, u:p/w@host). Redacting too much is harmless;
  // too little leaks.
  std::size_t query = out.find('?', start);
  const std::size_t end = query == std::string::npos ? out.size() : query;
  const std::size_t at = out.rfind('@', end == 0 ? 0 : end - 1);
  if (at != std::string::npos && at >= start) {
    const std::size_t colon = out.find(':', start);
    if (colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
      query = out.find('?', start);
    } else if (UserIsASecret(out.substr(0, sep)) && at > start) {
      // redis://PASSWORD@host and http://TOKEN@host: the user info alone is the secret.
      out.replace(start, at - start, "***");
      query = out.find('?', start);
    }
  }
  if (query == std::string::npos) return out;
  // Secret query parameters: their values.
  std::string redacted = out.substr(0, query + 1);
  std::string_view rest(out);
  rest.remove_prefix(query + 1);
  while (true) {
    const std::size_t amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    const std::size_t eq = kv.find('=');
    if (eq != std::string_view::npos && IsSecretKey(kv.substr(0, eq))) {
      redacted.append(kv.substr(0, eq + 1)).append("***");
    } else {
      redacted.append(kv);
    }
    if (amp == std::string_view::npos) break;
    redacted.push_back('&');
    rest.remove_prefix(amp + 1);
  }
  return redacted;
}

std::string PercentEncode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

Result<std::chrono::microseconds> ParseDuration(std::string_view text) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  std::string_view unit(end, text.data() + text.size() - end);
  using std::chrono::microseconds;
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"us", 1},          {"ms", 1000},         {"s", 1000000},
      {"m", 60000000ULL}, {"h", 3600000000ULL}, {"d", 86400000000ULL}};
  if (ec == std::errc() && end != text.data()) {
    for (auto [name, scale] : kUnits) {
      if (unit == name) {
        if (n > UINT64_MAX / scale / 2) break;
        return microseconds(static_cast<int64_t>(n * scale));
      }
    }
  }
  return Error(StatusCode::kInvalidArgument,
               fmt::format("bad duration '{}': use a whole number and a unit (us, ms, s, m, h, d), "
                           "e.g. 250ms or 24h",
                           text));
}

Result<uint64_t> UintParam(const ParsedUri& uri, const std::string& key, uint64_t fallback,
                           uint64_t min, uint64_t max) {
  auto it = uri.params.find(key);
  if (it == uri.params.end()) return fallback;
  uint64_t n = 0;
  const std::string& v = it->second;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < min || n > max) {
    return Error(
        StatusCode::kInvalidArgument,
        fmt::format("URI parameter {}={} must be a whole number from {} to {}", key, v, min, max));
  }
  return n;
}

Result<Authority> ParseAuthority(std::string_view body) {
  Authority a;
  if (auto at = body.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = body.substr(0, at);
    body = body.substr(at + 1);
    const auto colon = userinfo.find(':');
    a.user = std::string(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) a.password = std::string(userinfo.substr(colon + 1));
  }
  const auto slash = body.find('/');
  std::string_view hostport = body.substr(0, slash);
  if (slash != std::string_view::npos) a.path = std::string(body.substr(slash + 1));
  if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    const std::string_view port = hostport.substr(colon + 1);
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) {
      return Error(StatusCode::kInvalidArgument, "port must be 1..65535");
    }
    a.port = static_cast<uint16_t>(p);
    hostport = hostport.substr(0, colon);
  }
  if (hostport.empty()) return Error(StatusCode::kInvalidArgument, "no host");
  a.host = std::string(hostport);
  return a;
}

Result<std::chrono::milliseconds> DurationParam(const ParsedUri& uri, const std::string& key,
                                                std::chrono::milliseconds fallback, bool positive) {
  auto it = uri.params.find(key);
  if (it == uri.params.end()) return fallback;
  auto d = ParseDuration(it->second);
  if (!d || (positive && d->count() == 0)) {
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("URI parameter {}={} must be a duration{}, e.g. 500ms", key,
                             it->second, positive ? " > 0" : ""));
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

std::string WithParams(std::string_view uri, std::string_view params) {
  std::string out(uri);
  out += uri.find('?') == std::string_view::npos ? '?' : '&';
  out += params;
  return out;
}

std::string RedactUri(const ParsedUri& uri) {
  std::string query;
  for (const auto& [k, v] : uri.params) query += (query.empty() ? "?" : "&") + k + "=" + v;
  return RedactUri(uri.scheme + "://" + uri.body + query);  // secret parameters too
}

Status CheckKnownParams(const ParsedUri& uri, std::initializer_list<std::string_view> known) {
  return CheckKnownParams(uri, std::vector<std::string_view>(known));
}

Status CheckKnownParams(const ParsedUri& uri, const std::vector<std::string_view>& known) {
  for (const auto& [key, value] : uri.params) {
    bool ok = false;
    for (auto k : known) ok = ok || k == key;
    if (!ok) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("unknown parameter '{}' in {}:// URI; known: {}", key, uri.scheme,
                                list.empty() ? "none" : list));
    }
  }
  return Status();
}

}  // namespace agentstate::core
