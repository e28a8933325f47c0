#include "http/server.h"
#include "http/client.h"

#include "base/error.h"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>

#include <thread>

namespace inkwell::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A server on an ephemeral port with routes that exercise the error policy, run on two threads.
class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add(Method::get, "/ok/{name}", [](Context& context) -> asio::awaitable<Response> {
      co_return json_response(Status::ok, {{"hello", context.param("name")}});
    });
    router_.add(Method::get, "/api-error", [](Context&) -> asio::awaitable<Response> {
      throw ApiError(409, "email_taken", "that email is taken", {{"email", "taken"}});
      co_return Response{};
    });
    router_.add(Method::get, "/busy", [](Context&) -> asio::awaitable<Response> {
      throw ApiError::unavailable("busy");
      co_return Response{};
    });
    router_.add(Method::get, "/crash", [](Context&) -> asio::awaitable<Response> {
      throw std::runtime_error("secret internal detail");
      co_return Response{};
    });
    router_.add(Method::get, "/slow", [](Context&) -> asio::awaitable<Response> {
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::seconds(30));
      co_await timer.async_wait(asio::use_awaitable);
      co_return Response{};
    });
    router_.add(Method::post, "/echo", [](Context& context) -> asio::awaitable<Response> {
      co_return json_response(Status::ok, context.json_body());
    });
    ServerOptions options;
    options.service = "test";
    options.request_timeout = std::chrono::milliseconds(300);
    options.access_log = false;
    server_ = std::make_unique<Server>(io_, options, router_);
    port_ = server_->start();
    io_.start();
  }

  void TearDown() override {
    server_->stop();
    io_.stop();
  }

  Response call(Method method, std::string target, std::string body = {},
                std::string content_type = "application/json") {
    asio::io_context client_io;
    tcp::socket socket(client_io);
    socket.connect({asio::ip::make_address("127.0.0.1"), port_});
    Request request{method, target, 11};
    request.set(beast_http::field::host, "localhost");
    if (!body.empty()) {
      request.set(beast_http::field::content_type, content_type);
      request.body() = std::move(body);
    }
    request.prepare_payload();
    beast_http::write(socket, request);
    boost::beast::flat_buffer buffer;
    Response response;
    beast_http::read(socket, buffer, response);
    return response;
  }

  static boost::json::object error_of(const Response& response) {
    return boost::json::parse(response.body()).as_object().at("error").as_object();
  }

  IoPool io_{2};
  Router router_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
};

TEST_F(ServerTest, HandlerResponseIsReturnedWithCorrelationId) {
  auto response = call(Method::get, "/ok/ink%20well");
  EXPECT_EQ(response.result(), Status::ok);
  EXPECT_EQ(response.body(), R"({"hello":"ink well"})");
  EXPECT_EQ(response[kCorrelationHeader].size(), 36U);
}

TEST_F(ServerTest, ApiErrorBecomesSharedShapeWithDetails) {
  auto response = call(Method::get, "/api-error");
  EXPECT_EQ(response.result_int(), 409);
  auto error = error_of(response);
  EXPECT_EQ(error.at("code"), "email_taken");
  EXPECT_EQ(error.at("details").as_object().at("email"), "taken");
  EXPECT_EQ(error.at("correlationId").as_string(), response[kCorrelationHeader]);
}

TEST_F(ServerTest, UnavailableCarriesRetryAfter) {
  auto response = call(Method::get, "/busy");
  EXPECT_EQ(response.result_int(), 503);
  EXPECT_EQ(response[beast_http::field::retry_after], "1");
}

TEST_F(ServerTest, UnexpectedExceptionIs500WithoutLeakingDetails) {
  auto response = call(Method::get, "/crash");
  EXPECT_EQ(response.result_int(), 500);
  EXPECT_EQ(error_of(response).at("code"), "internal_error");
  EXPECT_EQ(response.body().find("secret"), std::string::npos);
  // The server is still up.
  EXPECT_EQ(call(Method::get, "/ok/again").result_int(), 200);
}

TEST_F(ServerTest, SlowHandlerIsCutOffAtTheRequestTimeout) {
  const auto started = std::chrono::steady_clock::now();
  auto response = call(Method::get, "/slow");
  EXPECT_EQ(response.result_int(), 504);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST_F(ServerTest, JsonBodiesAreCheckedForTypeAndSyntax) {
  EXPECT_EQ(call(Method::post, "/echo", R"({"a":1})").body(), R"({"a":1})");
  auto malformed = call(Method::post, "/echo", R"({"a":)");
  EXPECT_EQ(malformed.result_int(), 400);
  EXPECT_EQ(error_of(malformed).at("code"), "malformed_json");
  EXPECT_EQ(call(Method::post, "/echo", "a=1", "application/x-www-form-urlencoded").result_int(),
            415);
}

TEST_F(ServerTest, ClientPoolReusesConnectionsAndForwardsCorrelationId) {
  HttpClient client(ClientOptions{});
  const std::string base = "http://127.0.0.1:" + std::to_string(port_);
  for (int i = 0; i < 5; ++i) {
    auto future =
        asio::co_spawn(io_.main(), client.get(base, "/ok/x", "corr-123"), asio::use_future);
    auto response = future.get();
    EXPECT_EQ(response.result_int(), 200);
    EXPECT_EQ(response[kCorrelationHeader], "corr-123");
  }
  metrics::Exposition out;
  client.collect(out);
  EXPECT_NE(out.text().find("http_client_connections_created_total{upstream=\"" + base + "\"} 1"),
            std::string::npos)
      << out.text();
}

TEST_F(ServerTest, ClientMapsUnreachableAndSlowUpstreams) {
  HttpClient client(ClientOptions{.request_timeout = std::chrono::milliseconds(200)});
  // A port nobody listens on: bind and close to get one.
  std::uint16_t closed_port = 0;
  {
    asio::io_context scratch;
    tcp::acceptor acceptor(scratch, {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = acceptor.local_endpoint().port();
  }
  auto status_of = [&](std::string base, std::string target) {
    try {
      asio::co_spawn(io_.main(), client.get(base, target, ""), asio::use_future).get();
    } catch (const ApiError& error) {
      return error.status();
    }
    return 200;
  };
  EXPECT_EQ(status_of("http://127.0.0.1:" + std::to_string(closed_port), "/"), 502);
  EXPECT_EQ(status_of("http://127.0.0.1:" + std::to_string(port_), "/slow"), 504);
}

}  // namespace
}  // namespace inkwell::http
