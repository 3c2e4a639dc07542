// What power_cut_writer saves for (run, version), so power_cut_test can check every byte it
// reads back: a JSON document of about 2 KB that differs for every run and version.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace agentstate::testing {

inline std::string PowerCutPayload(const std::string& run, int64_t version) {
  std::string body(2000, 'x');
  uint64_t h = std::hash<std::string>{}(run) ^ uint64_t(version) * 0x9e3779b97f4a7c15ull;
  for (char& c : body) {
    h = h * 6364136223846793005ull + 1442695040888963407ull;
    c = char('a' + (h >> 59) % 26);
  }
  return "{\"run\":\"" + run + "\",\"version\":" + std::to_string(version) + ",\"body\":\"" + body +
         "\"}";
}

}  // namespace agentstate::testing
