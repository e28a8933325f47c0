// inkwell_events_bench: one side of bench/events. `--mode full` runs the event backbone the way a
// service uses it: events written to a PostgreSQL outbox, an OutboxRelay publishing them through
// KafkaPublisher, and a KafkaBus consumer applying them (inbox claim plus an effect row each, in
// batched transactions) on a second PostgreSQL database. `--mode bare` is the reference: a plain
// librdkafka producer (idempotent, acks=all) and consumer on the same broker with messages of
// the same size. Each mode runs on a fresh topic and consumer group, measures end-to-end latency
// at a fixed offered rate and sustained throughput at a saturating one, writes the figures as
// JSON (--out) and deletes its topic and group at the end.
//
// The latency phase writes one event per transaction (a service handling ordinary requests).
// The throughput phase writes --batch events per transaction (a service emitting events for a
// bulk change), so that the writers' commit rate is not what is measured: its figure is the
// events whose effect committed at the consumer end per second of the window.
//
// Latency is taken from the event's send time (system clock, ns, carried in the message) to the
// moment the consumer's effect committed (full) or the message was consumed (bare): both ends
// run in this process, so the clocks agree.
//
//   inkwell_events_bench --mode full|bare [--brokers 127.0.0.1:59092] [--duration 10]
//       [--rate 1000] [--writers N] [--batch 20] [--in-flight 10000] [--out figures.json]
//       [--producer-db URL --consumer-db URL]   (full only; each gets the messaging tables)

#include "base/ids.h"
#include "base/log.h"
#include "messaging/bus.h"
#include "messaging/event.h"
#include "messaging/kafka/kafka_bus.h"
#include "messaging/kafka/kafka_config.h"
#include "messaging/kafka/kafka_options.h"
#include "messaging/kafka/topic_provisioning.h"
#include "messaging/outbox.h"
#include "messaging/relay.h"
#include "messaging/topics.h"
#include "storage/database.h"
#include "storage/migrations.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace inkwell::bench {
namespace {

namespace kafka = messaging::kafka;

using Steady = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

constexpr std::string_view kSource = "/bench";
constexpr int kPartitions = 3;
// The warm-up lets the consumer join its group and every connection open before measuring.
constexpr double kWarmUpRate = 200;
constexpr auto kWarmUpTime = std::chrono::seconds(2);
constexpr auto kWarmUpArrival = std::chrono::seconds(60);
// The throughput phase fills the path for this long before counting.
constexpr Seconds kRamp{2};
// Draining waits as long as events keep arriving, but gives up after this long without progress
// or this long in all: every wait of the benchmark is bounded.
constexpr auto kDrainStall = std::chrono::seconds(15);
constexpr auto kDrainLimit = std::chrono::seconds(300);
constexpr auto kAdminTimeout = std::chrono::seconds(15);
constexpr std::size_t kTimestampDigits = 20;  // a bare payload starts with its send time in ns

std::int64_t system_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One line on stderr, with the seconds since the first one.
void progress(const std::string& line) {
  static const auto started = Steady::now();
  char elapsed[32];
  std::snprintf(elapsed, sizeof elapsed, "%7.1fs ", Seconds(Steady::now() - started).count());
  std::cerr << "events_bench: " << elapsed << line << std::endl;
}

// A double as a person writes it: 10, 0.5, 1000.
std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

// What the benchmark was asked to do.
struct Args {
  std::string mode;
  std::string brokers = "127.0.0.1:59092";
  std::string producer_db;
  std::string consumer_db;
  double duration_s = 10;
  double rate = 1'000;               // offered events/s of the latency phase
  int writers = 0;                   // sending threads; 0 = the mode's default
  int batch = 20;                    // events per transaction in the throughput phase
  std::uint64_t in_flight = 10'000;  // events kept in the path while measuring throughput
  std::string out;
};

Args parse_args(int argc, char** argv) {
  Args args;
  const std::vector<std::string> list(argv + 1, argv + argc);
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string& name = list[i];
    if (i + 1 >= list.size()) throw std::invalid_argument(name + " needs a value");
    const std::string& value = list[++i];
    if (name == "--mode") {
      args.mode = value;
    } else if (name == "--brokers") {
      args.brokers = value;
    } else if (name == "--producer-db") {
      args.producer_db = value;
    } else if (name == "--consumer-db") {
      args.consumer_db = value;
    } else if (name == "--duration") {
      args.duration_s = std::stod(value);
    } else if (name == "--rate") {
      args.rate = std::stod(value);
    } else if (name == "--writers") {
      args.writers = std::stoi(value);
    } else if (name == "--batch") {
      args.batch = std::stoi(value);
    } else if (name == "--in-flight") {
      args.in_flight = std::stoull(value);
    } else if (name == "--out") {
      args.out = value;
    } else {
      throw std::invalid_argument("unknown argument " + name);
    }
  }
  if (args.mode != "full" && args.mode != "bare") {
    throw std::invalid_argument("--mode must be full or bare");
  }
  if (args.mode == "full" && (args.producer_db.empty() || args.consumer_db.empty())) {
    throw std::invalid_argument("--mode full needs --producer-db and --consumer-db");
  }
  if (args.duration_s <= 0 || args.rate <= 0 || args.writers < 0 || args.batch <= 0 ||
      args.in_flight == 0) {
    throw std::invalid_argument("--duration, --rate, --batch and --in-flight must be positive");
  }
  if (args.writers == 0) args.writers = args.mode == "full" ? 4 : 1;
  return args;
}

