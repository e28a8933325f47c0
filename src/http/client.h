#pragma once

#include "base/metrics.h"
#include "http/types.h"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace inkwell::http {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds idle_timeout{4'000};  // below the servers' keep-alive limit
  std::size_t max_idle_per_upstream = 64;
  std::size_t max_response_bytes = 16 * 1024 * 1024;
};

// Service-to-service HTTP/1.1 calls over a keep-alive connection pool per upstream, with
// connect and request timeouts and the caller's correlation id forwarded. Failures become
// ApiError 502 (unreachable or broken upstream) or 504 (timed out). A connection is reused only
// by coroutines on the I/O context it was opened on, so it never crosses threads.
class HttpClient {
 public:
  explicit HttpClient(ClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Sends `request` (its target is the path and query) to `base_url` (http://host:port).
  /// The deadline, when given, bounds the whole call below the configured timeout.
  boost::asio::awaitable<Response> send(
      std::string_view base_url, Request request, std::string_view correlation_id,
      std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

  /// Convenience: GET base_url + target.
  boost::asio::awaitable<Response> get(
      std::string_view base_url, std::string_view target, std::string_view correlation_id,
      std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

  void collect(metrics::Exposition& out) const;

 private:
  class Pool;
  Pool& pool_for(std::string_view base_url);

  ClientOptions options_;
  mutable std::mutex pools_mutex_;
  std::map<std::string, std::unique_ptr<Pool>, std::less<>> pools_;  // guarded by pools_mutex_
};

}  // namespace inkwell::http
