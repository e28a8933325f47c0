#include "base/metrics.h"

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

namespace inkwell::metrics {
namespace {

void append_escaped(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

void append_labels(std::string& out, const Exposition::Labels& labels,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out.push_back('{');
  bool first = true;
  auto one = [&](std::string_view name, std::string_view value) {
    if (!first) out.push_back(',');
    first = false;
    out += name;
    out += "=\"";
    append_escaped(out, value);
    out.push_back('"');
  };
  for (const auto& [name, value] : labels) one(name, value);
  if (!extra_name.empty()) one(extra_name, extra_value);
  out.push_back('}');
}

void append_number(std::string& out, double value) {
  char buffer[32];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.9g", value);
  }
  out += buffer;
}

}  // namespace

void Histogram::observe(double seconds) noexcept {
  const auto it = std::lower_bound(kBounds.begin(), kBounds.end(), seconds);
  if (it != kBounds.end()) {
    buckets_[static_cast<std::size_t>(it - kBounds.begin())].fetch_add(1,
                                                                       std::memory_order_relaxed);
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  const double nanos = std::max(0.0, seconds) * 1e9;
  sum_nanos_.fetch_add(static_cast<std::uint64_t>(nanos), std::memory_order_relaxed);
}

double Histogram::sum() const noexcept {
  return static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) / 1e9;
}

std::uint64_t Histogram::cumulative(std::size_t bucket) const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bucket && i < buckets_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
  }
  return total;
}

Exposition::Family& Exposition::family(std::string_view name, std::string_view type,
                                       std::string_view help) {
  for (auto& [existing, family] : families_) {
    if (existing == name) return family;
  }
  families_.emplace_back(std::string(name), Family{std::string(type), std::string(help), {}});
  return families_.back().second;
}

void Exposition::sample(std::string_view name, std::string_view type, std::string_view help,
                        const Labels& labels, double value) {
  auto& out = family(name, type, help).samples;
  out += name;
  append_labels(out, labels);
  out.push_back(' ');
  append_number(out, value);
  out.push_back('\n');
}

void Exposition::counter(std::string_view name, std::string_view help, const Labels& labels,
                         double value) {
  sample(name, "counter", help, labels, value);
}

void Exposition::gauge(std::string_view name, std::string_view help, const Labels& labels,
                       double value) {
  sample(name, "gauge", help, labels, value);
}

void Exposition::histogram(std::string_view name, std::string_view help, const Labels& labels,
                           const Histogram& histogram) {
  auto& out = family(name, "histogram", help).samples;
  char bound[32];
  for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    std::snprintf(bound, sizeof bound, "%g", Histogram::kBounds[i]);
    out += name;
    out += "_bucket";
    append_labels(out, labels, "le", bound);
    out.push_back(' ');
    append_number(out, static_cast<double>(histogram.cumulative(i)));
    out.push_back('\n');
  }
  const auto count = static_cast<double>(histogram.count());
  out += name;
  out += "_bucket";
  append_labels(out, labels, "le", "+Inf");
  out.push_back(' ');
  append_number(out, count);
  out.push_back('\n');
  out += name;
  out += "_sum";
  append_labels(out, labels);
  out.push_back(' ');
  append_number(out, histogram.sum());
  out.push_back('\n');
  out += name;
  out += "_count";
  append_labels(out, labels);
  out.push_back(' ');
  append_number(out, count);
  out.push_back('\n');
}

std::string Exposition::text() const {
  std::string out;
  for (const auto& [name, family] : families_) {
    out += "# HELP " + name + " " + family.help + "\n";
    out += "# TYPE " + name + " " + family.type + "\n";
    out += family.samples;
  }
  return out;
}

std::uint64_t Registry::add(Collector collector) {
  std::lock_guard lock(mutex_);
  const auto id = next_id_++;
  collectors_.emplace(id, std::move(collector));
  return id;
}

void Registry::remove(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  collectors_.erase(id);
}

std::string Registry::render() const {
  Exposition exposition;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, collector] : collectors_) collector(exposition);
  }
  exposition.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
                   static_cast<double>(resident_memory_bytes()));
  return exposition.text();
}

std::uint64_t resident_memory_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size_pages = 0;
  std::uint64_t resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) return 0;
  return resident_pages * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace inkwell::metrics
