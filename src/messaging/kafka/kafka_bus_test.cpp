// The Kafka bus against the local stack's real Kafka and PostgreSQL (deploy/stack up): the
// delivery guarantees of DESIGN.md section 5, including crashes of separate consumer and relay
// processes (tests/tools' inkwell_events_probe) and a broker paused with SIGSTOP.
//
// Every test has topics and a consumer group of its own (a random suffix) and a PostgreSQL
// schema of its own, so reruns and other users of the stack never meet its messages.
#include "messaging/kafka/kafka_bus.h"
#include "messaging/kafka/dead_letters.h"
#include "messaging/kafka/kafka_publisher.h"
#include "messaging/kafka/topic_provisioning.h"

#include "base/ids.h"
#include "base/log.h"
#include "messaging/event.h"
#include "messaging/outbox.h"
#include "messaging/relay.h"
#include "messaging/test_support.h"
#include "storage/database.h"
#include "storage/migrations.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace inkwell::messaging::kafka {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using messaging::testing::env;
using messaging::testing::eventually;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The database the tests make their schemas in: INKWELL_TEST_POSTGRES_URL, or a database
// "inkwell_kafka_test" created on the server of INKWELL_AUTH_DATABASE_URL. Empty without either.
std::string postgres_base_url() {
  if (std::string url = env("INKWELL_TEST_POSTGRES_URL"); !url.empty()) return url;
  const std::string auth = env("INKWELL_AUTH_DATABASE_URL");
  if (auth.rfind("postgres", 0) != 0) return {};
  static const std::string base = [&] {
    boost::urls::url url = boost::urls::parse_uri(auth).value();
    url.set_path("/postgres");
    const auto admin = storage::open_database(url.buffer(), {.pool_size = 1});
    if (admin->execute("SELECT 1 FROM pg_database WHERE datname = 'inkwell_kafka_test'")
            .rows.empty()) {
      try {
        admin->execute_script("CREATE DATABASE inkwell_kafka_test");
      } catch (const storage::DatabaseError&) {  // another test process created it meanwhile
      }
    }
    url.set_path("/inkwell_kafka_test");
    return std::string(url.buffer());
  }();
  return base;
}

// A child process (the probe) with its output in a file; killed if still running at the end.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::filesystem::path& log) : log_(log) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    const int spawned = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) throw std::runtime_error("cannot run " + args[0]);
  }
  ~Child() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      wait(10s);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void signal(int number) { ::kill(pid_, number); }
  bool running() { return status_ == kRunning && !reap(false); }
  /// The exit code (128 + signal when killed), or -1 when still running after `timeout`.
  int wait(std::chrono::milliseconds timeout) {
    eventually([&] { return reap(false); }, timeout);
    return status_;
  }
  std::string output() const { return read_file(log_); }

 private:
  static constexpr int kRunning = -1;
  bool reap(bool block) {
    if (status_ != kRunning) return true;
    int status = 0;
    if (waitpid(pid_, &status, block ? 0 : WNOHANG) != pid_) return false;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }

  pid_t pid_ = 0;
  int status_ = kRunning;
  std::filesystem::path log_;
};

// The stack's Kafka broker stopped with SIGSTOP for the object's lifetime. A watchdog process
// resumes it if this test process dies first or 60 s pass, so the shared broker is never
// left frozen.
class PausedBroker {
 public:
  explicit PausedBroker(pid_t broker) : broker_(broker) {
    const pid_t parent = ::getpid();
    watchdog_ = ::fork();
    if (watchdog_ == 0) {  // only async-signal-safe calls here
      for (int i = 0; i < 600 && ::getppid() == parent; ++i) {
        const timespec tick{0, 100'000'000};
        ::nanosleep(&tick, nullptr);
      }
      ::kill(broker, SIGCONT);
      ::_exit(0);
    }
    ::kill(broker_, SIGSTOP);
  }
  ~PausedBroker() {
    ::kill(broker_, SIGCONT);
    if (watchdog_ > 0) {
      ::kill(watchdog_, SIGKILL);
      ::waitpid(watchdog_, nullptr, 0);
    }
  }
  PausedBroker(const PausedBroker&) = delete;
  PausedBroker& operator=(const PausedBroker&) = delete;

 private:
  pid_t broker_;
  pid_t watchdog_ = -1;
};

// The stack's Kafka broker shut down (deploy/stack kafka-stop: SIGTERM, a clean stop) for the
// object's lifetime, or until start() brought it back with its data on the same port.
class StoppedBroker {
 public:
  StoppedBroker() : stopped_(stack("kafka-stop")) {}
  ~StoppedBroker() { start(); }
  StoppedBroker(const StoppedBroker&) = delete;
  StoppedBroker& operator=(const StoppedBroker&) = delete;

