#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace inkwell::http {

// One call to a third-party endpoint.
struct OutboundRequest {
  std::string method = "GET";
  std::string url;  // http:// or https:// only
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{10'000};  // the whole call: DNS, connect, TLS, transfer
};

// What a third-party endpoint answered, whatever the status.
struct OutboundResponse {
  int status = 0;
  std::string body;
  std::string content_type;
};

// A call that got no complete HTTP response: DNS, connect, TLS, timeout, a response over the
// size limit, or a URL that is not http/https. HTTP error statuses are responses, not this.
class OutboundError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Calls third-party HTTP(S) endpoints with libcurl: TLS verified, no redirects followed,
// bounded response size. Blocking (run it on the WorkerPool); safe to share between threads,
// since every call uses its own curl handle. The internal services talk through HttpClient.
class OutboundClient {
 public:
  explicit OutboundClient(std::size_t max_response_bytes = 1 << 20);
  ~OutboundClient() = default;
  OutboundClient(const OutboundClient&) = delete;
  OutboundClient& operator=(const OutboundClient&) = delete;

  /// Sends the request and returns the response, whatever its status. Throws OutboundError for
  /// transport failures (DNS, connect, TLS, timeout, response too large, a URL that is not
  /// http/https, a header containing a line break).
  OutboundResponse send(const OutboundRequest& request) const;

 private:
  std::size_t max_response_bytes_;
};

/// Encodes fields as application/x-www-form-urlencoded: RFC 3986 unreserved characters stay,
/// space becomes '+', every other byte becomes %XX.
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace inkwell::http
