#include "messaging/kafka/dead_letters.h"

#include "base/log.h"
#include "messaging/kafka/kafka_config.h"
#include "messaging/kafka/kafka_publisher.h"
#include "messaging/topics.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <tuple>

namespace inkwell::messaging::kafka {
namespace {

using Clock = std::chrono::steady_clock;

// Owns the TopicPartition objects a vector holds.
struct PartitionList {
  std::vector<RdKafka::TopicPartition*> items;
  ~PartitionList() { RdKafka::TopicPartition::destroy(items); }
};

// A consumer that reads by assignment; it joins no group, and commits only when told to.
std::unique_ptr<RdKafka::KafkaConsumer> make_reader(const KafkaOptions& options,
                                                    ClientEvents& events,
                                                    const std::string& group) {
  const std::unique_ptr<RdKafka::Conf> conf = client_conf(options, events);
  set(*conf, "group.id", group);
  set(*conf, "enable.auto.commit", "false");
  set(*conf, "enable.auto.offset.store", "false");
  set(*conf, "enable.partition.eof", "true");
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) throw std::runtime_error("kafka: cannot create a consumer: " + error);
  return consumer;
}

// What is left to read of one partition: offsets [next, end).
struct Range {
  std::int64_t next = 0;
  std::int64_t end = 0;
};

// The partitions of `topic` with their offset ranges [low watermark, high watermark).
std::map<std::int32_t, Range> partition_ranges(RdKafka::KafkaConsumer& consumer,
                                               const std::string& topic,
                                               Clock::time_point deadline) {
  RdKafka::Metadata* raw = nullptr;
  const RdKafka::ErrorCode err = consumer.metadata(true, nullptr, &raw, remaining_ms(deadline));
  if (err != RdKafka::ERR_NO_ERROR) {
    throw std::runtime_error("kafka: cannot read the cluster's topics: " + RdKafka::err2str(err));
  }
  const std::unique_ptr<RdKafka::Metadata> metadata(raw);
  std::map<std::int32_t, Range> ranges;
  for (const RdKafka::TopicMetadata* t : *metadata->topics()) {
    if (t->topic() != topic || t->err() != RdKafka::ERR_NO_ERROR) continue;
    for (const RdKafka::PartitionMetadata* p : *t->partitions()) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      const RdKafka::ErrorCode w =
          consumer.query_watermark_offsets(topic, p->id(), &low, &high, remaining_ms(deadline));
      if (w != RdKafka::ERR_NO_ERROR) {
        throw std::runtime_error("kafka: cannot read the offsets of " + topic + ": " +
                                 RdKafka::err2str(w));
      }
      ranges[p->id()] = Range{low, high};
    }
  }
  if (ranges.empty()) throw std::runtime_error("kafka: topic " + topic + " does not exist");
  return ranges;
}

// Reads every message of the ranges (starting at each range's `next`) and hands it to
// `visit`, in offset order per partition, until each range is done. Throws when a deadline
// passes without progress.
template <typename Visit>
void read_ranges(RdKafka::KafkaConsumer& consumer, const std::string& topic,
                 std::map<std::int32_t, Range> ranges, std::chrono::milliseconds patience,
                 Visit&& visit) {
  std::erase_if(ranges, [](const auto& entry) { return entry.second.next >= entry.second.end; });
  if (ranges.empty()) return;
  PartitionList assignment;
  for (const auto& [partition, range] : ranges) {
    assignment.items.push_back(RdKafka::TopicPartition::create(topic, partition, range.next));
  }
  const RdKafka::ErrorCode assigned = consumer.assign(assignment.items);
  if (assigned != RdKafka::ERR_NO_ERROR) {
    throw std::runtime_error("kafka: cannot read " + topic + ": " + RdKafka::err2str(assigned));
  }
  auto deadline = Clock::now() + patience;
  std::string last_error;
  while (!ranges.empty()) {
    if (Clock::now() >= deadline) {
      throw std::runtime_error("kafka: reading " + topic + " made no progress in time" +
                               (last_error.empty() ? "" : ": " + last_error));
    }
    const std::unique_ptr<RdKafka::Message> message(consumer.consume(200));
    const RdKafka::ErrorCode err = message->err();
    if (err == RdKafka::ERR__TIMED_OUT) continue;
    const auto range = ranges.find(message->partition());
    if (err == RdKafka::ERR__PARTITION_EOF) {
      if (range != ranges.end() && message->offset() >= range->second.end) ranges.erase(range);
      continue;
    }
    if (err != RdKafka::ERR_NO_ERROR) {
      last_error = message->errstr();
      continue;
    }
    if (range == ranges.end() || message->offset() >= range->second.end) continue;
    visit(*message);
    deadline = Clock::now() + patience;
    range->second.next = message->offset() + 1;
    if (range->second.next >= range->second.end) ranges.erase(range);
  }
}

