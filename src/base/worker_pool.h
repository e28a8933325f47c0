#pragma once

#include "base/error.h"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace inkwell {

// Runs blocking calls (database, hashing, blocking clients) off the I/O threads on a fixed set
// of threads with a bounded queue; a full queue fails fast with 503 instead of waiting.
class WorkerPool {
 public:
  WorkerPool(std::string name, std::size_t threads, std::size_t queue_capacity);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// Runs `job` on a worker and resumes the calling coroutine on its own executor with the
  /// result or the exception. Throws ApiError 503 when the queue is full or the pool stopped.
  ///
  /// g++ 12 pitfall: never write the lambda inside the co_await expression
  /// (`co_await pool.run([s] {...})`). A closure temporary there is bitwise-relocated into the
  /// caller's coroutine frame, so a captured short std::string points at its old place and is
  /// freed as if it were on the heap. Name it first: `auto job = [s] {...};
  /// co_await pool.run(std::move(job));` (captures of pointers and integers are unaffected).
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&>> run(F job);

  /// Lets queued jobs finish, then joins the threads. Idempotent.
  void stop();
  std::size_t queued() const;
  const std::string& name() const { return name_; }

 private:
  bool submit(std::function<void()> task);
  void work();

  std::string name_;
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;  // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::vector<std::thread> threads_;
};

template <class F>
boost::asio::awaitable<std::invoke_result_t<F&>> WorkerPool::run(F job) {
  using Result = std::invoke_result_t<F&>;
  using Stored = std::conditional_t<std::is_void_v<Result>, bool, std::optional<Result>>;
  Stored result{};
  auto initiate = [this, &job, &result](auto handler) {
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    auto complete = [shared](std::exception_ptr error) {
      auto executor = boost::asio::get_associated_executor(*shared);
      boost::asio::post(executor, [shared, error]() { (*shared)(error); });
    };
    const bool accepted = submit([&job, &result, complete]() {
      std::exception_ptr error;
      try {
        if constexpr (std::is_void_v<Result>) {
          (void)result;  // captured for the other branch
          job();
        } else {
          result.emplace(job());
        }
      } catch (...) {
        error = std::current_exception();
      }
      complete(error);
    });
    if (!accepted) {
      complete(std::make_exception_ptr(
          ApiError::unavailable("the server is busy (" + name_ + " queue full), retry shortly")));
    }
  };
  // use_awaitable treats a leading exception_ptr as the error: it rethrows a non-null one in
  // this coroutine and the co_await itself yields nothing.
  co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                       void(std::exception_ptr)>(initiate,
                                                                 boost::asio::use_awaitable);
  if constexpr (!std::is_void_v<Result>) co_return std::move(*result);
}

}  // namespace inkwell
