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
#include <map>
#include <memory>
#include <mutex>
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
  // Who holds each token, in the file's order.
  std::vector<Principal> principals() const;

 private:
  struct Entry {
    std::array<unsigned char, 32> hash{};
    Principal who;
  };
  std::vector<Entry> entries_;
};

// "sha256:<hex>" of a token: the first field of its line in the token file.
std::string HashToken(std::string_view token);

// The token file and the tokens in force, for the server: SIGHUP reloads it; the admin
// routes add a tenant (a new agent token, appended) and drop one (its lines removed). Every
// change rewrites the file whole (a temporary file beside it, fsync, rename), so a reader
// never sees half of one, and puts what it wrote in force at once. Lines, comments and
// order of everything else are kept. Thread-safe.
class TokenFile {
 public:
  static Result<std::unique_ptr<TokenFile>> Open(std::string path);

  std::shared_ptr<const Tokens> Current() const;
  // Reads the file again; on error the tokens in force stay as they were.
  Result<std::shared_ptr<const Tokens>> Reload();

  // A new tenant with one agent token, returned: the only time it is ever shown.
  // kConflict when the file names the tenant already; kInvalidArgument for a bad name.
  Result<std::string> CreateTenant(std::string_view tenant);
  // Removes every token of the tenant; returns how many. kConflict when one has the admin
  // role (the API never removes an admin: edit the file); kNotFound when it has none.
  Result<std::size_t> DropTenant(std::string_view tenant);
  // Every tenant the file names, with its tokens per role ("agent", "admin").
  std::map<std::string, std::map<std::string, std::size_t>> Tenants() const;

  const std::string& path() const { return path_; }

 private:
  explicit TokenFile(std::string path) : path_(std::move(path)) {}
  Result<std::string> ReadText() const;
  Status WriteText(const std::string& text);  // atomically, then in force

  std::string path_;
  mutable std::mutex mu_;  // one change at a time; guards current_
  std::shared_ptr<const Tokens> current_;
};

}  // namespace agentstate::server
