#include "messaging/kafka/topic_provisioning.h"

#include "base/log.h"
#include "messaging/kafka/kafka_config.h"
#include "messaging/topics.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <thread>

namespace inkwell::messaging::kafka {
namespace {

using Clock = std::chrono::steady_clock;

// Topic name -> partition count of the topics the cluster lists without error. A topic whose
// partitions do not all have a leader yet (just created) counts only when `even_leaderless`.
std::map<std::string, std::size_t> existing_topics(RdKafka::Producer& client,
                                                   Clock::time_point deadline,
                                                   bool even_leaderless) {
  RdKafka::Metadata* raw = nullptr;
  const RdKafka::ErrorCode err = client.metadata(true, nullptr, &raw, remaining_ms(deadline));
  if (err != RdKafka::ERR_NO_ERROR) {
    throw std::runtime_error("kafka: cannot read the cluster's topics: " + RdKafka::err2str(err));
  }
  const std::unique_ptr<RdKafka::Metadata> metadata(raw);
  std::map<std::string, std::size_t> topics;
  for (const RdKafka::TopicMetadata* topic : *metadata->topics()) {
    if (topic->err() != RdKafka::ERR_NO_ERROR || topic->partitions()->empty()) continue;
    const bool led = std::all_of(
        topic->partitions()->begin(), topic->partitions()->end(), [](const auto* partition) {
          return partition->err() == RdKafka::ERR_NO_ERROR && partition->leader() >= 0;
        });
    if (led || even_leaderless) topics.emplace(topic->topic(), topic->partitions()->size());
  }
  return topics;
}

// Sends one CreateTopics request for `names` and returns the names the cluster refused, with
// why; "already exists" (another process won the race) is not a refusal.
std::vector<std::string> create_topics(RdKafka::Producer& client, const KafkaOptions& options,
                                       const std::vector<std::string>& names,
                                       Clock::time_point deadline) {
  rd_kafka_t* rk = client.c_ptr();
  std::vector<rd_kafka_NewTopic_t*> new_topics;
  const auto destroy_new_topics = [&] {
    rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
  };
  std::array<char, 512> error{};
  for (const std::string& name : names) {
    rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(
        name.c_str(), options.partitions, options.replication_factor, error.data(), error.size());
    if (topic == nullptr) {
      destroy_new_topics();
      throw std::invalid_argument("kafka: cannot create topic " + name + ": " + error.data());
    }
    new_topics.push_back(topic);
  }

  const std::unique_ptr<rd_kafka_AdminOptions_t, decltype(&rd_kafka_AdminOptions_destroy)>
      admin_options(rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS),
                    &rd_kafka_AdminOptions_destroy);
  const int timeout = remaining_ms(deadline);
  rd_kafka_AdminOptions_set_request_timeout(admin_options.get(), timeout, error.data(),
                                            error.size());
  // The broker answers once the topics are created (or the operation timeout passes).
  rd_kafka_AdminOptions_set_operation_timeout(admin_options.get(), timeout, error.data(),
                                              error.size());
  const std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> queue(
      rd_kafka_queue_new(rk), &rd_kafka_queue_destroy);
  rd_kafka_CreateTopics(rk, new_topics.data(), new_topics.size(), admin_options.get(), queue.get());
  destroy_new_topics();

  // A little past the request timeout: the request's own timeout answers first.
  const std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> event(
      rd_kafka_queue_poll(queue.get(), timeout + 1'000), &rd_kafka_event_destroy);
  if (!event) throw std::runtime_error("kafka: no answer to CreateTopics");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(std::string("kafka: CreateTopics failed: ") +
                             rd_kafka_event_error_string(event.get()));
  }
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event.get());
  if (result == nullptr) throw std::runtime_error("kafka: unexpected answer to CreateTopics");
  std::size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
  std::vector<std::string> refused;
  for (std::size_t i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      continue;
    }
    const char* why = rd_kafka_topic_result_error_string(results[i]);
    refused.push_back(std::string(rd_kafka_topic_result_name(results[i])) + " (" +
                      (why != nullptr ? why : rd_kafka_err2str(err)) + ")");
  }
  return refused;
}

}  // namespace

std::vector<std::string> provision_topics(const KafkaOptions& options,
                                          const std::vector<std::string>& topics) {
  if (options.partitions < 1 || options.replication_factor < 1) {
    throw std::invalid_argument("kafka: partitions and replication factor must be at least 1");
  }
  std::set<std::string> wanted;
  for (const std::string& topic : topics) {
    wanted.insert(topic);
    wanted.insert(dead_letter_topic(topic));
  }

  ClientEvents events("admin");
  const std::unique_ptr<RdKafka::Conf> conf = client_conf(options, events);
  std::string error;
  const std::unique_ptr<RdKafka::Producer> client(RdKafka::Producer::create(conf.get(), error));
  if (!client) throw std::runtime_error("kafka: cannot create an admin client: " + error);

  const auto deadline = Clock::now() + options.admin_timeout;
  const auto existing = existing_topics(*client, deadline, true);
  std::vector<std::string> missing;
  for (const std::string& topic : wanted) {
    if (!existing.contains(topic)) missing.push_back(topic);
  }
  if (missing.empty()) return {};

  const std::vector<std::string> refused = create_topics(*client, options, missing, deadline);
  if (!refused.empty()) {
    std::string list;
    for (const std::string& r : refused) list += (list.empty() ? "" : ", ") + r;
    throw std::runtime_error("kafka: the cluster refused to create topics: " + list);
  }

  // Created on the controller; wait until the metadata clients read lists them with leaders.
  while (true) {
    const auto now_listed = existing_topics(*client, deadline, false);
    const bool all = std::all_of(missing.begin(), missing.end(),
                                 [&](const std::string& t) { return now_listed.contains(t); });
    if (all) break;
    if (Clock::now() >= deadline) {
      throw std::runtime_error("kafka: created topics did not appear in the metadata in time");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (const std::string& topic : missing) {
    log::info("kafka topic created", {{"topic", topic},
                                      {"partitions", options.partitions},
                                      {"replicationFactor", options.replication_factor}});
  }
  return missing;
}

}  // namespace inkwell::messaging::kafka
