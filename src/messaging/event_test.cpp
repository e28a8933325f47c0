#include "messaging/event.h"

#include "base/ids.h"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <random>
#include <regex>
#include <string>
#include <vector>

namespace inkwell::messaging {
namespace {

Event sample() {
  return make_event("/auth", "user.updated", "1f0c1c36-3f0e-4c39-a9d5-7a1c2b3d4e5f",
                    {{"userId", "1f0c1c36-3f0e-4c39-a9d5-7a1c2b3d4e5f"},
                     {"name", "Zoë \"quoted\" <b>"},
                     {"avatarUrl", nullptr},
                     {"version", 3},
                     {"nested", {{"tags", {"a", "b"}}}}});
}

// A valid envelope with one attribute replaced (or removed, for a null value).
std::string with(std::string_view attribute, const boost::json::value& value) {
  boost::json::object envelope = boost::json::parse(encode(sample())).as_object();
  if (value.is_null()) {
    envelope.erase(attribute);
  } else {
    envelope[attribute] = value;
  }
  return boost::json::serialize(envelope);
}

void expect_same(const Event& a, const Event& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.time, b.time);
  EXPECT_EQ(a.subject, b.subject);
  EXPECT_EQ(a.data, b.data);
}

TEST(Event, MakeEventHasAFreshUuidAndTheCurrentUtcTimeInMilliseconds) {
  const Event a = sample();
  const Event b = sample();
  EXPECT_TRUE(is_uuid(a.id));
  EXPECT_NE(a.id, b.id);
  EXPECT_TRUE(std::regex_match(a.time, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << a.time;
  EXPECT_EQ(a.source, "/auth");
  EXPECT_EQ(a.type, "user.updated");
}

TEST(Event, Rfc3339UtcFormatsMilliseconds) {
  using namespace std::chrono;
  const system_clock::time_point at = sys_days{2024y / February / 29} + 23h + 59min + 58s + 7ms;
  EXPECT_EQ(rfc3339_utc(at), "2024-02-29T23:59:58.007Z");
  EXPECT_EQ(rfc3339_utc(system_clock::time_point{}), "1970-01-01T00:00:00.000Z");
}

TEST(Event, EncodesAStructuredCloudEvent) {
  const Event event = sample();
  const boost::json::object json = boost::json::parse(encode(event)).as_object();
  EXPECT_EQ(json.at("specversion"), "1.0");
  EXPECT_EQ(json.at("datacontenttype"), "application/json");
  EXPECT_EQ(json.at("id"), event.id.c_str());
  EXPECT_EQ(json.at("subject"), event.subject.c_str());
  EXPECT_EQ(json.at("data").at("version"), 3);
}

TEST(Event, RoundTripsThroughEncodeAndDecode) {
  const Event event = sample();
  const Decoded decoded = decode(encode(event));
  ASSERT_TRUE(decoded.event) << decoded.error;
  EXPECT_TRUE(decoded.error.empty());
  expect_same(*decoded.event, event);
}

TEST(Event, AcceptsWhatCloudEventsAllows) {
  // Offsets and fractional seconds of any length, no datacontenttype, extension attributes.
  for (const char* time :
       {"2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123456+05:30", "2024-02-29t23:59:60-00:00"}) {
    EXPECT_TRUE(decode(with("time", time)).event) << time;
  }
  EXPECT_TRUE(decode(with("datacontenttype", nullptr)).event);
  EXPECT_TRUE(
      decode(with("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")).event);
  EXPECT_TRUE(decode(with("data", boost::json::object{})).event);
}

TEST(Event, RejectsEachMalformedEnvelopeWithAReason) {
  struct Case {
    std::string text;
    std::string reason;  // a part of the error
  };
  const std::vector<Case> cases = {
      {"", "not valid JSON"},
      {"{", "not valid JSON"},
      {"\xff\xfe{}", "not valid JSON"},
      {"[1,2]", "must be a JSON object"},
      {"\"event\"", "must be a JSON object"},
      {"null", "must be a JSON object"},
      {with("specversion", nullptr), "missing attribute \"specversion\""},
      {with("specversion", "0.3"), "unsupported specversion \"0.3\""},
      {with("specversion", 1.0), "\"specversion\" must be a string"},
      {with("id", nullptr), "missing attribute \"id\""},
      {with("id", 42), "\"id\" must be a string"},
      {with("id", "not-a-uuid"), "\"id\" must be a UUID"},
      {with("id", ""), "\"id\" must not be empty"},
      {with("source", nullptr), "missing attribute \"source\""},
      {with("source", boost::json::array{"/auth"}), "\"source\" must be a string"},
      {with("type", nullptr), "missing attribute \"type\""},
      {with("type", true), "\"type\" must be a string"},
      {with("time", nullptr), "missing attribute \"time\""},
      {with("time", "yesterday"), "RFC 3339"},
      {with("time", "2026-02-30T00:00:00Z"), "RFC 3339"},
      {with("time", "2026-01-02 03:04:05Z"), "RFC 3339"},
      {with("time", "2026-01-02T03:04:05"), "RFC 3339"},
      {with("time", "2026-01-02T24:00:00Z"), "RFC 3339"},
      {with("time", "2026-01-02T03:04:05.Z"), "RFC 3339"},
      {with("time", "2026-01-02T03:04:05+0530"), "RFC 3339"},
      {with("time", "2026-01-02T03:04:05Zjunk"), "RFC 3339"},
      {with("subject", nullptr), "missing attribute \"subject\""},
      {with("subject", 7), "\"subject\" must be a string"},
      {with("datacontenttype", "text/plain"), "\"datacontenttype\" must be \"application/json\""},
      {with("datacontenttype", 1), "\"datacontenttype\" must be \"application/json\""},
      {with("data", nullptr), "missing attribute \"data\""},
      {with("data", "{}"), "\"data\" must be a JSON object"},
      {with("data", boost::json::array{}), "\"data\" must be a JSON object"},
  };
  for (const Case& c : cases) {
    const Decoded decoded = decode(c.text);
    EXPECT_FALSE(decoded.event) << c.text;
    EXPECT_NE(decoded.error.find(c.reason), std::string::npos)
        << "input: " << c.text << "\nerror: " << decoded.error << "\nwanted: " << c.reason;
  }
}

TEST(Event, NeverThrowsOnRandomBytesOrTruncations) {
  std::mt19937 random(20261124);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> length(0, 200);
  const std::string valid = encode(sample());
  const std::string alphabet = valid + "{}[]\":,0123456789.eE+-\\u tfn";
  for (int i = 0; i < 10'000; ++i) {
    std::string bytes(length(random), '\0');
    if (i % 2 == 0) {
      for (char& c : bytes) c = static_cast<char>(byte(random));
    } else {  // JSON-looking noise reaches deeper into the parser than random bytes
      for (char& c : bytes) c = alphabet[static_cast<std::size_t>(byte(random)) % alphabet.size()];
    }
    const Decoded decoded = decode(bytes);
    EXPECT_NE(decoded.event.has_value(), !decoded.error.empty());
  }
  for (std::size_t n = 0; n < valid.size(); ++n) {
    const Decoded decoded = decode(std::string_view(valid).substr(0, n));
    EXPECT_FALSE(decoded.event) << "prefix of " << n << " bytes";
    EXPECT_FALSE(decoded.error.empty());
  }
  for (std::size_t i = 0; i < valid.size(); ++i) {  // every single-byte corruption
    std::string corrupt = valid;
    corrupt[i] = static_cast<char>(byte(random));
    const Decoded decoded = decode(corrupt);
    EXPECT_NE(decoded.event.has_value(), !decoded.error.empty());
  }
}

TEST(Event, HandlesHugeAndDeeplyNestedInput) {
  Event big = sample();
  big.data["content"] = std::string(8 << 20, 'x');
  const Decoded decoded = decode(encode(big));
  ASSERT_TRUE(decoded.event) << decoded.error;
  EXPECT_EQ(decoded.event->data.at("content").as_string().size(), std::size_t{8 << 20});

  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  EXPECT_FALSE(decode(deep).event);
  EXPECT_FALSE(decode(std::string(1'000'000, '{')).event);
}

}  // namespace
}  // namespace inkwell::messaging
