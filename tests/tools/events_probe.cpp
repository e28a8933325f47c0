// inkwell_events_probe: the Kafka bus's consumer and the outbox relay as separate processes, so
// tests can kill them at awkward moments (SIGKILL mid-stream, between publish and mark).
//
//   inkwell_events_probe consume --group G --database URL --brokers B [--topics T1,T2]
//       [--fail-type T] [--instance NAME] [--status FILE] [--handler-delay-ms N]
//       [--session-timeout-ms N] [--max-attempts N] [--max-batch N]
//     Consumes every topic (default: the production topics) in group G; the handler records
//     (event id, subject, data.seq, group, instance, topic) in table probe_effects of the
//     database, and throws for events of type --fail-type. --status rewrites FILE every 100 ms
//     with {"partitions":[...],"consumed":n,...}. --max-batch bounds how many events one
//     transaction applies (KafkaOptions::max_batch). Exits 0 on SIGTERM or SIGINT.
//
//   inkwell_events_probe produce --database URL --brokers B --count N --keys K [--topic T]
//       [--hold-after-publish] [--timeout-ms N]
//     Writes N events of type T (default post.created), subject "k<i % K>", data {"seq": i / K},
//     each in its own transaction through the outbox, then relays the outbox to Kafka until it
//     is empty. With --hold-after-publish it publishes one batch, prints "held <acknowledged>"
//     and blocks without marking the rows sent (a relay killed between publish and mark).
//
//   inkwell_events_probe dump --brokers B --topic T [--key K] [--timeout-ms N]
//     Prints every message of topic T from its first offset to the end of every partition, one
//     JSON line each: {"partition","offset","key","payload"} (payload as text), in partition
//     then offset order; only messages with key K when given. Reads without a consumer group.
#include "base/log.h"
#include "messaging/event.h"
#include "messaging/kafka/kafka_bus.h"
#include "messaging/kafka/kafka_publisher.h"
#include "messaging/kafka/topic_provisioning.h"
#include "messaging/outbox.h"
#include "messaging/relay.h"
#include "storage/database.h"
#include "storage/migrations.h"

#include <librdkafka/rdkafkacpp.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace inkwell;
using namespace std::chrono_literals;

constexpr std::string_view kUsage =
    "usage: inkwell_events_probe consume --group G --database URL --brokers B [--topics T1,T2]\n"
    "         [--fail-type T] [--instance NAME] [--status FILE] [--handler-delay-ms N]\n"
    "         [--session-timeout-ms N] [--max-attempts N] [--max-batch N]\n"
    "       inkwell_events_probe produce --database URL --brokers B --count N --keys K\n"
    "         [--topic T] [--hold-after-publish] [--timeout-ms N]\n"
    "       inkwell_events_probe dump --brokers B --topic T [--key K] [--timeout-ms N]\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// --name value pairs and bare --flags.
struct Args {
  std::map<std::string, std::string> values;

  std::string get(const std::string& name, const std::string& fallback = {}) const {
    const auto it = values.find(name);
    return it != values.end() ? it->second : fallback;
  }
  std::string required(const std::string& name) const {
    const auto it = values.find(name);
    if (it == values.end() || it->second.empty()) throw UsageError("--" + name + " is required");
    return it->second;
  }
  long number(const std::string& name, long fallback) const {
    const auto it = values.find(name);
    if (it == values.end()) return fallback;
    try {
      return std::stol(it->second);
    } catch (const std::exception&) {
      throw UsageError("--" + name + " must be a number");
    }
  }
  bool flag(const std::string& name) const { return values.contains(name); }
};

Args parse(int argc, char** argv, const std::vector<std::string>& flags) {
  Args args;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) throw UsageError("unexpected argument " + arg);
    const std::string name = arg.substr(2);
    if (std::find(flags.begin(), flags.end(), name) != flags.end()) {
      args.values[name] = "";
    } else if (i + 1 < argc) {
      args.values[name] = argv[++i];
    } else {
      throw UsageError(arg + " needs a value");
    }
  }
  return args;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    if (comma > start) parts.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return parts;
}

std::unique_ptr<storage::Database> open_probe_database(const std::string& url) {
  auto db = storage::open_database(url, {.pool_size = 4});
  storage::apply_migrations(*db, messaging::messaging_migrations("probe"));
  db->transaction([](storage::Executor& tx) {
    if (tx.dialect() == storage::Dialect::postgres) {
      // Two probes starting together: CREATE TABLE IF NOT EXISTS alone can still collide.
      tx.execute("SELECT pg_advisory_xact_lock(hashtext('probe_effects'))");
      tx.execute(
          "CREATE TABLE IF NOT EXISTS probe_effects (n bigserial PRIMARY KEY, event_id text NOT "
          "NULL, subject text NOT NULL, seq bigint NOT NULL, consumer_group text NOT NULL, "
          "instance text NOT NULL, topic text NOT NULL, applied_at timestamptz NOT NULL DEFAULT "
          "now())");
    } else {
      tx.execute(
          "CREATE TABLE IF NOT EXISTS probe_effects (n integer PRIMARY KEY AUTOINCREMENT, "
          "event_id text NOT NULL, subject text NOT NULL, seq integer NOT NULL, consumer_group "
          "text NOT NULL, instance text NOT NULL, topic text NOT NULL, applied_at text)");
    }
  });
  return db;
}

