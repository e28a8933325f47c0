#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace inkwell::json {

/// Parses a request body that must be one JSON object; throws ApiError 400 otherwise.
boost::json::object parse_object(std::string_view body);

/// Parses any JSON text; returns nullopt instead of throwing (for untrusted non-request input).
std::optional<boost::json::value> try_parse(std::string_view text);

// Reads typed fields of a request object, collecting every problem into one 422 response.
class Fields {
 public:
  enum class Presence { required, optional };

  explicit Fields(const boost::json::object& object) : object_(object) {}

  std::optional<std::string> string(std::string_view key, Presence presence);
  std::optional<std::int64_t> integer(std::string_view key, Presence presence);
  std::optional<bool> boolean(std::string_view key, Presence presence);
  const boost::json::value* value(std::string_view key) const;

  /// Records a problem with one field; the first problem per field wins.
  void fail(std::string_view key, std::string_view message);
  bool ok() const { return errors_.empty(); }
  /// Throws ApiError 422 with per-field details when any field failed.
  void finish() const;

 private:
  const boost::json::value* lookup(std::string_view key, Presence presence);

  const boost::json::object& object_;
  boost::json::object errors_;
};

}  // namespace inkwell::json
