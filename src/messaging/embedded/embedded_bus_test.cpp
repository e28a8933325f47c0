#include "messaging/embedded/embedded_bus.h"

#include "messaging/outbox.h"
#include "messaging/relay.h"
#include "messaging/test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <stdexcept>

namespace inkwell::messaging {
namespace {

using namespace testing;
using storage::Dialect;

constexpr auto kFast = EmbeddedBusOptions{.max_attempts = 3,
                                          .initial_backoff = std::chrono::milliseconds(1),
                                          .max_backoff = std::chrono::milliseconds(4)};

// Wraps the bus's publisher to play a relay that dies once between publishing and marking:
// call number `crash_on` delivers its batch, then acknowledges nothing.
class CrashOncePublisher final : public Publisher {
 public:
  CrashOncePublisher(Publisher& inner, int crash_on) : inner_(inner), crash_on_(crash_on) {}
  std::size_t publish(const std::vector<OutgoingMessage>& batch,
                      std::chrono::milliseconds timeout) override {
    const std::size_t acked = inner_.publish(batch, timeout);
    return ++calls_ == crash_on_ ? 0 : acked;
  }

 private:
  Publisher& inner_;
  int crash_on_;
  int calls_ = 0;  // the relay's thread only
};

// A producing service ("blog") and two consuming services ("notify", "search"), each with a
// SQLite file of its own, wired through the embedded bus and the producer's outbox relay.
class EmbeddedBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    open_databases();
    for (storage::Database* db : {notify_.get(), search_.get()}) {
      db->execute_script(
          "CREATE TABLE effects (seq integer PRIMARY KEY AUTOINCREMENT, event_id text NOT NULL, "
          "topic text NOT NULL, key text NOT NULL, n integer NOT NULL)");
    }
  }

  void TearDown() override { stop(); }

  void open_databases() {
    blog_ = blog_files_.open();
    notify_ = notify_files_.open();
    search_ = search_files_.open();
  }

  // Records the event in the consumer's effects table (same transaction as the inbox claim).
  Handler record(const std::string& group) {
    return [this, group](storage::Executor& tx, const Event& event) {
      const auto* n = event.data.if_contains("n");
      tx.execute("INSERT INTO effects (event_id, topic, key, n) VALUES ($1, $2, $3, $4)",
                 {event.id, event.type, event.subject, n ? n->as_int64() : -1});
      handled_.update([&](std::map<std::string, int>& m) { ++m[group + "/" + event.type]; });
    };
  }

  // notify's post.liked handler throws "like handler broken" until like_broken_ is cleared.
  void break_like_handler() {
    like_broken_ = true;
    like_handler_ = [this, record_like = record("notify")](storage::Executor& tx,
                                                           const Event& event) {
      if (like_broken_) throw std::runtime_error("like handler broken: no such post");
      record_like(tx, event);
    };
  }