// Counts what reached the consumer end and, while a latency phase runs, keeps each event's
// end-to-end latency. Called from the consumer's thread; read from the main thread.
class Recorder {
 public:
  void record(std::int64_t sent_ns) {
    const std::int64_t latency = system_now_ns() - sent_ns;
    if (sampling_.load()) {
      const std::lock_guard lock(mutex_);
      latencies_.push_back(latency);
    }
    received_.fetch_add(1);
  }
  std::uint64_t received() const { return received_.load(); }
  void start_sampling() {
    const std::lock_guard lock(mutex_);
    latencies_.clear();
    sampling_ = true;
  }
  std::vector<std::int64_t> stop_sampling() {
    sampling_ = false;
    const std::lock_guard lock(mutex_);
    return std::exchange(latencies_, {});
  }

 private:
  std::atomic<std::uint64_t> received_{0};
  std::atomic<bool> sampling_{false};
  std::mutex mutex_;
  std::vector<std::int64_t> latencies_;  // guarded by mutex_
};

// Where the writers put events: the outbox (full) or a librdkafka producer (bare).
class Source {
 public:
  virtual ~Source() = default;
  /// Sends `count` events numbered from `first_seq`, all stamped `sent_ns`, together (full: in
  /// one transaction); returns once they are committed (full) or queued (bare).
  virtual void send(std::uint64_t first_seq, std::size_t count, std::int64_t sent_ns) = 0;
  /// How many events the broker acknowledged so far (full: rows the relay marked sent).
  virtual std::uint64_t published() const = 0;
};

// What the writers did in one phase.
struct Offered {
  std::uint64_t sent = 0;
  double seconds = 0;
  double max_late_ms = 0;  // how far the writers fell behind their schedule
  /// Without a rate: the share of the writers' time spent waiting for the in-flight cap. Near 1,
  /// the path set the pace; near 0, the writers did.
  double held = 0;
};

// How the writers send during one phase.
struct Load {
  int writers = 1;
  double rate = 0;  // events/s in total; 0 = as fast as the path takes them
  Seconds duration{0};
  /// Events per send (per transaction on the full path). Only with rate 0: the paced phases
  /// send one event per slot.
  std::size_t batch = 1;
  /// With rate 0: the writers pause while this many events are sent and not yet at the
  /// consumer end, so the path stays saturated without an ever-growing backlog.
  std::uint64_t max_in_flight = 0;
};

// Counts shared by the phases of one run.
struct Counters {
  std::atomic<std::uint64_t> issued{0};   // sequence numbers handed to writers
  std::atomic<std::uint64_t> written{0};  // sends that returned
};

