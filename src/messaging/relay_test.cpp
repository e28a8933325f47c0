#include "messaging/relay.h"

#include "messaging/outbox.h"
#include "messaging/test_support.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace inkwell::messaging {
namespace {

using namespace testing;
using Clock = std::chrono::steady_clock;

// What the fake broker saw.
struct Seen {
  std::vector<std::vector<OutgoingMessage>> calls;  // every batch offered, in order
  std::vector<Clock::time_point> times;             // when each was offered
  std::vector<OutgoingMessage> acked;               // what it acknowledged, in order
};

// A broker stand-in: records each batch and acknowledges as many as `policy` says (which may
// throw, like a relay dying mid-publish).
class FakePublisher final : public Publisher {
 public:
  using Policy = std::function<std::size_t(std::size_t call, std::size_t size)>;

  std::size_t publish(const std::vector<OutgoingMessage>& batch,
                      std::chrono::milliseconds) override {
    std::size_t call = 0;
    seen.update([&](Seen& s) {
      call = s.calls.size();
      s.calls.push_back(batch);
      s.times.push_back(Clock::now());
    });
    const std::size_t n = std::min(policy()(call, batch.size()), batch.size());
    seen.update([&](Seen& s) { s.acked.insert(s.acked.end(), batch.begin(), batch.begin() + n); });
    return n;
  }

  void set_policy(Policy p) {
    const std::lock_guard lock(mutex_);
    policy_ = std::move(p);
  }

  Watched<Seen> seen;

 private:
  Policy policy() {
    const std::lock_guard lock(mutex_);
    return policy_;
  }

  std::mutex mutex_;
  Policy policy_ = [](std::size_t, std::size_t size) { return size; };
};

class RelayTest : public ::testing::TestWithParam<storage::Dialect> {
 protected:
  void SetUp() override {
    if (!postgres_available(GetParam())) return;
    scratch_ = std::make_unique<ScratchDatabase>(GetParam());
    db_ = scratch_->open();
  }

  // Enqueues `n` events, each in its own transaction; returns their ids in order.
  std::vector<std::string> produce(int n, std::string_view key = "post-1") {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      const Event event = make_event("/blog", "post.liked", key, {{"n", i}});
      db_->transaction([&](storage::Executor& tx) { enqueue(tx, event); });
      ids.push_back(event.id);
    }
    return ids;
  }

  static std::vector<std::string> ids_of(const std::vector<OutgoingMessage>& messages) {
    std::vector<std::string> ids;
    for (const OutgoingMessage& m : messages) ids.push_back(decode(m.payload).event->id);
    return ids;
  }

  std::unique_ptr<ScratchDatabase> scratch_;
  std::unique_ptr<storage::Database> db_;
  FakePublisher publisher_;
};

TEST_P(RelayTest, PublishesPendingRowsInOrderInBatchesAndMarksThemSent) {
  const std::vector<std::string> ids = produce(12);
  OutboxRelay relay("test", *db_, publisher_, {.batch_size = 5});
  EXPECT_EQ(relay.pending(), 12);
  relay.start();
  ASSERT_TRUE(publisher_.seen.wait_for([](const Seen& s) { return s.acked.size() == 12; }));
  relay.stop();  // finishes marking the batch in hand

  const Seen seen = publisher_.seen.get();
  std::vector<std::size_t> sizes;
  for (const auto& call : seen.calls) sizes.push_back(call.size());
  EXPECT_EQ(sizes, (std::vector<std::size_t>{5, 5, 2}));
  EXPECT_EQ(ids_of(seen.acked), ids);
  for (std::size_t i = 1; i < seen.acked.size(); ++i) {
    EXPECT_LT(seen.acked[i - 1].seq, seen.acked[i].seq);
  }
  EXPECT_EQ(seen.acked[0].topic, "post.liked");
  EXPECT_EQ(seen.acked[0].key, "post-1");
  EXPECT_EQ(relay.pending(), 0);
  EXPECT_EQ(relay.published(), 12u);
  EXPECT_EQ(relay.failures(), 0u);
}

TEST_P(RelayTest, WakeAfterACommitPublishesWithoutWaitingForThePoll) {
  OutboxRelay relay("test", *db_, publisher_, {.poll_interval = std::chrono::seconds(1)});
  produce(1);
  relay.start();
  ASSERT_TRUE(publisher_.seen.wait_for([](const Seen& s) { return s.acked.size() == 1; }));

  for (int round = 2; round <= 4; ++round) {  // the relay is idle, waiting for its next poll
    produce(1);
    const auto committed = Clock::now();
    relay.wake();
    ASSERT_TRUE(publisher_.seen.wait_for(
        [&](const Seen& s) { return s.acked.size() == static_cast<std::size_t>(round); }));
    EXPECT_LT(Clock::now() - committed, std::chrono::milliseconds(100)) << "round " << round;
  }
}

TEST_P(RelayTest, FailingBrokerMeansBackoffAndNoMarkingThenEverythingOnceInOrder) {
  publisher_.set_policy([](std::size_t, std::size_t) { return std::size_t{0}; });
  const std::vector<std::string> ids = produce(5);
  OutboxRelay relay(
      "test", *db_, publisher_,
      {.min_backoff = std::chrono::milliseconds(20), .max_backoff = std::chrono::milliseconds(80)});
  relay.start();
  ASSERT_TRUE(publisher_.seen.wait_for([](const Seen& s) { return s.calls.size() >= 5; }));
  EXPECT_EQ(relay.pending(), 5);
  EXPECT_GE(relay.failures(), 4u);

  const Seen failing = publisher_.seen.get();
  const std::vector<std::chrono::milliseconds> floors{
      std::chrono::milliseconds(20), std::chrono::milliseconds(40), std::chrono::milliseconds(80),
      std::chrono::milliseconds(80)};
  for (std::size_t i = 0; i < floors.size(); ++i) {
    EXPECT_GE(failing.times[i + 1] - failing.times[i], floors[i]) << "gap " << i;
  }

  publisher_.set_policy([](std::size_t, std::size_t size) { return size; });  // broker back
  ASSERT_TRUE(publisher_.seen.wait_for([](const Seen& s) { return s.acked.size() >= 5; }));
  relay.stop();
  EXPECT_EQ(ids_of(publisher_.seen.get().acked), ids);
  EXPECT_EQ(relay.pending(), 0);
  EXPECT_EQ(relay.published(), 5u);
}

