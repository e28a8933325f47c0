#include "base/json.h"

#include "base/error.h"

#include <boost/json/parse.hpp>

namespace inkwell::json {
namespace {

boost::json::parse_options strict_options() {
  boost::json::parse_options options;
  options.max_depth = 32;
  return options;
}

}  // namespace

boost::json::object parse_object(std::string_view body) {
  if (body.empty()) throw ApiError(400, "malformed_json", "request body must be a JSON object");
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(body, ec, {}, strict_options());
  if (ec) {
    throw ApiError(400, "malformed_json", "request body is not valid JSON: " + ec.message());
  }
  if (!value.is_object()) {
    throw ApiError(400, "malformed_json", "request body must be a JSON object");
  }
  return std::move(value.as_object());
}

std::optional<boost::json::value> try_parse(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec, {}, strict_options());
  if (ec) return std::nullopt;
  return value;
}

const boost::json::value* Fields::value(std::string_view key) const {
  const auto* found = object_.if_contains(key);
  return (found == nullptr || found->is_null()) ? nullptr : found;
}

const boost::json::value* Fields::lookup(std::string_view key, Presence presence) {
  const auto* found = value(key);
  if (found == nullptr && presence == Presence::required) fail(key, "is required");
  return found;
}

std::optional<std::string> Fields::string(std::string_view key, Presence presence) {
  const auto* found = lookup(key, presence);
  if (found == nullptr) return std::nullopt;
  if (!found->is_string()) {
    fail(key, "must be a string");
    return std::nullopt;
  }
  return std::string(found->get_string());
}

std::optional<std::int64_t> Fields::integer(std::string_view key, Presence presence) {
  const auto* found = lookup(key, presence);
  if (found == nullptr) return std::nullopt;
  if (found->is_int64()) return found->get_int64();
  if (found->is_uint64() && found->get_uint64() <= INT64_MAX) {
    return static_cast<std::int64_t>(found->get_uint64());
  }
  fail(key, "must be an integer");
  return std::nullopt;
}

std::optional<bool> Fields::boolean(std::string_view key, Presence presence) {
  const auto* found = lookup(key, presence);
  if (found == nullptr) return std::nullopt;
  if (!found->is_bool()) {
    fail(key, "must be true or false");
    return std::nullopt;
  }
  return found->get_bool();
}

void Fields::fail(std::string_view key, std::string_view message) {
  if (!errors_.contains(key)) errors_[key] = message;
}

void Fields::finish() const {
  if (!errors_.empty()) throw ApiError::unprocessable("request has invalid fields", errors_);
}

}  // namespace inkwell::json
