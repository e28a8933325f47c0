#include "base/error.h"

#include <boost/json/serialize.hpp>

namespace inkwell {

ApiError::ApiError(int status, std::string code, std::string message, boost::json::object details)
    : std::runtime_error(std::move(message)),
      status_(status),
      code_(std::move(code)),
      details_(std::move(details)) {}

ApiError ApiError::bad_request(std::string message, boost::json::object details) {
  return {400, "bad_request", std::move(message), std::move(details)};
}

ApiError ApiError::not_found(std::string message) { return {404, "not_found", std::move(message)}; }

ApiError ApiError::unprocessable(std::string message, boost::json::object details) {
  return {422, "validation_failed", std::move(message), std::move(details)};
}

ApiError ApiError::unavailable(std::string message) {
  return {503, "service_unavailable", std::move(message)};
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
