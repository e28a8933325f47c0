#include "messaging/relay.h"

#include "base/log.h"

#include <algorithm>
#include <stdexcept>
#include <string_view>

namespace inkwell::messaging {
namespace {

// Pruning is housekeeping: once a minute keeps the table small without a DELETE per batch.
constexpr auto kPruneEvery = std::chrono::minutes(1);

}  // namespace

OutboxRelay::OutboxRelay(std::string name, storage::Database& database, Publisher& publisher,
                         RelayOptions options)
    : name_(std::move(name)), database_(database), publisher_(publisher), options_(options) {
  if (options_.batch_size == 0) throw std::invalid_argument("outbox relay: batch size is 0");
  if (options_.min_backoff.count() <= 0 || options_.max_backoff < options_.min_backoff) {
    throw std::invalid_argument("outbox relay: backoff must be 0 < min <= max");
  }
}

OutboxRelay::~OutboxRelay() {
  stop();
}

void OutboxRelay::start() {
  const std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  woken_ = true;  // the outbox may already hold rows from before a restart
  thread_ = std::thread([this] { run(); });
}

void OutboxRelay::stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OutboxRelay::wake() {
  {
    const std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_.notify_all();
}

std::int64_t OutboxRelay::pending() const {
  return database_.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
      .rows.at(0)
      .get<std::int64_t>(0);
}

void OutboxRelay::run() {
  std::chrono::milliseconds backoff = options_.min_backoff;
  auto next_prune = std::chrono::steady_clock::now();
  bool failing = false;
  while (true) {
    {
      const std::lock_guard lock(mutex_);
      if (stopping_) return;
      woken_ = false;  // a wake() from here on means rows this pass may not have seen
    }
    std::int64_t marked = -1;
    std::string error = "the publisher acknowledged only part of a batch";
    try {
      if (std::chrono::steady_clock::now() >= next_prune) {
        next_prune = std::chrono::steady_clock::now() + kPruneEvery;
        prune();
      }
      marked = relay_batch();
    } catch (const std::exception& e) {  // database or publisher away: rows stay pending
      error = e.what();
    } catch (...) {
      error = "unknown exception";
    }

    if (marked < 0) {
      ++failures_;
      if (!failing) log::warn("outbox relay backing off", {{"relay", name_}, {"error", error}});
      failing = true;
      std::unique_lock lock(mutex_);
      // wake() does not cut a backoff short: commits keep coming while the broker is away.
      wake_.wait_for(lock, backoff, [this] { return stopping_; });
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    if (failing) log::info("outbox relay resumed", {{"relay", name_}});
    failing = false;
    backoff = options_.min_backoff;
    if (marked == static_cast<std::int64_t>(options_.batch_size)) continue;  // more may wait
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, options_.poll_interval, [this] { return woken_ || stopping_; });
  }
}

std::int64_t OutboxRelay::relay_batch() {
  const storage::Result rows = read_pending();
  if (rows.rows.empty()) return 0;
  std::vector<OutgoingMessage> batch;
  batch.reserve(rows.rows.size());
  for (const storage::Row& row : rows.rows) {
    batch.push_back({row.get<std::int64_t>(0), row.get<std::string>(1), row.get<std::string>(2),
                     row.get<std::string>(3)});
  }
  const std::size_t acked =
      std::min(publisher_.publish(batch, options_.publish_timeout), batch.size());
  if (acked > 0) {
    // By seq list, not range: a row with a seq inside the range may have committed after the
    // read above, and marking it would lose it. The time is the relay's clock, as for pruning.
    std::string sql = "UPDATE outbox SET sent_at = $1 WHERE seq IN (";
    storage::Params params{rfc3339_utc(std::chrono::system_clock::now())};
    for (std::size_t i = 0; i < acked; ++i) {
      sql += (i ? ", $" : "$") + std::to_string(i + 2);
      params.emplace_back(batch[i].seq);  // a Value: add() trips a g++ 12 false warning
    }
    database_.execute(sql + ")", params);
    published_ += acked;
  }
  return acked < batch.size() ? -1 : static_cast<std::int64_t>(acked);
}

storage::Result OutboxRelay::read_pending() {
  static constexpr std::string_view kSql =
      "SELECT seq, topic, key, payload FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT $1";
  if (database_.dialect() != storage::Dialect::postgres) {
    return database_.execute(kSql, {options_.batch_size});
  }
  // Every row marked sent leaves a dead entry in the partial index outbox_pending until a
  // vacuum. A bitmap scan (what the planner picks when it expects few pending rows) looks each
  // of them up in the table on every read, slower the more was sent (2-18 ms per read in
  // bench/events); an index scan marks a dead entry the first time it meets it and skips it
  // afterward.
  return database_.transaction([&](storage::Executor& tx) {
    tx.execute("SET LOCAL enable_bitmapscan = off");
    return tx.execute(kSql, {options_.batch_size});
  });
}

void OutboxRelay::prune() {
  const std::string cutoff = rfc3339_utc(std::chrono::system_clock::now() - options_.retention);
  const storage::Result result =
      database_.execute("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1", {cutoff});
  if (result.affected_rows > 0) {
    log::debug("outbox pruned", {{"relay", name_}, {"rows", result.affected_rows}});
  }
}

}  // namespace inkwell::messaging
