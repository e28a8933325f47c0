#include "messaging/embedded/embedded_bus.h"

#include "base/log.h"
#include "messaging/outbox.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>

namespace inkwell::messaging {

// A group's subscription and counters. `delivering` lets one message at a time through per
// group, so a group sees each producer's messages in outbox order even when several relays
// publish, and lets unsubscribe() wait for the message in hand.
struct EmbeddedBus::Subscriber {
  Subscriber(std::string g, Subscription s) : group(std::move(g)), subscription(std::move(s)) {}

  const std::string group;
  std::mutex delivering;
  Subscription subscription;        // guarded by delivering
  bool active = true;               // guarded by delivering
  std::vector<std::string> topics;  // guarded by the bus's mutex_ (for stats)
  std::atomic<std::uint64_t> consumed{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> dead_lettered{0};
};

namespace {

// How often the bus looks for replays requested by `inkwell events dlq replay`.
constexpr auto kReplayPoll = std::chrono::seconds(1);
// Ids per statement in replay_progress(): far below both dialects' limits on parameters.
constexpr std::size_t kIdsPerStatement = 500;

std::string now() {
  return rfc3339_utc(std::chrono::system_clock::now());
}

std::string what(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

bool unavailable(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const storage::DatabaseError& e) {
    return e.kind() == storage::DatabaseError::Kind::unavailable;
  } catch (...) {
    return false;
  }
}

}  // namespace

std::vector<DeadLetter> list_dead_letters(storage::Database& database,
                                          std::optional<std::string> topic) {
  const std::string columns =
      "SELECT id, consumer_group, topic, event_id, payload, error, attempts, created_at, "
      "replay_requested_at FROM dead_letters WHERE replayed_at IS NULL";
  const storage::Result result =
      topic ? database.execute(columns + " AND topic = $1 ORDER BY id", {*topic})
            : database.execute(columns + " ORDER BY id");
  std::vector<DeadLetter> letters;
  for (const storage::Row& row : result.rows) {
    letters.push_back({row.get<std::int64_t>(0), row.get<std::string>(1), row.get<std::string>(2),
                       row.get<std::optional<std::string>>(3), row.get<std::string>(4),
                       row.get<std::string>(5), row.get<int>(6), row.get<std::string>(7),
                       row.get<std::optional<std::string>>(8)});
  }
  return letters;
}

std::vector<std::int64_t> request_replay(storage::Database& database, std::string_view topic,
                                         const std::optional<std::string>& group) {
  std::string sql =
      "UPDATE dead_letters SET replay_requested_at = $1 WHERE replayed_at IS NULL AND topic = $2";
  storage::Params params{now(), topic};
  if (group) {
    sql += " AND consumer_group = $3";
    params.emplace_back(*group);
  }
  std::vector<std::int64_t> ids;
  for (const storage::Row& row : database.execute(sql + " RETURNING id", params).rows) {
    ids.push_back(row.get<std::int64_t>(0));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

ReplayProgress replay_progress(storage::Database& database, const std::vector<std::int64_t>& ids) {
  ReplayProgress progress;
  for (std::size_t start = 0; start < ids.size(); start += kIdsPerStatement) {
    const std::size_t end = std::min(ids.size(), start + kIdsPerStatement);
    std::string sql =
        "SELECT replayed_at IS NOT NULL, replay_requested_at IS NOT NULL FROM dead_letters "
        "WHERE id IN (";
    storage::Params params;
    for (std::size_t i = start; i < end; ++i) {
      sql += (i > start ? ", $" : "$") + std::to_string(params.size() + 1);
      params.emplace_back(ids[i]);
    }
    for (const storage::Row& row : database.execute(sql + ")", params).rows) {
      if (row.get<bool>(0)) {
        ++progress.replayed;
      } else if (row.get<bool>(1)) {
        ++progress.waiting;
      } else {
        ++progress.failed_again;
      }
    }
  }
  return progress;
}

EmbeddedBus::EmbeddedBus(EmbeddedBusOptions options) : options_(options) {
  if (options_.max_attempts < 1 || options_.initial_backoff.count() < 0 ||
      options_.max_backoff < options_.initial_backoff) {
    throw std::invalid_argument(
        "embedded bus: want max_attempts >= 1 and 0 <= initial backoff <= max backoff");
  }
}

EmbeddedBus::~EmbeddedBus() {
  stop();
}

void EmbeddedBus::subscribe(Subscription subscription) {
  if (subscription.group.empty() || subscription.database == nullptr) {
    throw std::invalid_argument("embedded bus: a subscription needs a group and a database");
  }
  std::vector<std::string> topics;
  for (const auto& entry : subscription.handlers) topics.push_back(entry.first);
  Subscriber* existing = nullptr;
  {
    const std::lock_guard lock(mutex_);
    for (const auto& s : subscribers_) {
      if (s->group == subscription.group) existing = s.get();
    }
    if (existing == nullptr) {
      std::string group = subscription.group;
      subscribers_.push_back(
          std::make_unique<Subscriber>(std::move(group), std::move(subscription)));
      subscribers_.back()->topics = std::move(topics);
      return;
    }
  }
  // Lock order: a group's `delivering` before the bus's mutex_, never the other way round.
  {
    const std::lock_guard delivering(existing->delivering);
    if (existing->active) {
      throw std::invalid_argument("embedded bus: group \"" + existing->group +
                                  "\" is already subscribed");
    }
    existing->subscription = std::move(subscription);
    existing->active = true;
  }
  const std::lock_guard lock(mutex_);
  existing->topics = std::move(topics);
}

void EmbeddedBus::unsubscribe(const std::string& group) {
  if (Subscriber* subscriber = find(group)) {
    const std::lock_guard delivering(subscriber->delivering);
    subscriber->active = false;
  }
}

void EmbeddedBus::start() {
  const std::lock_guard lock(mutex_);
  running_ = true;
  if (!replayer_.joinable()) replayer_ = std::thread([this] { replay_loop(); });
}

void EmbeddedBus::stop() {
  std::thread replayer;
  {
    std::unique_lock lock(mutex_);
    running_ = false;
    changed_.notify_all();  // cuts retry pauses and the replayer's wait short
    changed_.wait(lock, [this] { return in_flight_ == 0; });
    replayer = std::move(replayer_);
  }
  if (replayer.joinable()) replayer.join();  // lets the replay in hand finish
}

void EmbeddedBus::replay_loop() {
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (changed_.wait_for(lock, kReplayPoll, [this] { return !running_; })) return;
    }
    try {
      replay_requested();
    } catch (const std::exception& e) {  // a database away: the stamps stay for the next look
      log::warn("embedded bus: cannot look for requested replays", {{"error", e.what()}});
    }
  }
}

std::map<std::string, ConsumerStats> EmbeddedBus::stats() const {
  const std::lock_guard lock(mutex_);
  std::map<std::string, ConsumerStats> out;
  for (const auto& s : subscribers_) {
    ConsumerStats& stats = out[s->group];
    stats.consumed = s->consumed.load();
    stats.failed = s->failed.load();
    stats.dead_lettered = s->dead_lettered.load();
    // Delivery is synchronous: nothing published is ever waiting for a consumer.
    for (const std::string& topic : s->topics) stats.lag[topic + "/0"] = 0;
  }
  return out;
}

std::size_t EmbeddedBus::deliver(const std::vector<OutgoingMessage>& batch,
                                 std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<Subscriber*> subscribers;
  {
    const std::lock_guard lock(mutex_);
    if (!running_) return 0;
    ++in_flight_;
    for (const auto& s : subscribers_) subscribers.push_back(s.get());
  }
  // stop() waits for in_flight_ to fall back, however this call ends.
  struct Leave {
    EmbeddedBus& bus;
    ~Leave() {
      const std::lock_guard lock(bus.mutex_);
      --bus.in_flight_;
      bus.changed_.notify_all();
    }
  } const leave{*this};
  const auto running = [this] {
    const std::lock_guard lock(mutex_);
    return running_;
  };
  // The deadline is checked between messages: a message in hand finishes its retries, so a
  // slow handler still reaches its dead letter instead of restarting its attempts forever.
  std::size_t acked = 0;
  while (acked < batch.size() && std::chrono::steady_clock::now() < deadline && running()) {
    const OutgoingMessage& message = batch[acked];
    const Decoded decoded = decode(message.payload);
    for (Subscriber* subscriber : subscribers) {
      if (!deliver_to(*subscriber, message, decoded)) return acked;
    }
    ++acked;
  }
  return acked;
}

bool EmbeddedBus::deliver_to(Subscriber& subscriber, const OutgoingMessage& message,
                             const Decoded& decoded) {
  const std::lock_guard delivering(subscriber.delivering);
  const auto found = subscriber.subscription.handlers.find(message.topic);
  if (found == subscriber.subscription.handlers.end()) return true;  // not its business
  if (!subscriber.active) return false;  // kept in the outbox until the group is back
  const Handler& handler = found->second;
  const std::string& group = subscriber.group;
  storage::Database& database = *subscriber.subscription.database;
  try {
    if (!decoded.event) {  // poison: no attempt can succeed
      dead_letter(subscriber, message, std::nullopt, "not a valid event: " + decoded.error, 0);
      return true;
    }
    const Event& event = *decoded.event;
    std::chrono::milliseconds backoff = options_.initial_backoff;
    for (int attempt = 1;; ++attempt) {
      std::exception_ptr error;
      try {
        database.transaction([&](storage::Executor& tx) {
          if (claim(tx, group, event.id)) handler(tx, event);
        });
        ++subscriber.consumed;
        return true;
      } catch (...) {
        error = std::current_exception();
      }
      ++subscriber.failed;
      // The subscriber's database is away: not the event's fault. Leave it unacknowledged so
      // the relay backs off and brings it again, instead of dead-lettering everything.
      if (unavailable(error)) {
        log::warn("embedded bus: subscriber database unavailable",
                  {{"group", group}, {"topic", message.topic}, {"error", what(error)}});
        return false;
      }
      if (attempt >= options_.max_attempts) {
        dead_letter(subscriber, message, event, what(error), attempt);
        return true;
      }
      if (!pause(backoff)) return false;  // stopping: the message comes again after a restart
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  } catch (const std::exception& e) {  // the dead letter could not be written
    log::error("embedded bus: cannot record a dead letter",
               {{"group", group}, {"topic", message.topic}, {"error", e.what()}});
    return false;
  }
}

void EmbeddedBus::dead_letter(Subscriber& subscriber, const OutgoingMessage& message,
                              const std::optional<Event>& event, const std::string& error,
                              int attempts) {
  const std::string& group = subscriber.group;
  const bool recorded = subscriber.subscription.database->transaction([&](storage::Executor& tx) {
    // Claiming the id makes a redelivery (relay crash before marking) skip it instead of
    // dead-lettering it twice. A poison payload has no id to claim.
    if (event && !claim(tx, group, event->id)) return false;
    tx.execute(
        "INSERT INTO dead_letters (consumer_group, topic, event_id, payload, error, attempts, "
        "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        {group, message.topic, event ? std::optional(event->id) : std::nullopt, message.payload,
         error, attempts, now()});
    return true;
  });
  if (!recorded) return;
  ++subscriber.consumed;
  ++subscriber.dead_lettered;
  log::warn("embedded bus: event dead-lettered", {{"group", group},
                                                  {"topic", message.topic},
                                                  {"eventId", event ? event->id : ""},
                                                  {"attempts", attempts},
                                                  {"error", error}});
}

bool EmbeddedBus::pause(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, delay, [this] { return !running_; });
  return running_;
}

EmbeddedBus::Subscriber* EmbeddedBus::find(std::string_view group) const {
  const std::lock_guard lock(mutex_);
  for (const auto& s : subscribers_) {
    if (s->group == group) return s.get();
  }
  return nullptr;
}

std::size_t EmbeddedBus::replay(std::string_view group, std::string_view topic) {
  Subscriber* subscriber = find(group);
  const auto no_handler = [&] {
    return std::invalid_argument("embedded bus: group \"" + std::string(group) +
                                 "\" has no handler for topic \"" + std::string(topic) + "\"");
  };
  if (subscriber == nullptr) throw no_handler();
  const std::lock_guard delivering(subscriber->delivering);
  // An unsubscribed group's database may be closed already.
  if (!subscriber->active || !subscriber->subscription.handlers.contains(topic)) throw no_handler();
  return replay_letters(*subscriber, topic, false);
}

std::size_t EmbeddedBus::replay_requested() {
  std::vector<Subscriber*> subscribers;
  {
    const std::lock_guard lock(mutex_);
    for (const auto& s : subscribers_) subscribers.push_back(s.get());
  }
  std::size_t replayed = 0;
  for (Subscriber* subscriber : subscribers) {
    const std::lock_guard delivering(subscriber->delivering);
    if (!subscriber->active) continue;  // its database may be closed; the stamps wait for it
    const storage::Result topics = subscriber->subscription.database->execute(
        "SELECT DISTINCT topic FROM dead_letters WHERE consumer_group = $1 AND replayed_at IS "
        "NULL AND replay_requested_at IS NOT NULL",
        {subscriber->group});
    for (const storage::Row& row : topics.rows) {
      replayed += replay_letters(*subscriber, row.get<std::string>(0), true);
    }
  }
  return replayed;
}

std::size_t EmbeddedBus::replay_letters(Subscriber& subscriber, std::string_view topic,
                                        bool only_requested) {
  const std::string& group = subscriber.group;
  storage::Database& database = *subscriber.subscription.database;
  const auto found = subscriber.subscription.handlers.find(topic);
  // A requested letter that cannot be replayed, or fails again, loses its stamp (so it is
  // tried once per request) and shows why in its error.
  const auto give_up = [&](const DeadLetter& letter, const std::string& error) {
    log::warn("embedded bus: replay failed",
              {{"group", group}, {"deadLetter", letter.id}, {"error", error}});
    if (!only_requested) return;
    database.execute(
        "UPDATE dead_letters SET replay_requested_at = NULL, error = $1 WHERE id = $2 AND "
        "replayed_at IS NULL",
        {"replay failed: " + error, letter.id});
  };
  std::size_t replayed = 0;
  for (const DeadLetter& letter : list_dead_letters(database, std::string(topic))) {
    if (letter.consumer_group != group) continue;
    if (only_requested && !letter.replay_requested_at) continue;
    if (found == subscriber.subscription.handlers.end()) {
      give_up(letter,
              "group \"" + group + "\" has no handler for topic \"" + std::string(topic) + "\"");
      continue;
    }
    const Decoded decoded = decode(letter.payload);
    if (!decoded.event) {  // still poison: stays for an operator to look at
      give_up(letter, "not a valid event: " + decoded.error);
      continue;
    }
    try {
      // The id was claimed when the message was dead-lettered (so redeliveries skip it); the
      // replayed_at guard is what keeps a replay from running twice. claim() stays for dead
      // letters written before an id was claimed (and is a no-op otherwise).
      const bool ran = database.transaction([&](storage::Executor& tx) {
        const auto marked = tx.execute(
            "UPDATE dead_letters SET replayed_at = $1 WHERE id = $2 AND replayed_at IS NULL",
            {now(), letter.id});
        if (marked.affected_rows != 1) return false;
        claim(tx, group, decoded.event->id);
        found->second(tx, *decoded.event);
        return true;
      });
      replayed += ran ? 1 : 0;
    } catch (const std::exception& e) {
      give_up(letter, e.what());
    }
  }
  return replayed;
}

}  // namespace inkwell::messaging
