#pragma once

#include "services/common/service_host.h"

#include <string>
#include <utility>
#include <vector>

namespace inkwell::services::gateway {

// The public entry point. For now it answers the operational routes and aggregates the health of
// every service behind it; routing, JWT checks and rate limits arrive with the gateway issue.
class GatewayService {
 public:
  static constexpr std::string_view kName = "gateway";
  static constexpr std::uint16_t kDefaultPort = 8080;

  /// `upstreams` are (service name, default port); each URL comes from INKWELL_<NAME>_URL.
  GatewayService(Runtime& runtime,
                 const std::vector<std::pair<std::string, std::uint16_t>>& upstreams);

  void start() { host_.start(); }
  void stop() { host_.stop(); }

 private:
  boost::asio::awaitable<std::pair<boost::json::object, bool>> aggregate_health();
  boost::asio::awaitable<boost::json::value> upstream_health(
      std::string url, std::chrono::steady_clock::time_point deadline);

  ServiceHost host_;
  std::vector<std::pair<std::string, std::string>> upstreams_;  // name, base URL
};

}  // namespace inkwell::services::gateway
