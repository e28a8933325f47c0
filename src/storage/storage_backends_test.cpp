// Storage cases run against every backend: SQLite always, PostgreSQL when
// INKWELL_TEST_POSTGRES_URL is set (a database the tests may create schemas in). With
// INKWELL_TEST_REQUIRE_POSTGRES=1 and no URL, the PostgreSQL cases fail instead of skipping.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <latch>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "inkwell_migrations_storage_test.h"
#include "storage/database.h"
#include "storage/migrations.h"

namespace inkwell::storage {

// Found by GoogleTest through argument-dependent lookup, so it lives beside Dialect.
void PrintTo(Dialect dialect, std::ostream* os) {
  *os << (dialect == Dialect::sqlite ? "sqlite" : "postgres");
}

namespace {

namespace fs = std::filesystem;
using Kind = DatabaseError::Kind;
using namespace std::chrono_literals;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// Unique across parallel test processes and repeated runs against the same server.
std::string unique_name(std::string_view prefix) {
  static std::atomic<int> counter{0};
  static const unsigned salt = std::random_device{}();
  return std::string(prefix) + "_" + std::to_string(::getpid()) + "_" +
         std::to_string(salt % 100000) + "_" + std::to_string(counter++);
}

template <typename F>
DatabaseError database_error(F&& f) {
  try {
    f();
  } catch (const DatabaseError& e) {
    return e;
  }
  ADD_FAILURE() << "expected a DatabaseError";
  return DatabaseError(Kind::other, "");
}

std::int64_t count(Executor& db, std::string_view table) {
  return db.execute("SELECT count(*) FROM " + std::string(table)).rows.at(0).get<std::int64_t>(0);
}

// One backend per parameter: a fresh SQLite file, or a fresh schema in the PostgreSQL
// database, so cases run in parallel and repeatedly without seeing each other's tables.
class StorageTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    if (GetParam() == Dialect::sqlite) {
      dir_ = fs::temp_directory_path() / unique_name("inkwell_storage_test");
      url_ = "sqlite://" + (dir_ / "test.db").string();
    } else {
      const std::string base = env("INKWELL_TEST_POSTGRES_URL");
      if (base.empty()) {
        if (env("INKWELL_TEST_REQUIRE_POSTGRES") == "1") {
          FAIL() << "INKWELL_TEST_REQUIRE_POSTGRES=1 but INKWELL_TEST_POSTGRES_URL is not set";
        }
        GTEST_SKIP() << "set INKWELL_TEST_POSTGRES_URL to run the PostgreSQL cases";
      }
      schema_ = unique_name("inkwell_test");
      admin_ = open_database(base, {.pool_size = 2});
      admin_->execute_script("CREATE SCHEMA " + schema_);
      url_ = base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
             schema_;
    }
    db_ = open();
  }

  void TearDown() override {
    db_.reset();
    if (admin_) admin_->execute_script("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  std::unique_ptr<Database> open(const Options& options = {}) {
    return open_database(url_, options);
  }

  bool postgres() const { return GetParam() == Dialect::postgres; }

  std::string url_;
  std::string schema_;
  fs::path dir_;
  std::unique_ptr<Database> admin_;  // PostgreSQL only: outside the test schema
  std::unique_ptr<Database> db_;
};

TEST_P(StorageTest, RoundTripsEveryValueType) {
  db_->execute_script(
      "CREATE TABLE vals (id BIGINT PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, s TEXT, "
      "b BOOLEAN, n TEXT)");
  struct Case {
    std::int64_t i;
    double d;
    std::string s;
    bool b;
  };
  const std::vector<Case> cases = {
      {std::numeric_limits<std::int64_t>::max(), 0.1, "héllo wörld — 日本語 🎉", true},
      {std::numeric_limits<std::int64_t>::min(), -1.5e300, "", false},
      {0, 1.0 / 3.0, "tab\t newline\n quote' backslash\\ dollar $1", true},
  };
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    const Result inserted =
        db_->execute("INSERT INTO vals (id, i, d, s, b, n) VALUES ($1, $2, $3, $4, $5, $6)",
                     {k, c.i, c.d, c.s, c.b, nullptr});
    EXPECT_EQ(inserted.affected_rows, 1);
  }
  db_->execute("INSERT INTO vals (id) VALUES ($1)", {99});

