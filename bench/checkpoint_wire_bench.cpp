// How value bytes travel on agentstated's checkpoint routes: base64 in JSON, measured
// against the floor of any binary framing, one copy of the same bytes (BM_CopyAnchor), in the
// same run. range(0): the value's size, LangGraph's small, large and enterprise states
// (about 300 B, 8 KB and 30 KB). docs/benchmarks.md ("Checkpoint values on the wire") has
// the figures and docs/langgraph.md the choice they support.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>

#include "core/base64.hpp"
#include "server/checkpoint_wire.hpp"

namespace {

using namespace agentstate;

// A serde value of `n` bytes: JSON text, as LangGraph's JsonPlusSerializer writes it.
std::string Value(std::size_t n) {
  std::mt19937 rng(7);
  std::string v = "[";
  while (v.size() + 12 < n) v += "\"msg-" + std::to_string(rng() % 100000) + "\",";
  v.back() = ']';
  return v;
}

std::string PutBody(const std::string& value) {
  return R"({"parent_id":"1ef0","checkpoint":{"v":4,"id":"1ef1","ts":"2026-12-02T07:00:00Z",)"
         R"("channel_versions":{"messages":3},"versions_seen":{}},"metadata":{"source":"loop",)"
         R"("step":3,"parents":{}},"values":[{"channel":"messages","version":"3","type":"json",)"
         R"("bytes":")" +
         core::Base64Encode(value) + R"("}]})";
}

void BM_CopyAnchor(benchmark::State& state) {
  const std::string value = Value(static_cast<std::size_t>(state.range(0)));
  std::string out(value.size(), '\0');
  for (auto _ : state) {
    std::memcpy(out.data(), value.data(), value.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * value.size()));
}

// The server's side of a put: the whole body parsed and the value decoded.
void BM_ParsePut(benchmark::State& state) {
  const std::string value = Value(static_cast<std::size_t>(state.range(0)));
  const std::string body = PutBody(value);
  for (auto _ : state) {
    auto put = server::ParseCheckpointPut(body);
    if (!put || put->values.at(0).value.bytes != value) state.SkipWithError("bad parse");
    benchmark::DoNotOptimize(put);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * value.size()));
  state.counters["wire_bytes_per_value_byte"] =
      static_cast<double>(body.size()) / static_cast<double>(value.size());
}

// The server's side of a read: a tuple with the value written as JSON.
void BM_WriteTuple(benchmark::State& state) {
  const std::string value = Value(static_cast<std::size_t>(state.range(0)));
  CheckpointTuple t{"thread-1",
                    "",
                    "1ef1",
                    "1ef0",
                    R"({"v":4,"channel_versions":{"messages":3}})",
                    R"({"source":"loop"})",
                    {{"messages", "3", {"json", value}}},
                    {}};
  for (auto _ : state) {
    std::string out;
    server::AppendTupleJson(t, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * value.size()));
}

BENCHMARK(BM_CopyAnchor)->Arg(300)->Arg(8 << 10)->Arg(30 << 10);
BENCHMARK(BM_ParsePut)->Arg(300)->Arg(8 << 10)->Arg(30 << 10);
BENCHMARK(BM_WriteTuple)->Arg(300)->Arg(8 << 10)->Arg(30 << 10);

}  // namespace
