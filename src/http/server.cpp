#include "http/server.h"

#include "base/error.h"
#include "base/ids.h"
#include "base/log.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace inkwell::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

using Clock = std::chrono::steady_clock;

// One open connection and its watchdog. Touched only on the connection's own single-threaded
// context. Instead of arming a timer around every read and write (Beast's tcp_stream does, which
// costs two timer operations per I/O call), the session moves one `deadline` forward as the
// request progresses and a coarse watchdog tick compares against it: past the deadline it closes
// the socket when the session waits on the client, or cancels the handler when it waits on work.
class Server::Session {
 public:
  enum class Waiting { client, handler };

  explicit Session(tcp::socket connection)
      : socket(std::move(connection)), watchdog(socket.get_executor()) {}

  tcp::socket socket;
  std::string remote_address;  // the peer's IP, read once when the connection is accepted
  asio::steady_timer watchdog;
  asio::cancellation_signal cancel;  // bound to the session coroutine
  Clock::time_point deadline = Clock::time_point::max();
  Waiting waiting = Waiting::client;
  bool busy = false;       // a request is being handled (stop() leaves the session alone)
  bool timed_out = false;  // the watchdog cancelled the handler
  bool finished = false;   // the coroutine ended; the watchdog stops
  std::string out;         // the serialized response, reused across requests
};

namespace {

bool valid_correlation_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':';
  });
}

// Errors that mean the peer went away or was too slow: close without answering.
bool is_disconnect(const boost::system::error_code& ec) {
  return ec == beast_http::error::end_of_stream || ec == asio::error::bad_descriptor ||
         ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
         ec == asio::error::eof || ec == asio::error::broken_pipe ||
         ec == beast_http::error::partial_message;
}

}  // namespace

Server::Server(IoPool& io, ServerOptions options, const Router& router)
    : io_(io),
      options_(std::move(options)),
      router_(router),
      acceptor_(io.main()),
      // Deadlines are enforced within a quarter of the shorter timeout (at most a second late).
      tick_(std::clamp<Clock::duration>(
          std::min(options_.header_timeout, options_.request_timeout) / 4,
          std::chrono::milliseconds(10), std::chrono::seconds(1))) {}

void Server::watch(const std::shared_ptr<Session>& session, Clock::duration tick) {
  session->watchdog.expires_after(tick);
  session->watchdog.async_wait([session, tick](const boost::system::error_code& error) {
    if (error || session->finished) return;
    if (Clock::now() >= session->deadline) {
      if (session->waiting == Session::Waiting::client) {
        boost::system::error_code ignored;
        session->socket.close(ignored);  // the pending read or write fails; the session ends
        return;
      }
      if (!session->timed_out) {
        session->timed_out = true;
        session->cancel.emit(asio::cancellation_type::terminal);
      }
    }
    watch(session, tick);
  });
}

Server::~Server() = default;

std::uint16_t Server::start() {
  tcp::endpoint endpoint(asio::ip::make_address(options_.host), options_.port);
  try {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& error) {
    throw std::runtime_error(options_.service + " cannot listen on " + options_.host + ":" +
                             std::to_string(options_.port) + ": " + error.code().message());
  }
  const auto port = acceptor_.local_endpoint().port();
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
  return port;
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  std::lock_guard lock(sessions_mutex_);
  for (Session* session : sessions_) {
    asio::post(session->socket.get_executor(), [this, session] {
      // The session may have ended between the post and now; only touch it if still listed.
      std::lock_guard inner(sessions_mutex_);
      if (sessions_.contains(session) && !session->busy) {
        boost::system::error_code ignored;
        session->socket.close(ignored);
      }
    });
  }
}

asio::awaitable<void> Server::accept_loop() {
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(io_.next(), kTuple);
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted) break;
      // Out of descriptors or a transient failure: back off briefly instead of spinning.
      log::warn("accept failed", {{"service", options_.service}, {"error", ec.message()}});
      asio::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(kTuple);
      continue;
    }
    auto executor = socket.get_executor();
    auto session = std::make_shared<Session>(std::move(socket));
    watch(session, tick_);
    // The completion handler keeps the session (and its signal) alive until the coroutine ends.
    asio::co_spawn(executor, run_session(session),
                   asio::bind_cancellation_slot(session->cancel.slot(),
                                                [session](const std::exception_ptr&) {}));
  }
}