  bool stopped() const { return stopped_; }
  /// Starts the broker again; true once it listens and its topics are there.
  bool start() {
    if (stopped_) stopped_ = !stack("kafka-start");
    return !stopped_;
  }

 private:
  static bool stack(const std::string& command) {
    const std::string line =
        std::string(INKWELL_SOURCE_DIR) + "/deploy/stack " + command + " >/dev/null";
    return std::system(line.c_str()) == 0;  // NOLINT(cert-env33-c): the repo's own script
  }

  bool stopped_;
};

/// The stack's Kafka broker process (from .stack/run/kafka.pid), or 0.
pid_t kafka_broker_pid() {
  const std::string stack = env("INKWELL_STACK_DIR").empty()
                                ? std::string(INKWELL_SOURCE_DIR) + "/.stack"
                                : env("INKWELL_STACK_DIR");
  std::ifstream file(stack + "/run/kafka.pid");
  long pid = 0;
  if (!(file >> pid) || pid <= 0) return 0;
  // A pid file left behind by a stopped stack may name an unrelated process now.
  const std::string cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  return cmdline.find("kafka.Kafka") != std::string::npos ? static_cast<pid_t>(pid) : 0;
}

// Deletes a test's topics and consumer groups, best effort: reruns leave the stack's broker
// as they found it.
void delete_topics_and_groups(const std::string& brokers, const std::vector<std::string>& topics,
                              const std::vector<std::string>& groups) {
  std::string error;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  conf->set("bootstrap.servers", brokers, error);
  std::unique_ptr<RdKafka::Producer> client(RdKafka::Producer::create(conf.get(), error));
  if (!client) return;
  rd_kafka_t* rk = client->c_ptr();
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  std::vector<rd_kafka_DeleteTopic_t*> delete_topics;
  delete_topics.reserve(topics.size());
  for (const std::string& topic : topics) {
    delete_topics.push_back(rd_kafka_DeleteTopic_new(topic.c_str()));
  }
  rd_kafka_DeleteTopics(rk, delete_topics.data(), delete_topics.size(), nullptr, queue);
  rd_kafka_DeleteTopic_destroy_array(delete_topics.data(), delete_topics.size());
  std::vector<rd_kafka_DeleteGroup_t*> delete_groups;
  delete_groups.reserve(groups.size());
  for (const std::string& group : groups) {
    delete_groups.push_back(rd_kafka_DeleteGroup_new(group.c_str()));
  }
  rd_kafka_DeleteGroups(rk, delete_groups.data(), delete_groups.size(), nullptr, queue);
  rd_kafka_DeleteGroup_destroy_array(delete_groups.data(), delete_groups.size());
  for (int answers = 0; answers < 2; ++answers) {
    rd_kafka_event_t* answer = rd_kafka_queue_poll(queue, 10'000);
    if (answer == nullptr) break;
    rd_kafka_event_destroy(answer);
  }
  rd_kafka_queue_destroy(queue);
}

constexpr std::string_view kEffectsTable =
    "CREATE TABLE IF NOT EXISTS probe_effects (n bigserial PRIMARY KEY, event_id text NOT NULL, "
    "subject text NOT NULL, seq bigint NOT NULL, consumer_group text NOT NULL, instance text NOT "
    "NULL, topic text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())";

class KafkaBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::init(env("INKWELL_LOG_LEVEL").empty() ? "error" : env("INKWELL_LOG_LEVEL"));
    brokers_ = env("KAFKA_BROKERS");
    std::string base;
    if (!brokers_.empty()) base = postgres_base_url();
    if (brokers_.empty() || base.empty()) {
      if (env("INKWELL_TEST_REQUIRE_STACK") == "1") {
        FAIL() << "KAFKA_BROKERS and INKWELL_TEST_POSTGRES_URL (or INKWELL_AUTH_DATABASE_URL) "
                  "must be set when INKWELL_TEST_REQUIRE_STACK=1: deploy/stack up, then "
                  "eval \"$(deploy/stack env)\"";
      }
      GTEST_SKIP() << "needs the stack: deploy/stack up && eval \"$(deploy/stack env)\"";
    }
    suffix_ = new_uuid().substr(0, 8);
    topic_ = "inkwell-test." + suffix_ + ".post.created";
    group_ = "inkwell-test-" + suffix_;
    dir_ = std::filesystem::temp_directory_path() / ("kafka_bus_test_" + suffix_);
    std::filesystem::create_directories(dir_);

    schema_ = "kafka_bus_test_" + suffix_;
    admin_ = storage::open_database(base, {.pool_size = 1});
    admin_->execute_script("CREATE SCHEMA " + schema_);
    database_url_ = base + (base.find('?') == std::string::npos ? "?" : "&") +
                    "options=-csearch_path%3D" + schema_;
    db_ = storage::open_database(database_url_, {.pool_size = 4});
    storage::apply_migrations(*db_, messaging_migrations("probe"));
    db_->execute(kEffectsTable);
  }

  void TearDown() override {
    if (!brokers_.empty() && !topic_.empty()) {
      delete_topics_and_groups(brokers_, {topic_, topic_ + ".dlq"},
                               {group_, "inkwell-dlq-replay." + group_});
    }
    db_.reset();
    if (admin_) admin_->execute_script("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    std::error_code ignored;
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_, ignored);
    if (HasFailure() && !dir_.empty()) std::cerr << "probe logs kept in " << dir_ << '\n';
  }

  KafkaOptions options() const {
    KafkaOptions options;
    options.brokers = brokers_;
    options.client_id = "kafka-bus-test";
    options.topics = {topic_};
    options.max_attempts = 3;
    options.initial_backoff = 20ms;
    options.max_backoff = 100ms;
    options.session_timeout = 6s;
    return options;
  }

  static RelayOptions relay_options() {
    return {.min_backoff = 50ms, .max_backoff = 500ms, .publish_timeout = 1'000ms};
  }

  /// A subscription for the test's group whose handler records each event in probe_effects
  /// and throws while `fail` says so for the event.
  Subscription recording(std::function<bool(const Event&)> fail = {}) {
    Subscription subscription{group_, db_.get(), {}};
    subscription.handlers.emplace(
        topic_, [this, fail = std::move(fail)](storage::Executor& tx, const Event& event) {
          if (fail && fail(event)) throw std::runtime_error("the handler refuses " + event.id);
          const auto* seq = event.data.if_contains("seq");
          tx.execute(
              "INSERT INTO probe_effects (event_id, subject, seq, consumer_group, instance, topic) "
              "VALUES ($1, $2, $3, $4, 'in-process', $5)",
              {event.id, event.subject, seq != nullptr ? seq->as_int64() : -1, group_, topic_});
        });
    return subscription;
  }

  /// Writes `count` events through the outbox, each in its own transaction: subject
  /// "k<i % keys>", data.seq = per-subject sequence (continuing from earlier writes).
  void write_events(int count, int keys, OutboxRelay* relay = nullptr) {
    for (int i = 0; i < count; ++i, ++written_) {
      db_->transaction([&](storage::Executor& tx) {
        enqueue(tx, make_event("/test", topic_, "k" + std::to_string(written_ % keys),
                               {{"seq", written_ / keys}}));
      });
      if (relay != nullptr) relay->wake();
    }
  }

  std::int64_t scalar(const std::string& sql) {
    return db_->execute(sql).rows.at(0).get<std::int64_t>(0);
  }
  std::int64_t effects() { return scalar("SELECT count(*) FROM probe_effects"); }
  std::int64_t distinct_effects() {
    return scalar("SELECT count(DISTINCT event_id) FROM probe_effects");
  }

  /// After a broker outage: within `timeout` every one of `events` applied, then each exactly
  /// once, in key order, published once, the outbox empty and the bus healthy again.
  void expect_every_event_once_after_outage(KafkaBus& bus, OutboxRelay& relay, int events,
                                            std::chrono::milliseconds timeout) {
    ASSERT_TRUE(eventually([&] { return distinct_effects() == events; }, timeout))
        << "after the broker came back: " << distinct_effects() << " of " << events;
    EXPECT_TRUE(eventually([&] { return relay.pending() == 0; }));
    EXPECT_EQ(effects(), events);
    expect_key_order();
    EXPECT_EQ(messages_on_topic(), events) << "the relay's retries produced copies";
    EXPECT_TRUE(eventually([&] { return bus.health() == "ok"; }, 10s));
  }

  /// Expects every subject's events applied in increasing seq order.
  void expect_key_order() {
    std::map<std::string, std::int64_t> last;
    for (const auto& row : db_->execute("SELECT subject, seq FROM probe_effects ORDER BY n").rows) {
      const auto subject = row.get<std::string>(0);
      const auto seq = row.get<std::int64_t>(1);
      const auto previous = last.find(subject);
      if (previous != last.end()) {
        EXPECT_LT(previous->second, seq) << "subject " << subject << " applied out of order";
      }
      last[subject] = seq;
    }
  }

  /// Messages on the test topic: the sum of every partition's high minus low watermark.
  std::int64_t messages_on_topic() const {
    std::string error;
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    conf->set("bootstrap.servers", brokers_, error);
    std::unique_ptr<RdKafka::Producer> client(RdKafka::Producer::create(conf.get(), error));
    std::int64_t total = 0;
    for (int partition = 0; partition < 3; ++partition) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      // A partition created a moment ago may not have its leader ready yet.
      RdKafka::ErrorCode err = RdKafka::ERR_NO_ERROR;
      EXPECT_TRUE(eventually(
          [&] {
            err = client->query_watermark_offsets(topic_, partition, &low, &high, 5'000);
            return err == RdKafka::ERR_NO_ERROR;
          },
          10s))
          << RdKafka::err2str(err);
      total += high - low;
    }
    return total;
  }

  std::string probe_path() const {
    std::string path = env("INKWELL_EVENTS_PROBE");
    if (path.empty()) path = INKWELL_EVENTS_PROBE;
    return path;
  }

  /// The probe consuming the test topic in the test group.
  std::unique_ptr<Child> start_consumer(const std::string& instance,
                                        std::vector<std::string> extra = {}) {
    std::vector<std::string> args{probe_path(), "consume",
                                  "--group",    group_,
                                  "--database", database_url_,
                                  "--brokers",  brokers_,
                                  "--topics",   topic_,
                                  "--instance", instance,
                                  "--status",   status_of(instance).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Child>(args, dir_ / (instance + ".log"));
  }
  std::filesystem::path status_of(const std::string& instance) const {
    return dir_ / (instance + ".status.json");
  }
  /// The partitions a probe reported as assigned to it, from its status file.
  std::set<std::string> partitions_of(const std::string& instance) const {
    std::set<std::string> partitions;
    const std::string text = read_file(status_of(instance));
    if (text.empty()) return partitions;
    boost::system::error_code ec;
    const auto status = boost::json::parse(text, ec);
    if (ec || !status.is_object()) return partitions;
    for (const auto& p : status.at("partitions").as_array()) {
      partitions.insert(std::string(p.as_string()));
    }
    return partitions;
  }

  bool probe_available() {
    if (std::filesystem::exists(probe_path())) return true;
    ADD_FAILURE() << "no probe at " << probe_path()
                  << ": build the inkwell_events_probe target (tests/tools)";
    return false;
  }

  std::string brokers_;
  std::string suffix_;
  std::string topic_;
  std::string group_;
  std::string schema_;
  std::string database_url_;
  std::filesystem::path dir_;
  std::unique_ptr<storage::Database> admin_;
  std::unique_ptr<storage::Database> db_;
  int written_ = 0;
};

TEST_F(KafkaBusTest, ProvisioningCreatesMissingTopicsWithTheirDeadLetterTopicsOnce) {
  const auto created = provision_topics(options(), {topic_});
  EXPECT_EQ(std::set<std::string>(created.begin(), created.end()),
            (std::set<std::string>{topic_, topic_ + ".dlq"}));
  EXPECT_TRUE(provision_topics(options(), {topic_}).empty()) << "existing topics are left alone";
  EXPECT_EQ(messages_on_topic(), 0);
}

TEST_F(KafkaBusTest, PublishToATopicThatDoesNotExistGivesUpAtItsTimeout) {
  KafkaPublisher publisher(options());
  const std::vector<OutgoingMessage> batch{{1, "inkwell-test." + suffix_ + ".missing", "k", "{}"}};
  const auto started = Clock::now();
  EXPECT_EQ(publisher.publish(batch, 500ms), 0U);
  const auto took = Clock::now() - started;
  EXPECT_GE(took, 450ms);
  EXPECT_LT(took, 3s);
}

TEST_F(KafkaBusTest, CommittedEventIsAppliedOnceAndARolledBackOneIsNeverPublished) {
  KafkaBus bus(options());
  bus.subscribe(recording());
  bus.start();
  OutboxRelay relay("test", *db_, bus.publisher(), relay_options());
  relay.start();

  const Event committed = make_event("/test", topic_, "k1", {{"seq", 1}});
  const Event rolled_back = make_event("/test", topic_, "k1", {{"seq", 2}});
  const Event later = make_event("/test", topic_, "k1", {{"seq", 3}});
  db_->transaction([&](storage::Executor& tx) { enqueue(tx, committed); });
  EXPECT_THROW(db_->transaction([&](storage::Executor& tx) {
    enqueue(tx, rolled_back);
    throw std::runtime_error("the state change failed");
  }),
               std::runtime_error);
  db_->transaction([&](storage::Executor& tx) { enqueue(tx, later); });
  relay.wake();

  ASSERT_TRUE(eventually([&] { return effects() >= 2; })) << "effects: " << effects();
  const auto applied = db_->execute("SELECT event_id FROM probe_effects ORDER BY n").rows;
  ASSERT_EQ(applied.size(), 2U);
  EXPECT_EQ(applied[0].get<std::string>(0), committed.id);
  EXPECT_EQ(applied[1].get<std::string>(0), later.id);
  EXPECT_EQ(messages_on_topic(), 2) << "the rolled-back event reached Kafka";
  EXPECT_TRUE(eventually([&] { return bus.stats().at(group_).lag.size() == 3; }));
  EXPECT_EQ(bus.health(), "ok");
  relay.stop();
  bus.stop();
  EXPECT_EQ(effects(), 2);
  EXPECT_EQ(bus.stats().at(group_).consumed, 2U);
}

TEST_F(KafkaBusTest, BrokerPausedWritesSucceedAndEveryEventArrivesInKeyOrderAfterward) {
  const pid_t broker = kafka_broker_pid();
  if (broker == 0) {
    if (env("INKWELL_TEST_REQUIRE_STACK") == "1") FAIL() << "no running broker in .stack/run";
    GTEST_SKIP() << "no broker pid in .stack/run/kafka.pid";
  }
  KafkaBus bus(options());
  bus.subscribe(recording());
  bus.start();
  OutboxRelay relay("test", *db_, bus.publisher(), relay_options());
  relay.start();
  write_events(8, 4, &relay);
  ASSERT_TRUE(eventually([&] { return effects() == 8 && relay.pending() == 0; }))
      << "before the pause";

  {
    const PausedBroker paused(broker);
    const auto failures_before = relay.failures();
    const auto started = Clock::now();
    write_events(40, 4, &relay);
    EXPECT_LT(Clock::now() - started, 5s) << "writes must not wait for the broker";
    EXPECT_EQ(relay.pending(), 40) << "the outbox holds what could not be published";
    EXPECT_TRUE(eventually([&] { return relay.failures() > failures_before; }, 10s))
        << "the relay should have given up a publish and backed off";
    EXPECT_EQ(bus.health(), "down");
    EXPECT_EQ(effects(), 8);

    // A publisher with a message in flight to the hung broker still shuts down.
    auto publisher = std::make_unique<KafkaPublisher>(options());
    EXPECT_EQ(publisher->publish({{1, topic_, "k0", "{}"}}, 500ms), 0U);
    const auto closing = Clock::now();
    publisher.reset();
    EXPECT_LT(Clock::now() - closing, 5s);

    // So does the consumer; it cannot commit, so it will read some events again.
    const auto stopping = Clock::now();
    bus.stop();
    EXPECT_LT(Clock::now() - stopping, 20s);
  }
  bus.start();  // from the committed offsets

  expect_every_event_once_after_outage(bus, relay, 48, 60s);
}

// A broker that is gone (refusing connections, then back as a new process with its data),
// while the relay and a consumer keep running: unlike a paused one, every request fails at once.
TEST_F(KafkaBusTest, BrokerStoppedWritesSucceedAndEveryEventArrivesInKeyOrderAfterItsRestart) {
  if (kafka_broker_pid() == 0) {
    if (env("INKWELL_TEST_REQUIRE_STACK") == "1") FAIL() << "no running broker in .stack/run";
    GTEST_SKIP() << "no broker pid in .stack/run/kafka.pid";
  }
  KafkaBus bus(options());
  bus.subscribe(recording());
  bus.start();
  OutboxRelay relay("test", *db_, bus.publisher(), relay_options());
  relay.start();
  write_events(8, 4, &relay);
  ASSERT_TRUE(eventually([&] { return effects() == 8 && relay.pending() == 0; }))
      << "before the stop";

  {
    StoppedBroker broker;
    ASSERT_TRUE(broker.stopped()) << "deploy/stack kafka-stop failed";
    const auto failures_before = relay.failures();
    const auto started = Clock::now();
    write_events(40, 4, &relay);
    EXPECT_LT(Clock::now() - started, 5s) << "writes must not wait for the broker";
    EXPECT_TRUE(eventually([&] { return relay.failures() > failures_before; }, 10s))
        << "the relay should have given up a publish and backed off";
    EXPECT_EQ(relay.pending(), 40) << "the outbox holds what could not be published";
    EXPECT_TRUE(eventually([&] { return bus.health() == "down"; }, 10s));
    EXPECT_EQ(effects(), 8);
    ASSERT_TRUE(broker.start()) << "deploy/stack kafka-start failed";
  }

  expect_every_event_once_after_outage(bus, relay, 48, 90s);
}

TEST_F(KafkaBusTest, ConsumerKilledMidStreamAppliesEveryEffectExactlyOnce) {
  if (!probe_available()) return;
  constexpr int kEvents = 300;
  {
    KafkaBus bus(options());  // publisher only
    bus.start();
    OutboxRelay relay("test", *db_, bus.publisher(), relay_options());
    relay.start();
    write_events(kEvents, 10, &relay);
    ASSERT_TRUE(eventually([&] { return relay.pending() == 0; }));
  }

  // Batches of 20 take 200 ms each: the kill lands inside a batch's transaction, after
  // earlier batches committed.
  auto first = start_consumer("first", {"--handler-delay-ms", "10", "--max-batch", "20"});
  ASSERT_TRUE(eventually([&] { return effects() >= 40; }))
      << "the first consumer applied " << effects() << "\n"
      << first->output();
  first->signal(SIGKILL);
  EXPECT_EQ(first->wait(10s), 128 + SIGKILL);
  const auto before_restart = effects();
  EXPECT_LT(before_restart, kEvents) << "killed too late to be mid-stream";

  auto second = start_consumer("second");
  ASSERT_TRUE(eventually([&] { return distinct_effects() == kEvents; }, 60s))
      << distinct_effects() << " of " << kEvents << "\n"
      << second->output();
  second->signal(SIGTERM);
  EXPECT_EQ(second->wait(20s), 0) << second->output();
  EXPECT_EQ(effects(), kEvents) << "an event's effect was applied twice";
  expect_key_order();
}

TEST_F(KafkaBusTest, RelayKilledBetweenPublishAndMarkSendsDuplicatesTheInboxAbsorbs) {
  if (!probe_available()) return;
  constexpr int kEvents = 100;
  const std::vector<std::string> produce{probe_path(), "produce", "--database", database_url_,
                                         "--brokers",  brokers_,  "--topic",    topic_,
                                         "--count",    "100",     "--keys",     "5"};
  std::vector<std::string> hold = produce;
  hold.emplace_back("--hold-after-publish");
  Child held(hold, dir_ / "held.log");
  ASSERT_TRUE(eventually([&] { return held.output().find("held 100") != std::string::npos; }))
      << held.output();
  held.signal(SIGKILL);
  EXPECT_EQ(held.wait(10s), 128 + SIGKILL);
  EXPECT_EQ(scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL"), kEvents)
      << "published but never marked sent";
  EXPECT_EQ(messages_on_topic(), kEvents);

  KafkaBus bus(options());
  bus.subscribe(recording());
  bus.start();
  std::vector<std::string> relay_only = produce;
  relay_only[9] = "0";  // --count 0: relay what the outbox holds
  Child relay(relay_only, dir_ / "relay.log");
  EXPECT_EQ(relay.wait(30s), 0) << relay.output();
  EXPECT_EQ(messages_on_topic(), 2 * kEvents) << "every event went out twice";

  ASSERT_TRUE(eventually([&] { return bus.stats().at(group_).consumed == 2U * kEvents; }))
      << bus.stats().at(group_).consumed;
  EXPECT_EQ(effects(), kEvents);
  EXPECT_EQ(distinct_effects(), kEvents);
  expect_key_order();
}

TEST_F(KafkaBusTest, PoisonAndAlwaysFailingEventsGoToTheDeadLetterTopicAndReplayBringsThemBack) {
  std::atomic<bool> failing{true};
  KafkaBus bus(options());
  bus.subscribe(recording([&](const Event& e) { return failing && e.data.contains("fail"); }));
  bus.start();
  OutboxRelay relay("test", *db_, bus.publisher(), relay_options());
  relay.start();

  // All on key k1, so one partition: the messages after the bad ones must still flow.
  ASSERT_EQ(bus.kafka_publisher().send(topic_, "k1", "this is not an event", {}, 10s),
            std::nullopt);
  const Event refused = make_event("/test", topic_, "k1", {{"seq", 0}, {"fail", true}});
  db_->transaction([&](storage::Executor& tx) { enqueue(tx, refused); });
  for (int seq = 1; seq <= 5; ++seq) {
    db_->transaction([&](storage::Executor& tx) {
      enqueue(tx, make_event("/test", topic_, "k1", {{"seq", seq}}));
    });
  }
  relay.wake();

  ASSERT_TRUE(eventually([&] { return effects() == 5; })) << effects();
  ASSERT_TRUE(eventually([&] { return bus.stats().at(group_).dead_lettered == 2U; }));
  EXPECT_EQ(bus.stats().at(group_).failed, 3U) << "max_attempts handler attempts";

  const auto letters = list_dead_letters(options(), topic_);
  ASSERT_EQ(letters.size(), 2U);
  const DeadLetterInfo& poison =
      letters[0].payload_excerpt == "this is not an event" ? letters[0] : letters[1];
  const DeadLetterInfo& thrown = &poison == &letters[0] ? letters[1] : letters[0];
  EXPECT_EQ(poison.payload_excerpt, "this is not an event");
  EXPECT_NE(poison.header("x-error").find("not a CloudEvent"), std::string::npos)
      << poison.header("x-error");
  EXPECT_EQ(poison.header("x-attempts"), "1");
  EXPECT_NE(thrown.header("x-error").find("the handler refuses " + refused.id), std::string::npos)
      << thrown.header("x-error");
  EXPECT_EQ(thrown.header("x-attempts"), "3");
  EXPECT_EQ(thrown.key, "k1");
  EXPECT_NE(thrown.payload_excerpt.find(refused.id), std::string::npos);
  for (const DeadLetterInfo* letter : {&poison, &thrown}) {
    EXPECT_EQ(letter->header("x-consumer-group"), group_);
    EXPECT_EQ(letter->header("x-original-topic"), topic_);
    EXPECT_FALSE(letter->header("x-original-partition").empty());
    EXPECT_FALSE(letter->header("x-original-offset").empty());
  }

  failing = false;  // the handler's bug is fixed
  EXPECT_EQ(replay_dead_letters(options(), topic_, group_), 2U);
  ASSERT_TRUE(eventually([&] { return effects() == 6; })) << "the refused event, replayed";
  EXPECT_EQ(scalar("SELECT seq FROM probe_effects ORDER BY n DESC LIMIT 1"), 0);
  // The poison message cannot succeed: replayed, it is dead-lettered again...
  ASSERT_TRUE(eventually([&] { return bus.stats().at(group_).dead_lettered == 3U; }));
  // ...and a second replay sends only that new letter, not the two already replayed.
  EXPECT_EQ(replay_dead_letters(options(), topic_, group_), 1U);
  ASSERT_TRUE(eventually([&] { return bus.stats().at(group_).dead_lettered == 4U; }));
  EXPECT_EQ(list_dead_letters(options(), topic_).size(), 4U);
  EXPECT_EQ(effects(), 6);
}

TEST_F(KafkaBusTest, ABatchWithARefusedEventAppliesTheOthersOnceAndDeadLettersOnlyThatOne) {
  constexpr int kEvents = 30;
  constexpr int kRefused = 10;
  // All on key k1 (one partition) and on the broker before the consumer starts: it finds them
  // fetched together and applies them as one batch, which the refused event makes fail.
  std::string refused_id;
  {
    KafkaBus bus(options());  // publisher only
    bus.start();
    OutboxRelay relay("test", *db_, bus.publisher(), relay_options());
    relay.start();
    for (int seq = 0; seq < kEvents; ++seq) {
      boost::json::object data{{"seq", seq}};
      if (seq == kRefused) data["fail"] = true;
      const Event event = make_event("/test", topic_, "k1", std::move(data));
      if (seq == kRefused) refused_id = event.id;
      db_->transaction([&](storage::Executor& tx) { enqueue(tx, event); });
    }
    relay.wake();
    ASSERT_TRUE(eventually([&] { return relay.pending() == 0; }));
  }

  std::atomic<int> refusals{0};
  KafkaBus bus(options());
  bus.subscribe(recording([&](const Event& e) {
    if (!e.data.contains("fail")) return false;
    ++refusals;
    return true;
  }));
  bus.start();
  ASSERT_TRUE(eventually([&] { return bus.stats().at(group_).dead_lettered == 1U; }));
  ASSERT_TRUE(eventually([&] { return effects() == kEvents - 1; })) << effects();
  EXPECT_EQ(distinct_effects(), kEvents - 1);
  expect_key_order();
  EXPECT_EQ(refusals.load(), 4) << "once in the batch, then max_attempts (3) times alone";
  EXPECT_EQ(bus.stats().at(group_).failed, 3U) << "only the lone attempts count as failures";
  const auto letters = list_dead_letters(options(), topic_);
  ASSERT_EQ(letters.size(), 1U);
  EXPECT_NE(letters[0].payload_excerpt.find(refused_id), std::string::npos);
  EXPECT_EQ(letters[0].header("x-attempts"), "3");

  // The relay sends the applied events again (a crash before marking them): the redelivered
  // batch changes nothing.
  const auto consumed = bus.stats().at(group_).consumed;
  db_->execute("UPDATE outbox SET sent_at = NULL WHERE id <> $1", {refused_id});
  {
    OutboxRelay relay("test", *db_, bus.publisher(), relay_options());
    relay.start();
    ASSERT_TRUE(eventually([&] { return relay.pending() == 0; }));
  }
  ASSERT_TRUE(eventually([&] {
    return bus.stats().at(group_).consumed == consumed + static_cast<unsigned>(kEvents - 1);
  })) << bus.stats().at(group_).consumed;
  bus.stop();  // after the batch in hand
  EXPECT_EQ(messages_on_topic(), 2 * kEvents - 1);
  EXPECT_EQ(effects(), kEvents - 1);
  EXPECT_EQ(bus.stats().at(group_).dead_lettered, 1U);
  EXPECT_EQ(bus.stats().at(group_).failed, 3U);
  EXPECT_EQ(refusals.load(), 4);
}

TEST_F(KafkaBusTest, ALargeBatchIsAppliedInParallelByPartitionKeepingKeyOrder) {
  constexpr int kEvents = 300;
  constexpr int kKeys = 12;
  {
    KafkaBus bus(options());  // publisher only: the consumer then finds a large batch
    bus.start();
    OutboxRelay relay("test", *db_, bus.publisher(), relay_options());
    relay.start();
    for (int i = 0; i < kEvents; ++i) {
      boost::json::object data{{"seq", i / kKeys}};
      if (i == 5 * kKeys + 3) data["fail"] = true;  // k3's sixth event
      std::string key = std::to_string(i % kKeys);
      key.insert(0, 1, 'k');  // "k" + std::to_string(...) trips a g++ 12 false warning here
      const Event event = make_event("/test", topic_, key, data);
      db_->transaction([&](storage::Executor& tx) { enqueue(tx, event); });
    }
    relay.wake();
    ASSERT_TRUE(eventually([&] { return relay.pending() == 0; }));
  }

  std::mutex mutex;
  std::set<std::thread::id> threads;  // guarded by mutex
  KafkaBus bus(options());
  bus.subscribe(recording([&](const Event& e) {
    const std::lock_guard lock(mutex);
    threads.insert(std::this_thread::get_id());
    return e.data.contains("fail");
  }));
  bus.start();
  ASSERT_TRUE(eventually([&] { return bus.stats().at(group_).dead_lettered == 1U; }));
  ASSERT_TRUE(eventually([&] { return effects() == kEvents - 1; })) << effects();
  bus.stop();
  EXPECT_EQ(distinct_effects(), kEvents - 1);
  EXPECT_EQ(effects(), kEvents - 1);
  expect_key_order();
  EXPECT_EQ(bus.stats().at(group_).failed, 3U);
  // How many lanes ran depends on how librdkafka's fetches arrived (one partition's fetch alone
  // makes a one-lane batch), so the thread count is reported, not asserted: what must hold is
  // above — each effect once, key order, one dead letter.
  const std::lock_guard lock(mutex);
  RecordProperty("handler_threads", static_cast<int>(threads.size()));
}

TEST_F(KafkaBusTest, TwoConsumersInOneGroupSplitThePartitionsAndApplyEachEventOnce) {
  if (!probe_available()) return;
  constexpr int kEvents = 120;
  provision_topics(options(), {topic_});
  auto a = start_consumer("a");
  auto b = start_consumer("b");
  ASSERT_TRUE(eventually([&] {
    const auto pa = partitions_of("a");
    const auto pb = partitions_of("b");
    std::set<std::string> both = pa;
    both.insert(pb.begin(), pb.end());
    return !pa.empty() && !pb.empty() && both.size() == 3 && pa.size() + pb.size() == 3;
  })) << a->output()
      << b->output();

  {
    KafkaBus bus(options());
    bus.start();
    OutboxRelay relay("test", *db_, bus.publisher(), relay_options());
    relay.start();
    write_events(kEvents, 12, &relay);
    ASSERT_TRUE(eventually([&] { return distinct_effects() == kEvents; }))
        << distinct_effects() << " of " << kEvents;
  }
  a->signal(SIGTERM);
  b->signal(SIGTERM);
  EXPECT_EQ(a->wait(20s), 0) << a->output();
  EXPECT_EQ(b->wait(20s), 0) << b->output();

  EXPECT_EQ(effects(), kEvents);
  EXPECT_GT(scalar("SELECT count(*) FROM probe_effects WHERE instance = 'a'"), 0);
  EXPECT_GT(scalar("SELECT count(*) FROM probe_effects WHERE instance = 'b'"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM (SELECT subject FROM probe_effects GROUP BY subject "
                   "HAVING count(DISTINCT instance) > 1) AS shared"),
            0)
      << "a key's events were split between the consumers";
  expect_key_order();
}

}  // namespace
}  // namespace inkwell::messaging::kafka
