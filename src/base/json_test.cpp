#include "base/json.h"

#include "base/error.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace inkwell::json {
namespace {

using Presence = Fields::Presence;

// Runs `body` through parse_object and returns the ApiError it threw.
ApiError parse_error(std::string_view body) {
  try {
    parse_object(body);
  } catch (const ApiError& error) {
    return error;
  }
  ADD_FAILURE() << "parse_object accepted: " << body;
  return ApiError(0, "none", "none");
}

void expect_malformed(std::string_view body) {
  const auto error = parse_error(body);
  EXPECT_EQ(error.status(), 400) << body;
  EXPECT_EQ(error.code(), "malformed_json") << body;
}

std::string nested_arrays(int depth) {
  // One object holding depth-1 nested arrays: total nesting depth `depth`.
  return "{\"a\":" + std::string(static_cast<std::size_t>(depth - 1), '[') +
         std::string(static_cast<std::size_t>(depth - 1), ']') + "}";
}

// Runs `read` against `object` and returns the 422 that finish() threw.
template <class Read>
ApiError finish_error(const boost::json::object& object, Read read) {
  Fields fields(object);
  read(fields);
  EXPECT_FALSE(fields.ok());
  try {
    fields.finish();
  } catch (const ApiError& error) {
    return error;
  }
  ADD_FAILURE() << "finish() did not throw";
  return ApiError(0, "none", "none");
}

TEST(ParseObject, AcceptsAnObject) {
  const auto object = parse_object(R"({"title":"Hello","tags":["a","b"],"draft":false})");
  EXPECT_EQ(object.at("title"), "Hello");
  EXPECT_EQ(object.at("tags").as_array().size(), 2u);
  EXPECT_EQ(object.at("draft"), false);
}

TEST(ParseObject, RejectsAnEmptyBody) {
  expect_malformed("");
}

TEST(ParseObject, RejectsJsonThatIsNotAnObject) {
  expect_malformed("[]");
  expect_malformed("[{\"a\":1}]");
  expect_malformed("\"text\"");
  expect_malformed("42");
  expect_malformed("null");
  expect_malformed("true");
}

TEST(ParseObject, RejectsTruncatedOrInvalidJson) {
  expect_malformed("{");
  expect_malformed(R"({"title":)");
  expect_malformed(R"({"title":"Hel)");
  expect_malformed(R"({"title":"Hello",})");
  expect_malformed(R"({"title":"Hello"} trailing)");
  expect_malformed(R"({"a":1}{"b":2})");
  expect_malformed("{'title':'single quotes'}");
  expect_malformed("   ");
  expect_malformed("{\"title\":\"\xC3\x28\"}");  // invalid UTF-8
}

TEST(ParseObject, RejectsNestingDeeperThan32) {
  expect_malformed(nested_arrays(33));
  expect_malformed(nested_arrays(10000));  // must not blow the stack either
}

TEST(ParseObject, AcceptsNestingOf32) {
  EXPECT_NO_THROW(parse_object(nested_arrays(32)));
}

TEST(TryParse, ReturnsNulloptInsteadOfThrowing) {
  EXPECT_FALSE(try_parse("{").has_value());
  EXPECT_FALSE(try_parse("").has_value());
  EXPECT_FALSE(try_parse(nested_arrays(33)).has_value());
  const auto value = try_parse("[1,2]");
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(value->as_array().size(), 2u);
}

TEST(Fields, ReadsWellTypedFields) {
  const auto object = parse_object(R"({"title":"Hi","count":7,"big":9223372036854775807,
                                       "neg":-9223372036854775808,"draft":true})");
  Fields fields(object);
  EXPECT_EQ(fields.string("title", Presence::required), "Hi");
  EXPECT_EQ(fields.integer("count", Presence::required), 7);
  EXPECT_EQ(fields.integer("big", Presence::required), INT64_MAX);
  EXPECT_EQ(fields.integer("neg", Presence::required), INT64_MIN);
  EXPECT_EQ(fields.boolean("draft", Presence::required), true);
  EXPECT_EQ(fields.string("subtitle", Presence::optional), std::nullopt);
  EXPECT_TRUE(fields.ok());
  EXPECT_NO_THROW(fields.finish());
}