// Sends from load.writers threads for load.duration. At a fixed rate, slot i is due at
// start + i / rate and taken by writer i % writers; an event sent late is stamped with its due
// time, so a writer held up by a slow send counts as latency instead of quietly offering less
// (no coordinated omission). Without a rate, the writers send load.batch events at a time and
// keep about load.max_in_flight events between themselves and the consumer end.
Offered drive(Source& source, Counters& counters, const Recorder& recorder, const Load& load) {
  const auto start = Steady::now();
  const auto end = start + std::chrono::duration_cast<Steady::duration>(load.duration);
  const std::size_t batch = load.rate > 0 ? 1 : std::max<std::size_t>(load.batch, 1);
  std::atomic<std::uint64_t> sent{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::exception_ptr error;     // guarded by mutex
  Steady::duration max_late{};  // guarded by mutex
  Steady::duration held{};      // guarded by mutex
  const auto writer = [&](int w) {
    Steady::duration late_here{};
    Steady::duration held_here{};
    try {
      for (std::uint64_t k = 0; !failed.load(); ++k) {
        std::int64_t sent_ns = 0;
        if (load.rate > 0) {
          const double slot = static_cast<double>(k * static_cast<std::uint64_t>(load.writers) +
                                                  static_cast<std::uint64_t>(w));
          const auto due =
              start + std::chrono::duration_cast<Steady::duration>(Seconds(slot / load.rate));
          if (due >= end) break;
          std::this_thread::sleep_until(due);
          const auto late = std::max(Steady::now() - due, Steady::duration::zero());
          late_here = std::max(late_here, late);
          sent_ns =
              system_now_ns() - std::chrono::duration_cast<std::chrono::nanoseconds>(late).count();
        } else {
          const auto wait_start = Steady::now();
          while (counters.issued.load() - recorder.received() >= load.max_in_flight &&
                 Steady::now() < end) {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
          }
          held_here += Steady::now() - wait_start;
          if (Steady::now() >= end) break;
          sent_ns = system_now_ns();
        }
        source.send(counters.issued.fetch_add(batch), batch, sent_ns);
        sent.fetch_add(batch);
        counters.written.fetch_add(batch);
      }
    } catch (...) {
      failed = true;
      const std::lock_guard lock(mutex);
      if (!error) error = std::current_exception();
    }
    const std::lock_guard lock(mutex);
    max_late = std::max(max_late, late_here);
    held += held_here;
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(load.writers));
  for (int w = 0; w < load.writers; ++w) threads.emplace_back(writer, w);
  for (std::thread& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  const Seconds elapsed = Steady::now() - start;
  return {sent.load(), elapsed.count(), std::chrono::duration<double, std::milli>(max_late).count(),
          Seconds(held).count() / (elapsed.count() * load.writers)};
}

// Waits until `expected` events reached the consumer end, as long as they keep coming (see
// kDrainStall and kDrainLimit). Returns how many are still missing.
std::uint64_t drain(const Recorder& recorder, std::uint64_t expected) {
  const auto start = Steady::now();
  auto last_progress = start;
  std::uint64_t last = recorder.received();
  while (recorder.received() < expected) {
    const auto now = Steady::now();
    if (now - last_progress >= kDrainStall || now - start >= kDrainLimit) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (const std::uint64_t got = recorder.received(); got != last) {
      last = got;
      last_progress = Steady::now();
    }
  }
  const std::uint64_t got = recorder.received();
  return got < expected ? expected - got : 0;
}

// Samples, while a phase runs, how many events wait at each stage: written but not yet
// published by the relay, and published but not yet applied by the consumer. Their means over a
// phase, divided by the rate, are the time an event spends at each stage (Little's law).
class BacklogSampler {
 public:
  using Counter = std::function<std::uint64_t()>;
  BacklogSampler(Counter written, Counter published, Counter received)
      : written_(std::move(written)),
        published_(std::move(published)),
        received_(std::move(received)),
        thread_([this] { run(); }) {}
  ~BacklogSampler() { finish(); }
  BacklogSampler(const BacklogSampler&) = delete;
  BacklogSampler& operator=(const BacklogSampler&) = delete;

  /// Stops sampling; returns the mean backlogs {before the relay, before the consumer}.
  std::pair<double, double> finish() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
    if (samples_ == 0) return {0, 0};
    return {relay_sum_ / samples_, consumer_sum_ / samples_};
  }

 private:
  void run() {
    while (!stopping_.load()) {
      // Read downstream first, so a count never runs ahead of the one before it.
      const double received = static_cast<double>(received_());
      const double published = static_cast<double>(published_());
      const double written = static_cast<double>(written_());
      relay_sum_ += std::max(written - published, 0.0);
      consumer_sum_ += std::max(published - received, 0.0);
      ++samples_;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  Counter written_;
  Counter published_;
  Counter received_;
  std::atomic<bool> stopping_{false};
  // Touched by thread_ only until finish() joined it.
  double relay_sum_ = 0;
  double consumer_sum_ = 0;
  double samples_ = 0;
  std::thread thread_;
};

double percentile_ms(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1]) / 1e6;
}

// Runs the phases against one path: a warm-up; latency at args.rate; throughput with the writers
// keeping args.in_flight events in the path, counted over args.duration after a ramp. Each
// phase drains before the next starts.
boost::json::object measure(Source& source, Recorder& recorder, const Args& args) {
  Counters counters;
  std::uint64_t total = 0;
  const Seconds duration(args.duration_s);
  const auto sampler = [&] {
    return std::make_unique<BacklogSampler>([&] { return counters.written.load(); },
                                            [&] { return source.published(); },
                                            [&] { return recorder.received(); });
  };

  progress(args.mode + ": warm-up (joining the consumer group)");
  total += drive(source, counters, recorder, {1, kWarmUpRate, kWarmUpTime, 1, 0}).sent;
  {
    const auto start = Steady::now();
    while (recorder.received() < total && Steady::now() - start < kWarmUpArrival) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (recorder.received() < total) {
      throw std::runtime_error("the warm-up events did not reach the consumer within 60 s");
    }
  }

  progress(args.mode + ": latency at " + number(args.rate) + " events/s for " +
           number(args.duration_s) + " s");
  recorder.start_sampling();
  auto paced_backlog = sampler();
  const Offered paced =
      drive(source, counters, recorder, {args.writers, args.rate, duration, 1, 0});
  const auto [paced_relay, paced_consumer] = paced_backlog->finish();
  total += paced.sent;
  const std::uint64_t latency_missing = drain(recorder, total);
  std::vector<std::int64_t> latencies = recorder.stop_sampling();
  std::sort(latencies.begin(), latencies.end());

  progress(args.mode + ": throughput, " + std::to_string(args.writers) + " writer(s) sending " +
           std::to_string(args.batch) + " events at a time, keeping " +
           std::to_string(args.in_flight) + " events in flight for " + number(args.duration_s) +
           " s after a " + number(kRamp.count()) + " s ramp");
  const std::uint64_t written_before = counters.written.load();
  std::exception_ptr saturated_error;
  Offered saturated;
  std::thread saturating([&] {
    try {
      saturated = drive(source, counters, recorder,
                        {args.writers, 0, kRamp + duration, static_cast<std::size_t>(args.batch),
                         args.in_flight});
    } catch (...) {
      saturated_error = std::current_exception();
    }
  });
  const auto phase_start = Steady::now();
  std::this_thread::sleep_until(phase_start + std::chrono::duration_cast<Steady::duration>(kRamp));
  const auto window_start = Steady::now();
  const std::uint64_t received_before = recorder.received();
  const std::uint64_t window_written_before = counters.written.load();
  auto window_backlog = sampler();
  std::this_thread::sleep_until(window_start +
                                std::chrono::duration_cast<Steady::duration>(duration));
  const std::uint64_t consumed = recorder.received() - received_before;
  const std::uint64_t window_written = counters.written.load() - window_written_before;
  const double window = Seconds(Steady::now() - window_start).count();
  const auto [window_relay, window_consumer] = window_backlog->finish();
  saturating.join();
  if (saturated_error) std::rethrow_exception(saturated_error);
  total += counters.written.load() - written_before;

  const std::uint64_t backlog = total - recorder.received();
  progress(args.mode + ": draining " + std::to_string(backlog) + " events");
  // With the writers stopped the rest of the path has the machine to itself: its drain rate
  // shows how much the writers' share of the cores held it back.
  const auto drain_start = Steady::now();
  const std::uint64_t missing = drain(recorder, total);
  const double drain_s = Seconds(Steady::now() - drain_start).count();

  return {
      {"latency",
       {{"offeredRate", args.rate},
        {"sent", paced.sent},
        {"sentPerSecond", static_cast<double>(paced.sent) / paced.seconds},
        {"received", latencies.size()},
        {"missing", latency_missing},
        {"maxLateMs", paced.max_late_ms},
        {"p50Ms", percentile_ms(latencies, 0.50)},
        {"p99Ms", percentile_ms(latencies, 0.99)},
        {"maxMs", percentile_ms(latencies, 1.0)},
        {"meanBacklogBeforeRelay", paced_relay},
        {"meanBacklogBeforeConsumer", paced_consumer}}},
      {"throughput",
       {{"seconds", window},
        {"inFlight", args.in_flight},
        {"writers", args.writers},
        {"eventsPerTransaction", args.batch},
        {"writtenPerSecond", static_cast<double>(window_written) / window},
        {"writersHeld", saturated.held},
        {"consumed", consumed},
        {"eventsPerSecond", static_cast<double>(consumed) / window},
        {"meanBacklogBeforeRelay", window_relay},
        {"meanBacklogBeforeConsumer", window_consumer},
        {"drainEvents", backlog},
        {"drainEventsPerSecond", drain_s > 0 ? static_cast<double>(backlog) / drain_s : 0.0}}},
      {"sent", total},
      {"undelivered", missing},
  };
}

kafka::KafkaOptions kafka_options(const Args& args, const std::string& topic) {
  kafka::KafkaOptions options;
  options.brokers = args.brokers;
  options.client_id = "inkwell-bench";
  options.topics = {topic};
  options.partitions = kPartitions;
  options.admin_timeout = kAdminTimeout;
  return options;
}

// Size of the full path's messages: an envelope like the ones OutboxSource writes.
std::size_t envelope_bytes(const std::string& topic) {
  return messaging::encode(messaging::make_event(kSource, topic, new_uuid(),
                                                 {{"sentAtNs", system_now_ns()}, {"seq", 100'000}}))
      .size();
}

// Deletes the run's topics and consumer group. Best effort: a leftover costs only disk, so a
// failure is reported, not thrown.
void clean_up(const kafka::KafkaOptions& options, const std::vector<std::string>& topics,
              const std::string& group) {
  kafka::ClientEvents events("admin");
  const std::unique_ptr<RdKafka::Conf> conf = kafka::client_conf(options, events);
  std::string error;
  const std::unique_ptr<RdKafka::Producer> client(RdKafka::Producer::create(conf.get(), error));
  if (!client) {
    progress("cannot clean up: " + error);
    return;
  }
  rd_kafka_t* rk = client->c_ptr();
  const std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> queue(
      rd_kafka_queue_new(rk), &rd_kafka_queue_destroy);
  const auto timeout_ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(kAdminTimeout).count());
  const auto answer = [&](std::string_view what) {
    const std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> event(
        rd_kafka_queue_poll(queue.get(), timeout_ms), &rd_kafka_event_destroy);
    if (!event) {
      progress("no answer to " + std::string(what));
    } else if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      progress(std::string(what) + " failed: " + rd_kafka_event_error_string(event.get()));
    }
  };

  std::vector<rd_kafka_DeleteTopic_t*> delete_topics;
  delete_topics.reserve(topics.size());
  for (const std::string& topic : topics) {
    delete_topics.push_back(rd_kafka_DeleteTopic_new(topic.c_str()));
  }
  rd_kafka_DeleteTopics(rk, delete_topics.data(), delete_topics.size(), nullptr, queue.get());
  rd_kafka_DeleteTopic_destroy_array(delete_topics.data(), delete_topics.size());
  answer("DeleteTopics");

  rd_kafka_DeleteGroup_t* delete_group = rd_kafka_DeleteGroup_new(group.c_str());
  rd_kafka_DeleteGroups(rk, &delete_group, 1, nullptr, queue.get());
  rd_kafka_DeleteGroup_destroy(delete_group);
  answer("DeleteGroups");
}

// ---- full: outbox -> relay -> Kafka -> KafkaBus consumer -> inbox + effect ----------------------

// The send times of the events the consumer's handler applied in the current transaction (one,
// or a batch), left for CommitObserver.
thread_local std::vector<std::int64_t> handled_sent_ns;

// The consumer's database seen through a wrapper that notices commits: an event counts as
// arrived only once the transaction holding its inbox claim and effect committed.
class CommitObserver final : public storage::Database {
 public:
  CommitObserver(storage::Database& inner, Recorder& recorder)
      : inner_(inner), recorder_(recorder) {}
  storage::Dialect dialect() const override { return inner_.dialect(); }

 protected:
  storage::Result do_execute(std::string_view sql, const storage::Params& params) override {
    return inner_.execute(sql, params);
  }
  void do_execute_script(std::string_view sql) override { inner_.execute_script(sql); }
  void do_transaction(const std::function<void(storage::Executor&)>& body) override {
    handled_sent_ns.clear();
    inner_.transaction(body);  // commits, or throws and the consumer retries
    for (const std::int64_t sent_ns : handled_sent_ns) recorder_.record(sent_ns);
    handled_sent_ns.clear();
  }

 private:
  storage::Database& inner_;
  Recorder& recorder_;
};

// Writes a send's events to the outbox in one transaction (one enqueue() each, as a service
// does), then wakes the relay.
class OutboxSource final : public Source {
 public:
  OutboxSource(storage::Database& database, messaging::OutboxRelay& relay, std::string topic)
      : database_(database), relay_(relay), topic_(std::move(topic)) {}
  void send(std::uint64_t first_seq, std::size_t count, std::int64_t sent_ns) override {
    std::vector<messaging::Event> events;
    events.reserve(count);
    for (std::uint64_t seq = first_seq; seq < first_seq + count; ++seq) {
      events.push_back(messaging::make_event(kSource, topic_, new_uuid(),
                                             {{"sentAtNs", sent_ns}, {"seq", seq}}));
    }
    database_.transaction([&](storage::Executor& tx) {
      for (const messaging::Event& event : events) messaging::enqueue(tx, event);
    });
    relay_.wake();
  }
  std::uint64_t published() const override { return relay_.published(); }

 private:
  storage::Database& database_;
  messaging::OutboxRelay& relay_;
  std::string topic_;
};

std::int64_t count(storage::Database& database, std::string_view sql) {
  return database.execute(sql).rows.at(0).get<std::int64_t>(0);
}

boost::json::object run_full(const Args& args, const std::string& topic, const std::string& group) {
  storage::Options db_options;
  db_options.pool_size = static_cast<std::size_t>(args.writers) + 4;
  db_options.application_name = "inkwell-bench";
  const std::unique_ptr<storage::Database> producer_db =
      storage::open_database(args.producer_db, db_options);
  const std::unique_ptr<storage::Database> consumer_db =
      storage::open_database(args.consumer_db, db_options);
  storage::apply_migrations(*producer_db, messaging::messaging_migrations("bench_producer"));
  storage::apply_migrations(*consumer_db, messaging::messaging_migrations("bench_consumer"));
  consumer_db->execute_script(
      "CREATE TABLE IF NOT EXISTS effects (event_id text PRIMARY KEY, sent_at_ns bigint NOT NULL)");

  Recorder recorder;
  CommitObserver observed(*consumer_db, recorder);
  const kafka::KafkaOptions options = kafka_options(args, topic);
  kafka::provision_topics(options, {topic});
  boost::json::object figures;
  {
    kafka::KafkaBus bus(options);
    messaging::Subscription subscription;
    subscription.group = group;
    subscription.database = &observed;
    subscription.handlers.emplace(topic, [](storage::Executor& tx, const messaging::Event& event) {
      const auto sent_ns = event.data.at("sentAtNs").to_number<std::int64_t>();
      tx.execute("INSERT INTO effects (event_id, sent_at_ns) VALUES ($1, $2)", {event.id, sent_ns});
      handled_sent_ns.push_back(sent_ns);
    });
    bus.subscribe(std::move(subscription));
    bus.start();
    messaging::OutboxRelay relay("bench", *producer_db, bus.publisher());
    relay.start();
    OutboxSource source(*producer_db, relay, topic);
    figures = measure(source, recorder, args);
    relay.stop();
    bus.stop();
  }
  // Every event's effect exactly once: as many effect rows as events written.
  figures["outboxRows"] = count(*producer_db, "SELECT count(*) FROM outbox");
  figures["pendingInOutbox"] =
      count(*producer_db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL");
  figures["effectRows"] = count(*consumer_db, "SELECT count(*) FROM effects");
  return figures;
}

// ---- bare: librdkafka producer -> broker -> librdkafka consumer -------------------------------

// Counts the bare producer's delivery reports.
class DeliveryCounter final : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    if (message.err() == RdKafka::ERR_NO_ERROR) {
      acked_.fetch_add(1);
    } else {
      failed_.fetch_add(1);
    }
  }
  std::uint64_t acked() const { return acked_.load(); }
  std::uint64_t failed() const { return failed_.load(); }

 private:
  std::atomic<std::uint64_t> acked_{0};
  std::atomic<std::uint64_t> failed_{0};
};

// The reference producer: KafkaPublisher's settings (idempotent, acks=all, the same linger and
// partitioner), but nothing around it. A thread serves its delivery reports.
class ProducerSource final : public Source {
 public:
  ProducerSource(const kafka::KafkaOptions& options, std::string topic, std::size_t bytes)
      : topic_(std::move(topic)), bytes_(bytes) {
    const std::unique_ptr<RdKafka::Conf> conf = kafka::client_conf(options, events_);
    kafka::set(*conf, "enable.idempotence", "true");
    kafka::set(*conf, "acks", "all");
    kafka::set(*conf, "linger.ms", std::to_string(options.linger.count()));
    kafka::set(*conf, "partitioner", "murmur2_random");
    kafka::set(*conf, "queue.buffering.max.messages", std::to_string(options.queue_max_messages));
    kafka::set(*conf, "queue.buffering.max.kbytes", std::to_string(options.queue_max_kbytes));
    std::string error;
    if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(&deliveries_), error) !=
        RdKafka::Conf::CONF_OK) {
      throw std::invalid_argument("dr_cb: " + error);
    }
    producer_.reset(RdKafka::Producer::create(conf.get(), error));
    if (!producer_) throw std::runtime_error("cannot create a producer: " + error);
    poller_ = std::thread([this] {
      while (!stopping_.load()) producer_->poll(50);
    });
  }
  ~ProducerSource() override {
    stopping_ = true;
    poller_.join();
    producer_->flush(10'000);  // serves the last delivery reports itself
  }
  ProducerSource(const ProducerSource&) = delete;
  ProducerSource& operator=(const ProducerSource&) = delete;

  void send(std::uint64_t /*first_seq*/, std::size_t count, std::int64_t sent_ns) override {
    std::string payload(bytes_, 'x');
    std::snprintf(payload.data(), kTimestampDigits + 1, "%020lld", static_cast<long long>(sent_ns));
    payload[kTimestampDigits] = ' ';  // snprintf's terminating NUL
    for (std::size_t i = 0; i < count; ++i) produce(payload);
  }
  std::uint64_t published() const override { return deliveries_.acked(); }
  std::uint64_t failed() const { return deliveries_.failed(); }

 private:
  void produce(std::string& payload) {
    const std::string key = new_uuid();
    const auto deadline = Steady::now() + std::chrono::seconds(30);
    while (true) {
      const RdKafka::ErrorCode err =
          producer_->produce(topic_, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                             payload.data(), payload.size(), key.data(), key.size(), 0, nullptr);
      if (err == RdKafka::ERR_NO_ERROR) return;
      if (err != RdKafka::ERR__QUEUE_FULL || Steady::now() >= deadline) {
        throw std::runtime_error("produce failed: " + RdKafka::err2str(err));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the poller makes room
    }
  }

  std::string topic_;
  std::size_t bytes_;
  kafka::ClientEvents events_{"bench producer"};
  DeliveryCounter deliveries_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::atomic<bool> stopping_{false};
  std::thread poller_;
};

// The reference consumer: subscribes in a fresh group and records each message as it comes.
class BareConsumer {
 public:
  BareConsumer(const kafka::KafkaOptions& options, const std::string& topic,
               const std::string& group, Recorder& recorder)
      : recorder_(recorder) {
    const std::unique_ptr<RdKafka::Conf> conf = kafka::client_conf(options, events_);
    kafka::set(*conf, "group.id", group);
    kafka::set(*conf, "auto.offset.reset", "earliest");
    std::string error;
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
    if (!consumer_) throw std::runtime_error("cannot create a consumer: " + error);
    const RdKafka::ErrorCode err = consumer_->subscribe({topic});
    if (err != RdKafka::ERR_NO_ERROR) {
      throw std::runtime_error("cannot subscribe: " + RdKafka::err2str(err));
    }
    thread_ = std::thread([this] { run(); });
  }
  ~BareConsumer() { stop(); }
  BareConsumer(const BareConsumer&) = delete;
  BareConsumer& operator=(const BareConsumer&) = delete;

  void stop() {
    stopping_ = true;
    if (!thread_.joinable()) return;
    thread_.join();
    consumer_->close();
  }
  std::uint64_t malformed() const { return malformed_.load(); }

 private:
  void run() {
    while (!stopping_.load()) {
      const std::unique_ptr<RdKafka::Message> message(consumer_->consume(100));
      if (message->err() != RdKafka::ERR_NO_ERROR) continue;
      const auto* text = static_cast<const char*>(message->payload());
      std::int64_t sent_ns = 0;
      if (message->len() < kTimestampDigits ||
          std::from_chars(text, text + kTimestampDigits, sent_ns).ec != std::errc()) {
        malformed_.fetch_add(1);
        continue;
      }
      recorder_.record(sent_ns);
    }
  }

  Recorder& recorder_;
  kafka::ClientEvents events_{"bench consumer"};
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> malformed_{0};
  std::thread thread_;
};

boost::json::object run_bare(const Args& args, const std::string& topic, const std::string& group) {
  const kafka::KafkaOptions options = kafka_options(args, topic);
  kafka::provision_topics(options, {topic});
  Recorder recorder;
  BareConsumer consumer(options, topic, group, recorder);
  boost::json::object figures;
  std::uint64_t failed = 0;
  {
    ProducerSource source(options, topic, envelope_bytes(topic));
    figures = measure(source, recorder, args);
    failed = source.failed();
  }
  consumer.stop();
  figures["deliveryFailures"] = failed;
  figures["malformed"] = consumer.malformed();
  return figures;
}

int run(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  log::init("warn");
  const std::string run_id = new_uuid();
  const std::string topic = "bench.events." + run_id;
  const std::string group = "bench-events-" + args.mode + "-" + run_id;
  progress(args.mode + ": topic " + topic);

  boost::json::object figures;
  std::exception_ptr error;
  try {
    figures = args.mode == "full" ? run_full(args, topic, group) : run_bare(args, topic, group);
  } catch (...) {
    error = std::current_exception();
  }
  progress(args.mode + ": deleting the topic and the consumer group");
  clean_up(kafka_options(args, topic), {topic, messaging::dead_letter_topic(topic)}, group);
  progress(args.mode + ": done");
  if (error) std::rethrow_exception(error);

  figures["mode"] = args.mode;
  figures["topic"] = topic;
  figures["messageBytes"] = envelope_bytes(topic);
  figures["writers"] = args.writers;
  const std::string json = boost::json::serialize(figures);
  if (args.out.empty()) {
    std::cout << json << std::endl;
  } else {
    std::ofstream(args.out) << json << '\n';
  }
  return 0;
}

}  // namespace
}  // namespace inkwell::bench

int main(int argc, char** argv) {
  try {
    return inkwell::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "events_bench: " << e.what() << std::endl;
    return 1;
  }
}
