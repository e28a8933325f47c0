#include "http/context.h"

#include "base/error.h"
#include "base/json.h"

namespace inkwell::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex_value(text[i + 1]);
    const int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0 || (high == 0 && low == 0)) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

std::string_view Context::param(std::string_view name) const {
  for (const auto& [key, value] : params_) {
    if (key == name) return value;
  }
  return {};
}

std::optional<std::string> Context::query_param(std::string_view name) const {
  std::string_view rest = query_;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const auto equals = pair.find('=');
    const auto key = pair.substr(0, equals);
    if (key != name) continue;
    if (equals == std::string_view::npos) return std::string{};
    std::string raw(pair.substr(equals + 1));
    for (char& c : raw) {
      if (c == '+') c = ' ';
    }
    auto decoded = percent_decode(raw);
    if (!decoded) {
      throw ApiError::bad_request("query parameter '" + std::string(name) + "' is malformed");
    }
    return decoded;
  }
  return std::nullopt;
}

boost::json::object Context::json_body() const {
  const auto type = request_[beast_http::field::content_type];
  const auto media = type.substr(0, type.find(';'));
  if (media != "application/json" && !(media.size() > 5 && media.ends_with("+json"))) {
    throw ApiError(415, "unsupported_media_type", "request body must be application/json");
  }
  return json::parse_object(request_.body());
}

std::string_view Context::header(std::string_view name) const {
  const auto found = request_.find(name);
  if (found == request_.end()) return {};
  const auto value = found->value();
  return {value.data(), value.size()};
}

// Cookie: a=1; b=2 (RFC 6265 section 5.4). Several Cookie headers are searched in order; the
// first pair with the name wins.
std::optional<std::string_view> Context::cookie(std::string_view name) const {
  for (auto it = request_.find(beast_http::field::cookie);
       it != request_.end() && it->name() == beast_http::field::cookie; ++it) {
    std::string_view rest(it->value().data(), it->value().size());
    while (!rest.empty()) {
      const auto semicolon = rest.find(';');
      std::string_view pair = rest.substr(0, semicolon);
      rest = semicolon == std::string_view::npos ? std::string_view{} : rest.substr(semicolon + 1);
      while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
      while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t')) pair.remove_suffix(1);
      const auto equals = pair.find('=');
      if (equals == std::string_view::npos || pair.substr(0, equals) != name) continue;
      std::string_view value = pair.substr(equals + 1);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace inkwell::http