asio::awaitable<Response> Server::dispatch(Request& request, const std::string& correlation_id,
                                           Outcome& outcome, Session& session) {
  const std::string_view target = request.target();
  const auto question = target.find('?');
  const auto path = target.substr(0, question);
  const auto query =
      question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
  // HEAD is answered like GET; the session drops the body.
  const bool head = request.method() == Method::head;
  auto match = router_.match(head ? Method::get : request.method(), path);
  if (match.kind == Router::Match::Kind::not_found) {
    co_return error_response(
        Status::not_found, "not_found",
        "no route for " + std::string(request.method_string()) + " " + std::string(path),
        correlation_id);
  }
  if (match.kind == Router::Match::Kind::method_not_allowed) {
    auto response = error_response(Status::method_not_allowed, "method_not_allowed",
                                   "method not allowed; allowed: " + match.allowed, correlation_id);
    response.set(beast_http::field::allow, match.allowed);
    co_return response;
  }
  outcome = {match.route->pattern, match.route->stats.get()};
  const auto deadline = std::chrono::steady_clock::now() + options_.request_timeout;
  Context context(request, path, query, std::move(match.params), correlation_id, deadline);
  context.set_remote_address(session.remote_address);
  // Past the deadline the watchdog emits a cancellation into this coroutine: the handler's
  // pending operation fails with operation_aborted and invoke() answers 504.
  session.deadline = deadline;
  session.waiting = Session::Waiting::handler;
  Response response = co_await invoke(*match.route, context);
  session.waiting = Session::Waiting::client;
  if (session.timed_out) {
    session.timed_out = false;
    co_await asio::this_coro::reset_cancellation_state();
  }
  co_return response;
}

asio::awaitable<Response> Server::invoke(const Router::Route& route, Context& context) {
  try {
    co_return co_await route.handler(context);
  } catch (const ApiError& error) {
    auto response = error_response(static_cast<Status>(error.status()), error.code(), error.what(),
                                   context.correlation_id(), error.details());
    if (error.status() == 503 || error.status() == 429) {
      // A handler that knows how long the wait is says so (a sign-in lockout: minutes).
      std::string retry_after = "1";
      if (const auto* seconds = error.details().if_contains("retryAfterSeconds");
          seconds != nullptr && seconds->is_int64() && seconds->get_int64() > 0) {
        retry_after = std::to_string(seconds->get_int64());
      }
      response.set(beast_http::field::retry_after, retry_after);
    }
    co_return response;
  } catch (const std::exception& error) {
    const auto* system = dynamic_cast<const boost::system::system_error*>(&error);
    if (system != nullptr && system->code() == asio::error::operation_aborted) {
      // Cancelled by the request deadline: the timeout answers, nothing failed here.
      co_return error_response(Status::gateway_timeout, "timeout",
                               "the request took longer than the server allows",
                               context.correlation_id());
    }
    log::error("handler failed", {{"service", options_.service},
                                  {"route", route.pattern},
                                  {"correlationId", context.correlation_id()},
                                  {"error", error.what()}});
  }
  co_return error_response(Status::internal_server_error, "internal_error",
                           "the server failed to handle the request", context.correlation_id());
}

namespace {

// The answer to a request that could not be read whole; the connection closes after it.
Response rejection(const boost::system::error_code& error, std::string_view correlation_id) {
  Response response;
  if (error == beast_http::error::header_limit) {
    response = error_response(Status::request_header_fields_too_large, "headers_too_large",
                              "request headers are too large", correlation_id);
  } else if (error == beast_http::error::body_limit) {
    response = error_response(Status::payload_too_large, "payload_too_large",
                              "request body is larger than the server accepts", correlation_id);
  } else {
    response = error_response(Status::bad_request, "bad_request", "malformed HTTP request",
                              correlation_id);
  }
  response.keep_alive(false);
  return response;
}

}  // namespace

