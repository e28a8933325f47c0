#include "http/router.h"

#include <algorithm>
#include <stdexcept>

namespace inkwell::http {
namespace {

bool is_param(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// Splits "/a/b/" into {"a","b"}; returns false for empty inner segments ("/a//b").
bool split_path(std::string_view path, std::vector<std::string_view>& out) {
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  while (!path.empty()) {
    const auto slash = path.find('/');
    const auto segment = path.substr(0, slash);
    if (segment.empty()) return false;
    out.push_back(segment);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return true;
}

}  // namespace

void RouteStats::record(unsigned status, double seconds) noexcept {
  if (status >= kFirstStatus && status <= kLastStatus) {
    by_status_[status - kFirstStatus].fetch_add(1, std::memory_order_relaxed);
  }
  latency_.observe(seconds);
}

void RouteStats::collect(metrics::Exposition& out, std::string_view service,
                         std::string_view method, std::string_view route) const {
  for (unsigned i = 0; i < by_status_.size(); ++i) {
    const auto count = by_status_[i].load(std::memory_order_relaxed);
    if (count == 0) continue;
    const std::string status = std::to_string(i + kFirstStatus);
    out.counter("http_requests_total", "HTTP requests handled, by route and status.",
                {{"service", service}, {"method", method}, {"route", route}, {"status", status}},
                static_cast<double>(count));
  }
  if (latency_.count() > 0) {
    out.histogram("http_request_duration_seconds", "Time from request read to response written.",
                  {{"service", service}, {"method", method}, {"route", route}}, latency_);
  }
}

void Router::add(Method method, std::string_view pattern, Handler handler) {
  std::vector<std::string_view> parts;
  if (!split_path(pattern, parts)) {
    throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
  }
  Route route{method, std::string(pattern), {}, std::move(handler)};
  for (auto part : parts) {
    if (part.find_first_of("{}") != std::string_view::npos && !is_param(part)) {
      throw std::invalid_argument("malformed parameter in route: " + std::string(pattern));
    }
    route.segments.emplace_back(part);
  }
  for (const auto& existing : routes_) {
    if (existing.method == method && existing.segments.size() == route.segments.size() &&
        std::equal(existing.segments.begin(), existing.segments.end(), route.segments.begin(),
                   [](const std::string& a, const std::string& b) {
                     return a == b || (is_param(a) && is_param(b));
                   })) {
      throw std::invalid_argument("duplicate route: " + std::string(pattern));
    }
  }
  routes_.push_back(std::move(route));
}

Router::Match Router::match(Method method, std::string_view path) const {
  Match result;
  std::vector<std::string_view> parts;
  parts.reserve(8);
  if (!split_path(path, parts)) return result;

  // Among routes whose shape fits, prefer literals at the earliest differing segment.
  const Route* best = nullptr;
  std::vector<bool> best_literals;
  std::vector<bool> literals;
  for (const auto& route : routes_) {
    if (route.segments.size() != parts.size()) continue;
    literals.assign(parts.size(), false);
    bool fits = true;
    for (std::size_t i = 0; i < parts.size() && fits; ++i) {
      if (is_param(route.segments[i])) continue;
      fits = route.segments[i] == parts[i];
      literals[i] = true;
    }
    if (!fits) continue;
    if (route.method != method) {
      const auto name = beast_http::to_string(route.method);
      if (result.allowed.find(name) == std::string::npos) {
        result.allowed += (result.allowed.empty() ? "" : ", ") + std::string(name);
      }
      continue;
    }
    if (best == nullptr || literals > best_literals) {
      best = &route;
      best_literals = literals;
    }
  }
  if (best == nullptr) {
    result.kind = result.allowed.empty() ? Match::Kind::not_found : Match::Kind::method_not_allowed;
    return result;
  }
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto& segment = best->segments[i];
    if (!is_param(segment)) continue;
    auto decoded = percent_decode(parts[i]);
    if (!decoded) return result;  // a malformed escape matches nothing: 404
    result.params.emplace_back(std::string_view(segment).substr(1, segment.size() - 2),
                               std::move(*decoded));
  }
  result.kind = Match::Kind::found;
  result.route = best;
  return result;
}

void Router::collect(metrics::Exposition& out, std::string_view service) const {
  for (const auto& route : routes_) {
    route.stats->collect(out, service, beast_http::to_string(route.method), route.pattern);
  }
  unmatched_->collect(out, service, "any", "unmatched");
}

}  // namespace inkwell::http
