#include "base/error.h"

#include <boost/json/serialize.hpp>

namespace inkwell {

ApiError::ApiError(int status, std::string code, const std::string& message,
                   boost::json::object details)
    : std::runtime_error(message),
      status_(status),
      code_(std::move(code)),
      details_(std::move(details)) {}

ApiError ApiError::bad_request(const std::string& message, boost::json::object details) {
  return {400, "bad_request", message, std::move(details)};
}

ApiError ApiError::not_found(const std::string& message) {
  return {404, "not_found", message};
}

ApiError ApiError::unprocessable(const std::string& message, boost::json::object details) {
  return {422, "validation_failed", message, std::move(details)};
}

ApiError ApiError::unavailable(const std::string& message) {
  return {503, "service_unavailable", message};
}

std::string error_body(std::string_view code, std::string_view message,
                       std::string_view correlation_id, const boost::json::object& details) {
  boost::json::object error;
  error["code"] = code;
  error["message"] = message;
  error["correlationId"] = correlation_id;
  error["details"] = details;
  boost::json::object body;
  body["error"] = std::move(error);
  return boost::json::serialize(body);
}

}  // namespace inkwell
