#pragma once

#include <chrono>

#include "messaging/kafka/kafka_options.h"

#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <memory>
#include <string>

namespace inkwell::messaging::kafka {

// Routes one librdkafka client's log lines and errors to the process's JSON log, and remembers
// whether the client hit a fatal error (an idempotent producer that did must be replaced).
class ClientEvents : public RdKafka::EventCb {
 public:
  explicit ClientEvents(std::string client) : client_(std::move(client)) {}
  void event_cb(RdKafka::Event& event) override;
  bool fatal() const { return fatal_.load(); }

 private:
  std::string client_;  // "producer", "consumer blog", ...: names the client in log lines
  std::atomic<bool> fatal_{false};
};

/// Sets one property; throws std::invalid_argument naming it when librdkafka refuses.
void set(RdKafka::Conf& conf, const std::string& name, const std::string& value);

/// Milliseconds left until `deadline` for a librdkafka timeout argument, at least 1.
int remaining_ms(std::chrono::steady_clock::time_point deadline);

/// A global configuration with the brokers, the client id and `events` as the event callback
/// (which must outlive the client made from it).
std::unique_ptr<RdKafka::Conf> client_conf(const KafkaOptions& options, ClientEvents& events);

}  // namespace inkwell::messaging::kafka
