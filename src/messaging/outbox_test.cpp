#include "messaging/outbox.h"

#include "base/ids.h"
#include "messaging/test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace inkwell::messaging {
namespace {

using namespace testing;

class OutboxTest : public ::testing::TestWithParam<storage::Dialect> {
 protected:
  void SetUp() override {
    if (!postgres_available(GetParam())) return;
    scratch_ = std::make_unique<ScratchDatabase>(GetParam());
    db_ = scratch_->open();
  }

  std::int64_t pending() {
    return count(*db_, "SELECT count(*) FROM outbox WHERE sent_at IS NULL");
  }

  std::unique_ptr<ScratchDatabase> scratch_;
  std::unique_ptr<storage::Database> db_;
};

TEST_P(OutboxTest, EventEnqueuedInACommittedTransactionIsPending) {
  const Event event = make_event("/blog", "post.created", "post-1", {{"postId", "post-1"}});
  db_->transaction([&](storage::Executor& tx) {
    tx.execute_script("CREATE TABLE posts (id text PRIMARY KEY)");
    tx.execute("INSERT INTO posts (id) VALUES ($1)", {"post-1"});
    enqueue(tx, event);
  });
  const storage::Result rows =
      db_->execute("SELECT seq, id, topic, key, payload, sent_at FROM outbox");
  ASSERT_EQ(rows.rows.size(), 1u);
  const storage::Row& row = rows.rows[0];
  EXPECT_GT(row.get<std::int64_t>("seq"), 0);
  EXPECT_EQ(row.get<std::string>("id"), event.id);
  EXPECT_EQ(row.get<std::string>("topic"), "post.created");
  EXPECT_EQ(row.get<std::string>("key"), "post-1");
  EXPECT_TRUE(row.is_null("sent_at"));
  const Decoded decoded = decode(row.get<std::string>("payload"));
  ASSERT_TRUE(decoded.event) << decoded.error;
  EXPECT_EQ(decoded.event->id, event.id);
}

TEST_P(OutboxTest, RolledBackTransactionLeavesNothingToPublish) {
  EXPECT_THROW(db_->transaction([&](storage::Executor& tx) {
    enqueue(tx, make_event("/auth", "user.registered", "u1", {{"userId", "u1"}}));
    throw std::runtime_error("the state change failed");
  }),
               std::runtime_error);
  EXPECT_EQ(pending(), 0);
}

TEST_P(OutboxTest, RowsKeepTheirCommitOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    const Event event = make_event("/auth", "user.updated", "u1", {{"version", i + 1}});
    ids.push_back(event.id);
    db_->transaction([&](storage::Executor& tx) { enqueue(tx, event); });
  }
  const storage::Result rows = db_->execute("SELECT id FROM outbox ORDER BY seq");
  ASSERT_EQ(rows.rows.size(), ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(rows.rows[i].get<std::string>(0), ids[i]);
}

TEST_P(OutboxTest, SameEventCannotBeEnqueuedTwice) {
  const Event event = make_event("/auth", "user.updated", "u1", {});
  db_->transaction([&](storage::Executor& tx) { enqueue(tx, event); });
  try {
    db_->transaction([&](storage::Executor& tx) { enqueue(tx, event); });
    FAIL() << "a duplicate id was accepted";
  } catch (const storage::DatabaseError& e) {
    EXPECT_EQ(e.kind(), storage::DatabaseError::Kind::unique_violation);
  }
  EXPECT_EQ(pending(), 1);
}

TEST_P(OutboxTest, ClaimIsTrueOnlyTheFirstTimePerGroup) {
  const std::string id = new_uuid();
  EXPECT_TRUE(db_->transaction([&](storage::Executor& tx) { return claim(tx, "blog", id); }));
  EXPECT_FALSE(db_->transaction([&](storage::Executor& tx) { return claim(tx, "blog", id); }));
  // Another consumer group sharing the database has an inbox of its own.
  EXPECT_TRUE(
      db_->transaction([&](storage::Executor& tx) { return claim(tx, "notification", id); }));
}

TEST_P(OutboxTest, ClaimRolledBackWithTheEffectLetsTheEventComeAgain) {
  const std::string id = new_uuid();
  EXPECT_THROW(db_->transaction([&](storage::Executor& tx) {
    ASSERT_TRUE(claim(tx, "blog", id));
    throw std::runtime_error("the handler failed");
  }),
               std::runtime_error);
  EXPECT_TRUE(db_->transaction([&](storage::Executor& tx) { return claim(tx, "blog", id); }));
}

TEST_P(OutboxTest, ClaimAllRecordsABatchOnceAndSkipsWhatWasHandledOrRepeated) {
  const std::string handled = new_uuid();
  const std::string a = new_uuid();
  const std::string b = new_uuid();
  EXPECT_TRUE(db_->transaction([&](storage::Executor& tx) { return claim(tx, "blog", handled); }));
  const std::vector<std::string_view> batch{a, handled, b, a};
  EXPECT_EQ(db_->transaction([&](storage::Executor& tx) { return claim_all(tx, "blog", batch); }),
            (std::vector<bool>{true, false, true, false}));
  // Redelivered: nothing is claimed again.
  EXPECT_EQ(db_->transaction([&](storage::Executor& tx) { return claim_all(tx, "blog", batch); }),
            (std::vector<bool>(4, false)));
  EXPECT_EQ(count(*db_, "SELECT count(*) FROM inbox WHERE consumer_group = 'blog'"), 3);
  EXPECT_TRUE(
      db_->transaction([&](storage::Executor& tx) { return claim_all(tx, "blog", {}); }).empty());
}

TEST_P(OutboxTest, ClaimAllSpreadsALargeBatchOverSeveralStatements) {
  std::vector<std::string> ids;
  for (int i = 0; i < 2'500; ++i) ids.push_back(new_uuid());
  const std::vector<std::string_view> batch(ids.begin(), ids.end());
  const std::vector<bool> claimed =
      db_->transaction([&](storage::Executor& tx) { return claim_all(tx, "blog", batch); });
  EXPECT_EQ(std::count(claimed.begin(), claimed.end(), true), 2'500);
  EXPECT_EQ(count(*db_, "SELECT count(*) FROM inbox"), 2'500);
}

TEST_P(OutboxTest, MigrationsApplyOnceAndAgainSafely) {
  ScratchDatabase scratch(GetParam());
  const auto db = scratch.open_bare();
  const storage::MigrationSet set = messaging_migrations("blog");
  EXPECT_EQ(set.service, "blog.messaging");
  EXPECT_NO_THROW(storage::validate_migrations(set));
  EXPECT_EQ(storage::apply_migrations(*db, set).applied, (std::vector<int>{1, 2}));
  EXPECT_TRUE(storage::apply_migrations(*db, set).applied.empty());
  EXPECT_EQ(count(*db, "SELECT count(*) FROM outbox"), 0);
  EXPECT_EQ(count(*db, "SELECT count(*) FROM inbox"), 0);
  EXPECT_EQ(count(*db, "SELECT count(*) FROM dead_letters"), 0);
  EXPECT_EQ(count(*db, "SELECT count(*) FROM dead_letters WHERE replay_requested_at IS NULL"), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, OutboxTest, ::testing::ValuesIn(test_dialects()), dialect_name);

}  // namespace
}  // namespace inkwell::messaging
