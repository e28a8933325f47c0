#pragma once

#include "base/metrics.h"
#include "messaging/bus.h"
#include "messaging/kafka/group_consumer.h"
#include "messaging/kafka/kafka_options.h"
#include "messaging/kafka/kafka_publisher.h"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace inkwell::messaging::kafka {

// The event bus on Kafka: the idempotent publisher the outbox relays use, topic provisioning
// at start, and one consumer thread per subscribed group.
class KafkaBus final : public EventBus {
 public:
  /// Throws std::invalid_argument for options librdkafka refuses; does not connect yet.
  explicit KafkaBus(KafkaOptions options);
  ~KafkaBus() override;

  Publisher& publisher() override { return *publisher_; }
  KafkaPublisher& kafka_publisher() { return *publisher_; }

  /// Throws std::invalid_argument for a group already subscribed, an empty group or no
  /// database. After start(), creates the subscription's topics if needed and starts at once.
  void subscribe(Subscription subscription) override;
  void unsubscribe(const std::string& group) override;
  /// Creates the missing topics (options.topics, the subscriptions' topics and their `.dlq`)
  /// and starts the consumers. Throws std::runtime_error when the brokers cannot be reached
  /// within options.admin_timeout: the process should exit rather than run without events.
  void start() override;
  /// Stops every consumer (each after its message in hand, committing its stored offsets).
  /// The publisher keeps working until the bus is destroyed: relays may still be draining.
  void stop() override;

  std::map<std::string, ConsumerStats> stats() const override;
  /// "ok" when the brokers answered a metadata request within 1 s; remembered for 3 s.
  std::string health() const override;

  /// The consumers' metrics in Prometheus form: events consumed, failed attempts and dead
  /// letters per group, lag per group and partition, and per group the duration of each
  /// transaction that applied events (a batch, or one event applied alone).
  void collect(metrics::Exposition& out) const;

 private:
  /// Creates the topics (and dead-letter topics) not provisioned yet; caller holds
  /// provision_mutex_.
  void provision(const std::set<std::string>& topics);

  KafkaOptions options_;
  std::unique_ptr<KafkaPublisher> publisher_;

  std::mutex provision_mutex_;         // held by start() and subscribe() throughout
  std::set<std::string> provisioned_;  // guarded by provision_mutex_

  mutable std::mutex mutex_;
  bool started_ = false;                                             // guarded by mutex_
  std::map<std::string, std::unique_ptr<GroupConsumer>> consumers_;  // guarded by mutex_; by group

  mutable std::mutex health_mutex_;
  mutable std::string health_;                                  // guarded by health_mutex_
  mutable std::chrono::steady_clock::time_point health_until_;  // guarded by health_mutex_
};

}  // namespace inkwell::messaging::kafka
