#include "messaging/kafka/group_consumer.h"

#include "base/log.h"
#include "messaging/event.h"
#include "messaging/kafka/dead_letters.h"
#include "messaging/outbox.h"
#include "messaging/topics.h"
#include "storage/database.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace inkwell::messaging::kafka {
namespace {

constexpr int kConsumeTimeoutMs = 200;  // how soon a stop request is noticed when idle
constexpr auto kLagEvery = std::chrono::seconds(1);
constexpr auto kErrorLogEvery = std::chrono::seconds(30);
// A dead letter's delivery is awaited in these slices, so a stop request is noticed.
constexpr auto kDeadLetterWait = std::chrono::seconds(1);
constexpr std::size_t kMaxErrorHeader = 1'000;
// A batch smaller than this is applied in one lane: a thread would cost more than it saves.
constexpr std::size_t kParallelMinimum = 32;

std::string partition_name(const std::string& topic, std::int32_t partition) {
  return topic + "/" + std::to_string(partition);
}

// How long a commit of the stored offsets may wait: a broker that hangs (rather than refuses)
// must not hang a rebalance or a stop. An offset not committed only means a redelivery, which
// the inbox absorbs.
constexpr int kCommitTimeoutMs = 3'000;
// How long stopping waits for the consumer to leave its group.
constexpr auto kCloseTimeout = std::chrono::seconds(5);

// Commits the offsets stored for the current assignment and waits for the answer, at most
// kCommitTimeoutMs; returns the error, or ERR__TIMED_OUT.
RdKafka::ErrorCode commit_stored(RdKafka::KafkaConsumer& consumer) {
  rd_kafka_t* rk = consumer.c_ptr();
  const std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> queue(
      rd_kafka_queue_new(rk), &rd_kafka_queue_destroy);
  const rd_kafka_resp_err_t queued =
      rd_kafka_commit_queue(rk, nullptr, queue.get(), nullptr, nullptr);
  if (queued != RD_KAFKA_RESP_ERR_NO_ERROR) return static_cast<RdKafka::ErrorCode>(queued);
  const std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> result(
      rd_kafka_queue_poll(queue.get(), kCommitTimeoutMs), &rd_kafka_event_destroy);
  if (!result) return RdKafka::ERR__TIMED_OUT;
  return static_cast<RdKafka::ErrorCode>(rd_kafka_event_error(result.get()));
}

// Owns the TopicPartition objects librdkafka hands out in a vector.
struct PartitionList {
  std::vector<RdKafka::TopicPartition*> items;
  ~PartitionList() { RdKafka::TopicPartition::destroy(items); }
};

// Joins every joinable thread of a vector when it goes out of scope.
struct ThreadJoiner {
  std::vector<std::thread>& threads;
  ~ThreadJoiner() {
    for (std::thread& thread : threads) {
      if (thread.joinable()) thread.join();
    }
  }
};

}  // namespace

// Commits the stored offsets before partitions go, so the next owner starts after the work
// this consumer finished. Messages of those partitions that the batch being gathered holds are
// dropped unapplied (revoked()): their offsets were never stored, so the next owner reads them.
class GroupConsumer::Rebalance final : public RdKafka::RebalanceCb {
 public:
  explicit Rebalance(GroupConsumer& owner) : owner_(owner) {}
  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      if (cooperative) {
        delete consumer->incremental_assign(partitions);
      } else {
        consumer->assign(partitions);
      }
      owner_.assigned(partitions);
      return;
    }
    const RdKafka::ErrorCode commit = commit_stored(*consumer);
    if (commit != RdKafka::ERR_NO_ERROR && commit != RdKafka::ERR__NO_OFFSET) {
      log::warn("kafka consumer cannot commit before a rebalance",
                {{"group", owner_.group()}, {"error", RdKafka::err2str(commit)}});
    }
    if (cooperative) {
      delete consumer->incremental_unassign(partitions);
    } else {
      consumer->unassign();
    }
    owner_.revoked(partitions);
  }

 private:
  GroupConsumer& owner_;
};

