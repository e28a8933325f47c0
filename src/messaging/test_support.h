// Helpers for the messaging tests only: scratch databases and waiting on conditions.
#pragma once

#include "messaging/outbox.h"
#include "storage/database.h"
#include "storage/migrations.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace inkwell::storage {
// Names the dialect in GoogleTest's messages (found by argument-dependent lookup).
inline void PrintTo(Dialect dialect, std::ostream* os) {
  *os << (dialect == Dialect::sqlite ? "sqlite" : "postgres");
}
}  // namespace inkwell::storage

namespace inkwell::messaging::testing {

using namespace std::chrono_literals;

/// Waits until `condition` holds, checking every 20 ms; false when `timeout` passed first.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

inline std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// Unique across parallel test processes and repeated runs against the same server.
inline std::string unique_name(std::string_view prefix) {
  static std::atomic<int> counter{0};
  static const unsigned salt = std::random_device{}();
  return std::string(prefix) + "_" + std::to_string(::getpid()) + "_" +
         std::to_string(salt % 100000) + "_" + std::to_string(counter++);
}

/// The dialects this test binary covers: SQLite in the unit binary, PostgreSQL in the
/// integration one (built with INKWELL_TEST_ON_POSTGRES).
inline std::vector<storage::Dialect> test_dialects() {
#ifdef INKWELL_TEST_ON_POSTGRES
  return {storage::Dialect::postgres};
#else
  return {storage::Dialect::sqlite};
#endif
}

inline std::string dialect_name(const ::testing::TestParamInfo<storage::Dialect>& info) {
  return info.param == storage::Dialect::sqlite ? "sqlite" : "postgres";
}

// A database of its own for one test: a SQLite file in a fresh folder, or a fresh schema in
// INKWELL_TEST_POSTGRES_URL's database (the messaging tables have fixed names).
class ScratchDatabase {
 public:
  explicit ScratchDatabase(storage::Dialect dialect) {
    if (dialect == storage::Dialect::sqlite) {
      dir_ = std::filesystem::temp_directory_path() / unique_name("inkwell_messaging_test");
      url_ = "sqlite://" + (dir_ / "test.db").string();
    } else {
      const std::string base = env("INKWELL_TEST_POSTGRES_URL");
      schema_ = unique_name("inkwell_messaging");
      admin_ = storage::open_database(base, {.pool_size = 1});
      admin_->execute_script("CREATE SCHEMA " + schema_);
      url_ = base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
             schema_;
    }
  }
  ~ScratchDatabase() {
    if (admin_) admin_->execute_script("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;

  /// Opens the database with the messaging tables in place.
  std::unique_ptr<storage::Database> open() const {
    auto db = open_bare();
    storage::apply_migrations(*db, messaging_migrations("test"));
    return db;
  }
  std::unique_ptr<storage::Database> open_bare() const { return storage::open_database(url_); }

 private:
  std::string url_;
  std::string schema_;
  std::filesystem::path dir_;
  std::unique_ptr<storage::Database> admin_;
};

/// For a fixture's SetUp: marks a PostgreSQL case without a server skipped, or failed when
/// INKWELL_TEST_REQUIRE_POSTGRES=1 (either way the test body does not run). Returns false then.
inline bool postgres_available(storage::Dialect dialect) {
  if (dialect == storage::Dialect::sqlite || !env("INKWELL_TEST_POSTGRES_URL").empty()) {
    return true;
  }
  if (env("INKWELL_TEST_REQUIRE_POSTGRES") == "1") {
    GTEST_MESSAGE_("INKWELL_TEST_REQUIRE_POSTGRES=1 but INKWELL_TEST_POSTGRES_URL is not set",
                   ::testing::TestPartResult::kFatalFailure);
  } else {
    GTEST_MESSAGE_("set INKWELL_TEST_POSTGRES_URL to run the PostgreSQL cases",
                   ::testing::TestPartResult::kSkip);
  }
  return false;
}

// State that other threads change, with a wait for a condition on it up to a deadline.
template <typename T>
class Watched {
 public:
  template <typename F>
  void update(F&& change) {
    {
      const std::lock_guard lock(mutex_);
      change(value_);
    }
    changed_.notify_all();
  }
  /// Waits until pred(value) holds; false when `timeout` passed first.
  template <typename P>
  bool wait_for(P&& pred, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return pred(value_); });
  }
  T get() const {
    const std::lock_guard lock(mutex_);
    return value_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  T value_{};
};

inline std::int64_t count(storage::Executor& db, const std::string& sql,
                          const storage::Params& params = {}) {
  return db.execute(sql, params).rows.at(0).get<std::int64_t>(0);
}

}  // namespace inkwell::messaging::testing
