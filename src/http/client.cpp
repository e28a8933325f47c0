#include "http/client.h"

#include "base/error.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

#include <vector>

namespace inkwell::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// The idle keep-alive connections to one upstream, and its resolved address.
class HttpClient::Pool {
 public:
  struct Connection {
    std::unique_ptr<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
    Clock::time_point idle_since;
  };

  Pool(std::string name, std::string host, std::string port)
      : name_(std::move(name)), host_(std::move(host)), port_(std::move(port)) {}

  std::optional<Connection> take(const asio::any_io_executor& executor, Clock::time_point now,
                                 std::chrono::milliseconds idle_timeout) {
    std::lock_guard lock(mutex_);
    // Newest first; connections gone stale on the way are dropped.
    for (std::size_t i = idle_.size(); i-- > 0;) {
      const auto slot = idle_.begin() + static_cast<std::ptrdiff_t>(i);
      if (now - slot->idle_since >= idle_timeout || !slot->stream->socket().is_open()) {
        idle_.erase(slot);
      } else if (slot->stream->get_executor() == executor) {
        Connection connection = std::move(*slot);
        idle_.erase(slot);
        return connection;
      }
    }
    return std::nullopt;
  }

  void give_back(Connection&& connection, std::size_t max_idle) {
    connection.idle_since = Clock::now();
    std::lock_guard lock(mutex_);
    if (idle_.size() < max_idle) idle_.push_back(std::move(connection));
  }

  asio::awaitable<Connection> connect(const asio::any_io_executor& executor,
                                      Clock::time_point deadline) {
    auto stream = std::make_unique<beast::tcp_stream>(executor);
    tcp::resolver::results_type endpoints;
    {
      std::lock_guard lock(mutex_);
      endpoints = endpoints_;
    }
    if (endpoints.empty()) {
      tcp::resolver resolver(stream->get_executor());
      auto [error, resolved] = co_await resolver.async_resolve(host_, port_, kTuple);
      if (error) {
        throw ApiError(502, "upstream_unavailable", "cannot resolve upstream " + name_);
      }
      endpoints = resolved;
      std::lock_guard lock(mutex_);
      endpoints_ = endpoints;
    }
    stream->expires_at(deadline);
    auto [error, endpoint] = co_await stream->async_connect(endpoints, kTuple);
    if (error == beast::error::timeout) {
      throw ApiError(504, "upstream_timeout", "timed out connecting to upstream " + name_);
    }
    if (error) {
      std::lock_guard lock(mutex_);
      endpoints_ = {};  // resolve again next time: the address may have moved
      throw ApiError(502, "upstream_unavailable", "upstream " + name_ + " is unreachable");
    }
    boost::system::error_code ignored;
    stream->socket().set_option(tcp::no_delay(true), ignored);
    connections_made_.fetch_add(1, std::memory_order_relaxed);
    co_return Connection{std::move(stream), {}, Clock::now()};
  }

  const std::string& name() const { return name_; }
  const std::string& host() const { return host_; }
  std::uint64_t connections_made() const { return connections_made_.load(); }
  std::size_t idle_count() const {
    std::lock_guard lock(mutex_);
    return idle_.size();
  }

 private:
  std::string name_;
  std::string host_;
  std::string port_;
  std::atomic<std::uint64_t> connections_made_{0};
  mutable std::mutex mutex_;
  std::vector<Connection> idle_;           // guarded by mutex_
  tcp::resolver::results_type endpoints_;  // guarded by mutex_
};

namespace {

bool is_idempotent(Method method) {
  return method == Method::get || method == Method::head || method == Method::put ||
         method == Method::delete_ || method == Method::options;
}

}  // namespace

HttpClient::HttpClient(ClientOptions options) : options_(options) {}

HttpClient::~HttpClient() = default;