GroupConsumer::GroupConsumer(const KafkaOptions& options, Subscription subscription,
                             KafkaPublisher& dead_letters)
    : options_(options),
      subscription_(std::move(subscription)),
      dead_letters_(dead_letters),
      events_("consumer " + subscription_.group),
      rebalance_(std::make_unique<Rebalance>(*this)) {
  if (subscription_.group.empty()) throw std::invalid_argument("kafka consumer: empty group");
  if (subscription_.database == nullptr) {
    throw std::invalid_argument("kafka consumer " + subscription_.group + ": no database");
  }
  if (options_.max_attempts < 1) throw std::invalid_argument("kafka: max_attempts must be >= 1");
  if (options_.max_batch < 1) throw std::invalid_argument("kafka: max_batch must be >= 1");
}

GroupConsumer::~GroupConsumer() {
  stop();
}

void GroupConsumer::start() {
  if (thread_.joinable() || subscription_.handlers.empty()) return;
  const std::unique_ptr<RdKafka::Conf> conf = client_conf(options_, events_);
  set(*conf, "group.id", subscription_.group);
  set(*conf, "client.id", options_.client_id + "-" + subscription_.group);
  // Offsets are stored by hand once an event's effect committed; librdkafka commits what was
  // stored in the background, and at rebalance and stop we commit it ourselves.
  set(*conf, "enable.auto.commit", "true");
  set(*conf, "enable.auto.offset.store", "false");
  set(*conf, "auto.offset.reset", "earliest");
  set(*conf, "session.timeout.ms", std::to_string(options_.session_timeout.count()));
  set(*conf, "heartbeat.interval.ms",
      std::to_string(std::max<std::int64_t>(options_.session_timeout.count() / 4, 100)));
  set(*conf, "socket.timeout.ms", std::to_string(options_.request_timeout.count()));
  std::string error;
  if (conf->set("rebalance_cb", rebalance_.get(), error) != RdKafka::Conf::CONF_OK) {
    throw std::invalid_argument("kafka configuration rebalance_cb: " + error);
  }
  consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer_) throw std::invalid_argument("kafka: cannot create a consumer: " + error);

  const std::set<std::string> wanted = topics();
  const std::vector<std::string> topics(wanted.begin(), wanted.end());
  const RdKafka::ErrorCode err = consumer_->subscribe(topics);
  if (err != RdKafka::ERR_NO_ERROR) {
    consumer_->close();
    consumer_.reset();
    throw std::invalid_argument("kafka consumer " + subscription_.group +
                                ": cannot subscribe: " + RdKafka::err2str(err));
  }
  {
    const std::lock_guard lock(mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
  log::info("kafka consumer started", {{"group", subscription_.group}, {"topics", topics.size()}});
}

void GroupConsumer::request_stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_requested_.notify_all();
}

void GroupConsumer::stop() {
  request_stop();
  if (!thread_.joinable()) return;
  thread_.join();
  consumer_.reset();
  const std::lock_guard lock(mutex_);
  lag_.clear();
}

std::set<std::string> GroupConsumer::topics() const {
  std::set<std::string> topics;
  for (const auto& [type, handler] : subscription_.handlers) topics.insert(type);
  return topics;
}

bool GroupConsumer::stopping() const {
  const std::lock_guard lock(mutex_);
  return stopping_;
}

bool GroupConsumer::pause(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  return !stop_requested_.wait_for(lock, delay, [this] { return stopping_; });
}

ConsumerStats GroupConsumer::stats() const {
  ConsumerStats stats;
  stats.consumed = consumed_.value();
  stats.failed = failed_.value();
  stats.dead_lettered = dead_lettered_.value();
  const std::lock_guard lock(mutex_);
  stats.lag = lag_;
  return stats;
}

