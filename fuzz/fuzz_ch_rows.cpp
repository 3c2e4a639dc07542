// ClickHouse's TabSeparated answers to the analytics queries (backends/clickhouse/ch_sink.*),
// the one hand-written reader of a service's reply (PostgreSQL's replies are libpq's, read
// by length-checked accessors). A row that is not a number is refused, never cast.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backends/clickhouse/ch_sink.hpp"

namespace ch = agentstate::backends::clickhouse;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool whole = data[0] & 1;
  auto rows = ch::ParseOpRows(text, whole);
  if (!rows) return 0;
  for (const auto& [op, v] : *rows) {
    if (!std::isfinite(v)) __builtin_trap();
    if (whole && (v < 0 || v >= 9223372036854775808.0)) __builtin_trap();
  }
  return 0;
}
