#include "services/gateway/gateway_service.h"

#include "base/error.h"
#include "base/json.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cctype>

namespace inkwell::services::gateway {

namespace asio = boost::asio;

GatewayService::GatewayService(Runtime& runtime,
                               const std::vector<std::pair<std::string, std::uint16_t>>& upstreams)
    : host_(runtime, std::string(kName), kDefaultPort, "0.0.0.0") {
  for (const auto& [name, port] : upstreams) {
    std::string variable = "INKWELL_" + name + "_URL";
    std::transform(variable.begin(), variable.end(), variable.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    auto url = runtime.settings.url(variable, "http://127.0.0.1:" + std::to_string(port), {"http"});
    upstreams_.emplace_back(name, *url);
  }
  host_.set_health_report([this] { return aggregate_health(); });
}

// Parameters by value: the coroutine outlives the loop iteration that started it.
asio::awaitable<boost::json::value> GatewayService::upstream_health(
    std::string url, std::chrono::steady_clock::time_point deadline) {
  try {
    auto response = co_await host_.runtime().client.get(url, "/health", "", deadline);
    auto parsed = json::try_parse(response.body());
    if (parsed && parsed->is_object()) co_return *parsed;
    co_return boost::json::object{{"status", "down"}, {"error", "malformed health response"}};
  } catch (const ApiError& error) {
    co_return boost::json::object{{"status", "down"}, {"error", error.what()}};
  }
}

asio::awaitable<std::pair<boost::json::object, bool>> GatewayService::aggregate_health() {
  constexpr std::chrono::milliseconds kBudget{2'000};
  const auto deadline = std::chrono::steady_clock::now() + kBudget;
  auto executor = co_await asio::this_coro::executor;

  // Ask every service at once; one slow service costs the budget once, not once per service.
  using Op = decltype(asio::co_spawn(executor, std::declval<asio::awaitable<boost::json::value>>(),
                                     asio::deferred));
  std::vector<Op> calls;
  for (const auto& [name, url] : upstreams_) {
    calls.push_back(asio::co_spawn(executor, upstream_health(url, deadline), asio::deferred));
  }
  auto [order, errors, results] =
      co_await asio::experimental::make_parallel_group(std::move(calls))
          .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
  (void)order;

  auto [body, healthy] = co_await host_.default_health();
  boost::json::object services;
  for (std::size_t i = 0; i < upstreams_.size(); ++i) {
    boost::json::value result = errors[i]
                                    ? boost::json::value(boost::json::object{{"status", "down"}})
                                    : std::move(results[i]);
    const auto* status = result.as_object().if_contains("status");
    healthy = healthy && status != nullptr && status->is_string() && status->get_string() == "ok";
    services[upstreams_[i].first] = std::move(result);
  }
  body["services"] = std::move(services);
  co_return std::pair{std::move(body), healthy};
}

}  // namespace inkwell::services::gateway