std::vector<std::pair<std::string, std::string>> headers_of(RdKafka::Message& message) {
  std::vector<std::pair<std::string, std::string>> out;
  const RdKafka::Headers* headers = message.headers();
  if (headers == nullptr) return out;
  for (const RdKafka::Headers::Header& h : headers->get_all()) {
    out.emplace_back(h.key(),
                     h.value() == nullptr
                         ? std::string()
                         : std::string(static_cast<const char*>(h.value()), h.value_size()));
  }
  return out;
}

std::string header_value(RdKafka::Message& message, std::string_view name) {
  for (auto& [key, value] : headers_of(message)) {
    if (key == name) return value;
  }
  return {};
}

}  // namespace

std::string DeadLetterInfo::header(std::string_view name) const {
  for (const auto& [header_name, value] : headers) {
    if (header_name == name) return value;
  }
  return {};
}

std::vector<DeadLetterInfo> list_dead_letters(const KafkaOptions& options, std::string_view topic) {
  const std::string dlq = dead_letter_topic(topic);
  ClientEvents events("dlq list");
  // The C++ consumer needs a group id; this one never joins or commits.
  const auto consumer = make_reader(options, events, std::string(kReplayGroup) + ".list");
  const auto ranges = partition_ranges(*consumer, dlq, Clock::now() + options.admin_timeout);
  std::vector<DeadLetterInfo> letters;
  read_ranges(*consumer, dlq, ranges, options.admin_timeout, [&](RdKafka::Message& message) {
    DeadLetterInfo info;
    info.partition = message.partition();
    info.offset = message.offset();
    if (message.key_pointer() != nullptr) {
      info.key.assign(static_cast<const char*>(message.key_pointer()), message.key_len());
    }
    info.headers = headers_of(message);
    info.payload_size = message.len();
    info.payload_excerpt.assign(static_cast<const char*>(message.payload()),
                                std::min(message.len(), DeadLetterInfo::kExcerptBytes));
    letters.push_back(std::move(info));
  });
  consumer->close();
  std::sort(letters.begin(), letters.end(), [](const auto& a, const auto& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  return letters;
}

std::size_t replay_dead_letters(const KafkaOptions& options, std::string_view topic,
                                std::string_view group) {
  const std::string dlq = dead_letter_topic(topic);
  std::string progress_group(kReplayGroup);
  if (!group.empty()) progress_group.append(".").append(group);
  ClientEvents events("dlq replay");
  const auto consumer = make_reader(options, events, progress_group);
  auto ranges = partition_ranges(*consumer, dlq, Clock::now() + options.admin_timeout);

  // Start after what earlier replays committed; stop at the end as it is now, so letters
  // that fail again during this replay wait for the next one.
  PartitionList committed;
  for (const auto& [partition, range] : ranges) {
    committed.items.push_back(RdKafka::TopicPartition::create(dlq, partition));
  }
  const RdKafka::ErrorCode fetched =
      consumer->committed(committed.items, static_cast<int>(options.admin_timeout.count()));
  if (fetched != RdKafka::ERR_NO_ERROR) {
    throw std::runtime_error("kafka: cannot read the replay progress of " + dlq + ": " +
                             RdKafka::err2str(fetched));
  }
  for (const RdKafka::TopicPartition* p : committed.items) {
    Range& range = ranges[p->partition()];
    if (p->offset() >= 0) range.next = std::max(range.next, p->offset());
  }

  KafkaPublisher producer(options);
  std::size_t sent = 0;
  read_ranges(*consumer, dlq, ranges, options.admin_timeout, [&](RdKafka::Message& message) {
    const bool ours = group.empty() || header_value(message, kGroupHeader) == group;
    if (ours) {
      std::string original = header_value(message, kOriginalTopicHeader);
      if (original.empty()) original = std::string(topic);
      const std::string_view key(static_cast<const char*>(message.key_pointer()),
                                 message.key_pointer() != nullptr ? message.key_len() : 0);
      const std::string_view value(static_cast<const char*>(message.payload()), message.len());
      const std::string from =
          dlq + "/" + std::to_string(message.partition()) + "/" + std::to_string(message.offset());
      const auto failure = producer.send(
          original, key, value, {{std::string(kReplayedFromHeader), from}}, options.admin_timeout);
      if (failure) {
        throw std::runtime_error("kafka: cannot send dead letter " + from + " back to " + original +
                                 ": " + *failure);
      }
      ++sent;
      log::info("dead letter replayed", {{"from", from}, {"topic", original}});
    }
    PartitionList progress;
    progress.items.push_back(
        RdKafka::TopicPartition::create(dlq, message.partition(), message.offset() + 1));
    const RdKafka::ErrorCode commit = consumer->commitSync(progress.items);
    if (commit != RdKafka::ERR_NO_ERROR) {
      throw std::runtime_error("kafka: cannot record the replay progress of " + dlq + ": " +
                               RdKafka::err2str(commit));
    }
  });
  consumer->close();
  return sent;
}

}  // namespace inkwell::messaging::kafka
