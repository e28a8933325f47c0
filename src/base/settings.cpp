#include "base/settings.h"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX global

namespace inkwell {
namespace {

std::string quoted(std::string_view value) {
  constexpr std::size_t kMaxShown = 60;
  std::string shown(value.substr(0, kMaxShown));
  if (value.size() > kMaxShown) shown += "...";
  return "'" + shown + "'";
}

bool parse_int(std::string_view text, std::int64_t& out) {
  if (text.empty()) return false;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

}  // namespace

ConfigError::ConfigError(std::string_view variable, std::string_view problem)
    : std::runtime_error(std::string(variable) + ": " + std::string(problem)),
      variable_(variable) {}

Settings::Settings(std::map<std::string, std::string, std::less<>> environment,
                   const std::vector<std::string>& flags)
    : environment_(std::move(environment)) {
  for (std::size_t i = 0; i < flags.size(); ++i) {
    std::string_view flag = flags[i];
    if (flag.size() < 3 || flag.substr(0, 2) != "--") {
      throw ConfigError(flag, "unexpected argument (flags look like --name=value)");
    }
    flag.remove_prefix(2);
    const auto equals = flag.find('=');
    if (equals != std::string_view::npos) {
      flags_[std::string(flag.substr(0, equals))] = std::string(flag.substr(equals + 1));
    } else if (i + 1 < flags.size() && flags[i + 1].rfind("--", 0) != 0) {
      flags_[std::string(flag)] = flags[++i];
    } else {
      throw ConfigError("--" + std::string(flag), "needs a value (--name=value)");
    }
  }
}

std::map<std::string, std::string, std::less<>> Settings::process_environment() {
  std::map<std::string, std::string, std::less<>> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view pair(*entry);
    const auto equals = pair.find('=');
    if (equals != std::string_view::npos) {
      out.emplace(pair.substr(0, equals), pair.substr(equals + 1));
    }
  }
  return out;
}

std::string Settings::flag_for(std::string_view variable) {
  constexpr std::string_view kPrefix = "INKWELL_";
  if (variable.substr(0, kPrefix.size()) == kPrefix) variable.remove_prefix(kPrefix.size());
  std::string flag(variable);
  std::transform(flag.begin(), flag.end(), flag.begin(), [](char c) {
    return c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  return flag;
}

std::optional<std::string> Settings::optional(std::string_view variable) const {
  const std::string flag = flag_for(variable);
  read_flags_.insert(flag);
  if (auto it = flags_.find(flag); it != flags_.end()) return it->second;
  if (auto it = environment_.find(variable); it != environment_.end() && !it->second.empty()) {
    return it->second;
  }
  return std::nullopt;
}

std::string Settings::text(std::string_view variable, std::string_view fallback) const {
  return optional(variable).value_or(std::string(fallback));
}

std::int64_t Settings::integer(std::string_view variable, std::int64_t fallback, std::int64_t min,
                               std::int64_t max) const {
  const auto raw = optional(variable);
  if (!raw) return fallback;
  std::int64_t value = 0;
  if (!parse_int(*raw, value) || value < min || value > max) {
    throw ConfigError(variable, "must be an integer from " + std::to_string(min) + " to " +
                                    std::to_string(max) + ", got " + quoted(*raw));
  }
  return value;
}

std::uint16_t Settings::port(std::string_view variable, std::uint16_t fallback) const {
  const auto raw = optional(variable);
  if (!raw) return fallback;
  std::int64_t value = 0;
  if (!parse_int(*raw, value) || value < 0 || value > 65535) {
    throw ConfigError(variable, "must be a port number from 0 to 65535, got " + quoted(*raw));
  }
  return static_cast<std::uint16_t>(value);
}

std::chrono::milliseconds Settings::millis(std::string_view variable,
                                           std::chrono::milliseconds fallback,
                                           std::chrono::milliseconds min) const {
  constexpr std::int64_t kMaxMillis = 24LL * 3600 * 1000;
  return std::chrono::milliseconds(integer(variable, fallback.count(), min.count(), kMaxMillis));
}

bool Settings::boolean(std::string_view variable, bool fallback) const {
  const auto raw = optional(variable);
  if (!raw) return fallback;
  if (*raw == "true" || *raw == "1" || *raw == "yes" || *raw == "on") return true;
  if (*raw == "false" || *raw == "0" || *raw == "no" || *raw == "off") return false;
  throw ConfigError(variable, "must be true or false, got " + quoted(*raw));
}

std::string Settings::one_of(std::string_view variable, std::string_view fallback,
                             std::initializer_list<std::string_view> allowed) const {
  std::string value = text(variable, fallback);
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return value;
  std::string names;
  for (auto name : allowed) names += (names.empty() ? "" : ", ") + std::string(name);
  throw ConfigError(variable, "must be one of " + names + ", got " + quoted(value));
}

std::optional<std::string> Settings::url(std::string_view variable,
                                         std::optional<std::string> fallback,
                                         std::initializer_list<std::string_view> schemes) const {
  auto value = optional(variable);
  if (!value) return fallback;
  std::string names;
  for (auto scheme : schemes) names += (names.empty() ? "" : ", ") + std::string(scheme) + "://";
  auto parsed = boost::urls::parse_absolute_uri(*value);
  // Never echo a URL back: it may carry a password.
  if (!parsed) throw ConfigError(variable, "must be a URL starting with " + names);
  if (std::find(schemes.begin(), schemes.end(), parsed->scheme()) == schemes.end()) {
    throw ConfigError(variable, "must be a URL starting with " + names + ", got scheme '" +
                                    std::string(parsed->scheme()) + "'");
  }
  if (parsed->scheme() != "sqlite" && parsed->host().empty()) {
    throw ConfigError(variable, "must name a host");
  }
  // Checked as text: Boost.URL's port_number() wraps 99999 to 34463 and reads "h:port" as "h:".
  std::int64_t port = 0;
  if (parsed->has_port() && (!parse_int(parsed->port(), port) || port < 1 || port > 65535)) {
    throw ConfigError(variable, "must have a port from 1 to 65535");
  }
  return value;
}

std::optional<std::string> Settings::host_ports(std::string_view variable) const {
  auto value = optional(variable);
  if (!value) return std::nullopt;
  std::string_view rest = *value;
  while (true) {
    const auto comma = rest.find(',');
    const auto item = rest.substr(0, comma);
    const auto colon = item.rfind(':');
    std::int64_t port = 0;
    if (colon == std::string_view::npos || colon == 0 || !parse_int(item.substr(colon + 1), port) ||
        port < 1 || port > 65535) {
      throw ConfigError(variable,
                        "must be a comma-separated list of host:port, got " + quoted(item));
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return value;
}

void Settings::reject_unknown_flags() const {
  for (const auto& [flag, value] : flags_) {
    if (!read_flags_.contains(flag))
      throw ConfigError("--" + flag, "unknown flag, or not used by the selected services");
  }
}

}  // namespace inkwell
