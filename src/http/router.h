#pragma once

#include "base/metrics.h"
#include "http/context.h"
#include "http/types.h"

#include <boost/asio/awaitable.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace inkwell::http {

using Handler = std::function<boost::asio::awaitable<Response>(Context&)>;

// Request counts by status and a latency histogram for one route and method.
class RouteStats {
 public:
  void record(unsigned status, double seconds) noexcept;
  void collect(metrics::Exposition& out, std::string_view service, std::string_view method,
               std::string_view route) const;

 private:
  static constexpr unsigned kFirstStatus = 100;
  static constexpr unsigned kLastStatus = 599;
  std::array<std::atomic<std::uint64_t>, kLastStatus - kFirstStatus + 1> by_status_{};
  metrics::Histogram latency_;
};

// Maps a method and a path to a handler through path templates such as /posts/{id}/comments.
// Literal segments win over parameters; routes are fixed before the server starts.
class Router {
 public:
  struct Route {
    Method method;
    std::string pattern;
    std::vector<std::string> segments;  // "{name}" marks a parameter
    Handler handler;
    std::unique_ptr<RouteStats> stats = std::make_unique<RouteStats>();
  };

  struct Match {
    enum class Kind { found, not_found, method_not_allowed } kind = Kind::not_found;
    const Route* route = nullptr;
    Context::Params params;
    std::string allowed;  // for 405: "GET, POST"
  };

  /// Throws std::invalid_argument for a malformed pattern or a duplicate route.
  void add(Method method, std::string_view pattern, Handler handler);
  Match match(Method method, std::string_view path) const;

  /// Stats for requests that matched no route (404/405), kept apart so a scan of random paths
  /// cannot grow the label space.
  RouteStats& unmatched_stats() const { return *unmatched_; }
  void collect(metrics::Exposition& out, std::string_view service) const;

 private:
  std::vector<Route> routes_;
  std::unique_ptr<RouteStats> unmatched_ = std::make_unique<RouteStats>();
};

}  // namespace inkwell::http