  // "notify" handles three types, "search" only user.registered.
  void start(EmbeddedBusOptions options = kFast, int crash_on_call = 0) {
    bus_ = std::make_unique<EmbeddedBus>(options);
    bus_->subscribe({"notify",
                     notify_.get(),
                     {{"user.registered", record("notify")},
                      {"post.created", record("notify")},
                      {"post.liked", like_handler_ ? like_handler_ : record("notify")}}});
    bus_->subscribe({"search", search_.get(), {{"user.registered", record("search")}}});
    bus_->start();
    Publisher* publisher = &bus_->publisher();
    if (crash_on_call > 0) {
      crashing_ = std::make_unique<CrashOncePublisher>(*publisher, crash_on_call);
      publisher = crashing_.get();
    }
    relay_ = std::make_unique<OutboxRelay>(
        "blog", *blog_, *publisher,
        RelayOptions{.batch_size = 20,
                     // the simulated crash parks the relay until the test stops it
                     .min_backoff = std::chrono::milliseconds(crash_on_call ? 60'000 : 5),
                     .max_backoff = std::chrono::milliseconds(60'000)});
    relay_->start();
  }

  // The relay first: it finishes (publishes and marks) the batch in hand.
  void stop() {
    if (relay_) relay_->stop();
    if (bus_) bus_->stop();
  }

  std::string produce(std::string_view type, std::string_view key, int n) {
    const Event event = make_event("/blog", type, key, {{"n", n}});
    blog_->transaction([&](storage::Executor& tx) { enqueue(tx, event); });
    if (relay_) relay_->wake();
    return event.id;
  }

  bool wait_handled(const std::string& what, int n) {
    return handled_.wait_for([&](const std::map<std::string, int>& m) {
      const auto found = m.find(what);
      return found != m.end() && found->second >= n;
    });
  }

  static std::vector<std::string> effects(storage::Database& db) {
    std::vector<std::string> ids;
    for (const auto& row : db.execute("SELECT event_id FROM effects ORDER BY seq").rows) {
      ids.push_back(row.get<std::string>(0));
    }
    return ids;
  }

  ScratchDatabase blog_files_{Dialect::sqlite}, notify_files_{Dialect::sqlite},
      search_files_{Dialect::sqlite};
  std::unique_ptr<storage::Database> blog_, notify_, search_;
  Watched<std::map<std::string, int>> handled_;  // "group/type" -> handler runs
  Handler like_handler_;
  std::atomic<bool> like_broken_{false};
  std::unique_ptr<EmbeddedBus> bus_;
  std::unique_ptr<CrashOncePublisher> crashing_;
  std::unique_ptr<OutboxRelay> relay_;
};

TEST_F(EmbeddedBusTest, EventProducedInATransactionIsAppliedOnceByEachSubscriber) {
  start();
  std::vector<std::string> ids;
  blog_->transaction([&](storage::Executor& tx) {
    tx.execute_script("CREATE TABLE users (id text PRIMARY KEY)");
    for (int i = 0; i < 3; ++i) {
      const Event event =
          make_event("/auth", "user.registered", "u" + std::to_string(i), {{"n", i}});
      tx.execute("INSERT INTO users (id) VALUES ($1)", {event.subject});
      enqueue(tx, event);
      ids.push_back(event.id);
    }
  });
  relay_->wake();
  const std::string post = produce("post.created", "p1", 0);  // only "notify" handles it
  ASSERT_TRUE(wait_handled("notify/post.created", 1));
  ASSERT_TRUE(wait_handled("search/user.registered", 3));
  stop();

  EXPECT_EQ(effects(*notify_), (std::vector<std::string>{ids[0], ids[1], ids[2], post}));
  EXPECT_EQ(effects(*search_), ids);
  EXPECT_EQ(relay_->pending(), 0);
  const auto stats = bus_->stats();
  EXPECT_EQ(stats.at("notify").consumed, 4u);
  EXPECT_EQ(stats.at("search").consumed, 3u);
  EXPECT_EQ(stats.at("search").failed, 0u);
  EXPECT_EQ(stats.at("search").lag.at("user.registered/0"), 0);
  EXPECT_EQ(bus_->health(), "embedded");
}

TEST_F(EmbeddedBusTest, RolledBackTransactionPublishesNothing) {
  start();
  EXPECT_THROW(blog_->transaction([&](storage::Executor& tx) {
    enqueue(tx, make_event("/auth", "user.registered", "u1", {{"n", 1}}));
    throw std::runtime_error("registration failed");
  }),
               std::runtime_error);
  relay_->wake();
  const std::string marker = produce("user.registered", "u2", 2);
  ASSERT_TRUE(wait_handled("search/user.registered", 1));
  stop();
  EXPECT_EQ(effects(*search_), std::vector<std::string>{marker});
  EXPECT_EQ(effects(*notify_), std::vector<std::string>{marker});
}

TEST_F(EmbeddedBusTest, KeepsPerKeyOrderFor1000EventsAcross10Keys) {
  start();
  std::map<std::string, int> next;
  for (int t = 0; t < 100; ++t) {  // 100 transactions of 10 events, keys interleaved
    blog_->transaction([&](storage::Executor& tx) {
      for (int i = 0; i < 10; ++i) {
        const std::string key = std::string("user-").append(std::to_string((t * 7 + i * 3) % 10));
        enqueue(tx, make_event("/auth", "user.registered", key, {{"n", next[key]++}}));
      }
    });
    relay_->wake();
  }
  ASSERT_TRUE(wait_handled("notify/user.registered", 1000));
  ASSERT_TRUE(wait_handled("search/user.registered", 1000));
  stop();
  for (storage::Database* db : {notify_.get(), search_.get()}) {
    std::map<std::string, std::int64_t> seen;
    const auto rows = db->execute("SELECT key, n FROM effects ORDER BY seq").rows;
    ASSERT_EQ(rows.size(), 1000u);
    for (const auto& row : rows) {
      const std::string key = row.get<std::string>(0);
      const auto expected = seen.contains(key) ? seen[key] + 1 : 0;
      ASSERT_EQ(row.get<std::int64_t>(1), expected) << "key " << key;
      seen[key] = expected;
    }
    EXPECT_EQ(seen.size(), 10u);
  }
}

TEST_F(EmbeddedBusTest, FailingHandlerEndsInDeadLettersAndLaterEventsFlowThenReplayFixesIt) {
  break_like_handler();
  start();
  const std::string like = produce("post.liked", "p1", 1);
  const std::string later = produce("user.registered", "u1", 2);
  ASSERT_TRUE(wait_handled("notify/user.registered", 1));
  relay_->stop();

  EXPECT_EQ(effects(*notify_), std::vector<std::string>{later});
  const std::vector<DeadLetter> letters = list_dead_letters(*notify_);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].consumer_group, "notify");
  EXPECT_EQ(letters[0].topic, "post.liked");
  EXPECT_EQ(letters[0].event_id, like);
  EXPECT_EQ(letters[0].attempts, kFast.max_attempts);
  EXPECT_NE(letters[0].error.find("like handler broken"), std::string::npos) << letters[0].error;
  EXPECT_EQ(decode(letters[0].payload).event->id, like);
  EXPECT_TRUE(list_dead_letters(*notify_, "user.registered").empty());
  EXPECT_TRUE(list_dead_letters(*search_).empty());
  EXPECT_EQ(bus_->stats().at("notify").failed, 3u);
  EXPECT_EQ(bus_->stats().at("notify").dead_lettered, 1u);
  EXPECT_EQ(relay_->pending(), 0);

  EXPECT_EQ(bus_->replay("notify", "post.liked"), 0u);  // still broken: stays put
  EXPECT_EQ(list_dead_letters(*notify_, "post.liked").size(), 1u);
  EXPECT_THROW(bus_->replay("search", "post.liked"), std::invalid_argument);

  like_broken_ = false;  // the handler is fixed
  EXPECT_EQ(bus_->replay("notify", "post.liked"), 1u);
  EXPECT_EQ(effects(*notify_), (std::vector<std::string>{later, like}));
  EXPECT_TRUE(list_dead_letters(*notify_).empty());
  EXPECT_EQ(count(*notify_, "SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL"), 1);
  EXPECT_EQ(bus_->replay("notify", "post.liked"), 0u);  // nothing runs twice
  EXPECT_EQ(effects(*notify_).size(), 2u);
}

// `inkwell events dlq replay` runs in another process: it stamps the letters, and the running
// bus replays them; what fails again loses its stamp and says why.
TEST_F(EmbeddedBusTest, ReplayRequestedFromAnotherProcessIsCarriedOutByTheRunningBus) {
  break_like_handler();
  start();
  const std::string first = produce("post.liked", "p1", 1);
  const std::string second = produce("post.liked", "p2", 2);
  const std::string later = produce("user.registered", "u1", 3);
  ASSERT_TRUE(wait_handled("notify/user.registered", 1));
  ASSERT_TRUE(eventually([&] { return list_dead_letters(*notify_).size() == 2; }, 10s));
  // A letter of a group this process does not run: nobody here may replay it.
  notify_->execute(
      "INSERT INTO dead_letters (consumer_group, topic, event_id, payload, error, attempts, "
      "created_at) VALUES ('elsewhere', 'post.liked', NULL, 'x', 'old', 1, "
      "'2026-01-01T00:00:00.000Z')");

  EXPECT_TRUE(request_replay(*notify_, "post.liked", std::string("search")).empty());
  EXPECT_TRUE(request_replay(*notify_, "user.registered").empty());
  const std::vector<std::int64_t> all = request_replay(*notify_, "post.liked");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(bus_->replay_requested(), 0u);  // still broken
  ReplayProgress progress = replay_progress(*notify_, all);
  EXPECT_EQ(progress.replayed, 0u);
  EXPECT_EQ(progress.failed_again, 2u);
  EXPECT_EQ(progress.waiting, 1u);  // the "elsewhere" letter
  for (const DeadLetter& letter : list_dead_letters(*notify_, "post.liked")) {
    if (letter.consumer_group != "notify") continue;
    EXPECT_FALSE(letter.replay_requested_at);
    EXPECT_EQ(letter.error.rfind("replay failed: like handler broken", 0), 0u) << letter.error;
  }
  EXPECT_EQ(effects(*notify_), std::vector<std::string>{later});

  like_broken_ = false;  // fixed: asked again, the bus's own thread replays both within a second
  const std::vector<std::int64_t> mine = request_replay(*notify_, "post.liked", "notify");
  ASSERT_EQ(mine.size(), 2u);
  ASSERT_TRUE(eventually([&] { return replay_progress(*notify_, mine).replayed == 2; }, 10s));
  const std::vector<std::string> applied = effects(*notify_);
  EXPECT_EQ(applied.size(), 3u);
  EXPECT_NE(std::find(applied.begin(), applied.end(), first), applied.end());
  EXPECT_NE(std::find(applied.begin(), applied.end(), second), applied.end());
  const std::vector<DeadLetter> open = list_dead_letters(*notify_);
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].consumer_group, "elsewhere");
  EXPECT_TRUE(open[0].replay_requested_at);  // waits for a process that runs its group
  EXPECT_EQ(bus_->replay_requested(), 0u);   // nothing runs twice
  EXPECT_EQ(effects(*notify_).size(), 3u);
}