TEST_P(RelayTest, AcknowledgedPrefixIsMarkedAndTheRestStaysPending) {
  publisher_.set_policy([](std::size_t call, std::size_t) { return call == 0 ? 2u : 0u; });
  const std::vector<std::string> ids = produce(5);
  OutboxRelay relay("test", *db_, publisher_, {.min_backoff = std::chrono::milliseconds(5)});
  relay.start();
  ASSERT_TRUE(publisher_.seen.wait_for([](const Seen& s) { return s.calls.size() >= 2; }));
  relay.stop();

  EXPECT_EQ(relay.pending(), 3);
  EXPECT_EQ(relay.published(), 2u);
  const storage::Result sent =
      db_->execute("SELECT id FROM outbox WHERE sent_at IS NOT NULL ORDER BY seq");
  ASSERT_EQ(sent.rows.size(), 2u);
  EXPECT_EQ(sent.rows[0].get<std::string>(0), ids[0]);
  EXPECT_EQ(sent.rows[1].get<std::string>(0), ids[1]);
  // The retry offered exactly the rows still pending.
  EXPECT_EQ(ids_of(publisher_.seen.get().calls[1]),
            (std::vector<std::string>{ids[2], ids[3], ids[4]}));
}

TEST_P(RelayTest, RelayDyingBetweenPublishAndMarkResendsAndTheInboxAbsorbsIt) {
  publisher_.set_policy([](std::size_t call, std::size_t size) -> std::size_t {
    if (call == 0) throw std::runtime_error("relay killed after the broker took the batch");
    return size;
  });
  const std::vector<std::string> ids = produce(3);
  OutboxRelay relay("test", *db_, publisher_, {.min_backoff = std::chrono::milliseconds(5)});
  relay.start();
  ASSERT_TRUE(publisher_.seen.wait_for([](const Seen& s) { return s.acked.size() == 3; }));
  relay.stop();
  const Seen seen = publisher_.seen.get();
  ASSERT_EQ(seen.calls.size(), 2u);
  EXPECT_EQ(ids_of(seen.calls[0]), ids);  // the broker got every event twice
  EXPECT_EQ(ids_of(seen.calls[1]), ids);
  EXPECT_EQ(relay.pending(), 0);

  // A consumer handling every delivery applies each effect once.
  db_->execute_script("CREATE TABLE effects (event_id text)");
  for (const auto& call : seen.calls) {
    for (const std::string& id : ids_of(call)) {
      db_->transaction([&](storage::Executor& tx) {
        if (claim(tx, "consumer", id)) tx.execute("INSERT INTO effects VALUES ($1)", {id});
      });
    }
  }
  EXPECT_EQ(count(*db_, "SELECT count(*) FROM effects"), 3);
  EXPECT_EQ(count(*db_, "SELECT count(DISTINCT event_id) FROM effects"), 3);
}

TEST_P(RelayTest, PruningRemovesSentRowsPastRetentionOnly) {
  const std::vector<std::string> ids = produce(3);
  db_->execute("UPDATE outbox SET sent_at = $1 WHERE id = $2",
               {"2000-01-01T00:00:00.000Z", ids[0]});
  db_->execute("UPDATE outbox SET sent_at = $1 WHERE id = $2",
               {rfc3339_utc(std::chrono::system_clock::now() - std::chrono::hours(1)), ids[1]});
  OutboxRelay relay("test", *db_, publisher_, {.retention = std::chrono::hours(24)});
  relay.start();  // prunes on its first pass, before publishing
  ASSERT_TRUE(publisher_.seen.wait_for([](const Seen& s) { return s.acked.size() == 1; }));
  relay.stop();
  EXPECT_EQ(ids_of(publisher_.seen.get().acked), std::vector<std::string>{ids[2]});
  const storage::Result left = db_->execute("SELECT id FROM outbox ORDER BY seq");
  ASSERT_EQ(left.rows.size(), 2u);
  EXPECT_EQ(left.rows[0].get<std::string>(0), ids[1]);  // sent an hour ago: kept
  EXPECT_EQ(left.rows[1].get<std::string>(0), ids[2]);  // just sent: kept
}

TEST_P(RelayTest, StopDoesNotWaitOutABackoff) {
  publisher_.set_policy([](std::size_t, std::size_t) { return std::size_t{0}; });
  produce(1);
  OutboxRelay relay(
      "test", *db_, publisher_,
      {.min_backoff = std::chrono::seconds(30), .max_backoff = std::chrono::seconds(30)});
  relay.start();
  ASSERT_TRUE(publisher_.seen.wait_for([](const Seen& s) { return s.calls.size() == 1; }));
  const auto stopping = Clock::now();
  relay.stop();
  EXPECT_LT(Clock::now() - stopping, std::chrono::seconds(2));
  EXPECT_EQ(relay.pending(), 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, RelayTest, ::testing::ValuesIn(test_dialects()), dialect_name);

}  // namespace
}  // namespace inkwell::messaging