  const Result result = db_->execute("SELECT id, i, d, s, b, n FROM vals ORDER BY id");
  EXPECT_EQ(result.columns, (std::vector<std::string>{"id", "i", "d", "s", "b", "n"}));
  ASSERT_EQ(result.rows.size(), 4u);
  EXPECT_EQ(result.affected_rows, 4);
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const Row& row = result.rows[k];
    EXPECT_EQ(row.get<std::int64_t>("i"), cases[k].i);
    EXPECT_EQ(row.get<double>("d"), cases[k].d);
    EXPECT_EQ(row.get<std::string>("s"), cases[k].s);
    EXPECT_EQ(row.get<bool>("b"), cases[k].b);
    EXPECT_TRUE(row.is_null("n"));
    EXPECT_EQ(row.get<std::optional<std::string>>("n"), std::nullopt);
  }
  const Row& empty = result.rows[3];
  EXPECT_EQ(empty.get<std::optional<std::int64_t>>("i"), std::nullopt);
  EXPECT_EQ(empty.get<std::optional<double>>("d"), std::nullopt);
  EXPECT_EQ(empty.get<std::optional<std::string>>("s"), std::nullopt);
  EXPECT_EQ(empty.get<std::optional<bool>>("b"), std::nullopt);
  EXPECT_EQ(database_error([&] { empty.get<std::string>("s"); }).kind(), Kind::other);

  // Bound values come back with their own types, and NULL compares as NULL.
  const Row echo = db_->execute("SELECT $1 AS s, $2 AS i, $3 AS d", {"ünï", 7, 2.5}).rows.at(0);
  EXPECT_EQ(echo.get<std::string>("s"), "ünï");
  EXPECT_EQ(echo.get<std::int64_t>("i"), 7);
  EXPECT_EQ(echo.get<double>("d"), 2.5);
  EXPECT_EQ(db_->execute("SELECT id FROM vals WHERE n = $1", {nullptr}).rows.size(), 0u);
}

