#include "http/outbound.h"
#include "http/server.h"

#include <gtest/gtest.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <string>
#include <thread>

namespace inkwell::http {
namespace {

namespace asio = boost::asio;

// A local plain-HTTP server on an ephemeral port that echoes what the client sent.
class OutboundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.add(Method::get, "/hello", [](Context& context) -> asio::awaitable<Response> {
      std::string body = "hello " + std::string(context.request()["X-Test"]);
      co_return text_response(Status::ok, "text/plain; charset=utf-8", std::move(body));
    });
    auto echo = [](Context& context) -> asio::awaitable<Response> {
      const auto& request = context.request();
      std::string body = std::string(request.method_string()) + " " +
                         std::string(request[beast_http::field::content_type]) + " " +
                         std::string(request["Authorization"]) + " " + request.body();
      co_return text_response(Status::created, "application/x-echo", std::move(body));
    };
    router_.add(Method::post, "/echo", echo);
    router_.add(Method::put, "/echo", echo);
    router_.add(Method::get, "/status/{code}", [](Context& context) -> asio::awaitable<Response> {
      auto response = text_response(Status::ok, "application/json", R"({"error":"x"})");
      response.result(std::stoi(std::string(context.param("code"))));
      co_return response;
    });
    router_.add(Method::get, "/redirect", [](Context&) -> asio::awaitable<Response> {
      auto response = text_response(Status::found, "text/plain", "moved");
      response.set(beast_http::field::location, "/hello");
      co_return response;
    });
    router_.add(Method::get, "/slow", [](Context&) -> asio::awaitable<Response> {
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::seconds(5));
      co_await timer.async_wait(asio::use_awaitable);
      co_return text_response(Status::ok, "text/plain", "late");
    });
    router_.add(Method::get, "/big/{size}", [](Context& context) -> asio::awaitable<Response> {
      const auto size = std::stoul(std::string(context.param("size")));
      co_return text_response(Status::ok, "text/plain", std::string(size, 'x'));
    });
    ServerOptions options;
    options.service = "outbound-test";
    options.request_timeout = std::chrono::milliseconds(2'000);
    options.access_log = false;
    server_ = std::make_unique<Server>(io_, options, router_);
    port_ = server_->start();
    io_.start();
  }

  void TearDown() override {
    server_->stop();
    io_.stop();
  }

  std::string url(std::string_view path, std::string_view scheme = "http") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

  IoPool io_{1};
  Router router_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
  OutboundClient client_;
};

TEST_F(OutboundTest, GetSendsHeadersAndReturnsBodyAndContentType) {
  OutboundRequest request;
  request.url = url("/hello");
  request.headers = {{"X-Test", "ink well"}, {"Accept", "text/plain"}};
  auto response = client_.send(request);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "hello ink well");
  EXPECT_EQ(response.content_type, "text/plain; charset=utf-8");
}

TEST_F(OutboundTest, PostSendsBodyAndContentType) {
  OutboundRequest request;
  request.method = "POST";
  request.url = url("/echo");
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                     {"Authorization", "Bearer t0k"}};
  request.body = form_encode({{"grant_type", "authorization_code"}, {"code", "a b"}});
  auto response = client_.send(request);
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.content_type, "application/x-echo");
  EXPECT_EQ(
      response.body,
      "POST application/x-www-form-urlencoded Bearer t0k grant_type=authorization_code&code=a+b");
}

TEST_F(OutboundTest, OtherMethodsCarryTheirBody) {
  OutboundRequest request;
  request.method = "PUT";
  request.url = url("/echo");
  request.headers = {{"Content-Type", "application/json"}};
  request.body = R"({"a":1})";
  EXPECT_EQ(client_.send(request).body, R"(PUT application/json  {"a":1})");
}

TEST_F(OutboundTest, ErrorStatusesAreResponsesNotExceptions) {
  for (int code : {400, 401, 404, 500, 503}) {
    OutboundRequest request;
    request.url = url("/status/" + std::to_string(code));
    auto response = client_.send(request);
    EXPECT_EQ(response.status, code);
    EXPECT_EQ(response.body, R"({"error":"x"})");
    EXPECT_EQ(response.content_type, "application/json");
  }
}

