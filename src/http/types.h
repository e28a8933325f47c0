#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace inkwell::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Response = beast_http::response<beast_http::string_body>;
using Status = beast_http::status;
using Method = beast_http::verb;

inline constexpr std::string_view kCorrelationHeader = "X-Correlation-Id";

/// A response with a JSON body.
Response json_response(Status status, const boost::json::value& body);
/// A response with any body and content type.
Response text_response(Status status, std::string_view content_type, std::string body);
/// The shared error shape as a response.
Response error_response(Status status, std::string_view code, std::string_view message,
                        std::string_view correlation_id, const boost::json::object& details = {});

}  // namespace inkwell::http
