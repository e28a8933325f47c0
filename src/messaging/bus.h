#pragma once

#include "messaging/event.h"
#include "storage/database.h"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace inkwell::messaging {

/// A handler applies one event's effect inside the consumer's transaction (the same transaction
/// that records the event id in the inbox). Throwing rolls both back and the event is retried.
using Handler = std::function<void(storage::Executor& tx, const Event& event)>;

// What a service consumes: its consumer group, its database (for the inbox) and a handler per
// event type. Types without a handler are acknowledged and skipped.
struct Subscription {
  std::string group;  // e.g. "blog"; configurable per service
  storage::Database* database = nullptr;
  std::map<std::string, Handler, std::less<>> handlers;
};

// One row of the outbox, ready to publish.
struct OutgoingMessage {
  std::int64_t seq = 0;  // outbox order
  std::string topic;
  std::string key;
  std::string payload;  // encoded CloudEvent
};

// The broker side of the outbox relay.
class Publisher {
 public:
  virtual ~Publisher() = default;
  /// Publishes `batch` in order and blocks until each message is acknowledged or failed, or until
  /// `timeout`. Returns how many leading messages of the batch were acknowledged: the relay marks
  /// exactly those sent and retries the rest later.
  virtual std::size_t publish(const std::vector<OutgoingMessage>& batch,
                              std::chrono::milliseconds timeout) = 0;
};

// Consumer statistics for /metrics and /health.
struct ConsumerStats {
  std::uint64_t consumed = 0;
  std::uint64_t failed = 0;  // handler attempts that threw
  std::uint64_t dead_lettered = 0;
  std::map<std::string, std::int64_t> lag;  // "topic/partition" -> messages behind
};

// The event bus a deployment uses: Kafka (librdkafka) or the embedded in-process bus. Both
// deliver at least once from the outbox and the inbox makes the effect exactly once.
class EventBus {
 public:
  virtual ~EventBus() = default;
  virtual Publisher& publisher() = 0;
  /// Registers a consumer. Before start() it waits for start(); after start() it begins at
  /// once (a service subscribes when it starts, after its database is open).
  virtual void subscribe(Subscription subscription) = 0;
  /// Stops one group's consumer after the event in hand is handled and its offset stored (a
  /// service unsubscribes when it stops, before its database closes).
  virtual void unsubscribe(const std::string& group) = 0;
  virtual void start() = 0;
  /// Stops every consumer as unsubscribe() does, then the publisher.
  virtual void stop() = 0;
  virtual std::map<std::string, ConsumerStats> stats() const = 0;  // by group
  /// "ok", "down" (broker unreachable) or "embedded".
  virtual std::string health() const = 0;
};

}  // namespace inkwell::messaging
