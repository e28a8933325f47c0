#include "messaging/kafka/kafka_publisher.h"

#include "base/log.h"
#include "messaging/kafka/kafka_config.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <stdexcept>

namespace inkwell::messaging::kafka {
namespace {

// How long the destructor lets messages in flight finish before dropping them.
constexpr auto kCloseGrace = std::chrono::seconds(2);
// How long, and for how many bytes of messages, acknowledgements are remembered so that the
// same message sent again is not produced twice.
constexpr auto kRememberAcked = std::chrono::seconds(60);
constexpr std::size_t kRememberBytes = 16 << 20;
// At most one "publish incomplete" line per this period.
constexpr auto kIncompleteLogEvery = std::chrono::seconds(30);
// How long produce() waits for room in a full producer queue.
constexpr auto kQueueFullWait = std::chrono::seconds(1);

int to_ms(std::chrono::milliseconds d) {
  return static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(d.count(), 0, 1 << 30));
}

std::string identity_of(std::string_view topic, std::string_view key, std::string_view value,
                        const std::vector<MessageHeader>& headers) {
  std::string identity;
  identity.reserve(topic.size() + key.size() + value.size() + 3);
  identity.append(topic).push_back('\0');
  identity.append(key).push_back('\0');
  identity.append(value);
  for (const auto& [name, header_value] : headers) {
    identity.append("\0", 1).append(name).append("=").append(header_value);
  }
  return identity;
}

}  // namespace

// One message's fate as its delivery report tells it.
struct KafkaPublisher::Delivery {
  enum class State { pending, acked, failed };
  std::string identity;
  State state = State::pending;  // guarded by the publisher's mutex_
  std::string error;             // guarded by the publisher's mutex_
  Clock::time_point acked_at;    // guarded by the publisher's mutex_
};

// The producer with its callbacks; replaced as a whole after a fatal error.
class KafkaPublisher::Client final : public RdKafka::DeliveryReportCb {
 public:
  explicit Client(KafkaPublisher& owner) : owner_(owner) {}
  void dr_cb(RdKafka::Message& message) override {
    owner_.delivered(message.msg_opaque(), message.err() == RdKafka::ERR_NO_ERROR,
                     message.errstr());
  }

  ClientEvents events{"producer"};
  std::unique_ptr<RdKafka::Producer> producer;  // destroyed before the callbacks above

 private:
  KafkaPublisher& owner_;
};

KafkaPublisher::KafkaPublisher(KafkaOptions options) : options_(std::move(options)) {
  client_ = make_client();
  poller_ = std::thread([this] { poll_loop(); });
}

KafkaPublisher::~KafkaPublisher() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  poller_.join();
  std::shared_ptr<Client> last = client();
  last->producer->flush(to_ms(kCloseGrace));
  retire(*last);
}

std::unique_ptr<KafkaPublisher::Client> KafkaPublisher::make_client() {
  auto client = std::make_unique<Client>(*this);
  const std::unique_ptr<RdKafka::Conf> conf = client_conf(options_, client->events);
  set(*conf, "enable.idempotence", "true");  // no duplicates or reordering from retries
  set(*conf, "acks", "all");
  set(*conf, "message.timeout.ms", std::to_string(to_ms(options_.message_timeout)));
  set(*conf, "queue.buffering.max.messages", std::to_string(options_.queue_max_messages));
  set(*conf, "queue.buffering.max.kbytes", std::to_string(options_.queue_max_kbytes));
  set(*conf, "linger.ms", std::to_string(to_ms(options_.linger)));
  // The Java client's partitioner: a key lands on the same partition whoever produces it.
  set(*conf, "partitioner", "murmur2_random");
  std::string error;
  if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(client.get()), error) !=
      RdKafka::Conf::CONF_OK) {
    throw std::invalid_argument("kafka configuration dr_cb: " + error);
  }
  client->producer.reset(RdKafka::Producer::create(conf.get(), error));
  if (!client->producer) throw std::invalid_argument("kafka: cannot create a producer: " + error);
  return client;
}

