#include "messaging/event.h"

#include "base/ids.h"
#include "base/json.h"

#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace inkwell::messaging {
namespace {

constexpr std::string_view kContentType = "application/json";

// Reads exactly `width` digits at text[pos]; -1 when they are not all digits or run past the end.
int digits(std::string_view text, std::size_t pos, std::size_t width) {
  if (pos + width > text.size()) return -1;
  int value = 0;
  for (std::size_t i = pos; i < pos + width; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

int days_in_month(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// RFC 3339 section 5.6 date-time: 2026-11-24T17:35:01.123Z or with a +hh:mm / -hh:mm offset.
bool is_rfc3339(std::string_view t) {
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') ||
      t[13] != ':' || t[16] != ':') {
    return false;
  }
  const int year = digits(t, 0, 4), month = digits(t, 5, 2), day = digits(t, 8, 2);
  const int hour = digits(t, 11, 2), minute = digits(t, 14, 2), second = digits(t, 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
      hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) {
    return false;
  }
  std::size_t pos = 19;
  if (t[pos] == '.') {
    const std::size_t start = ++pos;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') ++pos;
    if (pos == start) return false;
  }
  if (pos == t.size()) return false;
  if (t[pos] == 'Z' || t[pos] == 'z') return pos + 1 == t.size();
  if (t[pos] != '+' && t[pos] != '-') return false;
  const int offset_hour = digits(t, pos + 1, 2), offset_minute = digits(t, pos + 4, 2);
  return pos + 6 == t.size() && t[pos + 3] == ':' && offset_hour >= 0 && offset_hour <= 23 &&
         offset_minute >= 0 && offset_minute <= 59;
}

Decoded reject(std::string error) {
  return Decoded{std::nullopt, std::move(error)};
}

// A required attribute that must be a non-empty string; returns nullptr when it is not.
const boost::json::string* string_attribute(const boost::json::object& object,
                                            std::string_view name, std::string& error) {
  const boost::json::value* value = object.if_contains(name);
  if (value == nullptr) {
    error = "missing attribute \"" + std::string(name) + "\"";
  } else if (!value->is_string()) {
    error = "attribute \"" + std::string(name) + "\" must be a string";
  } else if (value->get_string().empty()) {
    error = "attribute \"" + std::string(name) + "\" must not be empty";
  } else {
    return &value->get_string();
  }
  return nullptr;
}

}  // namespace

std::string rfc3339_utc(std::chrono::system_clock::time_point at) {
  const auto millis = std::chrono::floor<std::chrono::milliseconds>(at);
  const auto whole = std::chrono::floor<std::chrono::seconds>(millis);
  const std::time_t seconds = std::chrono::system_clock::to_time_t(whole);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[96];  // room for any int the compiler imagines
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>((millis - whole).count()));
  return buffer;
}

Event make_event(std::string_view source, std::string_view type, std::string_view subject,
                 boost::json::object data) {
  return Event{new_uuid(),           std::string(source),
               std::string(type),    rfc3339_utc(std::chrono::system_clock::now()),
               std::string(subject), std::move(data)};
}

std::string encode(const Event& event) {
  const boost::json::object envelope{{"specversion", "1.0"},
                                     {"id", event.id},
                                     {"source", event.source},
                                     {"type", event.type},
                                     {"time", event.time},
                                     {"subject", event.subject},
                                     {"datacontenttype", kContentType},
                                     {"data", event.data}};
  return boost::json::serialize(envelope);
}

Decoded decode(std::string_view text) {
  try {
    std::optional<boost::json::value> parsed = json::try_parse(text);
    if (!parsed) return reject("not valid JSON");
    if (!parsed->is_object()) return reject("a CloudEvent must be a JSON object");
    const boost::json::object& object = parsed->get_object();

    std::string error;
    const auto* specversion = string_attribute(object, "specversion", error);
    if (specversion == nullptr) return reject(error);
    if (*specversion != "1.0") {
      return reject("unsupported specversion \"" + std::string(*specversion) + "\" (want 1.0)");
    }
    const auto* id = string_attribute(object, "id", error);
    const auto* source = id ? string_attribute(object, "source", error) : nullptr;
    const auto* type = source ? string_attribute(object, "type", error) : nullptr;
    const auto* time = type ? string_attribute(object, "time", error) : nullptr;
    const auto* subject = time ? string_attribute(object, "subject", error) : nullptr;
    if (subject == nullptr) return reject(error);
    if (!is_uuid(*id)) return reject("attribute \"id\" must be a UUID");
    if (!is_rfc3339(*time)) return reject("attribute \"time\" must be an RFC 3339 date-time");
    if (const auto* content_type = object.if_contains("datacontenttype")) {
      if (!content_type->is_string() || content_type->get_string() != kContentType) {
        return reject("attribute \"datacontenttype\" must be \"application/json\"");
      }
    }
    const boost::json::value* data = object.if_contains("data");
    if (data == nullptr) return reject("missing attribute \"data\"");
    if (!data->is_object()) return reject("attribute \"data\" must be a JSON object");

    return Decoded{Event{std::string(*id), std::string(*source), std::string(*type),
                         std::string(*time), std::string(*subject), data->get_object()},
                   {}};
  } catch (const std::exception& e) {  // allocation failure on absurd input: still a value
    return reject(std::string("cannot decode: ") + e.what());
  }
}

}  // namespace inkwell::messaging
