// Base64 (RFC 4648, the standard alphabet, padded), for bytes carried in JSON: the values
// of the checkpoint model on agentstated's wire (docs/langgraph.md says why base64).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace agentstate::core {

std::string Base64Encode(std::string_view bytes);
// The bytes, or nullopt when `text` is not padded base64 of the standard alphabet (no
// whitespace, no URL-safe characters, no bits left over after the last byte).
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace agentstate::core
