// The wire form of a record, shared by agentstated (which writes it) and the http:// store
// (which reads it back): the record's fields as JSON, then its state spliced in last, as
// the exact bytes that were saved (docs/http-api.md, "A loaded record").
//
//   {"run_id":"r","thread_id":"t",...,"checksum":"9a0c...","state":<the saved document>}
//
// The state is never parsed into a tree and written out again: its bytes, and so its
// checksum, survive the trip.
#pragma once

#include <string>
#include <string_view>

#include "agentstate/model.hpp"
#include "agentstate/status.hpp"

namespace agentstate::core {

std::string RecordJson(const StateRecord& record);

// The record of a RecordJson document: kInvalidArgument naming what is missing or
// malformed. The payload is the bytes after "state": up to the closing brace, exactly; the
// caller checks them against the checksum.
Result<StateRecord> ParseRecordJson(std::string_view body);

// A checksum as the wire writes it: 16 lower-case hex digits.
std::string ChecksumHex(uint64_t checksum);
std::optional<uint64_t> ParseChecksumHex(std::string_view hex);

}  // namespace agentstate::core