TEST_F(EmbeddedBusTest, PoisonRowGoesStraightToDeadLettersAndLaterEventsFlow) {
  blog_->execute("INSERT INTO outbox (id, topic, key, payload) VALUES ($1, $2, $3, $4)",
                 {"poison-1", "user.registered", "u0", "{\"specversion\":\"1.0\", garbage"});
  start();
  const std::string later = produce("user.registered", "u1", 1);
  ASSERT_TRUE(wait_handled("search/user.registered", 1));
  stop();
  for (storage::Database* db : {notify_.get(), search_.get()}) {
    EXPECT_EQ(effects(*db), std::vector<std::string>{later});
    const std::vector<DeadLetter> letters = list_dead_letters(*db, "user.registered");
    ASSERT_EQ(letters.size(), 1u);
    EXPECT_FALSE(letters[0].event_id);
    EXPECT_EQ(letters[0].payload, "{\"specversion\":\"1.0\", garbage");
    EXPECT_EQ(letters[0].attempts, 0);
    EXPECT_NE(letters[0].error.find("not a valid event"), std::string::npos) << letters[0].error;
  }
  EXPECT_EQ(bus_->stats().at("search").dead_lettered, 1u);
  EXPECT_EQ(bus_->stats().at("search").failed, 0u);
  EXPECT_EQ(relay_->pending(), 0);
}

