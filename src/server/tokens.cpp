#include "server/tokens.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "server/tenant_store.hpp"

namespace agentstate::server {
namespace {

std::array<unsigned char, 32> Sha256(std::string_view text) {
  std::array<unsigned char, 32> out{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
  return out;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A line's tenant and role fields ("" when it has none: blank or a comment).
std::pair<std::string, std::string> TenantAndRole(std::string line) {
  if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
  std::istringstream fields(line);
  std::string digest, tenant, role;
  fields >> digest >> tenant >> role;
  return {tenant, role};
}

}  // namespace

std::string HashToken(std::string_view token) {
  std::string out = "sha256:";
  for (unsigned char b : Sha256(token)) out += fmt::format("{:02x}", b);
  return out;
}

Result<std::shared_ptr<const Tokens>> Tokens::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Error(
        StatusCode::kUnavailable,
        fmt::format("cannot read the token file {}; make it with agentstated hash-token", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

Result<std::shared_ptr<const Tokens>> Tokens::Parse(std::string_view text,
                                                    std::string_view origin) {
  auto tokens = std::make_shared<Tokens>();
  std::istringstream lines{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream fields(line);
    std::string digest, tenant, role, extra;
    if (!(fields >> digest)) continue;  // blank or comment
    auto bad = [&](std::string_view why) {
      return Error(StatusCode::kInvalidArgument,
                   fmt::format("token file {} line {}: {}; each line is: sha256:<64 hex> "
                               "<tenant> <agent|admin>",
                               origin, number, why));
    };
    if (!(fields >> tenant >> role) || (fields >> extra)) return bad("expected three fields");
    if (digest.rfind("sha256:", 0) != 0 || digest.size() != 7 + 64)
      return bad("the first field must be sha256: and 64 hex digits (agentstated hash-token)");
    Entry e;
    for (std::size_t i = 0; i < 32; ++i) {
      const int hi = Hex(digest[7 + 2 * i]), lo = Hex(digest[8 + 2 * i]);
      if (hi < 0 || lo < 0) return bad("the hash is not hex");
      e.hash[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    if (!ValidTenant(tenant))
      return bad("the tenant must be 1..64 of a-z 0-9 _ -, starting with a letter or digit");
    if (role == "agent") {
      e.who.role = Role::kAgent;
    } else if (role == "admin") {
      e.who.role = Role::kAdmin;
    } else {
      return bad("the role must be agent or admin");
    }
    e.who.tenant = tenant;
    tokens->entries_.push_back(std::move(e));
  }
  return std::shared_ptr<const Tokens>(std::move(tokens));
}

std::vector<Principal> Tokens::principals() const {
  std::vector<Principal> out;
  for (const auto& e : entries_) out.push_back(e.who);
  return out;
}

std::optional<Principal> Tokens::Authenticate(std::string_view token) const {
  const auto hash = Sha256(token);
  const Entry* found = nullptr;
  for (const auto& e : entries_) {
    // Every entry is compared, in constant time each: neither the hash's bytes nor its
    // position in the file show in the time taken.
    const bool same = CRYPTO_memcmp(e.hash.data(), hash.data(), hash.size()) == 0;
    if (same && !found) found = &e;
  }
  if (!found) return std::nullopt;
  return found->who;
}

Result<std::unique_ptr<TokenFile>> TokenFile::Open(std::string path) {
  std::unique_ptr<TokenFile> file(new TokenFile(std::move(path)));
  auto loaded = file->Reload();
  if (!loaded) return Error(loaded.error());
  return file;
}

std::shared_ptr<const Tokens> TokenFile::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

Result<std::shared_ptr<const Tokens>> TokenFile::Reload() {
  std::lock_guard lock(mu_);
  auto loaded = Tokens::Load(path_);
  if (!loaded) return Error(loaded.error());
  current_ = *loaded;
  return current_;
}

Result<std::string> TokenFile::ReadText() const {
  std::ifstream in(path_);
  if (!in)
    return Error(StatusCode::kUnavailable, fmt::format("cannot read the token file {}", path_));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Status TokenFile::WriteText(const std::string& text) {
  // Checked first, as a reload would check it: a file that would not load is never written.
  auto parsed = Tokens::Parse(text, path_);
  if (!parsed) return parsed.error();
  const std::string tmp = path_ + ".tmp";
  auto fail = [&](std::string_view what) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status(StatusCode::kUnavailable,
                  fmt::format("cannot {} the token file {}: {}", what, path_, why));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail("write");
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return fail("write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("sync");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return fail("replace");
  current_ = *parsed;
  return Status();
}

Result<std::string> TokenFile::CreateTenant(std::string_view tenant) {
  if (!ValidTenant(tenant))
    return Error(StatusCode::kInvalidArgument,
                 fmt::format("tenant '{}': a tenant is 1..64 of a-z 0-9 _ -, starting with a "
                             "letter or digit",
                             tenant));
  std::lock_guard lock(mu_);
  auto text = ReadText();
  if (!text) return Error(text.error());
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    if (TenantAndRole(line).first == tenant)
      return Error(StatusCode::kConflict,
                   fmt::format("tenant {} exists already; drop it first, or add a token to the "
                               "token file",
                               tenant));
  }
  unsigned char secret[32];
  if (RAND_bytes(secret, sizeof secret) != 1)
    return Error(StatusCode::kInternal, "the system's random source failed; no tenant was made");
  std::string token = "as_";
  for (unsigned char b : secret) token += fmt::format("{:02x}", b);
  std::string next = *text;
  if (!next.empty() && next.back() != '\n') next += '\n';
  next += fmt::format("{}  {}  agent  # made by the admin API\n", HashToken(token), tenant);
  if (Status s = WriteText(next); !s.ok()) return Error(s);
  return token;
}

Result<std::size_t> TokenFile::DropTenant(std::string_view tenant) {
  std::lock_guard lock(mu_);
  auto text = ReadText();
  if (!text) return Error(text.error());
  std::istringstream lines(*text);
  std::string next;
  std::size_t removed = 0;
  for (std::string line; std::getline(lines, line);) {
    auto [name, role] = TenantAndRole(line);
    if (name != tenant) {
      next += line + '\n';
      continue;
    }
    if (role == "admin")
      return Error(StatusCode::kConflict,
                   fmt::format("tenant {} holds an admin token; the admin API never removes an "
                               "admin: edit {} and send SIGHUP",
                               tenant, path_));
    ++removed;
  }
  if (removed == 0)
    return Error(StatusCode::kNotFound, fmt::format("tenant {} has no tokens", tenant));
  if (Status s = WriteText(next); !s.ok()) return Error(s);
  return removed;
}

std::map<std::string, std::map<std::string, std::size_t>> TokenFile::Tenants() const {
  std::map<std::string, std::map<std::string, std::size_t>> out;
  for (const auto& p : Current()->principals())
    ++out[p.tenant][p.role == Role::kAdmin ? "admin" : "agent"];
  return out;
}

}  // namespace agentstate::server
