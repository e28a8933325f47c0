#pragma once

#include "messaging/bus.h"
#include "messaging/kafka/kafka_options.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace inkwell::messaging::kafka {

/// A Kafka record header: name and value.
using MessageHeader = std::pair<std::string, std::string>;

// The outbox relay's broker side on Kafka: an idempotent producer (acks=all) whose delivery
// reports tell which leading messages of a batch the brokers acknowledged. Also sends the
// consumers' dead letters. Safe to use from many threads.
class KafkaPublisher final : public Publisher {
 public:
  /// Throws std::invalid_argument for a configuration librdkafka refuses. Does not connect:
  /// a broker that is away shows up as publish() acknowledging nothing.
  explicit KafkaPublisher(KafkaOptions options);
  /// Waits briefly for messages in flight; what is still unacknowledged then stays pending in
  /// the outbox (or unconsumed on the source topic) and is sent again after a restart.
  ~KafkaPublisher() override;
  KafkaPublisher(const KafkaPublisher&) = delete;
  KafkaPublisher& operator=(const KafkaPublisher&) = delete;

  /// Produces the batch in order (key = message key, value = payload) and waits until every
  /// message is acknowledged or failed, or `timeout`. Returns the acknowledged prefix's length.
  /// A message still in flight from an earlier call (same topic, key and payload) is awaited,
  /// and one acknowledged in the last minute counts as acknowledged, instead of being produced
  /// again: a relay retrying while the brokers are away sends each row once.
  std::size_t publish(const std::vector<OutgoingMessage>& batch,
                      std::chrono::milliseconds timeout) override;

  /// One message's delivery, as its delivery report tells it.
  struct Delivery;
  enum class DeliveryState { pending, acknowledged, failed };

  /// Produces one message with headers, to wait for with wait(). When the same message (topic,
  /// key, value and headers) is in flight or was acknowledged in the last minute, returns that
  /// delivery instead of producing a copy. The
  /// result is already failed when the producer's queue stayed full for a second.
  std::shared_ptr<Delivery> produce(const std::string& topic, std::string_view key,
                                    std::string_view value,
                                    const std::vector<MessageHeader>& headers);
  /// Waits up to `timeout` for the delivery report; on failure, `error` tells why.
  DeliveryState wait(const std::shared_ptr<Delivery>& delivery, std::chrono::milliseconds timeout,
                     std::string* error = nullptr);
  /// produce() and wait(): nullopt once acknowledged, otherwise why not.
  std::optional<std::string> send(const std::string& topic, std::string_view key,
                                  std::string_view value, const std::vector<MessageHeader>& headers,
                                  std::chrono::milliseconds timeout);

  /// True when the brokers answer a metadata request within `timeout`.
  bool reachable(std::chrono::milliseconds timeout);

 private:
  class Client;
  using Clock = std::chrono::steady_clock;

  std::shared_ptr<Client> client();
  std::unique_ptr<Client> make_client();
  /// Produces one message, or finds it already in flight. The result is failed (and nothing
  /// was produced) when the producer's queue stayed full until `deadline` or refused it.
  std::shared_ptr<Delivery> begin(const std::string& topic, std::string_view key,
                                  std::string_view value, const std::vector<MessageHeader>& headers,
                                  Clock::time_point deadline);
  /// Waits until the acknowledged prefix of `deliveries` is known or `deadline`; returns it.
  std::size_t acknowledged_prefix(const std::vector<std::shared_ptr<Delivery>>& deliveries,
                                  Clock::time_point deadline, std::string* first_error);
  void delivered(void* opaque, bool ok, const std::string& error);
  /// Drops remembered acknowledgements past their time or over the byte budget; caller holds
  /// mutex_.
  void forget_old_acknowledgements();
  void poll_loop();
  void retire(Client& old);

  KafkaOptions options_;
  std::mutex mutex_;
  std::condition_variable delivery_;  // notified on every delivery report
  std::shared_ptr<Client> client_;    // guarded by mutex_; replaced after a fatal error
  // Messages in flight, and those acknowledged in the last minute, by topic, key, value and
  // headers: sending one of them again waits for it or reports it acknowledged.
  std::unordered_map<std::string, std::shared_ptr<Delivery>> known_;  // guarded by mutex_
  std::deque<std::shared_ptr<Delivery>> recent_;  // guarded by mutex_; acknowledged, oldest first
  std::size_t recent_bytes_ = 0;                  // guarded by mutex_; identities in recent_
  bool stopping_ = false;                         // guarded by mutex_
  std::thread poller_;                            // serves delivery reports
  // When publish() last logged an incomplete batch (steady clock ticks); from any thread.
  std::atomic<Clock::rep> last_incomplete_log_{std::numeric_limits<Clock::rep>::min() / 2};
};

}  // namespace inkwell::messaging::kafka
