#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace inkwell::metrics {

// A monotonically increasing count, safe to bump from any thread.
class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// A latency histogram in seconds with fixed buckets, lock-free to observe.
class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
  void observe(double seconds) noexcept;
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum() const noexcept;
  /// Cumulative count of observations <= kBounds[i].
  std::uint64_t cumulative(std::size_t bucket) const noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size()> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_nanos_{0};
};

// Collects samples from every collector and renders them as Prometheus text, one family
// (HELP, TYPE, samples) at a time.
class Exposition {
 public:
  using Labels = std::vector<std::pair<std::string_view, std::string_view>>;
  void counter(std::string_view name, std::string_view help, const Labels& labels, double value);
  void gauge(std::string_view name, std::string_view help, const Labels& labels, double value);
  void histogram(std::string_view name, std::string_view help, const Labels& labels,
                 const Histogram& histogram);
  std::string text() const;

 private:
  struct Family {
    std::string type;
    std::string help;
    std::string samples;
  };
  Family& family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::string_view type, std::string_view help,
              const Labels& labels, double value);

  std::vector<std::pair<std::string, Family>> families_;
};

// The process's metric sources; each service and subsystem adds a collector once at start-up.
class Registry {
 public:
  using Collector = std::function<void(Exposition&)>;
  /// Returns an id for remove().
  std::uint64_t add(Collector collector);
  void remove(std::uint64_t id);
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, Collector> collectors_;  // guarded by mutex_
  std::uint64_t next_id_ = 1;                      // guarded by mutex_
};

/// Resident set size of this process in bytes (from /proc/self/statm), 0 when unknown.
std::uint64_t resident_memory_bytes();

}  // namespace inkwell::metrics
