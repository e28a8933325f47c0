#pragma once

#include <boost/json/object.hpp>

#include <string_view>

namespace inkwell::log {

enum class Level { debug, info, warn, error };

/// Sets up the process-wide JSON-lines logger on stdout. Throws std::invalid_argument for an
/// unknown level name.
void init(std::string_view level);
bool enabled(Level level);
/// Writes one line: {"time","level","msg", ...fields}.
void write(Level level, std::string_view message, boost::json::object fields = {});

inline void debug(std::string_view m, boost::json::object f = {}) {
  write(Level::debug, m, std::move(f));
}
inline void info(std::string_view m, boost::json::object f = {}) {
  write(Level::info, m, std::move(f));
}
inline void warn(std::string_view m, boost::json::object f = {}) {
  write(Level::warn, m, std::move(f));
}
inline void error(std::string_view m, boost::json::object f = {}) {
  write(Level::error, m, std::move(f));
}

}  // namespace inkwell::log
