#include "app/events_command.h"

#include "app/app.h"
#include "base/settings.h"
#include "messaging/embedded/embedded_bus.h"
#include "messaging/kafka/dead_letters.h"
#include "messaging/outbox.h"
#include "messaging/topics.h"
#include "storage/database.h"
#include "storage/migrations.h"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <iostream>
#include <optional>

namespace inkwell::app {
namespace {

constexpr const char* kUsage = R"(Usage:
  inkwell events dlq list   --topic T [--group G]   print the dead letters of topic T
  inkwell events dlq replay --topic T [--group G]   send them back to T (Kafka)
With KAFKA_BROKERS set the dead letters are read from T.dlq; without it (the embedded bus) they
are read from the dead_letters table of each service database.
)";

// Takes --name=value or --name value out of `args`.
std::optional<std::string> take_flag(std::vector<std::string>& args, const std::string& name) {
  for (auto it = args.begin(); it != args.end(); ++it) {
    if (*it == "--" + name && it + 1 != args.end()) {
      std::string value = *(it + 1);
      args.erase(it, it + 2);
      return value;
    }
    if (it->rfind("--" + name + "=", 0) == 0) {
      std::string value = it->substr(name.size() + 3);
      args.erase(it);
      return value;
    }
  }
  return std::nullopt;
}

int list_kafka(const std::string& brokers, const std::string& topic,
               const std::optional<std::string>& group) {
  messaging::kafka::KafkaOptions options;
  options.brokers = brokers;
  std::size_t shown = 0;
  for (const auto& letter : messaging::kafka::list_dead_letters(options, topic)) {
    const auto letter_group = letter.header(messaging::kafka::kGroupHeader);
    if (group && letter_group != *group) continue;
    ++shown;
    std::cout << boost::json::serialize(boost::json::object{
                     {"partition", letter.partition},
                     {"offset", letter.offset},
                     {"key", letter.key},
                     {"group", letter_group},
                     {"attempts", letter.header(messaging::kafka::kAttemptsHeader)},
                     {"error", letter.header(messaging::kafka::kErrorHeader)},
                     {"payload", letter.payload_excerpt}})
              << "\n";
  }
  std::cerr << shown << " dead letter(s) in " << messaging::dead_letter_topic(topic) << "\n";
  return 0;
}

int list_embedded(const Settings& settings, const std::string& topic,
                  const std::optional<std::string>& group) {
  std::size_t shown = 0;
  for (const auto& service : database_services()) {
    auto database = storage::open_database(database_url(settings, service));
    // A service that never ran has no tables yet; creating them is what its start would do.
    storage::apply_migrations(*database, messaging::messaging_migrations(service));
    for (const auto& letter : messaging::list_dead_letters(*database, topic)) {
      if (group && letter.consumer_group != *group) continue;
      ++shown;
      std::cout << boost::json::serialize(boost::json::object{
                       {"service", service},
                       {"id", letter.id},
                       {"group", letter.consumer_group},
                       {"eventId", letter.event_id ? boost::json::value(*letter.event_id)
                                                   : boost::json::value(nullptr)},
                       {"attempts", letter.attempts},
                       {"error", letter.error},
                       {"createdAt", letter.created_at},
                       {"payload", letter.payload.substr(0, 200)}})
                << "\n";
    }
  }
  std::cerr << shown << " dead letter(s) of " << topic << " in the service databases\n";
  return 0;
}

}  // namespace

int run_events_command(const std::vector<std::string>& arguments) {
  std::vector<std::string> args = arguments;
  if (args.size() < 2 || args[0] != "dlq" || (args[1] != "list" && args[1] != "replay")) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string action = args[1];
  args.erase(args.begin(), args.begin() + 2);
  const auto topic = take_flag(args, "topic");
  const auto group = take_flag(args, "group");
  if (!topic || std::find(messaging::kTopics.begin(), messaging::kTopics.end(), *topic) ==
                    messaging::kTopics.end()) {
    std::cerr << "inkwell: --topic must name an event topic (user.registered, post.created, ...)\n";
    return 2;
  }
  Settings settings(Settings::process_environment(), args);
  const auto brokers = settings.host_ports("KAFKA_BROKERS");
  const int code = [&] {
    if (action == "list") {
      return brokers ? list_kafka(*brokers, *topic, group) : list_embedded(settings, *topic, group);
    }
    if (!brokers) {
      // The embedded bus replays by running the subscriber's handler, which exists only inside
      // the running server; there is no topic to send the letters back to.
      std::cerr << "inkwell: replay needs KAFKA_BROKERS; on the embedded bus dead letters stay in "
                   "the service databases (see `inkwell events dlq list`)\n";
      return 2;
    }
    messaging::kafka::KafkaOptions options;
    options.brokers = *brokers;
    const auto sent =
        messaging::kafka::replay_dead_letters(options, *topic, group.value_or(std::string()));
    std::cout << "replayed " << sent << " dead letter(s) from "
              << messaging::dead_letter_topic(*topic) << " to " << *topic << "\n";
    return 0;
  }();
  settings.reject_unknown_flags();
  return code;
}

}  // namespace inkwell::app
