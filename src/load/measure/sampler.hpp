// Samples the harness's own RSS and CPU from /proc once per interval on a thread of its own.
// Memory is bounded: past kMaxSamples it halves its resolution (keeps every other sample and
// doubles the interval), so a 24 h soak stays small.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace agentstate::load {

struct ResourceSample {
  double t_s = 0;  // seconds since Start()
  double rss_mb = 0;
  double cpu_percent = 0;         // of one core, over the preceding interval
  double thread_cpu_percent = 0;  // the watched thread's share of one core (see WatchThread)
  // Store-side figures at the same instant (see WatchStore): queue depths, connections,
  // and for server backends the server's RSS, CPU and counters.
  std::map<std::string, double> store;
};

// Least-squares slope of RSS over time with its standard error, for leak detection.
struct Trend {
  double mb_per_hour = 0;
  double stderr_mb_per_hour = 0;
  std::size_t samples = 0;
};
Trend RssTrend(const std::vector<ResourceSample>& samples);

class ResourceSampler {
 public:
  static constexpr std::size_t kMaxSamples = 20000;

  explicit ResourceSampler(std::chrono::milliseconds interval = std::chrono::seconds(1));
  ~ResourceSampler();
  ResourceSampler(const ResourceSampler&) = delete;
  ResourceSampler& operator=(const ResourceSampler&) = delete;

  // Also samples this thread's CPU (a Linux tid): the harness's executor thread, whose
  // saturation means the generator, not the store, set the pace. Call before Start().
  void WatchThread(int tid) { watched_tid_ = tid; }
  // Also records what `probe` returns with every sample: backends fill it through
  // StateStore::Stats(), which must be cheap and non-blocking. Call before Start().
  void WatchStore(std::function<std::map<std::string, double>()> probe) {
    store_probe_ = std::move(probe);
  }

  void Start();
  void Stop();  // takes a last sample; idempotent

  std::vector<ResourceSample> Samples() const;
  double PeakRssMb() const;
  double MeanCpuPercent() const;
  double MeanThreadCpuPercent() const;
  // The watched thread's run time plus run-queue wait over the elapsed time: 100 % means it
  // was never idle, whether or not it got a core (other processes may have had them).
  double MeanThreadBusyPercent() const;

  static double CurrentRssMb();             // /proc/self/statm
  static double ProcessCpuSeconds();        // /proc/self/stat utime + stime
  static double ThreadCpuSeconds(int tid);  // /proc/self/task/<tid>/stat
  static double ThreadBusySeconds(
      int tid);  // /proc/self/task/<tid>/schedstat: run + run-queue wait

 private:
  void Loop();
  void TakeSample();

  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
  std::vector<ResourceSample> samples_;
  double peak_rss_mb_ = 0;
  std::chrono::steady_clock::time_point start_{}, last_t_{};
  double last_cpu_s_ = 0, start_cpu_s_ = 0;
  double start_thread_cpu_s_ = 0;
  int watched_tid_ = 0;
  std::function<std::map<std::string, double>()> store_probe_;
  double last_thread_cpu_s_ = 0;
  double start_thread_busy_s_ = 0, last_thread_busy_s_ = 0;
};

}  // namespace agentstate::load
