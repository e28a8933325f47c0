#include "http/context.h"

#include "base/error.h"

#include <gtest/gtest.h>

namespace inkwell::http {
namespace {

Context make(const Request& request, std::string_view query = {}) {
  return Context(request, "/x", query, {{"id", "42"}}, "cid", std::chrono::steady_clock::now());
}

TEST(Context, ReadsPathAndQueryParameters) {
  Request request{Method::get, "/x", 11};
  auto context = make(request, "limit=20&tag=c%2B%2B&q=a+b&flag&empty=");
  EXPECT_EQ(context.param("id"), "42");
  EXPECT_EQ(context.param("missing"), "");
  EXPECT_EQ(context.query_param("limit"), "20");
  EXPECT_EQ(context.query_param("tag"), "c++");
  EXPECT_EQ(context.query_param("q"), "a b");
  EXPECT_EQ(context.query_param("flag"), "");
  EXPECT_EQ(context.query_param("empty"), "");
  EXPECT_EQ(context.query_param("absent"), std::nullopt);
}

TEST(Context, MalformedQueryEscapeIsABadRequest) {
  Request request{Method::get, "/x", 11};
  auto context = make(request, "q=%G1");
  try {
    (void)context.query_param("q");
    FAIL() << "expected ApiError";
  } catch (const ApiError& error) {
    EXPECT_EQ(error.status(), 400);
  }
}

int json_status(const Request& request) {
  try {
    (void)make(request).json_body();
  } catch (const ApiError& error) {
    return error.status();
  }
  return 200;
}

TEST(Context, JsonBodyNeedsJsonContentTypeAndAnObject) {
  Request request{Method::post, "/x", 11};
  request.body() = R"({"a":1})";
  EXPECT_EQ(json_status(request), 415);
  request.set(beast_http::field::content_type, "text/plain");
  EXPECT_EQ(json_status(request), 415);
  request.set(beast_http::field::content_type, "application/json; charset=utf-8");
  EXPECT_EQ(json_status(request), 200);
  request.set(beast_http::field::content_type, "application/merge-patch+json");
  EXPECT_EQ(json_status(request), 200);
  request.body() = "[1,2]";
  EXPECT_EQ(json_status(request), 400);
  request.body() = R"({"a":)";
  EXPECT_EQ(json_status(request), 400);
}

TEST(PercentDecode, RejectsTruncatedEscapesAndNul) {
  EXPECT_EQ(percent_decode("a%2Fb"), "a/b");
  EXPECT_EQ(percent_decode("%"), std::nullopt);
  EXPECT_EQ(percent_decode("%4"), std::nullopt);
  EXPECT_EQ(percent_decode("%00"), std::nullopt);
  EXPECT_EQ(percent_decode("plain"), "plain");
}

}  // namespace
}  // namespace inkwell::http