TEST_P(StorageTest, BoundParametersMakeInjectionInert) {
  db_->execute_script("CREATE TABLE students (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
  const std::string evil = "Robert'); DROP TABLE students;--";
  db_->execute("INSERT INTO students (id, name) VALUES ($1, $2)", {1, evil});
  EXPECT_EQ(
      db_->execute("SELECT name FROM students WHERE id = $1", {1}).rows.at(0).get<std::string>(0),
      evil);
  EXPECT_TRUE(
      db_->execute("SELECT id FROM students WHERE name = $1", {"x' OR '1'='1"}).rows.empty());
  EXPECT_EQ(count(*db_, "students"), 1);
}

TEST_P(StorageTest, ReportsConstraintViolationsByKind) {
  db_->execute_script(
      "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, "
      "age INTEGER CHECK (age >= 0));"
      "CREATE TABLE posts (id INTEGER PRIMARY KEY, author INTEGER NOT NULL REFERENCES users (id))");
  const std::string insert = "INSERT INTO users (id, email, age) VALUES ($1, $2, $3)";
  db_->execute(insert, {1, "ada@example.com", 36});

  const DatabaseError duplicate = database_error([&] {
    db_->execute(insert, {2, "ada@example.com", 1});
  });
  EXPECT_EQ(duplicate.kind(), Kind::unique_violation) << duplicate.what();
  EXPECT_EQ(database_error([&] {
              db_->execute(insert, {1, "b@example.com", 1});
            }).kind(),
            Kind::unique_violation);
  EXPECT_EQ(database_error([&] {
              db_->execute(insert, {3, nullptr, 1});
            }).kind(),
            Kind::constraint);
  EXPECT_EQ(database_error([&] {
              db_->execute(insert, {3, "c@example.com", -1});
            }).kind(),
            Kind::constraint);
  EXPECT_EQ(database_error([&] { db_->execute("INSERT INTO posts VALUES (1, 42)"); }).kind(),
            Kind::constraint);
  EXPECT_EQ(database_error([&] { db_->execute("SELEC 1"); }).kind(), Kind::other);
  EXPECT_EQ(count(*db_, "users"), 1);
}

TEST_P(StorageTest, RejectsMisusedStatements) {
  const DatabaseError two = database_error([&] { db_->execute("SELECT 1; SELECT 2"); });
  EXPECT_EQ(two.kind(), Kind::other);
  const DatabaseError missing = database_error([&] { db_->execute("SELECT $2", {1}); });
  EXPECT_EQ(missing.kind(), Kind::other) << missing.what();
  EXPECT_TRUE(db_->execute("").rows.empty());
}

TEST_P(StorageTest, CommittedTransactionIsVisibleAndReturnsItsValue) {
  db_->execute_script("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
  const std::int64_t total = db_->transaction([](Executor& tx) {
    tx.execute("INSERT INTO items (id, name) VALUES ($1, $2)", {1, "one"});
    tx.execute("INSERT INTO items (id, name) VALUES ($1, $2)", {2, "two"});
    return count(tx, "items");
  });
  EXPECT_EQ(total, 2);
  auto other = open();  // another pool: sees only committed data
  EXPECT_EQ(count(*other, "items"), 2);
}

TEST_P(StorageTest, ThrowingTransactionRollsBackEverything) {
  db_->execute_script("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
  db_->execute("INSERT INTO items (id, name) VALUES (1, 'kept')");
  struct Boom : std::runtime_error {
    Boom() : std::runtime_error("boom") {}
  };
  EXPECT_THROW(db_->transaction([](Executor& tx) {
    tx.execute("INSERT INTO items (id, name) VALUES (2, 'lost')");
    tx.execute("UPDATE items SET name = 'changed'");
    tx.execute_script("CREATE TABLE scratch (x INTEGER)");
    throw Boom();
  }),
               Boom);
  const Result rows = db_->execute("SELECT name FROM items");
  ASSERT_EQ(rows.rows.size(), 1u);
  EXPECT_EQ(rows.rows[0].get<std::string>(0), "kept");
  EXPECT_EQ(database_error([&] { db_->execute("SELECT * FROM scratch"); }).kind(), Kind::other);

  // A failing statement rolls back the statements before it, too.
  EXPECT_EQ(database_error([&] {
              db_->transaction([](Executor& tx) {
                tx.execute("INSERT INTO items (id, name) VALUES (3, 'lost')");
                tx.execute("INSERT INTO items (id, name) VALUES (1, 'duplicate')");
              });
            }).kind(),
            Kind::unique_violation);
  EXPECT_EQ(count(*db_, "items"), 1);
}

TEST_P(StorageTest, NestedUseIsAClearError) {
  db_->execute_script("CREATE TABLE items (id INTEGER PRIMARY KEY)");
  db_->transaction([&](Executor& tx) {
    tx.execute("INSERT INTO items (id) VALUES (1)");
    const DatabaseError nested = database_error([&] { db_->transaction([](Executor&) {}); });
    EXPECT_NE(std::string(nested.what()).find("nested transactions are not supported"),
              std::string::npos)
        << nested.what();
    const DatabaseError outside = database_error([&] { db_->execute("SELECT 1"); });
    EXPECT_NE(std::string(outside.what()).find("use the Executor passed to the body"),
              std::string::npos)
        << outside.what();
  });
  EXPECT_EQ(count(*db_, "items"), 1);

  const DatabaseError commit =
      database_error([&] { db_->transaction([](Executor& tx) { tx.execute("COMMIT"); }); });
  EXPECT_NE(std::string(commit.what()).find("instead of running COMMIT or ROLLBACK"),
            std::string::npos)
      << commit.what();
  EXPECT_EQ(count(*db_, "items"), 1);  // and the database still works
}

TEST_P(StorageTest, ConcurrentTransactionsLoseNoUpdates) {
  db_->execute_script("CREATE TABLE counter (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)");
  db_->execute("INSERT INTO counter (id, n) VALUES (1, 0)");
  constexpr int kThreads = 8;
  constexpr int kIncrements = 25;
  std::latch start(kThreads);
  std::vector<std::jthread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kIncrements; ++i) {
        try {
          if (t % 2 == 0) {
            // Read, then write: with a deferred BEGIN two SQLite writers would deadlock here.
            db_->transaction([](Executor& tx) {
              tx.execute("SELECT n FROM counter WHERE id = 1");
              tx.execute("UPDATE counter SET n = n + 1 WHERE id = 1");
            });
          } else {
            db_->execute("UPDATE counter SET n = n + 1 WHERE id = $1", {1});
          }
        } catch (const std::exception& e) {
          ADD_FAILURE() << e.what();
        }
      }
    });
  }
  threads.clear();  // joins
  EXPECT_EQ(db_->execute("SELECT n FROM counter").rows.at(0).get<std::int64_t>(0),
            kThreads * kIncrements);
}

