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
#include <charconv>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace inkwell::app {
namespace {

constexpr const char* kUsage = R"(Usage:
  inkwell events dlq list   --topic T [--group G]   print the dead letters of topic T
  inkwell events dlq replay --topic T [--group G] [--wait SECONDS]
                                                    hand them to their consumers again
With KAFKA_BROKERS set the dead letters are read from T.dlq and replay sends them back to T.
Without it (the embedded bus) they are in the dead_letters table of each service database;
replay marks them, the running server's bus replays them within a second, and the command
waits up to --wait seconds (default 10) to report how it went.
)";

// How often the embedded replay looks at how the server is doing with the request.
constexpr auto kReplayCheckEvery = std::chrono::milliseconds(200);

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

// The embedded deployment's service databases: (service, database URL).
using ServiceDatabases = std::vector<std::pair<std::string, std::string>>;

// A service's database with the messaging tables: a service that never ran has none yet, and
// creating them is what its start would do.
std::unique_ptr<storage::Database> open_messaging_database(const std::string& service,
                                                           const std::string& url) {
  auto database = storage::open_database(url);
  storage::apply_migrations(*database, messaging::messaging_migrations(service));
  return database;
}

int list_embedded(const ServiceDatabases& databases, const std::string& topic,
                  const std::optional<std::string>& group) {
  std::size_t shown = 0;
  for (const auto& [service, url] : databases) {
    const auto database = open_messaging_database(service, url);
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
                       {"payload", letter.payload.substr(0, 200)},
                       {"replayRequested", letter.replay_requested_at.has_value()}})
                << "\n";
    }
  }
  std::cerr << shown << " dead letter(s) of " << topic << " in the service databases\n";
  return 0;
}

// The handlers live in the server, not in this process: mark the letters for replay and watch
// the running server replay them. Exit 0 when every letter was replayed or still waits for a
// server to pick it up, 1 when one failed again.
int replay_embedded(const ServiceDatabases& databases, const std::string& topic,
                    const std::optional<std::string>& group, std::chrono::seconds wait) {
  struct Requested {
    std::unique_ptr<storage::Database> database;
    std::vector<std::int64_t> ids;
  };
  std::vector<Requested> requests;
  std::size_t total = 0;
  for (const auto& [service, url] : databases) {
    auto database = open_messaging_database(service, url);
    std::vector<std::int64_t> ids = messaging::request_replay(*database, topic, group);
    if (ids.empty()) continue;
    total += ids.size();
    requests.push_back({std::move(database), std::move(ids)});
  }
  if (total == 0) {
    std::cout << "no dead letters of " << topic << " to replay\n";
    return 0;
  }
  std::cerr << "asked the server to replay " << total << " dead letter(s) of " << topic << "\n";
  const auto deadline = std::chrono::steady_clock::now() + wait;
  messaging::ReplayProgress sum;
  while (true) {
    sum = {};
    for (const Requested& request : requests) {
      const auto progress = messaging::replay_progress(*request.database, request.ids);
      sum.replayed += progress.replayed;
      sum.failed_again += progress.failed_again;
      sum.waiting += progress.waiting;
    }
    if (sum.waiting == 0 || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(kReplayCheckEvery);
  }
  std::cout << "replayed " << sum.replayed << " dead letter(s) of " << topic;
  if (sum.failed_again > 0) {
    std::cout << "; " << sum.failed_again
              << " failed again (their error says why: inkwell events dlq list --topic " << topic
              << ")";
  }
  if (sum.waiting > 0) {
    std::cout << "; " << sum.waiting
              << " wait for a running server whose service consumes them (they are replayed "
                 "when it runs)";
  }
  std::cout << "\n";
  return sum.failed_again > 0 ? 1 : 0;
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
  const auto wait_text = take_flag(args, "wait");
  std::chrono::seconds wait(10);
  if (wait_text) {
    int seconds = -1;
    const auto* end = wait_text->data() + wait_text->size();
    const auto parsed = std::from_chars(wait_text->data(), end, seconds);
    if (parsed.ec != std::errc() || parsed.ptr != end || seconds < 0 || seconds > 3600 ||
        action != "replay") {
      std::cerr << "inkwell: --wait takes whole seconds from 0 to 3600, with replay only\n";
      return 2;
    }
    wait = std::chrono::seconds(seconds);
  }
  if (!topic || std::find(messaging::kTopics.begin(), messaging::kTopics.end(), *topic) ==
                    messaging::kTopics.end()) {
    std::cerr << "inkwell: --topic must name an event topic (user.registered, post.created, ...)\n";
    return 2;
  }
  Settings settings(Settings::process_environment(), args);
  const auto brokers = settings.host_ports("KAFKA_BROKERS");
  ServiceDatabases databases;
  if (!brokers) {
    for (const auto& service : database_services()) {
      databases.emplace_back(service, database_url(settings, service));
    }
  }
  // Every setting is read by now: a mistyped flag stops the command before it changes anything.
  settings.reject_unknown_flags();
  if (action == "list") {
    return brokers ? list_kafka(*brokers, *topic, group) : list_embedded(databases, *topic, group);
  }
  if (!brokers) return replay_embedded(databases, *topic, group, wait);
  messaging::kafka::KafkaOptions options;
  options.brokers = *brokers;
  const auto sent =
      messaging::kafka::replay_dead_letters(options, *topic, group.value_or(std::string()));
  std::cout << "replayed " << sent << " dead letter(s) from "
            << messaging::dead_letter_topic(*topic) << " to " << *topic << "\n";
  return 0;
}

}  // namespace inkwell::app