std::shared_ptr<KafkaPublisher::Client> KafkaPublisher::client() {
  const std::lock_guard lock(mutex_);
  return client_;
}

void KafkaPublisher::poll_loop() {
  while (true) {
    {
      const std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    std::shared_ptr<Client> current = client();
    current->producer->poll(100);
    if (!current->events.fatal()) continue;
    // An idempotent producer that hit a fatal error refuses everything: start a new one. What
    // the old one held fails, and the relay sends it again through the new one.
    try {
      std::shared_ptr<Client> fresh = make_client();
      {
        const std::lock_guard lock(mutex_);
        client_ = fresh;
      }
      log::warn("kafka producer replaced after a fatal error");
      retire(*current);
    } catch (const std::exception& e) {
      log::error("kafka producer cannot be replaced", {{"error", e.what()}});
    }
  }
}

void KafkaPublisher::retire(Client& old) {
  // Fail whatever is left so every delivery report (and its ticket) is served.
  old.producer->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (old.producer->outq_len() > 0 && Clock::now() < deadline) old.producer->poll(50);
  old.producer->poll(0);
}

void KafkaPublisher::delivered(void* opaque, bool ok, const std::string& error) {
  const std::unique_ptr<std::shared_ptr<Delivery>> ticket(
      static_cast<std::shared_ptr<Delivery>*>(opaque));
  if (!ticket) return;
  {
    const std::lock_guard lock(mutex_);
    Delivery& delivery = **ticket;
    delivery.state = ok ? Delivery::State::acked : Delivery::State::failed;
    if (ok) {
      // Remembered a while: a caller that gave up waiting just before this report may send
      // the same message again, and it is already on the broker.
      delivery.acked_at = Clock::now();
      recent_.push_back(*ticket);
      recent_bytes_ += delivery.identity.size();
      forget_old_acknowledgements();
    } else {
      delivery.error = error;
      const auto it = known_.find(delivery.identity);
      if (it != known_.end() && it->second == *ticket) known_.erase(it);
    }
  }
  delivery_.notify_all();
}

void KafkaPublisher::forget_old_acknowledgements() {
  const auto now = Clock::now();
  while (!recent_.empty() &&
         (now - recent_.front()->acked_at > kRememberAcked || recent_bytes_ > kRememberBytes)) {
    const std::shared_ptr<Delivery>& oldest = recent_.front();
    const auto it = known_.find(oldest->identity);
    if (it != known_.end() && it->second == oldest) known_.erase(it);
    recent_bytes_ -= oldest->identity.size();
    recent_.pop_front();
  }
}

std::shared_ptr<KafkaPublisher::Delivery> KafkaPublisher::begin(
    const std::string& topic, std::string_view key, std::string_view value,
    const std::vector<MessageHeader>& headers, Clock::time_point deadline) {
  auto delivery = std::make_shared<Delivery>();
  delivery->identity = identity_of(topic, key, value, headers);
  {
    const std::lock_guard lock(mutex_);
    forget_old_acknowledgements();
    const auto [it, inserted] = known_.try_emplace(delivery->identity, delivery);
    // Still in flight from an earlier call, or acknowledged moments ago.
    if (!inserted) return it->second;
  }

  const std::shared_ptr<Client> current = client();
  while (true) {
    RdKafka::Headers* record_headers = nullptr;
    if (!headers.empty()) {
      record_headers = RdKafka::Headers::create();
      for (const auto& [name, header_value] : headers) record_headers->add(name, header_value);
    }
    auto* ticket = new std::shared_ptr<Delivery>(delivery);
    const RdKafka::ErrorCode err = current->producer->produce(
        topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
        const_cast<char*>(value.data()), value.size(), key.empty() ? nullptr : key.data(),
        key.size(), 0, record_headers, ticket);
    if (err == RdKafka::ERR_NO_ERROR) return delivery;  // librdkafka owns headers and ticket
    delete ticket;
    delete record_headers;

    std::unique_lock lock(mutex_);
    if (err == RdKafka::ERR__QUEUE_FULL && Clock::now() < deadline) {
      // Bounded memory: wait for deliveries to make room (the poller serves them).
      delivery_.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(50)));
      continue;
    }
    delivery->state = Delivery::State::failed;
    delivery->error = RdKafka::err2str(err);
    known_.erase(delivery->identity);
    return delivery;
  }
}

