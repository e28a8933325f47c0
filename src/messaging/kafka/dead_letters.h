#pragma once

#include "messaging/kafka/kafka_options.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace inkwell::messaging::kafka {

/// The headers a consumer adds to a dead letter (the key and value are the original's).
inline constexpr std::string_view kErrorHeader = "x-error";
inline constexpr std::string_view kGroupHeader = "x-consumer-group";
inline constexpr std::string_view kAttemptsHeader = "x-attempts";
inline constexpr std::string_view kOriginalTopicHeader = "x-original-topic";
inline constexpr std::string_view kOriginalPartitionHeader = "x-original-partition";
inline constexpr std::string_view kOriginalOffsetHeader = "x-original-offset";
/// Added by replay_dead_letters() to the message it sends back: "<dlq topic>/<partition>/<offset>".
inline constexpr std::string_view kReplayedFromHeader = "x-replayed-from";

/// The consumer group that records how far replay_dead_letters() got on a `.dlq` topic.
inline constexpr std::string_view kReplayGroup = "inkwell-dlq-replay";

// One message of a `<topic>.dlq` topic, as an operator sees it.
struct DeadLetterInfo {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_excerpt;  // the first kExcerptBytes bytes of the value
  std::size_t payload_size = 0;

  static constexpr std::size_t kExcerptBytes = 200;
  /// The first header called `name`, or an empty string.
  std::string header(std::string_view name) const;
};

/// Every message of `<topic>.dlq`, oldest first per partition, read from the beginning to the
/// end with a throwaway consumer that commits nothing. Throws std::runtime_error when the
/// topic does not exist or the brokers cannot be read within options.admin_timeout.
std::vector<DeadLetterInfo> list_dead_letters(const KafkaOptions& options, std::string_view topic);

/// Sends the dead letters of `<topic>.dlq` back to their original topic (same key and value),
/// and returns how many it sent. Only letters of consumer group `group` when it is not empty
/// (the others are passed over). Progress is committed after each letter the brokers
/// acknowledged, under consumer group "inkwell-dlq-replay" (".<group>" appended when `group`
/// is set), so a second replay sends only letters that arrived since. A letter that fails again
/// comes back as a new dead letter. Throws std::runtime_error when the topic does not exist
/// or the brokers fail; what was sent and committed before stays done.
std::size_t replay_dead_letters(const KafkaOptions& options, std::string_view topic,
                                std::string_view group);

}  // namespace inkwell::messaging::kafka