void GroupConsumer::run() {
  while (!stopping()) {
    // What librdkafka already fetched is applied together: one transaction for many events
    // instead of one each. Gathering never waits once the first message is in.
    if (take(std::unique_ptr<RdKafka::Message>(consumer_->consume(kConsumeTimeoutMs)))) {
      while (batch_.size() < options_.max_batch &&
             take(std::unique_ptr<RdKafka::Message>(consumer_->consume(0)))) {
      }
    }
    if (!batch_.empty()) {
      try {
        process_batch();
      } catch (const std::exception& e) {  // a bug here must not end consumption silently
        log::error("kafka consumer failed on a batch",
                   {{"group", subscription_.group}, {"error", e.what()}});
      }
      batch_.clear();
    }
    if (Clock::now() >= next_lag_update_) update_lag();
  }
  close_consumer();
  log::info("kafka consumer stopped", {{"group", subscription_.group}});
}

bool GroupConsumer::take(std::unique_ptr<RdKafka::Message> message) {
  const RdKafka::ErrorCode err = message->err();
  if (err == RdKafka::ERR_NO_ERROR) {
    batch_.push_back(std::move(message));
    return true;
  }
  if (err != RdKafka::ERR__TIMED_OUT && err != RdKafka::ERR__PARTITION_EOF) {
    const auto now = Clock::now();
    if (err != last_error_ || now - last_error_logged_ >= kErrorLogEvery) {
      log::warn("kafka consumer error", {{"group", subscription_.group},
                                         {"code", RdKafka::err2str(err)},
                                         {"error", message->errstr()}});
      last_error_ = err;
      last_error_logged_ = now;
    }
  }
  return false;
}

void GroupConsumer::close_consumer() {
  // Leaving the group revokes the assignment, and the rebalance callback commits what was
  // stored. KafkaConsumer::close() waits without limit for a broker that hangs (stopped rather
  // than gone), so close asynchronously and stop waiting after kCloseTimeout; destroying the
  // consumer then waits at most for its requests in flight (socket.timeout.ms). The group drops
  // a member that did not leave after session.timeout.ms, and offsets left uncommitted mean
  // redeliveries, which the inbox absorbs.
  rd_kafka_t* rk = consumer_->c_ptr();
  const std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> queue(
      rd_kafka_queue_new(rk), &rd_kafka_queue_destroy);
  if (rd_kafka_error_t* error = rd_kafka_consumer_close_queue(rk, queue.get())) {
    log::warn("kafka consumer cannot close",
              {{"group", subscription_.group}, {"error", rd_kafka_error_string(error)}});
    rd_kafka_error_destroy(error);
    return;
  }
  const auto deadline = Clock::now() + kCloseTimeout;
  while (rd_kafka_consumer_closed(rk) == 0 && Clock::now() < deadline) {
    rd_kafka_queue_poll_callback(queue.get(), 100);  // serves the rebalance callback
  }
  if (rd_kafka_consumer_closed(rk) == 0) {
    log::warn("kafka consumer did not leave its group in time", {{"group", subscription_.group}});
  }
}

void GroupConsumer::process_batch() {
  consumed_.add(batch_.size());
  std::vector<Item> items;
  items.reserve(batch_.size());
  for (const auto& message : batch_) {
    Item& item = items.emplace_back();
    item.message = message.get();
    item.decoded =
        decode(std::string_view(static_cast<const char*>(message->payload()), message->len()));
    if (!item.decoded.event) continue;
    const auto handler = subscription_.handlers.find(item.decoded.event->type);
    if (handler != subscription_.handlers.end()) item.handler = &handler->second;
  }

  // A partition's messages stay in one lane, in order: per-key order holds, and each lane
  // stores only its own partitions' offsets. Small batches are not worth a thread.
  const std::size_t lane_count =
      items.size() >= kParallelMinimum ? std::max<std::size_t>(options_.max_parallel, 1) : 1;
  std::vector<std::vector<const Item*>> lanes(lane_count);
  std::map<PartitionKey, std::size_t> lane_of;
  for (const Item& item : items) {
    const auto [it, added] = lane_of.try_emplace(
        {item.message->topic_name(), item.message->partition()}, lane_of.size() % lane_count);
    lanes[it->second].push_back(&item);
  }
  std::erase_if(lanes, [](const std::vector<const Item*>& lane) { return lane.empty(); });

  // Lanes past the first run on helper threads, joined however this one leaves; a lane whose
  // thread cannot start runs here after the first.
  std::vector<std::thread> helpers;
  const ThreadJoiner joiner{helpers};
  std::vector<const std::vector<const Item*>*> here{&lanes.front()};
  for (std::size_t i = 1; i < lanes.size(); ++i) {
    try {
      helpers.emplace_back([this, &lane = lanes[i]] {
        try {
          process_lane(lane);
        } catch (const std::exception& e) {  // a bug here must not end the process
          log::error("kafka consumer failed on a batch",
                     {{"group", subscription_.group}, {"error", e.what()}});
        } catch (...) {
          log::error("kafka consumer failed on a batch", {{"group", subscription_.group}});
        }
      });
    } catch (const std::system_error&) {
      here.push_back(&lanes[i]);
    }
  }
  for (const std::vector<const Item*>* lane : here) process_lane(*lane);
}

