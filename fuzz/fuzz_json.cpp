// The JSON a client sends and the record JSON a server answers with: core/validate's check
// of a saved document (the one parse every state goes through) and core/wire_json's reader
// of a loaded record (the http:// store reads what agentstated wrote). Both refuse what is
// not JSON, agree with each other, and a record read back is written out the same again.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/validate.hpp"
#include "core/wire_json.hpp"

namespace core = agentstate::core;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool ok = core::CheckJson(text).ok();
  if (ok != core::IsWellFormedJson(text)) __builtin_trap();
  auto record = core::ParseRecordJson(text);
  if (!record) return 0;
  // What the reader took must be written out as a document that reads back the same.
  const std::string again = core::RecordJson(*record);
  auto twice = core::ParseRecordJson(again);
  if (!twice || twice->run_id != record->run_id || twice->payload != record->payload ||
      twice->version != record->version || twice->checksum != record->checksum)
    __builtin_trap();
  return 0;
}
