// clickhouse://: the analytics tier (DESIGN §5), a sink over ClickHouse's HTTP interface.
// Never on the hot path: Record() appends to a bounded buffer and returns; a thread of the
// sink's own sends batches.
//
// Debian ships ClickHouse 18.16: MergeTree tables with plain types (no JSON type, no
// DateTime64, no TTL). Two tables, in the URI's database, named with its prefix:
//   <prefix>events        one row per store operation: time, session, op, run, user, bytes,
//                         latency, outcome
//   <prefix>runs_archive  one row per completed run, with its final state
// Batching: a batch goes out when `batch` rows are buffered or `flush` has passed since the
// last, whichever is first (each INSERT makes a part, and ClickHouse stalls inserts at 300
// parts). The buffer holds at most `buffer` rows; rows that do not fit are dropped, counted,
// and reported. A failed batch is retried (the server drops idle keep-alive connections
// after 3 s, so the first retry reconnects) and, after the last retry, dropped and counted.
//
// URI: clickhouse://[USER[:PASSWORD]@]HOST:PORT/DB[?prefix=agentstate_&batch=1000&flush=1s
//      &buffer=100000&timeout=5s]
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agentstate/model.hpp"
#include "agentstate/status.hpp"
#include "agentstate/tiered.hpp"

namespace agentstate::backends::clickhouse {

struct ChOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8123;
  std::string database = "default";
  std::string user, password;
  std::string prefix = "agentstate_";
  std::size_t batch_rows = 1000;
  std::chrono::milliseconds flush_interval{1000};
  std::size_t max_buffer = 100000;
  std::chrono::milliseconds timeout{5000};
  std::string redacted_uri;
};
Result<ChOptions> ParseChUri(std::string_view uri);

// The "op<TAB>value" rows of ClickHouse's TabSeparated answer to the analytics queries, by
// op. A line without a tab is skipped; a value that is not a finite number, or that is not
// a whole number in 0..2^63 when `whole`, is kInternal naming the row.
Result<std::map<std::string, double>> ParseOpRows(std::string_view text, bool whole);

struct Event {
  int64_t at_ms = 0;
  std::string op;  // "save", "load", ...
  std::string run_id;
  std::string user_id;
  uint64_t bytes = 0;
  uint64_t latency_us = 0;
  std::string outcome;  // "ok" or the status code's name
};

class AnalyticsSink final : public Analytics {
 public:
  // Reaches the server and creates the tables. kUnavailable names the URI without its
  // password and the command that starts the local services.
  static Result<std::unique_ptr<AnalyticsSink>> Open(std::string_view uri);
  // Sends what is buffered (bounded by the timeout), then stops.
  ~AnalyticsSink() override;

  void Record(Event e);
  void Archive(const StateRecord& completed, int64_t completed_at_ms);
  // The Analytics interface (agentstate/tiered.hpp): for this sink's session only.
  Status Flush() override;
  Result<std::map<std::string, uint64_t>> EventsByOp() override;
  Result<std::map<std::string, double>> OpsPerMinuteByOp() override;
  Result<std::map<std::string, double>> P99MsByOp() override;
  Result<uint64_t> ArchivedRuns() override;
  using Stats = Analytics::Counters;
  Stats stats() const override;
  std::string Describe() const override { return o_.redacted_uri; }
  const std::string& session() const { return session_; }

  explicit AnalyticsSink(ChOptions o);

 private:
  class Http;
  void Loop();
  // Sends up to one batch of each table; false when the server refused it after retries.
  bool SendBatch();
  Result<std::string> Query(const std::string& sql);

  ChOptions o_;
  std::string session_;
  std::unique_ptr<Http> http_;
  std::mutex http_mu_;  // one request at a time on the keep-alive connection
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> events_, archive_;  // TSV rows, guarded by mu_
  bool stop_ = false;
  std::atomic<uint64_t> recorded_{0}, sent_{0}, dropped_{0}, dropped_events_{0},
      in_doubt_events_{0}, batches_{0}, retries_{0}, failed_batches_{0}, archived_{0};
  std::atomic<bool> failing_{false};
  std::atomic<uint64_t> sending_{0};  // rows taken off the buffer whose INSERT has not finished
  std::thread thread_;
};

}  // namespace agentstate::backends::clickhouse