TEST_P(StorageTest, PoolExhaustionIsUnavailable) {
  auto db = open({.pool_size = 1, .acquire_timeout = 100ms});
  std::promise<void> inside;
  std::promise<void> release;
  std::jthread holder([&] {
    db->transaction([&](Executor&) {
      inside.set_value();
      release.get_future().wait();
    });
  });
  inside.get_future().wait();
  EXPECT_EQ(database_error([&] { db->execute("SELECT 1"); }).kind(), Kind::unavailable);
  EXPECT_FALSE(db->ping());
  release.set_value();
  holder.join();
  EXPECT_TRUE(db->ping());
}

TEST_P(StorageTest, MigrationsApplyOnce) {
  const MigrationSet& set = inkwell_migrations_storage_test();
  EXPECT_EQ(apply_migrations(*db_, set).applied, (std::vector<int>{1, 2, 10}));
  EXPECT_TRUE(apply_migrations(*db_, set).applied.empty());
  EXPECT_EQ(count(*db_, "notes"), 1);
  EXPECT_EQ(db_->execute("SELECT body FROM notes").rows.at(0).get<std::string>(0),
            "semi;colon, 'quotes' and a back\\slash");
  const Result recorded = db_->execute(
      "SELECT version, name, applied_at FROM schema_migrations WHERE service = $1 "
      "ORDER BY version",
      {set.service});
  ASSERT_EQ(recorded.rows.size(), 3u);
  EXPECT_EQ(recorded.rows[2].get<int>("version"), 10);
  EXPECT_EQ(recorded.rows[2].get<std::string>("name"), "index_tags");
  EXPECT_FALSE(recorded.rows[2].is_null("applied_at"));

  // A later migration is applied on the next run, alone.
  MigrationSet next = set;
  for (auto* list : {&next.postgres, &next.sqlite}) {
    list->push_back({11, "more_notes", "INSERT INTO notes (id, body) VALUES (2, 'two');"});
  }
  EXPECT_EQ(apply_migrations(*db_, next).applied, (std::vector<int>{11}));
  EXPECT_EQ(count(*db_, "notes"), 2);
}

TEST_P(StorageTest, ConcurrentMigrationsApplyEachOnce) {
  // Two Database objects stand in for two processes starting at once.
  auto first = open();
  auto second = open();
  std::latch start(2);
  MigrationReport reports[2];
  Database* dbs[2] = {first.get(), second.get()};
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        try {
          reports[i] = apply_migrations(*dbs[i], inkwell_migrations_storage_test());
        } catch (const std::exception& e) {
          ADD_FAILURE() << e.what();
        }
      });
    }
  }
  std::vector<int> all = reports[0].applied;
  all.insert(all.end(), reports[1].applied.begin(), reports[1].applied.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<int>{1, 2, 10}));
  EXPECT_EQ(count(*db_, "notes"), 1);
  EXPECT_EQ(count(*db_, "schema_migrations"), 3);
}

TEST_P(StorageTest, EditedMigrationIsReported) {
  const MigrationSet& set = inkwell_migrations_storage_test();
  apply_migrations(*db_, set);
  MigrationSet edited = set;
  for (auto* list : {&edited.postgres, &edited.sqlite}) {
    (*list)[1].name = "seed_more_notes";
    list->push_back({11, "more_notes", "INSERT INTO notes (id, body) VALUES (2, 'two');"});
  }
  try {
    apply_migrations(*db_, edited);
    ADD_FAILURE() << "an edited migration was accepted";
  } catch (const MigrationError& e) {
    EXPECT_STREQ(e.what(),
                 "storage_test migration 2 was applied as \"seed_notes\" but is now named "
                 "\"seed_more_notes\": applied migrations must not be edited; add a new one "
                 "instead");
  }
  EXPECT_EQ(count(*db_, "notes"), 1);  // version 11 was not applied
}

