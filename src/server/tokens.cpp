#include "server/tokens.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

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

}  // namespace agentstate::server
