#pragma once

#include "messaging/bus.h"
#include "storage/database.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace inkwell::messaging {

struct EmbeddedBusOptions {
  int max_attempts = 5;  // handler attempts before a message is dead-lettered
  std::chrono::milliseconds initial_backoff{50};  // between attempts, doubling...
  std::chrono::milliseconds max_backoff{2'000};   // ...up to this
};

// One open (not yet replayed) row of a subscriber's dead_letters table.
struct DeadLetter {
  std::int64_t id = 0;
  std::string consumer_group;
  std::string topic;
  std::optional<std::string> event_id;  // empty when the payload was not a valid event
  std::string payload;
  std::string error;
  int attempts = 0;  // handler attempts; 0 for a payload that never reached the handler
  std::string created_at;
  std::optional<std::string> replay_requested_at;  // stamped by request_replay(), not yet tried
};

/// The dead letters in a subscriber's database not yet replayed, oldest first; only those of
/// `topic` when given. For `inkwell events dlq list` on the embedded deployment.
std::vector<DeadLetter> list_dead_letters(storage::Database& database,
                                          std::optional<std::string> topic = std::nullopt);

/// Asks the server to replay the open dead letters of `topic` (of `group` only, when given) in
/// `database`: stamps them replay_requested_at, and a running EmbeddedBus whose subscriber owns
/// them replays them within about a second (see EmbeddedBus). For `inkwell events dlq replay`,
/// which runs in another process than the handlers. Returns the stamped rows' ids; letters
/// already waiting for a replay are stamped again.
std::vector<std::int64_t> request_replay(storage::Database& database, std::string_view topic,
                                         const std::optional<std::string>& group = std::nullopt);

/// Where requested replays stand.
struct ReplayProgress {
  std::size_t replayed = 0;      // the handler ran; the letter is closed
  std::size_t failed_again = 0;  // the bus tried and gave up; the letter stays open
  std::size_t waiting = 0;       // no running subscriber of the group has picked it up yet
};
ReplayProgress replay_progress(storage::Database& database, const std::vector<std::int64_t>& ids);

// The event bus of `--services=all` without Kafka. Its publisher delivers each message of the
// relay's batch, in order, to every subscription with a handler for the topic, each in one
// transaction on the subscriber's database (inbox claim + effect), and acknowledges a message
// only when every subscriber committed it or dead-lettered it. So the relay marks a row sent
// only once its effects are durable, and a crash before that re-delivers it to an inbox that
// absorbs it: the guarantees of the Kafka bus. A handler that throws is retried with backoff,
// then its message goes to that subscriber's dead_letters table and later messages flow on.
// While started, a thread looks every second for dead letters stamped by request_replay() in
// each subscriber's database and replays them (replay_requested()).
class EmbeddedBus final : public EventBus {
 public:
  explicit EmbeddedBus(EmbeddedBusOptions options = {});
  ~EmbeddedBus() override;

  Publisher& publisher() override { return publisher_; }
  /// A group gets only what is published after it subscribed: in one process, call start()
  /// (publish() acknowledges nothing before it) once every service has subscribed. Subscribing
  /// a group again after unsubscribe() resumes it, with the new subscription.
  void subscribe(Subscription subscription) override;
  /// Waits for the message in hand. Until the group subscribes again, messages it has a
  /// handler for are not acknowledged (the outbox keeps them): the embedded bus has one
  /// position for all groups, so skipping would lose them for this group.
  void unsubscribe(const std::string& group) override;
  void start() override;
  /// Lets the message in hand finish, then makes publish() acknowledge nothing until start().
  void stop() override;
  std::map<std::string, ConsumerStats> stats() const override;
  std::string health() const override { return "embedded"; }

  /// Runs `group`'s handler again for each open dead letter of `topic`, oldest first, each in
  /// one transaction that also marks it replayed; a dead letter that fails again stays open.
  /// Returns how many were replayed. Throws std::invalid_argument when `group` is not
  /// subscribed or has no handler for `topic`.
  ///
  /// Replay calls the handler rather than re-enqueueing the payload into an outbox: an outbox
  /// row would go to every subscriber of the topic again, not only to the group that failed.
  std::size_t replay(std::string_view group, std::string_view topic);

  /// Replays what request_replay() stamped in every active subscriber's database, as replay()
  /// does; a letter that fails again (or cannot be replayed: a poison payload, a topic the
  /// group no longer handles) has its stamp cleared and its error updated, so it is tried once
  /// per request. Returns how many were replayed. The bus's own thread calls it every second.
  std::size_t replay_requested();

 private:
  struct Subscriber;

  // The publisher the relay calls: acknowledges a message once every subscriber is done with it.
  class Delivery final : public Publisher {
   public:
    explicit Delivery(EmbeddedBus& bus) : bus_(bus) {}
    std::size_t publish(const std::vector<OutgoingMessage>& batch,
                        std::chrono::milliseconds timeout) override {
      return bus_.deliver(batch, timeout);
    }

   private:
    EmbeddedBus& bus_;
  };

  std::size_t deliver(const std::vector<OutgoingMessage>& batch, std::chrono::milliseconds timeout);
  /// True when `subscriber` handled, dead-lettered or has no handler for the message; false
  /// when it must come again.
  bool deliver_to(Subscriber& subscriber, const OutgoingMessage& message, const Decoded& decoded);
  void dead_letter(Subscriber& subscriber, const OutgoingMessage& message,
                   const std::optional<Event>& event, const std::string& error, int attempts);
  /// Waits `delay` unless the bus stops first; returns false when it stopped.
  bool pause(std::chrono::milliseconds delay);
  Subscriber* find(std::string_view group) const;
  /// Replays `group`'s open dead letters of `topic` (only the stamped ones when
  /// `only_requested`) with the handler; the caller holds subscriber.delivering.
  std::size_t replay_letters(Subscriber& subscriber, std::string_view topic, bool only_requested);
  void replay_loop();

  const EmbeddedBusOptions options_;
  Delivery publisher_{*this};
  mutable std::mutex mutex_;
  std::condition_variable changed_;                       // running_ or in_flight_ changed
  std::vector<std::unique_ptr<Subscriber>> subscribers_;  // guarded by mutex_; never shrinks
  bool running_ = false;                                  // guarded by mutex_
  int in_flight_ = 0;                                     // deliver() calls running; mutex_
  std::thread replayer_;                                  // replay_loop() while running_
};

}  // namespace inkwell::messaging
