// RESP2, sans I/O: commands encoded to bytes, bytes parsed to replies. No sockets, no
// clocks, so it is tested byte by byte. hiredis 0.14's redisReader does the parsing (with
// maxbuf 0: it keeps its buffer); it has no RESP3, so we never send HELLO 3.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agentstate/status.hpp"

struct redisReader;

namespace agentstate::backends::redis {

struct Reply {
  enum class Type { kString, kStatus, kError, kInteger, kNil, kArray };
  Type type = Type::kNil;
  std::string str;  // kString (binary-safe), kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
};

// Appends one command as a RESP2 array of bulk strings; arguments may hold any bytes.
void EncodeCommand(std::string& out, const std::vector<std::string_view>& args);

class ReplyParser {
 public:
  ReplyParser();
  ~ReplyParser();
  ReplyParser(const ReplyParser&) = delete;
  ReplyParser& operator=(const ReplyParser&) = delete;

  void Feed(std::string_view bytes);
  // The next complete reply, or nullopt until more bytes arrive. A byte stream that is
  // not RESP2, or announces an array of more than 2^20 elements, is kInternal naming the
  // offending bytes; the parser is then unusable (the connection must be dropped).
  Result<std::optional<Reply>> Next();

 private:
  redisReader* reader_;
  std::string recent_;        // the last bytes fed, for the protocol error message
  int refused_elements_ = 0;  // the length of an array refused as too long, if one was
};

}  // namespace agentstate::backends::redis