TEST_P(StorageTest, FailedMigrationRollsBackAndNamesItself) {
  const MigrationSet bad{"broken",
                         {{1, "ok", "CREATE TABLE a (x INTEGER);"},
                          {2, "typo", "CREATE TABLE b (x INTEGER); CREAT TABLE c (x INTEGER);"}},
                         {{1, "ok", "CREATE TABLE a (x INTEGER);"},
                          {2, "typo", "CREATE TABLE b (x INTEGER); CREAT TABLE c (x INTEGER);"}}};
  const DatabaseError error = database_error([&] { apply_migrations(*db_, bad); });
  EXPECT_NE(std::string(error.what()).find("broken migration 2 (typo) failed"), std::string::npos)
      << error.what();
  EXPECT_EQ(count(*db_, "a"), 0);
  EXPECT_EQ(database_error([&] { count(*db_, "b"); }).kind(), Kind::other);
  EXPECT_EQ(count(*db_, "schema_migrations"), 1);
}

TEST_P(StorageTest, KilledConnectionsAreReplaced) {
  if (!postgres()) GTEST_SKIP() << "SQLite connections are in-process; nothing can kill them";
  const std::string app = unique_name("inkwell_kill");
  auto db = open({.pool_size = 2, .application_name = app});
  // Hold one connection in a transaction while another thread uses the second.
  db->transaction([&](Executor& tx) {
    tx.execute("SELECT 1");
    std::jthread([&] { db->execute("SELECT 1"); }).join();
  });
  const Result killed = admin_->execute(
      "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) AS n "
      "FROM pg_stat_activity WHERE application_name = $1",
      {app});
  EXPECT_EQ(killed.rows.at(0).get<std::int64_t>("n"), 2);

  EXPECT_EQ(db->execute("SELECT 42 AS answer").rows.at(0).get<int>("answer"), 42);
  EXPECT_EQ(db->transaction([](Executor& tx) { return count(tx, "pg_class"); }) > 0, true);
  EXPECT_TRUE(db->ping());
}

TEST_P(StorageTest, StatementOnADyingConnectionIsRetriedOnceOutsideTransactions) {
  if (!postgres()) GTEST_SKIP() << "SQLite connections are in-process; nothing can kill them";
  // The sequence survives the failed statement, so the first run kills its own connection
  // and the retry succeeds.
  db_->execute_script("CREATE SEQUENCE attempts");
  const std::string suicide =
      "SELECT CASE WHEN nextval('attempts') % 2 = 1 THEN pg_terminate_backend(pg_backend_pid()) "
      "ELSE true END AS ok";
  EXPECT_TRUE(db_->execute(suicide).rows.at(0).get<bool>("ok"));
  EXPECT_EQ(
      admin_->execute("SELECT last_value FROM " + schema_ + ".attempts").rows.at(0).get<int>(0), 2);

  // Inside a transaction the work so far is lost, so there is no retry: the caller sees it.
  const DatabaseError lost =
      database_error([&] { db_->transaction([&](Executor& tx) { tx.execute(suicide); }); });
  EXPECT_EQ(lost.kind(), Kind::unavailable) << lost.what();
  EXPECT_EQ(
      admin_->execute("SELECT last_value FROM " + schema_ + ".attempts").rows.at(0).get<int>(0), 3);
  EXPECT_EQ(db_->transaction([](Executor& tx) { return count(tx, "pg_class"); }) > 0, true);
}

TEST_P(StorageTest, UrlParametersOverrideOptions) {
  if (!postgres()) GTEST_SKIP() << "application_name is a PostgreSQL setting";
  const std::string name = "SELECT current_setting('application_name') AS name";
  EXPECT_EQ(
      open({.application_name = "from_options"})->execute(name).rows.at(0).get<std::string>(0),
      "from_options");
  EXPECT_EQ(open_database(url_ + "&application_name=from_url", {.application_name = "from_options"})
                ->execute(name)
                .rows.at(0)
                .get<std::string>(0),
            "from_url");
}

