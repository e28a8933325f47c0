#pragma once

#include "base/metrics.h"
#include "messaging/bus.h"
#include "messaging/event.h"
#include "messaging/kafka/kafka_config.h"
#include "messaging/kafka/kafka_options.h"
#include "messaging/kafka/kafka_publisher.h"

#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace inkwell::messaging::kafka {

// One consumer group's consumer: a thread reading the subscription's topics that applies the
// messages already fetched as a batch in one transaction with their inbox claims (one by one,
// each with its own retries, when the batch fails), dead-letters what keeps failing, and stores
// an offset only once the effect (or the dead letter) is durable.
class GroupConsumer {
 public:
  GroupConsumer(const KafkaOptions& options, Subscription subscription,
                KafkaPublisher& dead_letters);
  ~GroupConsumer();
  GroupConsumer(const GroupConsumer&) = delete;
  GroupConsumer& operator=(const GroupConsumer&) = delete;

  /// Joins the group and starts consuming. Throws std::invalid_argument for a configuration
  /// librdkafka refuses. Does nothing while already running.
  void start();
  /// Asks the thread to stop after the batch in hand; returns at once.
  void request_stop();
  /// request_stop(), then waits for the thread: it commits the stored offsets and leaves.
  void stop();

  const std::string& group() const { return subscription_.group; }
  /// The topics it reads: the event types it has handlers for.
  std::set<std::string> topics() const;
  ConsumerStats stats() const;
  /// Duration of each transaction that applied events: a batch, or one event applied alone.
  const metrics::Histogram& handler_latency() const { return latency_; }

 private:
  class Rebalance;
  using Clock = std::chrono::steady_clock;
  using PartitionKey = std::pair<std::string, std::int32_t>;

  // One message of a batch, decoded, with the handler for its type (null when none).
  struct Item {
    const RdKafka::Message* message = nullptr;
    Decoded decoded;
    const Handler* handler = nullptr;
  };
  enum class BatchOutcome { committed, failed, stopped };

  void run();
  /// Adds a consumed message to batch_, or logs the error consume() returned; false when
  /// there was no message.
  bool take(std::unique_ptr<RdKafka::Message> message);
  /// Leaves the group, committing the stored offsets; gives up on a broker that hangs.
  void close_consumer();
  /// Applies batch_ and stores the offsets of what is done: split by partition into up to
  /// options_.max_parallel lanes applied at once, each by process_lane().
  void process_batch();
  /// Applies one lane's messages (in one transaction when they hold two events or more) and
  /// stores the offsets of what is done.
  void process_lane(const std::vector<const Item*>& items);
  /// Applies the events of `items` that have handlers in one transaction, waiting out a
  /// database that is away. failed: a handler or the database refused it; nothing was applied.
  BatchOutcome apply_together(const std::vector<const Item*>& items);
  /// Logs why a batch failed; returns BatchOutcome::failed.
  BatchOutcome refused(std::size_t messages, const std::string& error) const;
  /// Finishes one message on its own: applies it with retries and backoff, or dead-letters
  /// it, then stores its offset. False when asked to stop first (its offset stays unstored).
  bool process_alone(const Item& item);
  /// Sends the message to `<topic>.dlq` and waits for the acknowledgement, retrying; false
  /// when asked to stop first.
  bool dead_letter(const RdKafka::Message& message, const std::string& error, int attempts);
  void store_offset(const RdKafka::Message& message);
  /// Stores, for each partition, the offset after the last of `done`.
  void store_offsets(const std::vector<const RdKafka::Message*>& done);
  /// Waits `delay` unless asked to stop; false when asked to stop.
  bool pause(std::chrono::milliseconds delay);
  bool stopping() const;
  void assigned(const std::vector<RdKafka::TopicPartition*>& partitions);
  void revoked(const std::vector<RdKafka::TopicPartition*>& partitions);
  void update_lag();

  KafkaOptions options_;
  Subscription subscription_;
  KafkaPublisher& dead_letters_;
  ClientEvents events_;
  std::unique_ptr<Rebalance> rebalance_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;  // used by thread_ only while it runs

  metrics::Counter consumed_;
  metrics::Counter failed_;
  metrics::Counter dead_lettered_;
  metrics::Histogram latency_;

  mutable std::mutex mutex_;
  std::condition_variable stop_requested_;
  bool stopping_ = false;                    // guarded by mutex_
  std::map<std::string, std::int64_t> lag_;  // guarded by mutex_; one entry per assigned partition

  // Touched by thread_ only (the rebalance callback runs inside consume()).
  // Messages consumed and not yet applied; a revocation drops those of the lost partitions,
  // which their next owner reads again from the committed offset.
  std::vector<std::unique_ptr<RdKafka::Message>> batch_;
  std::map<PartitionKey, std::int64_t> start_offsets_;  // committed offsets at assignment
  Clock::time_point next_lag_update_{};
  RdKafka::ErrorCode last_error_ = RdKafka::ERR_NO_ERROR;
  Clock::time_point last_error_logged_{};

  std::thread thread_;
};

}  // namespace inkwell::messaging::kafka
