#pragma once

#include <boost/json/object.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace inkwell {

// An error a client caused or must be told about; rendered in the shared error shape.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string code, const std::string& message,
           boost::json::object details = {});

  int status() const noexcept { return status_; }
  const std::string& code() const noexcept { return code_; }
  const boost::json::object& details() const noexcept { return details_; }

  static ApiError bad_request(const std::string& message, boost::json::object details = {});
  static ApiError not_found(const std::string& message = "resource not found");
  static ApiError unprocessable(const std::string& message, boost::json::object details);
  static ApiError unavailable(const std::string& message);

 private:
  int status_;
  std::string code_;
  boost::json::object details_;
};

/// Serializes `{"error":{"code","message","correlationId","details"}}`.
std::string error_body(std::string_view code, std::string_view message,
                       std::string_view correlation_id, const boost::json::object& details = {});

}  // namespace inkwell
