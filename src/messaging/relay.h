#pragma once

#include "messaging/bus.h"
#include "storage/database.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace inkwell::messaging {

struct RelayOptions {
  std::size_t batch_size = 500;
  std::chrono::milliseconds poll_interval{1'000};  // fallback for rows other processes wrote
  std::chrono::milliseconds min_backoff{100};      // after a failed publish, doubling...
  std::chrono::milliseconds max_backoff{5'000};    // ...up to this
  std::chrono::milliseconds publish_timeout{10'000};
  std::chrono::hours retention{24};  // sent rows older than this are pruned
};

// Publishes a service's outbox in order: reads pending rows in batches, hands them to the
// publisher and marks sent only what the broker acknowledged. Runs on its own thread; wake()
// after a commit makes it publish at once instead of at the next poll.
class OutboxRelay {
 public:
  OutboxRelay(std::string name, storage::Database& database, Publisher& publisher,
              RelayOptions options = {});
  ~OutboxRelay();

  /// Starts the thread, which first publishes whatever the outbox already holds. start() and
  /// stop() are called from the owner's thread; wake() from any thread.
  void start();
  /// Finishes the batch in hand (publish and mark), then joins the thread.
  void stop();
  /// Call after committing a transaction that enqueued events.
  void wake();

  std::uint64_t published() const { return published_.load(); }
  std::uint64_t failures() const { return failures_.load(); }
  /// Rows not yet sent (reads the table).
  std::int64_t pending() const;

 private:
  void run();
  /// Publishes one batch; returns how many rows were marked sent, or -1 when the publisher
  /// acknowledged less than the whole batch (its acknowledged prefix is marked sent).
  std::int64_t relay_batch();
  /// The next pending rows in seq order, at most batch_size.
  storage::Result read_pending();
  /// Deletes sent rows older than the retention period.
  void prune();

  std::string name_;
  storage::Database& database_;
  Publisher& publisher_;
  RelayOptions options_;
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool woken_ = false;     // guarded by mutex_
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace inkwell::messaging