TEST(Fields, CollectsEveryFieldErrorIntoOne422) {
  const auto object = parse_object(R"({"title":5,"count":"seven","draft":"yes"})");
  const auto error = finish_error(object, [](Fields& fields) {
    EXPECT_EQ(fields.string("title", Presence::required), std::nullopt);
    EXPECT_EQ(fields.integer("count", Presence::required), std::nullopt);
    EXPECT_EQ(fields.boolean("draft", Presence::optional), std::nullopt);
    EXPECT_EQ(fields.string("body", Presence::required), std::nullopt);
  });
  EXPECT_EQ(error.status(), 422);
  EXPECT_EQ(error.code(), "validation_failed");
  const auto& details = error.details();
  EXPECT_EQ(details.size(), 4u);
  ASSERT_TRUE(details.contains("title"));
  ASSERT_TRUE(details.contains("count"));
  ASSERT_TRUE(details.contains("draft"));
  ASSERT_TRUE(details.contains("body"));
  EXPECT_EQ(details.at("title"), "must be a string");
  EXPECT_EQ(details.at("count"), "must be an integer");
  EXPECT_EQ(details.at("draft"), "must be true or false");
  EXPECT_EQ(details.at("body"), "is required");
}

TEST(Fields, WrongTypesAreReportedPerField) {
  const auto object = parse_object(R"({"a":["x"],"b":{"x":1},"c":1,"d":"1","e":0})");
  const auto error = finish_error(object, [](Fields& fields) {
    fields.string("a", Presence::required);
    fields.string("b", Presence::required);
    fields.string("c", Presence::required);
    fields.integer("d", Presence::required);
    fields.boolean("e", Presence::required);
  });
  EXPECT_EQ(error.details().size(), 5u);
  EXPECT_EQ(error.details().at("a"), "must be a string");
  EXPECT_EQ(error.details().at("b"), "must be a string");
  EXPECT_EQ(error.details().at("c"), "must be a string");
  EXPECT_EQ(error.details().at("d"), "must be an integer");
  EXPECT_EQ(error.details().at("e"), "must be true or false");
}

TEST(Fields, NullCountsAsAbsent) {
  const auto object = parse_object(R"({"subtitle":null,"title":null})");
  const auto error = finish_error(object, [](Fields& fields) {
    EXPECT_EQ(fields.string("subtitle", Presence::optional), std::nullopt);
    EXPECT_EQ(fields.value("subtitle"), nullptr);
    EXPECT_EQ(fields.string("title", Presence::required), std::nullopt);
  });
  EXPECT_EQ(error.details().size(), 1u) << "an optional null is fine";
  EXPECT_EQ(error.details().at("title"), "is required");
}

TEST(Fields, OptionalNullAloneIsNotAnError) {
  const auto object = parse_object(R"({"subtitle":null})");
  Fields fields(object);
  EXPECT_EQ(fields.integer("subtitle", Presence::optional), std::nullopt);
  EXPECT_TRUE(fields.ok());
  EXPECT_NO_THROW(fields.finish());
}

TEST(Fields, RejectsIntegersOutOfRangeAndFractions) {
  const auto object = parse_object(
      R"({"over":9223372036854775808,"huge":18446744073709551615,"under":-9223372036854775809,
          "exp":1e30,"frac":1.5,"whole_double":2.0})");
  const auto error = finish_error(object, [](Fields& fields) {
    EXPECT_EQ(fields.integer("over", Presence::required), std::nullopt);
    EXPECT_EQ(fields.integer("huge", Presence::required), std::nullopt);
    EXPECT_EQ(fields.integer("under", Presence::required), std::nullopt);
    EXPECT_EQ(fields.integer("exp", Presence::required), std::nullopt);
    EXPECT_EQ(fields.integer("frac", Presence::required), std::nullopt);
    EXPECT_EQ(fields.integer("whole_double", Presence::required), std::nullopt);
  });
  EXPECT_EQ(error.details().size(), 6u);
  for (const auto* key : {"over", "huge", "under", "exp", "frac", "whole_double"}) {
    ASSERT_TRUE(error.details().contains(key)) << key;
    EXPECT_EQ(error.details().at(key), "must be an integer") << key;
  }
}

TEST(Fields, FirstProblemPerFieldWins) {
  const auto object = parse_object(R"({"title":7})");
  const auto error = finish_error(object, [](Fields& fields) {
    fields.string("title", Presence::required);
    fields.fail("title", "must be at most 200 characters");
    fields.fail("slug", "is taken");
    fields.fail("slug", "second problem");
  });
  EXPECT_EQ(error.details().at("title"), "must be a string");
  EXPECT_EQ(error.details().at("slug"), "is taken");
}

}  // namespace
}  // namespace inkwell::json