TEST_F(EmbeddedBusTest, RestartInTheMiddleAppliesEveryEffectExactlyOnce) {
  std::vector<std::string> ids;
  const std::vector<std::string> keys{"u0", "u1", "u2", "u3", "u4", "u5", "u6"};
  for (int i = 0; i < 200; ++i) ids.push_back(produce("user.registered", keys[i % 7], i));

  // First run: batches 1 and 2 are delivered and marked; batch 3 is delivered, then the relay
  // "dies" before marking it. Everything is torn down and reopened, as after a crash.
  start(kFast, /*crash_on_call=*/3);
  ASSERT_TRUE(wait_handled("search/user.registered", 60));
  stop();
  EXPECT_EQ(relay_->pending(), 160);
  relay_.reset();
  bus_.reset();
  crashing_.reset();
  open_databases();

  start();
  ASSERT_TRUE(wait_handled("notify/user.registered", 200));
  ASSERT_TRUE(wait_handled("search/user.registered", 200));
  stop();
  EXPECT_EQ(relay_->pending(), 0);
  for (storage::Database* db : {notify_.get(), search_.get()}) {
    EXPECT_EQ(effects(*db), ids);
  }
  // The second run got the unmarked batch again; the inbox absorbed it.
  EXPECT_EQ(bus_->stats().at("search").consumed, 160u);
  EXPECT_EQ(handled_.get().at("search/user.registered"), 200);
}

TEST_F(EmbeddedBusTest, UnsubscribedGroupGetsWhatItMissedWhenItSubscribesAgain) {
  start();
  bus_->unsubscribe("search");  // the search service stopped; the others go on
  const std::string id = produce("user.registered", "u1", 1);
  ASSERT_TRUE(wait_handled("notify/user.registered", 1));
  relay_->stop();
  EXPECT_EQ(relay_->pending(), 1);  // held back for "search"
  EXPECT_TRUE(effects(*search_).empty());

  search_ = search_files_.open();  // the service restarts with its database reopened
  bus_->subscribe({"search", search_.get(), {{"user.registered", record("search")}}});
  relay_->start();
  ASSERT_TRUE(wait_handled("search/user.registered", 1));
  stop();
  EXPECT_EQ(relay_->pending(), 0);
  EXPECT_EQ(effects(*search_), std::vector<std::string>{id});
  EXPECT_EQ(effects(*notify_), std::vector<std::string>{id});  // the redelivery was absorbed
}

TEST_F(EmbeddedBusTest, PublishBeforeStartOrAfterStopAcknowledgesNothing) {
  EmbeddedBus bus(kFast);
  bus.subscribe({"search", search_.get(), {{"user.registered", record("search")}}});
  const Event event = make_event("/auth", "user.registered", "u1", {{"n", 1}});
  const std::vector<OutgoingMessage> batch{{1, "user.registered", "u1", encode(event)}};
  EXPECT_EQ(bus.publisher().publish(batch, std::chrono::seconds(1)), 0u);
  bus.start();
  EXPECT_EQ(bus.publisher().publish(batch, std::chrono::seconds(1)), 1u);
  EXPECT_EQ(bus.publisher().publish(batch, std::chrono::seconds(1)), 1u);  // duplicate: absorbed
  bus.stop();
  EXPECT_EQ(bus.publisher().publish(batch, std::chrono::seconds(1)), 0u);
  EXPECT_EQ(effects(*search_), std::vector<std::string>{event.id});
  EXPECT_THROW(bus.subscribe({"search", search_.get(), {}}), std::invalid_argument);
}

}  // namespace
}  // namespace inkwell::messaging