void GroupConsumer::process_lane(const std::vector<const Item*>& items) {
  const auto applicable = std::count_if(items.begin(), items.end(),
                                        [](const Item* item) { return item->handler != nullptr; });
  const BatchOutcome outcome = applicable >= 2 ? apply_together(items) : BatchOutcome::failed;
  if (outcome == BatchOutcome::stopped) return;  // nothing stored: read again after a restart
  if (outcome == BatchOutcome::failed) {
    // A lone event, or a batch that one event (or the database) refused: each on its own, so
    // the bad one retries and dead-letters by itself while the others apply. Stopping leaves
    // the rest unstored, never an offset past an unfinished message.
    for (const Item* item : items) {
      if (!process_alone(*item)) return;
    }
    return;
  }
  // The effects are durable; poison messages are dead-lettered before any offset after them
  // is stored.
  std::vector<const RdKafka::Message*> done;
  done.reserve(items.size());
  for (const Item* item : items) {
    if (!item->decoded.event &&
        !dead_letter(*item->message, "not a CloudEvent: " + item->decoded.error, 1)) {
      break;
    }
    done.push_back(item->message);
  }
  store_offsets(done);
}

GroupConsumer::BatchOutcome GroupConsumer::refused(std::size_t messages,
                                                   const std::string& error) const {
  log::debug("batch refused; applying its events one by one",
             {{"group", subscription_.group}, {"messages", messages}, {"error", error}});
  return BatchOutcome::failed;
}

