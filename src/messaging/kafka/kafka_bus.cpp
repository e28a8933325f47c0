#include "messaging/kafka/kafka_bus.h"

#include "base/log.h"
#include "messaging/kafka/topic_provisioning.h"

#include <stdexcept>
#include <vector>

namespace inkwell::messaging::kafka {
namespace {

constexpr auto kHealthTimeout = std::chrono::seconds(1);
constexpr auto kHealthTtl = std::chrono::seconds(3);

}  // namespace

KafkaBus::KafkaBus(KafkaOptions options)
    : options_(std::move(options)), publisher_(std::make_unique<KafkaPublisher>(options_)) {}

KafkaBus::~KafkaBus() {
  stop();
}

void KafkaBus::provision(const std::set<std::string>& topics) {
  std::vector<std::string> missing;
  for (const std::string& topic : topics) {
    if (!provisioned_.contains(topic)) missing.push_back(topic);
  }
  if (missing.empty()) return;
  provision_topics(options_, missing);
  provisioned_.insert(missing.begin(), missing.end());
}

void KafkaBus::subscribe(Subscription subscription) {
  const std::lock_guard provisioning(provision_mutex_);
  const std::string group = subscription.group;
  bool started = false;
  {
    const std::lock_guard lock(mutex_);
    if (consumers_.contains(group)) {
      throw std::invalid_argument("kafka bus: group " + group + " is already subscribed");
    }
    started = started_;
  }
  auto consumer = std::make_unique<GroupConsumer>(options_, std::move(subscription), *publisher_);
  if (started) provision(consumer->topics());
  const std::lock_guard lock(mutex_);
  if (started_) consumer->start();
  consumers_.emplace(group, std::move(consumer));
}

void KafkaBus::unsubscribe(const std::string& group) {
  std::unique_ptr<GroupConsumer> consumer;
  {
    const std::lock_guard lock(mutex_);
    const auto it = consumers_.find(group);
    if (it == consumers_.end()) return;
    consumer = std::move(it->second);
    consumers_.erase(it);
  }
  consumer->stop();
}

void KafkaBus::start() {
  // Provisioning may wait for the brokers: mutex_ stays free meanwhile, for stats() and
  // collect(); provision_mutex_ keeps subscribe() from adding a group whose topics it misses.
  const std::lock_guard provisioning(provision_mutex_);
  std::set<std::string> topics(options_.topics.begin(), options_.topics.end());
  {
    const std::lock_guard lock(mutex_);
    if (started_) return;
    for (const auto& [group, consumer] : consumers_) topics.merge(consumer->topics());
  }
  provision(topics);
  const std::lock_guard lock(mutex_);
  for (const auto& [group, consumer] : consumers_) consumer->start();
  started_ = true;
}

void KafkaBus::stop() {
  const std::lock_guard lock(mutex_);
  started_ = false;
  // Ask every group first, so they finish their messages in hand in parallel.
  for (const auto& [group, consumer] : consumers_) consumer->request_stop();
  for (const auto& [group, consumer] : consumers_) consumer->stop();
}

std::map<std::string, ConsumerStats> KafkaBus::stats() const {
  std::map<std::string, ConsumerStats> stats;
  const std::lock_guard lock(mutex_);
  for (const auto& [group, consumer] : consumers_) stats.emplace(group, consumer->stats());
  return stats;
}

std::string KafkaBus::health() const {
  const std::lock_guard lock(health_mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (health_.empty() || now >= health_until_) {
    health_ = publisher_->reachable(kHealthTimeout) ? "ok" : "down";
    health_until_ = std::chrono::steady_clock::now() + kHealthTtl;
  }
  return health_;
}

void KafkaBus::collect(metrics::Exposition& out) const {
  const std::lock_guard lock(mutex_);
  for (const auto& [group, consumer] : consumers_) {
    const ConsumerStats stats = consumer->stats();
    const metrics::Exposition::Labels labels{{"group", group}};
    out.counter("events_consumed_total", "Messages read from Kafka, per consumer group.", labels,
                static_cast<double>(stats.consumed));
    out.counter("events_failed_total", "Event handler attempts that failed.", labels,
                static_cast<double>(stats.failed));
    out.counter("events_dead_lettered_total", "Messages sent to a dead-letter topic.", labels,
                static_cast<double>(stats.dead_lettered));
    out.histogram("event_handler_duration_seconds",
                  "Time of one consumer transaction (inbox claims, handlers and commit): a "
                  "batch of events, or one event applied alone.",
                  labels, consumer->handler_latency());
    for (const auto& [partition, lag] : stats.lag) {
      const auto slash = partition.rfind('/');
      const std::string topic = partition.substr(0, slash);
      const std::string number = partition.substr(slash + 1);
      out.gauge("events_consumer_lag", "Messages behind the end of the partition.",
                {{"group", group}, {"topic", topic}, {"partition", number}},
                static_cast<double>(lag));
    }
  }
}

}  // namespace inkwell::messaging::kafka
