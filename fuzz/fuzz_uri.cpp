// Store URIs (core/uri.*, and each backend's reading of its own): a URI comes from a
// command line, an environment variable or a config file. Every parser answers or refuses,
// and a redacted URI never shows the password it was given.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backends/clickhouse/ch_sink.hpp"
#include "backends/http/http_client.hpp"
#include "backends/postgres/pg_client.hpp"
#include "core/uri.hpp"

namespace uri = agentstate::core;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)uri::ParseDuration(text);
  (void)uri::RedactUri(text);
  (void)uri::PercentEncode(text);
  auto parsed = uri::ParseUri(text);
  if (!parsed) return 0;
  (void)uri::RedactUri(*parsed);
  (void)uri::ParseAuthority(parsed->body);
  (void)uri::UintParam(*parsed, "pool", 4, 1, 1024);
  (void)uri::CheckKnownParams(*parsed, {"pool", "timeout"});
  (void)agentstate::backends::postgres::ParsePgUri(*parsed);
  (void)agentstate::backends::http::ParseHttpUri(*parsed);
  (void)agentstate::backends::clickhouse::ParseChUri(text);
  // A redacted URI does not depend on the password: with another password in its place,
  // the redacted form is the same (so no byte of the password can show in it).
  if (auto a = uri::ParseAuthority(parsed->body); a && !a->password.empty()) {
    const std::string field = ":" + a->password + "@";
    const auto at = text.find(field, text.find("://") + 3);
    if (at != std::string_view::npos) {
      std::string other(text);
      other.replace(at, field.size(), ":zzzz@");
      if (auto p2 = uri::ParseUri(other)) {
        auto a2 = uri::ParseAuthority(p2->body);
        if (a2 && a2->password == "zzzz" && uri::RedactUri(*p2) != uri::RedactUri(*parsed))
          __builtin_trap();
      }
    }
  }
  return 0;
}