namespace {

// Writes the status line, the fields and the body into one buffer for a single send; Beast's
// serializer walks a composed buffer sequence that costs more than the bytes.
void serialize(const Response& response, std::string& out) {
  out.clear();
  out += "HTTP/1.1 ";
  out += std::to_string(response.result_int());
  out += ' ';
  out += response.reason();
  out += "\r\n";
  for (const auto& field : response) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  out += "\r\n";
  out += response.body();
}

}  // namespace

asio::awaitable<void> Server::run_session(std::shared_ptr<Session> owner) {
  Session& session = *owner;
  tcp::socket& socket = session.socket;
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  if (const auto peer = socket.remote_endpoint(ignored); !ignored) {
    session.remote_address = peer.address().to_string();
  }
  {
    std::lock_guard lock(sessions_mutex_);
    sessions_.insert(&session);
  }
  ++open_;
  beast::flat_buffer buffer;

  while (!stopping_) {
    beast_http::request_parser<beast_http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    parser.body_limit(options_.max_body_bytes);
    session.deadline = Clock::now() + options_.header_timeout;
    auto [error, header_bytes] =
        co_await beast_http::async_read_header(socket, buffer, parser, kTuple);
    // Gone, idle past the keep-alive limit, or too slow to send its headers: nothing to answer.
    if (error && is_disconnect(error)) break;

    session.busy = true;
    ++in_flight_;
    const auto started = Clock::now();
    session.deadline = started + options_.request_timeout;
    // A Content-Length over the limit fails the header read, but the fields are all parsed.
    const bool have_header = parser.is_header_done() || error == beast_http::error::body_limit;
    const auto method = have_header ? parser.get().method() : Method::unknown;
    std::string correlation_id;
    if (have_header && valid_correlation_id(parser.get()[kCorrelationHeader])) {
      correlation_id = parser.get()[kCorrelationHeader];
    } else {
      correlation_id = new_uuid();
    }
    Outcome outcome{"unmatched", &router_.unmatched_stats()};
    Response response;
    if (!error) {
      if (beast::iequals(parser.get()[beast_http::field::expect], "100-continue")) {
        beast_http::response<beast_http::empty_body> go_on{Status::continue_, 11};
        co_await beast_http::async_write(socket, go_on, kTuple);
      }
      if (!parser.is_done()) {
        std::tie(error, std::ignore) =
            co_await beast_http::async_read(socket, buffer, parser, kTuple);
      }
    }
    const bool answerable = !error || !is_disconnect(error);
    if (error) {
      response = rejection(error, correlation_id);
    } else {
      Request request = parser.release();
      const bool wants_keep_alive = request.keep_alive();
      response = co_await dispatch(request, correlation_id, outcome, session);
      response.keep_alive(wants_keep_alive && response.keep_alive() && !stopping_);
    }
    bool keep_alive = answerable && response.keep_alive();
    if (answerable) {
      response.set(kCorrelationHeader, correlation_id);
      response.prepare_payload();
      if (method == Method::head) response.body().clear();  // Content-Length stays
      serialize(response, session.out);
      // A slow reader of the response gets the header timeout, even after a slow handler.
      session.deadline = std::max(session.deadline, Clock::now() + options_.header_timeout);
      auto [write_error, written] =
          co_await asio::async_write(socket, asio::buffer(session.out), kTuple);
      if (write_error) keep_alive = false;
      const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      const unsigned status = response.result_int();
      outcome.stats->record(status, seconds);
      if (options_.access_log) {
        log::info("request", {{"service", options_.service},
                              {"method", beast_http::to_string(method)},
                              {"route", outcome.route},
                              {"status", status},
                              {"durationUs", static_cast<std::int64_t>(seconds * 1e6)},
                              {"correlationId", correlation_id}});
      }
    }
    --in_flight_;
    session.busy = false;
    if (!keep_alive) break;
  }

  session.finished = true;
  session.watchdog.cancel();
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  {
    std::lock_guard lock(sessions_mutex_);
    sessions_.erase(&session);
  }
  --open_;
}

void Server::collect(metrics::Exposition& out) const {
  router_.collect(out, options_.service);
  out.gauge("http_connections_open", "Open client connections.", {{"service", options_.service}},
            static_cast<double>(open_.load()));
  out.gauge("http_requests_in_flight", "Requests being handled.", {{"service", options_.service}},
            static_cast<double>(in_flight_.load()));
}

}  // namespace inkwell::http
