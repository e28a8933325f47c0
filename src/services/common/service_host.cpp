#include "services/common/service_host.h"

#include "base/log.h"
#include "storage/database.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <thread>

namespace inkwell::services {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string_view version() {
  return INKWELL_VERSION;
}

namespace {

std::string upper(std::string_view name) {
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

http::ServerOptions server_options(const Settings& settings, const std::string& name,
                                   std::uint16_t default_port, const std::string& default_host) {
  const std::string prefix = "INKWELL_" + upper(name) + "_";
  http::ServerOptions options;
  options.service = name;
  options.host = settings.text(prefix + "HOST", default_host);
  boost::system::error_code ec;
  (void)asio::ip::make_address(options.host, ec);
  if (ec) throw ConfigError(prefix + "HOST", "must be an IP address such as 127.0.0.1 or 0.0.0.0");
  options.port = settings.port(prefix + "PORT", default_port);
  options.max_body_bytes = static_cast<std::size_t>(
      settings.integer("INKWELL_MAX_BODY_BYTES", 1024 * 1024, 1024, 1024LL * 1024 * 1024));
  options.header_timeout =
      settings.millis("INKWELL_HEADER_TIMEOUT_MS", std::chrono::milliseconds(10'000),
                      std::chrono::milliseconds(100));
  options.request_timeout =
      settings.millis("INKWELL_REQUEST_TIMEOUT_MS", std::chrono::milliseconds(30'000),
                      std::chrono::milliseconds(100));
  options.access_log = settings.boolean("INKWELL_ACCESS_LOG", true);
  return options;
}

}  // namespace

ServiceHost::ServiceHost(Runtime& runtime, std::string name, std::uint16_t default_port,
                         const std::string& default_host)
    : runtime_(runtime), name_(std::move(name)) {
  server_ = std::make_unique<http::Server>(
      runtime_.io, server_options(runtime_.settings, name_, default_port, default_host), router_);
}

ServiceHost::~ServiceHost() {
  if (metrics_id_ != 0) runtime_.metrics.remove(metrics_id_);
}

void ServiceHost::add_operational_routes() {
  router_.add(http::Method::get, "/health",
              [this](http::Context&) -> asio::awaitable<http::Response> {
                std::pair<boost::json::object, bool> report;
                if (health_report_) {
                  report = co_await health_report_();
                } else {
                  report = co_await default_health();
                }
                auto& [body, healthy] = report;
                body["status"] = healthy ? "ok" : "degraded";
                co_return http::json_response(
                    healthy ? http::Status::ok : http::Status::service_unavailable, body);
              });
  router_.add(http::Method::get, "/metrics",
              [this](http::Context&) -> asio::awaitable<http::Response> {
                co_return http::text_response(http::Status::ok, "text/plain; version=0.0.4",
                                              runtime_.metrics.render());
              });
  // Fixed bytes per service: build identification for operators and a baseline benchmark route.
  const std::string version_body = R"({"name":"inkwell","service":")" + name_ + R"(","version":")" +
                                   std::string(version()) + R"("})";
  router_.add(http::Method::get, "/version",
              [version_body](http::Context&) -> asio::awaitable<http::Response> {
                co_return http::text_response(http::Status::ok, "application/json", version_body);
              });
}

asio::awaitable<std::pair<boost::json::object, bool>> ServiceHost::default_health() {
  boost::json::object body;
  bool healthy = true;
  if (database_ != nullptr) {
    storage::Database* database = database_;
    bool up = false;
    try {
      up = co_await runtime_.blocking.run([database] { return database->ping(); });
    } catch (const std::exception&) {
      up = false;
    }
    body["database"] = up ? "ok" : "down";
    healthy = healthy && up;
  } else {
    body["database"] = "none";
  }
  constexpr std::chrono::milliseconds kProbeTimeout{1'000};
  if (bus_health_) {
    std::string state;
    try {
      state = co_await runtime_.blocking.run([this] { return bus_health_(); });
    } catch (const std::exception&) {
      state = "down";
    }
    healthy = healthy && state != "down";
    body["kafka"] = state;
  } else if (const auto& brokers = runtime_.kafka_brokers) {
    auto state = co_await probe_tcp(*brokers, "", "", kProbeTimeout);
    healthy = healthy && state == "ok";
    body["kafka"] = state;
  } else {
    body["kafka"] = "embedded";
  }
  if (const auto& redis = runtime_.redis_url) {
    auto url = boost::urls::parse_absolute_uri(*redis);
    std::string target =
        url ? std::string(url->host()) + ":" + (url->has_port() ? std::string(url->port()) : "6379")
            : "";
    auto state = co_await probe_tcp(target, "PING\r\n", "+PONG", kProbeTimeout);
    healthy = healthy && state == "ok";
    body["redis"] = state;
  } else {
    body["redis"] = "embedded";
  }
  const auto uptime = std::chrono::steady_clock::now() - runtime_.started;
  body["uptime"] = std::chrono::duration_cast<std::chrono::seconds>(uptime).count();
  body["service"] = name_;
  co_return std::pair{std::move(body), healthy};
}

std::uint16_t ServiceHost::start() {
  add_operational_routes();
  metrics_id_ = runtime_.metrics.add([this](metrics::Exposition& out) { server_->collect(out); });
  const auto port = server_->start();
  log::info("listening",
            {{"service", name_},
             {"host", server_->options().host},
             {"port", port},
             {"url", "http://" + server_->options().host + ":" + std::to_string(port)}});
  return port;
}

void ServiceHost::stop() {
  server_->stop();
  const auto deadline = std::chrono::steady_clock::now() + runtime_.shutdown_grace;
  // Shutdown only: poll the connection count so in-flight requests can finish.
  while (server_->open_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (server_->open_connections() > 0) {
    log::warn("shutdown grace period ended with connections open",
              {{"service", name_}, {"open", server_->open_connections()}});
  }
}

asio::awaitable<std::string> probe_tcp(std::string host_ports, std::string hello,
                                       std::string expect, std::chrono::milliseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  const auto first = host_ports.substr(0, host_ports.find(','));
  const auto colon = first.rfind(':');
  if (colon == std::string::npos) co_return "down";
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  tcp::socket socket(executor);
  asio::steady_timer timer(executor, timeout);
  auto attempt = [&]() -> asio::awaitable<bool> {
    auto [resolve_error, endpoints] = co_await resolver.async_resolve(
        first.substr(0, colon), first.substr(colon + 1), asio::as_tuple(asio::use_awaitable));
    if (resolve_error) co_return false;
    auto [connect_error, endpoint] =
        co_await asio::async_connect(socket, endpoints, asio::as_tuple(asio::use_awaitable));
    if (connect_error) co_return false;
    if (hello.empty()) co_return true;
    auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(hello),
                                                             asio::as_tuple(asio::use_awaitable));
    if (write_error) co_return false;
    std::string reply(expect.size(), '\0');
    auto [read_error, read] =
        co_await asio::async_read(socket, asio::buffer(reply), asio::as_tuple(asio::use_awaitable));
    co_return !read_error && reply == expect;
  };
  auto outcome = co_await (attempt() || timer.async_wait(asio::use_awaitable));
  co_return (outcome.index() == 0 && std::get<0>(outcome)) ? "ok" : "down";
}

}  // namespace inkwell::services