std::size_t KafkaPublisher::acknowledged_prefix(
    const std::vector<std::shared_ptr<Delivery>>& deliveries, Clock::time_point deadline,
    std::string* first_error) {
  std::unique_lock lock(mutex_);
  // Known once every message up to the first failure has its report.
  const auto known = [&] {
    for (const auto& d : deliveries) {
      if (d->state == Delivery::State::pending) return false;
      if (d->state == Delivery::State::failed) return true;
    }
    return true;
  };
  delivery_.wait_until(lock, deadline, known);
  std::size_t acked = 0;
  while (acked < deliveries.size() && deliveries[acked]->state == Delivery::State::acked) ++acked;
  if (first_error != nullptr && acked < deliveries.size()) {
    *first_error = deliveries[acked]->state == Delivery::State::failed
                       ? deliveries[acked]->error
                       : "no acknowledgement in time";
  }
  return acked;
}

std::size_t KafkaPublisher::publish(const std::vector<OutgoingMessage>& batch,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<std::shared_ptr<Delivery>> deliveries;
  deliveries.reserve(batch.size());
  for (const OutgoingMessage& message : batch) {
    deliveries.push_back(begin(message.topic, message.key, message.payload, {}, deadline));
    // Producing past a message that could not be queued would put later ones before it.
    if (deliveries.back()->state == Delivery::State::failed) break;
  }
  std::string error;
  const std::size_t acked = acknowledged_prefix(deliveries, deadline, &error);
  if (acked < batch.size()) {
    // The relay retries every few seconds while the brokers are away: one line per 30 s.
    const auto now = Clock::now().time_since_epoch().count();
    auto last = last_incomplete_log_.load();
    if (now - last >= std::chrono::nanoseconds(kIncompleteLogEvery).count() &&
        last_incomplete_log_.compare_exchange_strong(last, now)) {
      log::warn("kafka publish incomplete", {{"acknowledged", acked},
                                             {"batch", batch.size()},
                                             {"topic", batch[acked].topic},
                                             {"error", error}});
    }
  }
  return acked;
}

std::shared_ptr<KafkaPublisher::Delivery> KafkaPublisher::produce(
    const std::string& topic, std::string_view key, std::string_view value,
    const std::vector<MessageHeader>& headers) {
  return begin(topic, key, value, headers, Clock::now() + kQueueFullWait);
}

KafkaPublisher::DeliveryState KafkaPublisher::wait(const std::shared_ptr<Delivery>& delivery,
                                                   std::chrono::milliseconds timeout,
                                                   std::string* error) {
  if (acknowledged_prefix({delivery}, Clock::now() + timeout, error) == 1) {
    return DeliveryState::acknowledged;
  }
  const std::lock_guard lock(mutex_);
  return delivery->state == Delivery::State::failed ? DeliveryState::failed
                                                    : DeliveryState::pending;
}

std::optional<std::string> KafkaPublisher::send(const std::string& topic, std::string_view key,
                                                std::string_view value,
                                                const std::vector<MessageHeader>& headers,
                                                std::chrono::milliseconds timeout) {
  std::string error;
  if (wait(produce(topic, key, value, headers), timeout, &error) == DeliveryState::acknowledged) {
    return std::nullopt;
  }
  return error;
}

bool KafkaPublisher::reachable(std::chrono::milliseconds timeout) {
  RdKafka::Metadata* raw = nullptr;
  const RdKafka::ErrorCode err = client()->producer->metadata(false, nullptr, &raw, to_ms(timeout));
  delete raw;
  return err == RdKafka::ERR_NO_ERROR;
}

}  // namespace inkwell::messaging::kafka
