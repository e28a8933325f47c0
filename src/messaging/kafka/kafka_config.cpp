#include "messaging/kafka/kafka_config.h"

#include <algorithm>

#include "base/log.h"

#include <stdexcept>

namespace inkwell::messaging::kafka {

void ClientEvents::event_cb(RdKafka::Event& event) {
  switch (event.type()) {
    case RdKafka::Event::EVENT_ERROR:
      if (event.fatal()) {
        fatal_ = true;
        log::error("kafka fatal error", {{"client", client_}, {"error", event.str()}});
      } else {
        // Transport errors while a broker is away: librdkafka retries and folds repeats.
        log::warn(
            "kafka error",
            {{"client", client_}, {"code", RdKafka::err2str(event.err())}, {"error", event.str()}});
      }
      break;
    case RdKafka::Event::EVENT_LOG: {
      // librdkafka logs a broker it lost at "error" but reconnects by itself: that is a warning
      // here; only its critical lines are errors.
      const auto severity = event.severity();
      const log::Level level =
          severity <= RdKafka::Event::EVENT_SEVERITY_CRITICAL  ? log::Level::error
          : severity <= RdKafka::Event::EVENT_SEVERITY_WARNING ? log::Level::warn
          : severity == RdKafka::Event::EVENT_SEVERITY_DEBUG   ? log::Level::debug
                                                               : log::Level::info;
      if (log::enabled(level)) {
        log::write(level, "kafka: " + event.str(),
                   {{"client", client_}, {"facility", event.fac()}});
      }
      break;
    }
    default:  // statistics and throttle events are not enabled
      break;
  }
}

void set(RdKafka::Conf& conf, const std::string& name, const std::string& value) {
  std::string error;
  if (conf.set(name, value, error) != RdKafka::Conf::CONF_OK) {
    throw std::invalid_argument("kafka configuration " + name + ": " + error);
  }
}

std::unique_ptr<RdKafka::Conf> client_conf(const KafkaOptions& options, ClientEvents& events) {
  if (options.brokers.empty()) throw std::invalid_argument("kafka: no brokers configured");
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  set(*conf, "bootstrap.servers", options.brokers);
  set(*conf, "client.id", options.client_id);
  std::string error;
  if (conf->set("event_cb", &events, error) != RdKafka::Conf::CONF_OK) {
    throw std::invalid_argument("kafka configuration event_cb: " + error);
  }
  return conf;
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<std::chrono::milliseconds::rep>(left.count(), 1));
}

}  // namespace inkwell::messaging::kafka
