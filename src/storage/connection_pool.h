#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "storage/database.h"

namespace inkwell::storage {

// A bounded set of open connections lent out one at a time; borrowers wait up to a deadline.
template <typename Handle>
class ConnectionPool {
 public:
  struct Hooks {
    std::function<Handle()> connect;        // opens a connection or throws DatabaseError
    std::function<bool(Handle&)> reusable;  // false: close it instead of keeping it idle
  };

  // A borrowed connection: back to the pool when destroyed, or closed if no longer reusable.
  // Assign a fresh connection to *lease to replace a broken one.
  class Lease {
   public:
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), handle_(std::move(other.handle_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_) pool_->give_back(std::move(handle_));
    }
    Handle& operator*() { return handle_; }
    Handle* operator->() { return &handle_; }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, Handle handle) : pool_(pool), handle_(std::move(handle)) {}
    ConnectionPool* pool_;
    Handle handle_;
  };

  ConnectionPool(std::size_t size, std::chrono::milliseconds wait, Hooks hooks)
      : size_(size), wait_(wait), hooks_(std::move(hooks)) {}
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // An idle connection, or a new one while fewer than size are open. Throws DatabaseError
  // (unavailable) when none frees up in time or a new connection cannot be opened.
  Lease acquire() {
    std::unique_lock lock(mutex_);
    if (!available_.wait_for(lock, wait_, [&] { return !idle_.empty() || open_ < size_; })) {
      throw DatabaseError(DatabaseError::Kind::unavailable,
                          "all " + std::to_string(size_) +
                              " database connections stayed busy for " +
                              std::to_string(wait_.count()) + " ms");
    }
    if (!idle_.empty()) {
      Handle handle = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(handle));
    }
    ++open_;
    lock.unlock();
    try {
      return Lease(this, hooks_.connect());
    } catch (...) {
      lock.lock();
      --open_;
      available_.notify_one();
      throw;
    }
  }

 private:
  void give_back(Handle handle) {
    const bool keep = handle && hooks_.reusable(handle);
    std::lock_guard lock(mutex_);
    if (keep) {
      idle_.push_back(std::move(handle));
    } else {
      --open_;
    }
    available_.notify_one();
  }

  const std::size_t size_;
  const std::chrono::milliseconds wait_;
  const Hooks hooks_;
  std::mutex mutex_;
  std::condition_variable available_;  // signalled when a connection is returned or closed
  std::vector<Handle> idle_;           // guarded by mutex_
  std::size_t open_ = 0;               // guarded by mutex_: idle, lent out, or being opened
};

}  // namespace inkwell::storage
