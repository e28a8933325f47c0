#include "base/metrics.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace inkwell::metrics {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::size_t count_lines(const std::string& text, const std::string& line) {
  std::size_t n = 0;
  for (const auto& each : lines_of(text)) n += each == line ? 1 : 0;
  return n;
}

// The value of the sample line that starts with `series` followed by a space.
std::string sample_value(const std::string& text, const std::string& series) {
  for (const auto& line : lines_of(text)) {
    if (line.rfind(series + " ", 0) == 0) return line.substr(series.size() + 1);
  }
  return "<missing " + series + ">";
}

// Checks the text exposition format line by line: every line is a HELP, a TYPE or a sample,
// each family's HELP and TYPE appear once, before its samples, and samples of one family are
// contiguous.
void expect_valid_exposition(const std::string& text) {
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n') << "exposition must end with a newline";
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*)");
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")"
      R"((,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? )"
      R"(([-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN))");
  std::map<std::string, int> helps;
  std::map<std::string, int> types;
  std::string current;  // family whose samples may follow
  std::map<std::string, bool> closed;
  for (const auto& line : lines_of(text)) {
    std::smatch match;
    if (std::regex_match(line, match, kHelp)) {
      const std::string name = match[1];
      EXPECT_EQ(++helps[name], 1) << "HELP repeated for " << name << "\n" << text;
      if (!current.empty()) closed[current] = true;
      current = name;
    } else if (std::regex_match(line, match, kType)) {
      const std::string name = match[1];
      EXPECT_EQ(++types[name], 1) << "TYPE repeated for " << name << "\n" << text;
      EXPECT_EQ(name, current) << "TYPE must follow its HELP";
    } else if (std::regex_match(line, match, kSample)) {
      std::string name = match[1];
      EXPECT_FALSE(current.empty()) << "sample before any TYPE: " << line;
      EXPECT_EQ(name.rfind(current, 0), 0u)
          << "sample " << name << " outside its family " << current << "\n"
          << text;
      EXPECT_FALSE(closed[current]) << "family " << current << " split in two";
    } else {
      ADD_FAILURE() << "not a valid exposition line: [" << line << "]\n" << text;
    }
  }
}

TEST(Histogram, BucketsAreCumulativeAndInclusiveOfTheirBound) {
  Histogram histogram;
  histogram.observe(0.0001);  // first bucket
  histogram.observe(0.001);   // exactly on the 0.001 bound: counts as <= 0.001
  histogram.observe(0.003);   // 0.005 bucket
  histogram.observe(0.2);     // 0.25 bucket
  histogram.observe(10.0);    // last finite bucket
  histogram.observe(42.0);    // only in +Inf

  EXPECT_EQ(histogram.cumulative(0), 1u);   // <= 0.0005
  EXPECT_EQ(histogram.cumulative(1), 2u);   // <= 0.001
  EXPECT_EQ(histogram.cumulative(2), 2u);   // <= 0.0025
  EXPECT_EQ(histogram.cumulative(3), 3u);   // <= 0.005
  EXPECT_EQ(histogram.cumulative(7), 3u);   // <= 0.1
  EXPECT_EQ(histogram.cumulative(8), 4u);   // <= 0.25
  EXPECT_EQ(histogram.cumulative(12), 4u);  // <= 5
  EXPECT_EQ(histogram.cumulative(13), 5u);  // <= 10
  EXPECT_EQ(histogram.count(), 6u);
  EXPECT_NEAR(histogram.sum(), 0.0001 + 0.001 + 0.003 + 0.2 + 10.0 + 42.0, 1e-6);

  for (std::size_t i = 1; i < Histogram::kBounds.size(); ++i) {
    EXPECT_LE(histogram.cumulative(i - 1), histogram.cumulative(i)) << "bucket " << i;
  }
}

TEST(Histogram, EmptyHistogramIsAllZero) {
  Histogram histogram;
  EXPECT_EQ(histogram.count(), 0u);
  EXPECT_EQ(histogram.sum(), 0.0);
  EXPECT_EQ(histogram.cumulative(Histogram::kBounds.size() - 1), 0u);
}

TEST(Histogram, CountsEveryObservationFromManyThreads) {
  Histogram histogram;
  constexpr int kThreads = 4;
  constexpr int kEach = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&histogram] {
      for (int i = 0; i < kEach; ++i) histogram.observe(0.002);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(histogram.count(), static_cast<std::uint64_t>(kThreads * kEach));
  EXPECT_EQ(histogram.cumulative(1), 0u);
  EXPECT_EQ(histogram.cumulative(2), static_cast<std::uint64_t>(kThreads * kEach));
  EXPECT_NEAR(histogram.sum(), kThreads * kEach * 0.002, 1e-3);
}

TEST(Counter, AddsFromManyThreads) {
  Counter counter;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&counter] {
      for (int i = 0; i < 10000; ++i) counter.add();
    });
  }
  for (auto& thread : threads) thread.join();
  counter.add(5);
  EXPECT_EQ(counter.value(), 40005u);
}