GroupConsumer::BatchOutcome GroupConsumer::apply_together(const std::vector<const Item*>& items) {
  std::chrono::milliseconds backoff = options_.initial_backoff;
  while (true) {
    std::string error;
    const auto started = Clock::now();
    try {
      subscription_.database->transaction([&](storage::Executor& tx) {
        // One statement claims the whole batch; the handlers then run in order for the events
        // not handled before.
        std::vector<const Item*> applicable;
        std::vector<std::string_view> ids;
        for (const Item* item : items) {
          if (item->handler == nullptr) continue;
          applicable.push_back(item);
          ids.emplace_back(item->decoded.event->id);
        }
        const std::vector<bool> claimed = claim_all(tx, subscription_.group, ids);
        for (std::size_t i = 0; i < applicable.size(); ++i) {
          if (claimed[i]) (*applicable[i]->handler)(tx, *applicable[i]->decoded.event);
        }
      });
      latency_.observe(std::chrono::duration<double>(Clock::now() - started).count());
      return BatchOutcome::committed;
    } catch (const storage::DatabaseError& e) {
      error = e.what();
      // The database being away says nothing about the events: wait for it, as one by one.
      if (e.kind() != storage::DatabaseError::Kind::unavailable)
        return refused(items.size(), error);
    } catch (const std::exception& e) {  // a handler refused an event: find which, one by one
      return refused(items.size(), e.what());
    } catch (...) {
      return refused(items.size(), "unknown exception");
    }
    log::warn("consumer database unavailable; retrying the batch",
              {{"group", subscription_.group},
               {"events", items.size()},
               {"error", error},
               {"retryInMs", backoff.count()}});
    if (!pause(backoff)) return BatchOutcome::stopped;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

bool GroupConsumer::process_alone(const Item& item) {
  const RdKafka::Message& message = *item.message;
  if (!item.decoded.event) {
    // Retrying cannot make these bytes an event.
    if (!dead_letter(message, "not a CloudEvent: " + item.decoded.error, 1)) return false;
    store_offset(message);
    return true;
  }
  if (item.handler == nullptr) {  // a type this group does not handle
    store_offset(message);
    return true;
  }
  const Event& event = *item.decoded.event;

  int attempts = 0;
  std::chrono::milliseconds backoff = options_.initial_backoff;
  while (true) {
    std::string error;
    bool counts = true;
    const auto started = Clock::now();
    try {
      subscription_.database->transaction([&](storage::Executor& tx) {
        if (!claim(tx, subscription_.group, event.id)) return;  // handled before: no effect
        (*item.handler)(tx, event);
      });
      latency_.observe(std::chrono::duration<double>(Clock::now() - started).count());
      store_offset(message);
      return true;
    } catch (const storage::DatabaseError& e) {
      error = e.what();
      // The database being away says nothing about the event: wait for it, never dead-letter.
      counts = e.kind() != storage::DatabaseError::Kind::unavailable;
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown exception";
    }
    failed_.add();
    if (counts) ++attempts;
    if (attempts >= options_.max_attempts) {
      if (!dead_letter(message, error, attempts)) return false;
      store_offset(message);
      return true;
    }
    log::warn("event handler failed; retrying", {{"group", subscription_.group},
                                                 {"topic", message.topic_name()},
                                                 {"eventId", event.id},
                                                 {"attempt", attempts},
                                                 {"error", error},
                                                 {"retryInMs", backoff.count()}});
    // Asked to stop: the offset stays unstored and the event is read again after a restart.
    if (!pause(backoff)) return false;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

bool GroupConsumer::dead_letter(const RdKafka::Message& message, const std::string& error,
                                int attempts) {
  const std::string topic = message.topic_name();
  const std::vector<MessageHeader> headers{
      {std::string(kErrorHeader), error.substr(0, kMaxErrorHeader)},
      {std::string(kGroupHeader), subscription_.group},
      {std::string(kAttemptsHeader), std::to_string(attempts)},
      {std::string(kOriginalTopicHeader), topic},
      {std::string(kOriginalPartitionHeader), std::to_string(message.partition())},
      {std::string(kOriginalOffsetHeader), std::to_string(message.offset())}};
  const std::string_view key(static_cast<const char*>(message.key_pointer()), message.key_len());
  const std::string_view value(static_cast<const char*>(message.payload()), message.len());
  const std::string topic_dlq = dead_letter_topic(topic);
  auto delivery = dead_letters_.produce(topic_dlq, key, value, headers);
  std::chrono::milliseconds backoff = options_.initial_backoff;
  while (true) {
    std::string failure;
    // Waits in slices on the same delivery (never a second copy of one still in flight), so a
    // stop request is noticed.
    const auto state = dead_letters_.wait(delivery, kDeadLetterWait, &failure);
    if (state == KafkaPublisher::DeliveryState::acknowledged) {
      dead_lettered_.add();
      log::warn("message dead-lettered", {{"group", subscription_.group},
                                          {"topic", topic},
                                          {"partition", message.partition()},
                                          {"offset", message.offset()},
                                          {"attempts", attempts},
                                          {"error", error}});
      return true;
    }
    if (state == KafkaPublisher::DeliveryState::pending) {
      if (stopping()) return false;
      continue;
    }
    log::warn("dead letter not delivered; retrying",
              {{"group", subscription_.group}, {"topic", topic_dlq}, {"error", failure}});
    if (!pause(backoff)) return false;
    backoff = std::min(backoff * 2, options_.max_backoff);
    delivery = dead_letters_.produce(topic_dlq, key, value, headers);
  }
}

void GroupConsumer::store_offset(const RdKafka::Message& message) {
  store_offsets({&message});
}

void GroupConsumer::store_offsets(const std::vector<const RdKafka::Message*>& done) {
  if (done.empty()) return;
  std::map<PartitionKey, std::int64_t> next;  // a partition's messages come in offset order
  for (const RdKafka::Message* message : done) {
    next[{message->topic_name(), message->partition()}] = message->offset() + 1;
  }
  PartitionList offsets;
  for (const auto& [partition, offset] : next) {
    offsets.items.push_back(
        RdKafka::TopicPartition::create(partition.first, partition.second, offset));
  }
  const RdKafka::ErrorCode err = consumer_->offsets_store(offsets.items);
  if (err != RdKafka::ERR_NO_ERROR) {
    // A partition went to another consumer meanwhile: it reads the messages again and the
    // inbox absorbs the repeats.
    log::debug("kafka offsets not stored",
               {{"group", subscription_.group}, {"error", RdKafka::err2str(err)}});
  }
}

void GroupConsumer::assigned(const std::vector<RdKafka::TopicPartition*>& partitions) {
  PartitionList committed;
  for (const RdKafka::TopicPartition* p : partitions) {
    committed.items.push_back(RdKafka::TopicPartition::create(p->topic(), p->partition()));
  }
  // Where consumption starts, for lag until the first message moves the position.
  if (consumer_->committed(committed.items, 2'000) == RdKafka::ERR_NO_ERROR) {
    for (const RdKafka::TopicPartition* p : committed.items) {
      if (p->offset() >= 0) start_offsets_[{p->topic(), p->partition()}] = p->offset();
    }
  }
  {
    const std::lock_guard lock(mutex_);
    for (const RdKafka::TopicPartition* p : partitions) {
      lag_.try_emplace(partition_name(p->topic(), p->partition()), 0);
    }
  }
  next_lag_update_ = Clock::now();
  log::info("kafka partitions assigned",
            {{"group", subscription_.group}, {"partitions", partitions.size()}});
}

void GroupConsumer::revoked(const std::vector<RdKafka::TopicPartition*>& partitions) {
  std::set<PartitionKey> lost;
  for (const RdKafka::TopicPartition* p : partitions) lost.insert({p->topic(), p->partition()});
  std::erase_if(batch_, [&](const std::unique_ptr<RdKafka::Message>& message) {
    return lost.contains({message->topic_name(), message->partition()});
  });
  const std::lock_guard lock(mutex_);
  for (const PartitionKey& partition : lost) {
    lag_.erase(partition_name(partition.first, partition.second));
    start_offsets_.erase(partition);
  }
}

void GroupConsumer::update_lag() {
  next_lag_update_ = Clock::now() + kLagEvery;
  PartitionList assignment;
  if (consumer_->assignment(assignment.items) != RdKafka::ERR_NO_ERROR) return;
  consumer_->position(assignment.items);
  std::map<std::string, std::int64_t> lag;
  for (const RdKafka::TopicPartition* p : assignment.items) {
    const std::string name = partition_name(p->topic(), p->partition());
    std::int64_t low = -1;
    std::int64_t high = -1;
    // Cached from the last fetch response: never a network wait on the consumer thread.
    consumer_->get_watermark_offsets(p->topic(), p->partition(), &low, &high);
    std::int64_t position = p->offset();
    if (position < 0) {
      const auto start = start_offsets_.find({p->topic(), p->partition()});
      position = start != start_offsets_.end() ? start->second : low;
    }
    if (high >= 0 && position >= 0) {
      lag[name] = std::max<std::int64_t>(high - position, 0);
    } else {
      const std::lock_guard lock(mutex_);
      const auto known = lag_.find(name);
      lag[name] = known != lag_.end() ? known->second : 0;
    }
  }
  const std::lock_guard lock(mutex_);
  lag_ = std::move(lag);
}

}  // namespace inkwell::messaging::kafka
