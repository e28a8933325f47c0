#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace inkwell::messaging {

// A CloudEvents 1.0 event in structured JSON mode: the unit every service publishes and consumes.
struct Event {
  std::string id;       // UUID, unique per event; the inbox deduplicates on it
  std::string source;   // "/auth", "/blog", ...
  std::string type;     // also the topic: "user.registered", ...
  std::string time;     // RFC 3339 UTC
  std::string subject;  // the aggregate id; also the message key
  boost::json::object data;
};

/// A new event with a fresh id and the current time.
Event make_event(std::string_view source, std::string_view type, std::string_view subject,
                 boost::json::object data);

/// `at` as RFC 3339 UTC with milliseconds: "2026-11-24T17:35:01.123Z".
std::string rfc3339_utc(std::chrono::system_clock::time_point at);

/// The structured-mode JSON text (`specversion` "1.0", `datacontenttype` "application/json").
std::string encode(const Event& event);

// The outcome of decoding untrusted bytes: an event, or why the bytes are not one.
struct Decoded {
  std::optional<Event> event;
  std::string error;  // set when event is empty
};

/// Strict parsing: every required attribute present with the right type, specversion "1.0",
/// a UUID id, an RFC 3339 time, JSON data object. Never throws.
Decoded decode(std::string_view text);

}  // namespace inkwell::messaging
