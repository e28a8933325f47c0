#pragma once

#include "base/metrics.h"
#include "http/router.h"

#include "base/io_pool.h"

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace inkwell::http {

struct ServerOptions {
  std::string service;  // label for logs and metrics
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds header_timeout{10'000};   // also the keep-alive idle limit
  std::chrono::milliseconds request_timeout{30'000};  // body read + handler + write
  bool access_log = true;
};

// One HTTP/1.1 listener: a coroutine per connection with keep-alive, a timeout before every
// read, limits on header and body size, and errors in the shared shape. Handlers return
// responses; they never touch the socket. Each connection lives on one context of the IoPool.
class Server {
 public:
  Server(IoPool& io, ServerOptions options, const Router& router);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and starts accepting; returns the bound port (useful with port 0). Throws
  /// boost::system::system_error when the address cannot be bound.
  std::uint16_t start();
  /// Stops accepting and closes idle keep-alive connections; busy ones close after their
  /// response. Safe to call from any thread.
  void stop();
  /// Connections still open (a stopped server is drained when this reaches 0).
  std::size_t open_connections() const { return open_.load(); }
  std::size_t in_flight() const { return in_flight_.load(); }
  void collect(metrics::Exposition& out) const;
  const ServerOptions& options() const { return options_; }

 private:
  class Session;
  // Which route answered a request, for logs and metrics.
  struct Outcome {
    std::string_view route;
    RouteStats* stats;
  };
  static void watch(const std::shared_ptr<Session>& session,
                    std::chrono::steady_clock::duration tick);
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<Response> invoke(const Router::Route& route, Context& context);
  boost::asio::awaitable<void> run_session(std::shared_ptr<Session> session);
  boost::asio::awaitable<Response> dispatch(Request& request, const std::string& correlation_id,
                                            Outcome& outcome, Session& session);

  IoPool& io_;
  ServerOptions options_;
  const Router& router_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::chrono::steady_clock::duration tick_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> open_{0};
  std::atomic<std::size_t> in_flight_{0};
  std::mutex sessions_mutex_;
  std::set<Session*> sessions_;  // guarded by sessions_mutex_
};

}  // namespace inkwell::http
