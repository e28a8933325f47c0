#include "http/router.h"

#include <gtest/gtest.h>

namespace inkwell::http {
namespace {

namespace asio = boost::asio;

Handler handler() {
  return [](Context&) -> asio::awaitable<Response> { co_return Response{}; };
}

TEST(Router, MatchesPathParametersAndDecodesThem) {
  Router router;
  router.add(Method::get, "/posts/{id}/comments", handler());
  auto match = router.match(Method::get, "/posts/a%20b/comments");
  ASSERT_EQ(match.kind, Router::Match::Kind::found);
  EXPECT_EQ(match.route->pattern, "/posts/{id}/comments");
  ASSERT_EQ(match.params.size(), 1U);
  EXPECT_EQ(match.params[0].first, "id");
  EXPECT_EQ(match.params[0].second, "a b");
}

TEST(Router, LiteralSegmentsWinOverParameters) {
  Router router;
  router.add(Method::get, "/users/{id}", handler());
  router.add(Method::get, "/users/me", handler());
  EXPECT_EQ(router.match(Method::get, "/users/me").route->pattern, "/users/me");
  EXPECT_EQ(router.match(Method::get, "/users/42").route->pattern, "/users/{id}");
}

TEST(Router, UnknownPathIsNotFoundAndWrongMethodListsAllowed) {
  Router router;
  router.add(Method::get, "/posts", handler());
  router.add(Method::post, "/posts", handler());
  EXPECT_EQ(router.match(Method::get, "/nope").kind, Router::Match::Kind::not_found);
  EXPECT_EQ(router.match(Method::get, "/posts/1").kind, Router::Match::Kind::not_found);
  auto match = router.match(Method::delete_, "/posts");
  EXPECT_EQ(match.kind, Router::Match::Kind::method_not_allowed);
  EXPECT_EQ(match.allowed, "GET, POST");
}

TEST(Router, TrailingSlashIsIgnoredButEmptySegmentsAndBadEscapesDoNotMatch) {
  Router router;
  router.add(Method::get, "/posts/{id}", handler());
  EXPECT_EQ(router.match(Method::get, "/posts/7/").kind, Router::Match::Kind::found);
  EXPECT_EQ(router.match(Method::get, "/posts//").kind, Router::Match::Kind::not_found);
  EXPECT_EQ(router.match(Method::get, "//posts/7").kind, Router::Match::Kind::not_found);
  EXPECT_EQ(router.match(Method::get, "/posts/%zz").kind, Router::Match::Kind::not_found);
  EXPECT_EQ(router.match(Method::get, "/posts/%00").kind, Router::Match::Kind::not_found);
  EXPECT_EQ(router.match(Method::get, "posts/7").kind, Router::Match::Kind::not_found);
  EXPECT_EQ(router.match(Method::get, "").kind, Router::Match::Kind::not_found);
}

TEST(Router, RejectsMalformedAndDuplicatePatterns) {
  Router router;
  router.add(Method::get, "/a/{id}", handler());
  EXPECT_THROW(router.add(Method::get, "/a/{other}", handler()), std::invalid_argument);
  EXPECT_THROW(router.add(Method::get, "no-slash", handler()), std::invalid_argument);
  EXPECT_THROW(router.add(Method::get, "/a/{broken", handler()), std::invalid_argument);
  EXPECT_NO_THROW(router.add(Method::post, "/a/{id}", handler()));
}

TEST(Router, StatsAreExportedPerRouteAndStatusWithUnmatchedKeptApart) {
  Router router;
  router.add(Method::get, "/health", handler());
  auto match = router.match(Method::get, "/health");
  match.route->stats->record(200, 0.002);
  match.route->stats->record(200, 0.004);
  router.unmatched_stats().record(404, 0.001);
  metrics::Exposition out;
  router.collect(out, "auth");
  const auto text = out.text();
  EXPECT_NE(
      text.find(
          R"(http_requests_total{service="auth",method="GET",route="/health",status="200"} 2)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(route="unmatched",status="404"} 1)"), std::string::npos) << text;
  EXPECT_NE(
      text.find(
          R"(http_request_duration_seconds_count{service="auth",method="GET",route="/health"} 2)"),
      std::string::npos)
      << text;
}

}  // namespace
}  // namespace inkwell::http
