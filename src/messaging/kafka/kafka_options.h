#pragma once

#include "messaging/topics.h"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace inkwell::messaging::kafka {

// How Inkwell talks to Kafka: where the brokers are, how topics are created, how the producer
// bounds its memory and how consumers retry before dead-lettering.
struct KafkaOptions {
  std::string brokers;  // bootstrap.servers: "host:port,host:port"
  std::string client_id = "inkwell";

  /// The topics provisioned at start (each with its `.dlq`). The production list is fixed;
  /// tests pass topics of their own so reruns never see old messages.
  std::vector<std::string> topics{kTopics.begin(), kTopics.end()};
  int partitions = 3;
  int replication_factor = 1;

  /// Most messages a consumer applies in one transaction: it takes what librdkafka already
  /// fetched, up to this many, without waiting for more. 1 applies each message alone.
  std::size_t max_batch = 500;
  /// How many transactions one consumer runs at once for a large batch, each on its own
  /// database connection with the messages of some of its partitions. One partition's messages
  /// are always applied in order by one thread, so per-key order holds; a group's handlers may
  /// run concurrently for different partitions. 1 applies every batch in one transaction.
  std::size_t max_parallel = 3;
  /// Handler attempts before a message goes to `<topic>.dlq`.
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{200};  // doubles after each failed attempt...
  std::chrono::milliseconds max_backoff{5'000};    // ...up to this

  /// How long the producer waits for more messages before sending a request (linger.ms). The
  /// relay hands over whole batches, so waiting only delays them: 5 ms of linger made a relay
  /// cycle take 8-14 ms instead of 1-3.
  std::chrono::milliseconds linger{0};
  /// Producer memory bounds (queue.buffering.max.messages / .kbytes): when the broker is away
  /// the producer holds at most this much, then publish() stops taking more.
  std::size_t queue_max_messages = 100'000;
  std::size_t queue_max_kbytes = 65'536;
  /// How long the producer keeps retrying one message before reporting it failed
  /// (message.timeout.ms). A message still in flight when publish() times out is not produced
  /// again by the next publish() of the same row: that call waits for the first delivery.
  std::chrono::milliseconds message_timeout{120'000};

  /// Consumer group session (session.timeout.ms): how soon a crashed consumer's partitions go
  /// to the others.
  std::chrono::milliseconds session_timeout{10'000};
  /// How long one request to a broker may take before the consumer drops the connection
  /// (socket.timeout.ms). Also bounds how long stopping a consumer waits for a broker that
  /// hangs (stopped rather than gone): its final offset commit waits for this.
  std::chrono::milliseconds request_timeout{10'000};
  /// Provisioning and other admin requests at start give up after this.
  std::chrono::milliseconds admin_timeout{15'000};
};

}  // namespace inkwell::messaging::kafka
