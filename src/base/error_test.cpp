#include "base/error.h"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <string>

namespace inkwell {
namespace {

boost::json::object parse_body(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(body, ec);
  EXPECT_FALSE(ec) << "error_body produced invalid JSON: " << body;
  EXPECT_TRUE(value.is_object()) << body;
  return value.is_object() ? value.as_object() : boost::json::object{};
}

TEST(ErrorBody, HasExactlyTheSharedShape) {
  boost::json::object details;
  details["title"] = "is required";
  const auto body = parse_body(error_body("validation_failed", "request has invalid fields",
                                          "0b5e3c9a-7f15-4d1a-9f0e-2b3c4d5e6f70", details));

  ASSERT_EQ(body.size(), 1u) << "only the \"error\" member at the top level";
  ASSERT_TRUE(body.contains("error"));
  ASSERT_TRUE(body.at("error").is_object());
  const auto& error = body.at("error").as_object();
  EXPECT_EQ(error.size(), 4u);
  ASSERT_TRUE(error.contains("code"));
  ASSERT_TRUE(error.contains("message"));
  ASSERT_TRUE(error.contains("correlationId"));
  ASSERT_TRUE(error.contains("details"));
  EXPECT_EQ(error.at("code"), "validation_failed");
  EXPECT_EQ(error.at("message"), "request has invalid fields");
  EXPECT_EQ(error.at("correlationId"), "0b5e3c9a-7f15-4d1a-9f0e-2b3c4d5e6f70");
  ASSERT_TRUE(error.at("details").is_object());
  EXPECT_EQ(error.at("details").as_object(), details);
}

TEST(ErrorBody, DetailsDefaultToAnEmptyObjectNotNull) {
  const auto body = parse_body(error_body("not_found", "post not found", "abc"));
  const auto& error = body.at("error").as_object();
  ASSERT_TRUE(error.at("details").is_object());
  EXPECT_TRUE(error.at("details").as_object().empty());
}

TEST(ErrorBody, EscapesQuotesNewlinesAndUnicodeInTheMessage) {
  const std::string message = "bad \"title\"\nline two \\ caf\xC3\xA9 \xF0\x9F\x93\x9D";
  const auto body = parse_body(error_body("bad_request", message, "id-1"));
  EXPECT_EQ(body.at("error").at("message"), boost::json::value(message));
}

TEST(ApiError, BadRequestIs400) {
  boost::json::object details;
  details["limit"] = "must be at most 100";
  const auto error = ApiError::bad_request("limit too large", details);
  EXPECT_EQ(error.status(), 400);
  EXPECT_EQ(error.code(), "bad_request");
  EXPECT_STREQ(error.what(), "limit too large");
  EXPECT_EQ(error.details(), details);
}

TEST(ApiError, NotFoundIs404WithADefaultMessage) {
  const auto error = ApiError::not_found();
  EXPECT_EQ(error.status(), 404);
  EXPECT_EQ(error.code(), "not_found");
  EXPECT_STREQ(error.what(), "resource not found");
  EXPECT_TRUE(error.details().empty());

  EXPECT_STREQ(ApiError::not_found("post not found").what(), "post not found");
}

TEST(ApiError, UnprocessableIs422AndKeepsFieldDetails) {
  boost::json::object details;
  details["email"] = "must be an email address";
  details["name"] = "is required";
  const auto error = ApiError::unprocessable("request has invalid fields", details);
  EXPECT_EQ(error.status(), 422);
  EXPECT_EQ(error.code(), "validation_failed");
  EXPECT_EQ(error.details(), details);
}

TEST(ApiError, UnavailableIs503) {
  const auto error = ApiError::unavailable("database is down");
  EXPECT_EQ(error.status(), 503);
  EXPECT_EQ(error.code(), "service_unavailable");
  EXPECT_STREQ(error.what(), "database is down");
}

TEST(ApiError, CustomStatusAndCodeSurviveBeingThrown) {
  try {
    throw ApiError(409, "conflict", "slug already taken");
  } catch (const std::exception& caught) {
    const auto* error = dynamic_cast<const ApiError*>(&caught);
    ASSERT_NE(error, nullptr);
    EXPECT_EQ(error->status(), 409);
    EXPECT_EQ(error->code(), "conflict");
    EXPECT_STREQ(error->what(), "slug already taken");
  }
}

TEST(ApiError, RendersIntoTheSharedShape) {
  const auto error = ApiError::unprocessable("bad", {{"title", "is required"}});
  const auto body = parse_body(error_body(error.code(), error.what(), "cid", error.details()));
  EXPECT_EQ(body.at("error").at("code"), "validation_failed");
  EXPECT_EQ(body.at("error").at("details").at("title"), "is required");
}

}  // namespace
}  // namespace inkwell
