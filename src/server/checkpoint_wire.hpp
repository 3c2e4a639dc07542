// The checkpoint model's wire form on agentstated (docs/http-api.md, "Checkpoints
// (LangGraph)"): request bodies decoded, tuples written. The checkpoint document and the
// metadata travel as JSON objects, kept as the bytes the client sent; value bytes travel as
// base64 strings with their serde type beside them (docs/langgraph.md says why).
//
//   put:    {"parent_id":"..."|null,"checkpoint":{...},"metadata":{...},
//            "values":[{"channel":"c","version":"1","type":"json","bytes":"<base64>"}],
//            "check_head":false}
//   writes: {"task_path":"","writes":[{"channel":"c","type":"json","bytes":"<base64>"}]}
//   delete for runs: {"run_ids":["..."]}
//   tuple:  {"thread_id","ns","checkpoint_id","parent_id"|null,"checkpoint","metadata",
//            "values":[...as
//            put],"writes":[{"task_id","task_path","channel","idx","type","bytes"}]}
//
// Decoding is strict: an unknown field, a wrong type or bad base64 is kInvalidArgument naming
// the field. What the engine checks itself (ids, sizes, the document's channel versions) is
// left to it.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agentstate/checkpoint_store.hpp"

namespace agentstate::server {

// The body of a put: everything but the ids the path carries.
Result<CheckpointPut> ParseCheckpointPut(std::string_view body);

struct WritesBody {
  std::string task_path;
  std::vector<std::pair<std::string, TypedValue>> writes;
};
Result<WritesBody> ParseCheckpointWrites(std::string_view body);

// The body of a delete for runs: {"run_ids":["..."]}.
Result<std::vector<std::string>> ParseRunIds(std::string_view body);

// Appends a tuple's JSON to `out`.
void AppendTupleJson(const CheckpointTuple& tuple, std::string& out);

}  // namespace agentstate::server
