#include "http/types.h"

#include "base/error.h"

#include <boost/json/serialize.hpp>

namespace inkwell::http {

Response text_response(Status status, std::string_view content_type, std::string body) {
  Response response{status, 11};
  response.set(beast_http::field::content_type, content_type);
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

Response json_response(Status status, const boost::json::value& body) {
  return text_response(status, "application/json", boost::json::serialize(body));
}

Response error_response(Status status, std::string_view code, std::string_view message,
                        std::string_view correlation_id, const boost::json::object& details) {
  return text_response(status, "application/json",
                       error_body(code, message, correlation_id, details));
}

}  // namespace inkwell::http
