// Bearer tokens from a token file. The file holds hashes, never tokens: one line per token,
//
//   sha256:<64 hex digits>  <tenant>  <role>        # role: agent | admin
//
// with blank lines and '#' comments allowed. `agentstated hash-token` prints the line for a
// token. A request's token is hashed (SHA-256) and compared with every line's hash in
// constant time. The file is read at start and again on SIGHUP; a file that does not parse
// is refused whole, naming the line, and the tokens in force stay as they were.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agentstate/status.hpp"

namespace agentstate::server {

enum class Role { kAgent, kAdmin };

struct Principal {
  std::string tenant;
  Role role = Role::kAgent;
};

class Tokens {
 public:
  // kInvalidArgument naming the file and line that does not parse; kUnavailable when it
  // cannot be read.
  static Result<std::shared_ptr<const Tokens>> Load(const std::string& path);
  static Result<std::shared_ptr<const Tokens>> Parse(std::string_view text,
                                                     std::string_view origin);

  // Who holds `token`, or nullopt. Compares against every hash (no early exit on a match).
  std::optional<Principal> Authenticate(std::string_view token) const;
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::array<unsigned char, 32> hash{};
    Principal who;
  };
  std::vector<Entry> entries_;
};

// "sha256:<hex>" of a token: the first field of its line in the token file.
std::string HashToken(std::string_view token);

}  // namespace agentstate::server
