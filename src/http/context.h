#pragma once

#include "http/types.h"

#include <boost/json/object.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace inkwell::http {

// What a handler sees of one request: the message, its path parameters, its correlation id and
// its deadline.
class Context {
 public:
  using Params = std::vector<std::pair<std::string_view, std::string>>;

  Context(const Request& request, std::string_view path, std::string_view query, Params params,
          std::string correlation_id, std::chrono::steady_clock::time_point deadline)
      : request_(request),
        path_(path),
        query_(query),
        params_(std::move(params)),
        correlation_id_(std::move(correlation_id)),
        deadline_(deadline) {}

  const Request& request() const { return request_; }
  std::string_view path() const { return path_; }
  std::string_view query() const { return query_; }
  /// A path parameter declared in the route pattern, percent-decoded.
  std::string_view param(std::string_view name) const;
  /// A query parameter, percent-decoded; nullopt when absent.
  std::optional<std::string> query_param(std::string_view name) const;
  const std::string& correlation_id() const { return correlation_id_; }
  std::chrono::steady_clock::time_point deadline() const { return deadline_; }
  /// The peer's IP address as text ("" when unknown). Behind the gateway this is the gateway;
  /// services that need the client's address read what the gateway forwards.
  const std::string& remote_address() const { return remote_address_; }
  void set_remote_address(std::string address) { remote_address_ = std::move(address); }
  /// A request header's value ("" when absent).
  std::string_view header(std::string_view name) const;
  /// A cookie's value from the Cookie header; nullopt when absent.
  std::optional<std::string_view> cookie(std::string_view name) const;
  /// The body as a JSON object: 415 unless the content type is JSON, 400 when malformed.
  boost::json::object json_body() const;

 private:
  const Request& request_;
  std::string_view path_;
  std::string_view query_;
  Params params_;
  std::string correlation_id_;
  std::chrono::steady_clock::time_point deadline_;
  std::string remote_address_;
};

/// Decodes %XX escapes ('+' stays '+'); nullopt for a malformed escape or an encoded NUL.
std::optional<std::string> percent_decode(std::string_view text);

}  // namespace inkwell::http