INSTANTIATE_TEST_SUITE_P(Backends, StorageTest,
                         ::testing::Values(Dialect::sqlite, Dialect::postgres),
                         [](const auto& param_info) {
                           return param_info.param == Dialect::sqlite ? "sqlite" : "postgres";
                         });

TEST(PostgresOpen, UnreachableServerIsUnavailableWithoutLeakingThePassword) {
  try {
    open_database("postgresql://ink:Zq9secret@127.0.0.1:1/blog", {.connect_timeout = 2s});
    ADD_FAILURE() << "connected to port 1";
  } catch (const DatabaseError& e) {
    EXPECT_EQ(e.kind(), Kind::unavailable);
    const std::string message = e.what();
    EXPECT_EQ(message.find("Zq9secret"), std::string::npos) << message;
    EXPECT_NE(message.find("postgresql://ink:***@127.0.0.1:1/blog"), std::string::npos) << message;
  }
}

TEST(PostgresOpen, UnknownUrlParameterIsInvalidWithoutLeakingThePassword) {
  try {
    open_database("postgresql://ink:Zq9secret@127.0.0.1:1/blog?no_such_option=1");
    ADD_FAILURE() << "accepted an unknown parameter";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).find("Zq9secret"), std::string::npos) << e.what();
  }
}

// A fresh folder for SQLite files, removed afterwards.
class SqliteFiles : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(dir_); }
  void TearDown() override { fs::remove_all(dir_); }
  const fs::path dir_ = fs::temp_directory_path() / unique_name("inkwell_sqlite_files");
};

TEST_F(SqliteFiles, OpeningCreatesTheParentFolders) {
  const fs::path absolute = dir_ / "a" / "b" / "blog.db";
  open_database("sqlite://" + absolute.string())->execute_script("CREATE TABLE t (x INTEGER)");
  EXPECT_TRUE(fs::exists(absolute));

  const fs::path previous = fs::current_path();
  fs::current_path(dir_);
  open_database("sqlite://rel/dir/blog.db")->execute("SELECT 1");
  fs::current_path(previous);
  EXPECT_TRUE(fs::exists(dir_ / "rel" / "dir" / "blog.db"));
}

TEST_F(SqliteFiles, ConnectionsUseWalAndForeignKeys) {
  auto db = open_database("sqlite://" + (dir_ / "blog.db").string());
  EXPECT_EQ(db->execute("PRAGMA journal_mode").rows.at(0).get<std::string>(0), "wal");
  EXPECT_EQ(db->execute("PRAGMA foreign_keys").rows.at(0).get<int>(0), 1);
  EXPECT_EQ(db->execute("PRAGMA synchronous").rows.at(0).get<int>(0), 1);  // NORMAL
}

TEST_F(SqliteFiles, UnusableFileIsUnavailable) {
  std::ofstream(dir_ / "file") << "x";
  const DatabaseError error =
      database_error([&] { open_database("sqlite://" + (dir_ / "file" / "blog.db").string()); });
  EXPECT_EQ(error.kind(), Kind::unavailable) << error.what();
}

TEST_F(SqliteFiles, WriterBlockedPastTheBusyTimeoutIsUnavailable) {
  const std::string url = "sqlite://" + (dir_ / "blog.db").string();
  auto holder = open_database(url);
  auto waiter = open_database(url, {.busy_timeout = 100ms});
  holder->execute_script("CREATE TABLE t (x INTEGER)");
  holder->transaction([&](Executor& tx) {
    tx.execute("INSERT INTO t (x) VALUES (1)");
    EXPECT_EQ(count(*waiter, "t"), 0);  // WAL: readers go on
    const DatabaseError error =
        database_error([&] { waiter->execute("INSERT INTO t (x) VALUES (2)"); });
    EXPECT_EQ(error.kind(), Kind::unavailable) << error.what();
  });
  EXPECT_EQ(count(*waiter, "t"), 1);
}

}  // namespace
}  // namespace inkwell::storage
