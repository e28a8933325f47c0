#pragma once

#include "http/router.h"
#include "http/server.h"
#include "services/common/runtime.h"

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace inkwell::storage {
class Database;
}

namespace inkwell::services {

// One service's HTTP face: its router and listener, configured from INKWELL_<NAME>_HOST/_PORT,
// with the operational routes every service has (/health, /metrics, /version).
class ServiceHost {
 public:
  /// A health check of one dependency: "ok", "down", "embedded" (in-process), "none" (unused).
  using Check = std::function<boost::asio::awaitable<std::string>()>;

  /// Reads this service's listener settings; throws ConfigError on bad values.
  ServiceHost(Runtime& runtime, std::string name, std::uint16_t default_port,
              const std::string& default_host = "127.0.0.1");
  ~ServiceHost();

  http::Router& router() { return router_; }
  Runtime& runtime() { return runtime_; }
  const std::string& name() const { return name_; }

  /// Replaces the default /health body (database, kafka, redis checks) with a custom one, as
  /// the gateway's aggregate. The function returns the body and whether the service is healthy.
  using HealthReport =
      std::function<boost::asio::awaitable<std::pair<boost::json::object, bool>>()>;
  void set_health_report(HealthReport report) { health_report_ = std::move(report); }
  void set_database(storage::Database* database) { database_ = database; }
  /// The event bus's state for /health ("ok", "down", "embedded"); may block briefly, so it
  /// runs on the blocking pool.
  void set_bus_health(std::function<std::string()> check) { bus_health_ = std::move(check); }

  /// This service's own checks: database, kafka, redis, uptime.
  boost::asio::awaitable<std::pair<boost::json::object, bool>> default_health();

  /// Registers the operational routes and starts listening; returns the bound port.
  std::uint16_t start();
  /// Stops accepting, lets in-flight requests finish within the runtime's grace period.
  void stop();

 private:
  void add_operational_routes();

  Runtime& runtime_;
  std::string name_;
  http::Router router_;
  std::unique_ptr<http::Server> server_;
  HealthReport health_report_;
  storage::Database* database_ = nullptr;
  std::function<std::string()> bus_health_;
  std::uint64_t metrics_id_ = 0;
};

/// Probes a TCP dependency (host:port[,host:port]) by connecting, optionally sending `hello` and
/// expecting a reply starting with `expect`: "ok" or "down".
boost::asio::awaitable<std::string> probe_tcp(std::string host_ports, std::string hello,
                                              std::string expect,
                                              std::chrono::milliseconds timeout);

}  // namespace inkwell::services