messaging::kafka::KafkaOptions kafka_options(const Args& args) {
  messaging::kafka::KafkaOptions options;
  options.brokers = args.required("brokers");
  options.client_id = "inkwell-events-probe";
  return options;
}

void write_status(const std::string& path, const std::string& instance,
                  const messaging::ConsumerStats& stats) {
  boost::json::array partitions;
  for (const auto& [partition, lag] : stats.lag) partitions.emplace_back(partition);
  const boost::json::object status{{"instance", instance},
                                   {"partitions", partitions},
                                   {"consumed", stats.consumed},
                                   {"failed", stats.failed},
                                   {"deadLettered", stats.dead_lettered}};
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << boost::json::serialize(status) << '\n';
  }
  std::filesystem::rename(temporary, path);
}

int consume(const Args& args) {
  const std::string group = args.required("group");
  const std::string instance = args.get("instance", "probe-" + std::to_string(::getpid()));
  const std::string fail_type = args.get("fail-type");
  const std::string status_path = args.get("status");
  const auto delay = std::chrono::milliseconds(args.number("handler-delay-ms", 0));
  messaging::kafka::KafkaOptions options = kafka_options(args);
  if (args.flag("topics")) options.topics = split(args.get("topics"));
  options.session_timeout = std::chrono::milliseconds(args.number("session-timeout-ms", 6'000));
  options.max_attempts = static_cast<int>(args.number("max-attempts", 3));
  options.max_batch = static_cast<std::size_t>(args.number("max-batch", 500));
  options.initial_backoff = 20ms;
  options.max_backoff = 200ms;

  const auto db = open_probe_database(args.required("database"));
  messaging::Subscription subscription{group, db.get(), {}};
  for (const std::string& topic : options.topics) {
    subscription.handlers.emplace(
        topic, [&, topic](storage::Executor& tx, const messaging::Event& event) {
          if (!fail_type.empty() && event.type == fail_type) {
            throw std::runtime_error("probe: the handler for " + fail_type + " always fails");
          }
          if (delay.count() > 0) std::this_thread::sleep_for(delay);
          const auto* seq = event.data.if_contains("seq");
          tx.execute(
              "INSERT INTO probe_effects (event_id, subject, seq, consumer_group, instance, "
              "topic) VALUES ($1, $2, $3, $4, $5, $6)",
              {event.id, event.subject, seq != nullptr && seq->is_int64() ? seq->as_int64() : -1,
               group, instance, topic});
        });
  }

  messaging::kafka::KafkaBus bus(options);
  bus.subscribe(std::move(subscription));
  bus.start();
  log::info("probe consuming", {{"group", group}, {"instance", instance}});

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  const timespec tick{0, 100'000'000};
  while (true) {
    if (!status_path.empty()) {
      const auto stats = bus.stats();
      write_status(status_path, instance,
                   stats.contains(group) ? stats.at(group) : messaging::ConsumerStats{});
    }
    if (sigtimedwait(&signals, nullptr, &tick) > 0) break;
  }
  bus.stop();
  if (!status_path.empty()) write_status(status_path, instance, {});
  log::info("probe stopped", {{"group", group}, {"instance", instance}});
  return 0;
}

// Publishes through the real publisher, then (when holding) never returns, so the relay never
// marks the batch sent.
class HoldingPublisher final : public messaging::Publisher {
 public:
  HoldingPublisher(messaging::Publisher& inner, bool hold) : inner_(inner), hold_(hold) {}
  std::size_t publish(const std::vector<messaging::OutgoingMessage>& batch,
                      std::chrono::milliseconds timeout) override {
    const std::size_t acknowledged = inner_.publish(batch, timeout);
    if (!hold_) return acknowledged;
    std::cout << "held " << acknowledged << std::endl;
    while (true) std::this_thread::sleep_for(1h);
  }

 private:
  messaging::Publisher& inner_;
  bool hold_;
};

int produce(const Args& args) {
  const long count = args.number("count", -1);
  const long keys = args.number("keys", 1);
  if (count < 0 || keys < 1) throw UsageError("--count >= 0 and --keys >= 1 are required");
  const std::string topic = args.get("topic", "post.created");
  const auto timeout = std::chrono::milliseconds(args.number("timeout-ms", 60'000));
  messaging::kafka::KafkaOptions options = kafka_options(args);
  options.topics = {topic};

  const auto db = open_probe_database(args.required("database"));
  messaging::kafka::provision_topics(options, options.topics);
  for (long i = 0; i < count; ++i) {
    std::string subject = "k";
    subject += std::to_string(i % keys);
    db->transaction([&](storage::Executor& tx) {
      messaging::enqueue(tx, messaging::make_event("/probe", topic, subject, {{"seq", i / keys}}));
    });
  }

  messaging::kafka::KafkaPublisher publisher(options);
  HoldingPublisher holding(publisher, args.flag("hold-after-publish"));
  messaging::OutboxRelay relay(
      "probe", *db, holding,
      {.min_backoff = 50ms, .max_backoff = 1'000ms, .publish_timeout = 5'000ms});
  relay.start();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (relay.pending() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "inkwell_events_probe: the outbox is not empty after " << timeout.count()
                << " ms\n";
      std::_Exit(1);  // the relay may be stuck in a publish: do not wait for it
    }
    std::this_thread::sleep_for(20ms);
  }
  relay.stop();
  std::cout << "published " << relay.published() << std::endl;
  return 0;
}

// Assigns every partition of the topic from the beginning and reads up to each partition's end
// (the high watermark when it started), with no consumer group and no committed offsets.
int dump(const Args& args) {
  const std::string topic = args.required("topic");
  const std::string key = args.get("key");
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(args.number("timeout-ms", 15'000));
  std::string error;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  if (conf->set("bootstrap.servers", args.required("brokers"), error) != RdKafka::Conf::CONF_OK ||
      conf->set("group.id", "inkwell-probe-dump", error) != RdKafka::Conf::CONF_OK ||
      conf->set("enable.auto.commit", "false", error) != RdKafka::Conf::CONF_OK ||
      conf->set("enable.partition.eof", "true", error) != RdKafka::Conf::CONF_OK) {
    throw std::runtime_error(error);
  }
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) throw std::runtime_error(error);
  RdKafka::Metadata* raw = nullptr;
  std::unique_ptr<RdKafka::Topic> handle(
      RdKafka::Topic::create(consumer.get(), topic, nullptr, error));
  if (consumer->metadata(false, handle.get(), &raw, 10'000) != RdKafka::ERR_NO_ERROR || !raw) {
    throw std::runtime_error("no metadata for " + topic);
  }
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  std::vector<RdKafka::TopicPartition*> partitions;
  std::map<std::int32_t, std::int64_t> ends;
  for (const auto* t : *metadata->topics()) {
    if (t->topic() != topic) continue;
    for (const auto* p : *t->partitions()) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      if (consumer->query_watermark_offsets(topic, p->id(), &low, &high, 10'000) !=
          RdKafka::ERR_NO_ERROR) {
        throw std::runtime_error("no offsets for " + topic);
      }
      if (high > low) {
        ends[p->id()] = high;
        partitions.push_back(RdKafka::TopicPartition::create(topic, p->id(), low));
      }
    }
  }
  std::map<std::pair<std::int32_t, std::int64_t>, std::string> lines;
  if (!partitions.empty()) consumer->assign(partitions);
  RdKafka::TopicPartition::destroy(partitions);
  std::map<std::int32_t, bool> done;
  while (done.size() < ends.size()) {
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("timed out");
    std::unique_ptr<RdKafka::Message> message(consumer->consume(200));
    if (message->err() == RdKafka::ERR__TIMED_OUT) continue;
    if (message->err() == RdKafka::ERR__PARTITION_EOF) {
      if (message->offset() >= ends[message->partition()]) done[message->partition()] = true;
      continue;
    }
    if (message->err() != RdKafka::ERR_NO_ERROR) throw std::runtime_error(message->errstr());
    if (message->offset() + 1 >= ends[message->partition()]) done[message->partition()] = true;
    const std::string message_key = message->key() ? *message->key() : std::string{};
    if (!key.empty() && message_key != key) continue;
    boost::json::object line{
        {"partition", message->partition()},
        {"offset", message->offset()},
        {"key", message_key},
        {"payload", std::string(static_cast<const char*>(message->payload()), message->len())}};
    lines[{message->partition(), message->offset()}] = boost::json::serialize(line);
  }
  consumer->close();
  for (const auto& [position, line] : lines) std::cout << line << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread starts, so SIGTERM reaches only the sigtimedwait() above.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (const char* level = std::getenv("INKWELL_LOG_LEVEL")) inkwell::log::init(level);

  const std::string command = argc > 1 ? argv[1] : "";
  try {
    if (command == "consume") return consume(parse(argc, argv, {}));
    if (command == "produce") return produce(parse(argc, argv, {"hold-after-publish"}));
    if (command == "dump") return dump(parse(argc, argv, {}));
    throw UsageError(command.empty() ? "a command is required" : "unknown command " + command);
  } catch (const UsageError& e) {
    std::cerr << "inkwell_events_probe: " << e.what() << '\n' << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "inkwell_events_probe: " << e.what() << '\n';
    return 1;
  }
}
