#include "load/measure/sampler.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace agentstate::load {

double ResourceSampler::CurrentRssMb() {
  std::ifstream f("/proc/self/statm");
  long pages_total = 0, pages_rss = 0;
  f >> pages_total >> pages_rss;
  return static_cast<double>(pages_rss) * static_cast<double>(sysconf(_SC_PAGESIZE)) /
         (1024.0 * 1024.0);
}

namespace {

// utime + stime of a /proc stat file, in seconds.
double StatCpuSeconds(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  // Fields after the command name (which may hold spaces) start after the last ')'.
  auto pos = line.rfind(')');
  if (pos == std::string::npos) return 0;
  std::istringstream in(line.substr(pos + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

double ResourceSampler::ProcessCpuSeconds() { return StatCpuSeconds("/proc/self/stat"); }

double ResourceSampler::ThreadCpuSeconds(int tid) {
  return StatCpuSeconds("/proc/self/task/" + std::to_string(tid) + "/stat");
}

// Time the thread ran plus time it waited in the run queue for a core (schedstat, in ns):
// how long it wanted a core. Unlike CPU time alone it reaches 100 % of the elapsed time for
// a thread that is never idle even when other processes take the cores. Falls back to CPU
// time where the kernel has no schedstat.
double ResourceSampler::ThreadBusySeconds(int tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/schedstat");
  double run_ns = 0, wait_ns = 0;
  if (in >> run_ns >> wait_ns) return (run_ns + wait_ns) / 1e9;
  return ThreadCpuSeconds(tid);
}

ResourceSampler::ResourceSampler(std::chrono::milliseconds interval) : interval_(interval) {}

ResourceSampler::~ResourceSampler() { Stop(); }

void ResourceSampler::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  start_ = last_t_ = std::chrono::steady_clock::now();
  last_cpu_s_ = start_cpu_s_ = ProcessCpuSeconds();
  if (watched_tid_) {
    last_thread_cpu_s_ = start_thread_cpu_s_ = ThreadCpuSeconds(watched_tid_);
    last_thread_busy_s_ = start_thread_busy_s_ = ThreadBusySeconds(watched_tid_);
  }
  peak_rss_mb_ = CurrentRssMb();
  thread_ = std::thread([this] { Loop(); });
}

void ResourceSampler::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  TakeSample();
}

void ResourceSampler::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (cv_.wait_for(lock, interval_, [this] { return stop_; })) break;
    lock.unlock();
    TakeSample();
    lock.lock();
  }
}

void ResourceSampler::TakeSample() {
  auto now = std::chrono::steady_clock::now();
  double rss = CurrentRssMb();
  double cpu = ProcessCpuSeconds();
  double thread_cpu = watched_tid_ ? ThreadCpuSeconds(watched_tid_) : 0;
  double thread_busy = watched_tid_ ? ThreadBusySeconds(watched_tid_) : 0;
  std::map<std::string, double> store =
      store_probe_ ? store_probe_() : std::map<std::string, double>();
  std::lock_guard lock(mu_);
  double dt = std::chrono::duration<double>(now - last_t_).count();
  peak_rss_mb_ = std::max(peak_rss_mb_, rss);
  // The sample at Stop can come milliseconds after the last one: too short for /proc's
  // 10 ms CPU ticks to mean anything, so it adds its RSS to the peak and nothing else.
  if (!samples_.empty() && dt < std::chrono::duration<double>(interval_).count() / 4) return;
  ResourceSample s;
  s.t_s = std::chrono::duration<double>(now - start_).count();
  s.rss_mb = rss;
  s.cpu_percent = dt > 0 ? 100.0 * (cpu - last_cpu_s_) / dt : 0;
  s.thread_cpu_percent =
      dt > 0 && watched_tid_ ? 100.0 * (thread_cpu - last_thread_cpu_s_) / dt : 0;
  s.store = std::move(store);
  last_t_ = now;
  last_cpu_s_ = cpu;
  last_thread_cpu_s_ = thread_cpu;
  last_thread_busy_s_ = thread_busy;
  peak_rss_mb_ = std::max(peak_rss_mb_, rss);
  samples_.push_back(s);
  if (samples_.size() >= kMaxSamples) {
    std::vector<ResourceSample> half;
    half.reserve(samples_.size() / 2 + 1);
    for (std::size_t i = 0; i < samples_.size(); i += 2) half.push_back(samples_[i]);
    samples_ = std::move(half);
    interval_ *= 2;
  }
}

std::vector<ResourceSample> ResourceSampler::Samples() const {
  std::lock_guard lock(mu_);
  return samples_;
}

double ResourceSampler::PeakRssMb() const {
  std::lock_guard lock(mu_);
  return peak_rss_mb_;
}

// Means over the whole span (CPU seconds used / seconds elapsed), not means of the
// samples: /proc counts in 10 ms ticks, so a sample over a few milliseconds (the last one,
// taken at Stop) can read several hundred percent.
double ResourceSampler::MeanCpuPercent() const {
  std::lock_guard lock(mu_);
  const double elapsed = std::chrono::duration<double>(last_t_ - start_).count();
  return elapsed > 0 ? 100.0 * (last_cpu_s_ - start_cpu_s_) / elapsed : 0;
}

double ResourceSampler::MeanThreadBusyPercent() const {
  std::lock_guard lock(mu_);
  const double elapsed = std::chrono::duration<double>(last_t_ - start_).count();
  return elapsed > 0 && watched_tid_
             ? 100.0 * (last_thread_busy_s_ - start_thread_busy_s_) / elapsed
             : 0;
}

double ResourceSampler::MeanThreadCpuPercent() const {
  std::lock_guard lock(mu_);
  const double elapsed = std::chrono::duration<double>(last_t_ - start_).count();
  return elapsed > 0 && watched_tid_ ? 100.0 * (last_thread_cpu_s_ - start_thread_cpu_s_) / elapsed
                                     : 0;
}

Trend RssTrend(const std::vector<ResourceSample>& samples) {
  Trend t;
  t.samples = samples.size();
  if (samples.size() < 3) return t;
  double n = static_cast<double>(samples.size()), mx = 0, my = 0;
  for (const auto& s : samples) {
    mx += s.t_s;
    my += s.rss_mb;
  }
  mx /= n;
  my /= n;
  double sxx = 0, sxy = 0;
  for (const auto& s : samples) {
    sxx += (s.t_s - mx) * (s.t_s - mx);
    sxy += (s.t_s - mx) * (s.rss_mb - my);
  }
  if (sxx <= 0) return t;
  double slope = sxy / sxx;
  double sse = 0;
  for (const auto& s : samples) {
    double e = s.rss_mb - (my + slope * (s.t_s - mx));
    sse += e * e;
  }
  double se = std::sqrt(sse / (n - 2) / sxx);
  t.mb_per_hour = slope * 3600.0;
  t.stderr_mb_per_hour = se * 3600.0;
  return t;
}

}  // namespace agentstate::load
