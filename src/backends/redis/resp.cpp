#include "backends/redis/resp.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

namespace agentstate::backends::redis {
namespace {

Reply Convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = Reply::Type::kString; break;
    case REDIS_REPLY_STATUS: out.type = Reply::Type::kStatus; break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::kError; break;
    case REDIS_REPLY_INTEGER: out.type = Reply::Type::kInteger; break;
    case REDIS_REPLY_ARRAY: out.type = Reply::Type::kArray; break;
    default: out.type = Reply::Type::kNil; break;
  }
  if (r->str) out.str.assign(r->str, r->len);
  out.integer = r->integer;
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i)
    out.elements.push_back(Convert(r->element[i]));
  return out;
}

// Printable rendering of raw bytes for an error message: "+OK\r\n" -> "+OK\\r\\n".
std::string Printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes.substr(0, 64)) {
    if (c == '\r')
      out += "\\r";
    else if (c == '\n')
      out += "\\n";
    else if (c < 0x20 || c >= 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  return out;
}

// A server we do not trust may announce an array of two billion elements in 14 bytes, and
// hiredis would calloc a slot for each before one arrives. No reply we ask for comes near a
// million elements, so a longer array is refused as the protocol error it is.
constexpr int kMaxArrayElements = 1 << 20;

void* (*default_create_array)(const redisReadTask*, int) = nullptr;

void* CreateBoundedArray(const redisReadTask* task, int elements) {
  if (elements > kMaxArrayElements) {
    *static_cast<int*>(task->privdata) = elements;
    return nullptr;  // hiredis stops with an error, and Next() names the cause
  }
  return default_create_array(task, elements);
}

redisReplyObjectFunctions* BoundedFunctions(const redisReplyObjectFunctions& defaults) {
  static redisReplyObjectFunctions bounded = [&] {
    redisReplyObjectFunctions f = defaults;
    default_create_array = f.createArray;
    f.createArray = &CreateBoundedArray;
    return f;
  }();
  return &bounded;
}

}  // namespace

void EncodeCommand(std::string& out, const std::vector<std::string_view>& args) {
  std::size_t size = 16;
  for (std::string_view a : args) size += a.size() + 16;
  if (out.capacity() < out.size() + size) out.reserve(out.size() + size);
  auto to = std::back_inserter(out);
  fmt::format_to(to, "*{}\r\n", args.size());
  for (std::string_view a : args) {
    fmt::format_to(to, "${}\r\n", a.size());
    out.append(a.data(), a.size());
    out += "\r\n";
  }
}

ReplyParser::ReplyParser() : reader_(redisReaderCreate()) {
  reader_->maxbuf = 0;  // never shrink the buffer: large values arrive in pieces
  reader_->fn = BoundedFunctions(*reader_->fn);
  reader_->privdata = &refused_elements_;
}

ReplyParser::~ReplyParser() { redisReaderFree(reader_); }

void ReplyParser::Feed(std::string_view bytes) {
  redisReaderFeed(reader_, bytes.data(), bytes.size());
  recent_.assign(bytes.substr(0, 64));
}

Result<std::optional<Reply>> ReplyParser::Next() {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
    if (refused_elements_ > 0) {
      return Error(StatusCode::kInternal,
                   fmt::format("not a RESP2 reply we accept: an array of {} elements (at most {}); "
                               "is the server at this address Redis?",
                               refused_elements_, kMaxArrayElements));
    }
    return Error(StatusCode::kInternal,
                 fmt::format("not a RESP2 reply ({}); bytes received: \"{}\"", reader_->errstr,
                             Printable(recent_)));
  }
  if (!raw) return std::optional<Reply>();
  auto* r = static_cast<redisReply*>(raw);
  Reply out = Convert(r);
  freeReplyObject(r);
  return std::optional<Reply>(std::move(out));
}

}  // namespace agentstate::backends::redis
