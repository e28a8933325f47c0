#include "base/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>

#include <fmt/chrono.h>
#include <chrono>
#include <stdexcept>
#include <string>

namespace inkwell::log {
namespace {

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::debug:
      return spdlog::level::debug;
    case Level::info:
      return spdlog::level::info;
    case Level::warn:
      return spdlog::level::warn;
    case Level::error:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::string_view name_of(Level level) {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
  }
  return "info";
}

std::shared_ptr<spdlog::logger>& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto created = std::make_shared<spdlog::logger>(
        "inkwell", std::make_shared<spdlog::sinks::stdout_sink_mt>());
    created->set_pattern("%v");
    created->flush_on(spdlog::level::trace);
    return created;
  }();
  return instance;
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  return fmt::format("{:%FT%T}.{:03}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(now)),
                     ms.count() % 1000);
}

}  // namespace

void init(std::string_view level) {
  if (level == "debug") {
    logger()->set_level(spdlog::level::debug);
  } else if (level == "info") {
    logger()->set_level(spdlog::level::info);
  } else if (level == "warn") {
    logger()->set_level(spdlog::level::warn);
  } else if (level == "error") {
    logger()->set_level(spdlog::level::err);
  } else {
    throw std::invalid_argument("must be one of debug, info, warn, error");
  }
}

bool enabled(Level level) {
  return logger()->should_log(to_spdlog(level));
}

void write(Level level, std::string_view message, boost::json::object fields) {
  if (!enabled(level)) return;
  boost::json::object line;
  line.reserve(fields.size() + 3);
  line["time"] = utc_now();
  line["level"] = name_of(level);
  line["msg"] = message;
  for (auto& field : fields) line[field.key()] = std::move(field.value());
  logger()->log(to_spdlog(level), boost::json::serialize(line));
}

}  // namespace inkwell::log