HttpClient::Pool& HttpClient::pool_for(std::string_view base_url) {
  std::lock_guard lock(pools_mutex_);
  if (auto it = pools_.find(base_url); it != pools_.end()) return *it->second;
  auto url = boost::urls::parse_absolute_uri(base_url);
  if (!url || url->scheme() != "http" || url->host().empty()) {
    throw std::invalid_argument("upstream URL must be http://host:port, got " +
                                std::string(base_url));
  }
  std::string port = url->has_port() ? std::string(url->port()) : "80";
  auto pool = std::make_unique<Pool>(std::string(base_url), std::string(url->host()), port);
  auto& ref = *pool;
  pools_.emplace(std::string(base_url), std::move(pool));
  return ref;
}

asio::awaitable<Response> HttpClient::send(std::string_view base_url, Request request,
                                           std::string_view correlation_id,
                                           std::optional<Clock::time_point> deadline) {
  Pool& pool = pool_for(base_url);
  const auto executor = co_await asio::this_coro::executor;
  const auto now = Clock::now();
  const auto limit =
      std::min(deadline.value_or(Clock::time_point::max()), now + options_.request_timeout);
  if (limit <= now) {
    throw ApiError(504, "upstream_timeout", "no time left to call upstream " + pool.name());
  }
  request.version(11);
  request.set(beast_http::field::host, pool.host());
  request.keep_alive(true);
  if (!correlation_id.empty()) request.set(kCorrelationHeader, correlation_id);
  request.prepare_payload();

  // A pooled connection the upstream already closed fails at once; such a failure is retried
  // on a fresh connection when nothing can have been applied twice.
  for (int attempt = 0;; ++attempt) {
    // No co_await inside a conditional expression: g++ 12 miscompiles it.
    auto reused =
        attempt == 0 ? pool.take(executor, Clock::now(), options_.idle_timeout) : std::nullopt;
    const bool fresh = !reused.has_value();
    Pool::Connection connection;
    if (fresh) {
      connection =
          co_await pool.connect(executor, std::min(limit, Clock::now() + options_.connect_timeout));
    } else {
      connection = std::move(*reused);
    }
    auto& stream = *connection.stream;
    stream.expires_at(limit);
    auto [write_error, written] = co_await beast_http::async_write(stream, request, kTuple);
    beast_http::response_parser<beast_http::string_body> parser;
    parser.body_limit(options_.max_response_bytes);
    boost::system::error_code error = write_error;
    if (!error) {
      std::tie(error, std::ignore) =
          co_await beast_http::async_read(stream, connection.buffer, parser, kTuple);
    }
    if (!error) {
      Response response = parser.release();
      if (response.keep_alive())
        pool.give_back(std::move(connection), options_.max_idle_per_upstream);
      co_return response;
    }
    // The expiry can surface as `timeout` or as the cancelled inner operation.
    if (error == beast::error::timeout || Clock::now() >= limit) {
      throw ApiError(504, "upstream_timeout", "upstream " + pool.name() + " timed out");
    }
    const bool stale = !fresh && (error == beast_http::error::end_of_stream ||
                                  error == asio::error::connection_reset ||
                                  error == asio::error::broken_pipe || error == asio::error::eof);
    if (stale && (write_error || is_idempotent(request.method()))) continue;
    throw ApiError(502, "upstream_unavailable",
                   "upstream " + pool.name() + " failed: " + error.message());
  }
}

asio::awaitable<Response> HttpClient::get(std::string_view base_url, std::string_view target,
                                          std::string_view correlation_id,
                                          std::optional<Clock::time_point> deadline) {
  Request request{Method::get, target, 11};
  co_return co_await send(base_url, std::move(request), correlation_id, deadline);
}

void HttpClient::collect(metrics::Exposition& out) const {
  std::lock_guard lock(pools_mutex_);
  for (const auto& [name, pool] : pools_) {
    out.counter("http_client_connections_created_total", "Connections opened to an upstream.",
                {{"upstream", name}}, static_cast<double>(pool->connections_made()));
    out.gauge("http_client_connections_idle", "Idle pooled connections to an upstream.",
              {{"upstream", name}}, static_cast<double>(pool->idle_count()));
  }
}

}  // namespace inkwell::http