TEST(Exposition, RendersHistogramSeries) {
  Histogram histogram;
  histogram.observe(0.003);
  histogram.observe(0.2);
  histogram.observe(30.0);
  Exposition exposition;
  exposition.histogram("http_request_duration_seconds", "Request latency.",
                       {{"route", "/posts/{id}"}}, histogram);
  const auto text = exposition.text();
  expect_valid_exposition(text);

  EXPECT_EQ(count_lines(text, "# HELP http_request_duration_seconds Request latency."), 1u);
  EXPECT_EQ(count_lines(text, "# TYPE http_request_duration_seconds histogram"), 1u);
  const std::string series = "http_request_duration_seconds";
  EXPECT_EQ(sample_value(text, series + R"(_bucket{route="/posts/{id}",le="0.0025"})"), "0");
  EXPECT_EQ(sample_value(text, series + R"(_bucket{route="/posts/{id}",le="0.005"})"), "1");
  EXPECT_EQ(sample_value(text, series + R"(_bucket{route="/posts/{id}",le="0.25"})"), "2");
  EXPECT_EQ(sample_value(text, series + R"(_bucket{route="/posts/{id}",le="10"})"), "2");
  EXPECT_EQ(sample_value(text, series + R"(_bucket{route="/posts/{id}",le="+Inf"})"), "3");
  EXPECT_EQ(sample_value(text, series + R"(_count{route="/posts/{id}"})"), "3");
  EXPECT_NEAR(std::stod(sample_value(text, series + R"(_sum{route="/posts/{id}"})")), 30.203, 1e-6);
  // One line per finite bound plus +Inf, _sum and _count.
  std::size_t samples = 0;
  for (const auto& line : lines_of(text)) samples += line.rfind(series, 0) == 0 ? 1 : 0;
  EXPECT_EQ(samples, Histogram::kBounds.size() + 3);
}

TEST(Exposition, WritesHelpAndTypeOncePerFamilyAcrossCollectors) {
  Registry registry;
  registry.add([](Exposition& out) {
    out.counter("inkwell_http_requests_total", "HTTP requests.", {{"service", "auth"}}, 3);
    out.gauge("inkwell_queue_depth", "Jobs waiting.", {{"pool", "db"}}, 2);
  });
  registry.add([](Exposition& out) {
    out.counter("inkwell_http_requests_total", "HTTP requests.", {{"service", "blog"}}, 5);
    out.gauge("inkwell_queue_depth", "Jobs waiting.", {{"pool", "hash"}}, 0);
  });
  const auto text = registry.render();
  expect_valid_exposition(text);

  EXPECT_EQ(count_lines(text, "# HELP inkwell_http_requests_total HTTP requests."), 1u);
  EXPECT_EQ(count_lines(text, "# TYPE inkwell_http_requests_total counter"), 1u);
  EXPECT_EQ(count_lines(text, "# HELP inkwell_queue_depth Jobs waiting."), 1u);
  EXPECT_EQ(count_lines(text, "# TYPE inkwell_queue_depth gauge"), 1u);
  EXPECT_EQ(sample_value(text, R"(inkwell_http_requests_total{service="auth"})"), "3");
  EXPECT_EQ(sample_value(text, R"(inkwell_http_requests_total{service="blog"})"), "5");
  EXPECT_EQ(sample_value(text, R"(inkwell_queue_depth{pool="db"})"), "2");
  EXPECT_EQ(sample_value(text, R"(inkwell_queue_depth{pool="hash"})"), "0");
}

TEST(Exposition, EscapesLabelValues) {
  Exposition exposition;
  exposition.counter("inkwell_errors_total", "Errors.",
                     {{"message", "say \"hi\"\nC:\\path"}, {"kind", "plain"}}, 1);
  const auto text = exposition.text();
  expect_valid_exposition(text);
  EXPECT_EQ(
      sample_value(text, R"(inkwell_errors_total{message="say \"hi\"\nC:\\path",kind="plain"})"),
      "1");
  EXPECT_EQ(lines_of(text).size(), 3u) << "a newline in a label value must not split the line";
}

TEST(Exposition, SamplesWithoutLabelsAndFractionalValues) {
  Exposition exposition;
  exposition.gauge("inkwell_up", "Whether the service is up.", {}, 1);
  exposition.gauge("inkwell_ratio", "A ratio.", {}, 0.25);
  const auto text = exposition.text();
  expect_valid_exposition(text);
  EXPECT_EQ(sample_value(text, "inkwell_up"), "1");
  EXPECT_EQ(sample_value(text, "inkwell_ratio"), "0.25");
}

TEST(Registry, RenderIncludesResidentMemory) {
  Registry registry;
  const auto text = registry.render();
  expect_valid_exposition(text);
  EXPECT_EQ(count_lines(text, "# TYPE process_resident_memory_bytes gauge"), 1u);
  const auto value = sample_value(text, "process_resident_memory_bytes");
  ASSERT_EQ(value.find_first_not_of("0123456789"), std::string::npos) << value;
  EXPECT_GT(std::stod(value), 0.0) << text;
  EXPECT_GT(resident_memory_bytes(), 0u);
}

TEST(Registry, RemoveDropsACollector) {
  Registry registry;
  const auto kept =
      registry.add([](Exposition& out) { out.counter("inkwell_kept_total", "Kept.", {}, 1); });
  const auto dropped = registry.add(
      [](Exposition& out) { out.counter("inkwell_dropped_total", "Dropped.", {}, 1); });
  EXPECT_NE(kept, dropped);
  ASSERT_NE(registry.render().find("inkwell_dropped_total"), std::string::npos);

  registry.remove(dropped);
  const auto text = registry.render();
  EXPECT_EQ(text.find("inkwell_dropped_total"), std::string::npos) << text;
  EXPECT_NE(text.find("inkwell_kept_total 1"), std::string::npos) << text;
  registry.remove(dropped);  // removing twice is harmless
  registry.remove(12345);    // so is an unknown id
  EXPECT_NE(registry.render().find("inkwell_kept_total 1"), std::string::npos);
}

}  // namespace
}  // namespace inkwell::metrics
