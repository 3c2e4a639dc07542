// Messages from servers and libraries span lines ("...failed: Connection refused\n\tIs the
// server running..."); ours are one line: line breaks and the indent after them become
// "; ", tabs become spaces, trailing space goes.
#pragma once

#include <string>
#include <string_view>

namespace agentstate::core {

inline std::string OneLine(std::string_view message) {
  std::string out;
  for (std::size_t i = 0; i < message.size(); ++i) {
    if (message[i] != '\n') {
      out += message[i] == '\t' ? ' ' : message[i];
      continue;
    }
    while (i + 1 < message.size() && (message[i + 1] == '\t' || message[i + 1] == ' ')) ++i;
    if (i + 1 < message.size()) out += "; ";
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace agentstate::core
