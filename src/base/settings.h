#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace inkwell {

// A start-up configuration problem; what() is one line naming the variable and the problem.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string_view variable, std::string_view problem);
  const std::string& variable() const noexcept { return variable_; }

 private:
  std::string variable_;
};

// Configuration values from the environment, overridden by command-line flags, read typed and
// validated. Every variable has one flag spelling: INKWELL_AUTH_PORT is --auth-port,
// KAFKA_BROKERS is --kafka-brokers.
class Settings {
 public:
  /// Throws ConfigError for a flag that is not of the form --name=value or --name value.
  Settings(std::map<std::string, std::string, std::less<>> environment,
           const std::vector<std::string>& flags);

  /// Reads the process environment.
  static std::map<std::string, std::string, std::less<>> process_environment();
  static std::string flag_for(std::string_view variable);

  std::optional<std::string> optional(std::string_view variable) const;
  std::string text(std::string_view variable, std::string_view fallback) const;
  std::int64_t integer(std::string_view variable, std::int64_t fallback, std::int64_t min,
                       std::int64_t max) const;
  std::uint16_t port(std::string_view variable, std::uint16_t fallback) const;
  std::chrono::milliseconds millis(std::string_view variable, std::chrono::milliseconds fallback,
                                   std::chrono::milliseconds min) const;
  bool boolean(std::string_view variable, bool fallback) const;
  std::string one_of(std::string_view variable, std::string_view fallback,
                     std::initializer_list<std::string_view> allowed) const;
  /// An absolute URL whose scheme is one of `schemes`; returns nullopt when unset and no fallback.
  std::optional<std::string> url(std::string_view variable, std::optional<std::string> fallback,
                                 std::initializer_list<std::string_view> schemes) const;
  /// Comma-separated host:port list (Kafka bootstrap servers).
  std::optional<std::string> host_ports(std::string_view variable) const;

  /// Throws ConfigError naming the first flag that no setting read.
  void reject_unknown_flags() const;

 private:
  std::map<std::string, std::string, std::less<>> environment_;
  std::map<std::string, std::string, std::less<>> flags_;  // keyed by flag name, no dashes
  mutable std::set<std::string, std::less<>> read_flags_;
};

}  // namespace inkwell