TEST_F(OutboundTest, RedirectsAreNotFollowed) {
  OutboundRequest request;
  request.url = url("/redirect");
  auto response = client_.send(request);
  EXPECT_EQ(response.status, 302);
  EXPECT_EQ(response.body, "moved");
}

TEST_F(OutboundTest, SlowEndpointTimesOut) {
  OutboundRequest request;
  request.url = url("/slow");
  request.timeout = std::chrono::milliseconds(200);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(client_.send(request), OutboundError);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
}

TEST_F(OutboundTest, ResponseOverTheLimitIsAnError) {
  const OutboundClient small(1000);
  OutboundRequest request;
  request.url = url("/big/1000");
  EXPECT_EQ(small.send(request).body.size(), 1000U);
  request.url = url("/big/1001");
  EXPECT_THROW(small.send(request), OutboundError);
  request.url = url("/big/1100000");
  EXPECT_THROW(client_.send(request), OutboundError);  // default limit: 1 MiB
}

// A server that answers one connection with a body of `size` bytes, without Content-Length
// (ended by closing), so only the client's running count can stop it.
TEST_F(OutboundTest, ResponseWithoutLengthIsCutOffAtTheLimit) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  std::thread server([&acceptor] {
    for (int i = 0; i < 2; ++i) {
      asio::ip::tcp::socket socket = acceptor.accept();
      std::array<char, 4096> buffer{};
      boost::system::error_code error;
      (void)socket.read_some(asio::buffer(buffer), error);
      const std::string reply =
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" +
          std::string(i == 0 ? 1000 : 50'000, 'y');
      asio::write(socket, asio::buffer(reply), error);
      socket.shutdown(asio::ip::tcp::socket::shutdown_send, error);
    }
  });
  const OutboundClient small(1000);
  OutboundRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  EXPECT_EQ(small.send(request).body.size(), 1000U);
  EXPECT_THROW(small.send(request), OutboundError);
  server.join();
}

TEST_F(OutboundTest, OnlyHttpAndHttpsUrlsAreAccepted) {
  for (const char* bad : {"ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1/",
                          "127.0.0.1/hello", "", "dict://127.0.0.1:11211/stat"}) {
    OutboundRequest request;
    request.url = bad;
    EXPECT_THROW(client_.send(request), OutboundError) << bad;
  }
  OutboundRequest upper;
  upper.url = "HTTP://127.0.0.1:" + std::to_string(port_) + "/hello";
  EXPECT_EQ(client_.send(upper).status, 200);
}

TEST_F(OutboundTest, HeadersWithLineBreaksAreRefused) {
  OutboundRequest request;
  request.url = url("/hello");
  request.headers = {{"X-Test", "a\r\nX-Injected: 1"}};
  EXPECT_THROW(client_.send(request), OutboundError);
}

TEST_F(OutboundTest, TlsToAPlainServerFailsInsteadOfDowngrading) {
  OutboundRequest request;
  request.url = url("/hello", "https");
  request.timeout = std::chrono::milliseconds(2'000);
  EXPECT_THROW(client_.send(request), OutboundError);
}

TEST_F(OutboundTest, ConnectionRefusedIsAnError) {
  std::uint16_t closed = 0;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    closed = acceptor.local_endpoint().port();
  }
  OutboundRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(closed) + "/";
  EXPECT_THROW(client_.send(request), OutboundError);
}

TEST(FormEncodeTest, EscapesLikeAForm) {
  EXPECT_EQ(form_encode({}), "");
  EXPECT_EQ(form_encode({{"a", "1"}, {"b", ""}}), "a=1&b=");
  EXPECT_EQ(form_encode({{"redirect_uri", "https://x.test/cb?a=1&b=2"}}),
            "redirect_uri=https%3A%2F%2Fx.test%2Fcb%3Fa%3D1%26b%3D2");
  EXPECT_EQ(form_encode({{"k y", "a b+c"}}), "k+y=a+b%2Bc");
  EXPECT_EQ(form_encode({{"v", "-._~*'é\n"}}), "v=-._~%2A%27%C3%A9%0A");
  EXPECT_EQ(form_encode({{"code_verifier", "AZaz09-._~"}}), "code_verifier=AZaz09-._~");
}

}  // namespace
}  // namespace inkwell::http
