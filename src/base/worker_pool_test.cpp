#include "base/worker_pool.h"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace inkwell {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Bounds every wait so a broken pool fails the test instead of hanging it; nothing sleeps.
constexpr auto kDeadline = 10s;

template <class T>
bool is_ready(std::future<T>& future) {
  return future.wait_for(0s) == std::future_status::ready;
}

// Runs handlers on this thread until `future` is ready, then returns its value. The caller
// holds a work guard so run_one_for() waits for completions posted by workers.
template <class T>
T drive(asio::io_context& io, std::future<T>& future) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!is_ready(future)) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("job never completed");
    io.run_one_for(1s);
  }
  return future.get();
}

// The coroutine's result, waiting at most kDeadline for another thread to produce it.
template <class T>
T result_of(std::future<T>& future) {
  if (future.wait_for(kDeadline) != std::future_status::ready) {
    throw std::runtime_error("coroutine never finished");
  }
  return future.get();
}

// Runs every handler that is ready now, including ones those handlers post.
void poll_all(asio::io_context& io) {
  while (io.poll() > 0) {
  }
}

// Runs `io` until it runs out of work, or fails the test at the deadline.
void run_all(asio::io_context& io) {
  io.run_for(kDeadline);
  EXPECT_TRUE(io.stopped()) << "coroutines still waiting after " << kDeadline.count() << "s";
}

// A one-way gate that a blocked job waits on; opening it twice is fine.
class Gate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    opened_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    opened_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;  // guarded by mutex_
};

// Opens a gate when the test leaves, so a failed assertion cannot leave a worker blocked and
// the pool's destructor waiting forever.
class OpenAtExit {
 public:
  explicit OpenAtExit(Gate& gate) : gate_(gate) {}
  ~OpenAtExit() { gate_.open(); }
  OpenAtExit(const OpenAtExit&) = delete;
  OpenAtExit& operator=(const OpenAtExit&) = delete;

 private:
  Gate& gate_;
};

TEST(WorkerPool, RunsTheJobOffTheIoThreadAndResumesOnIt) {
  asio::io_context io;
  WorkerPool pool("test", 2, 8);
  std::thread::id io_thread;
  std::thread::id before;
  std::thread::id job_thread;
  std::thread::id after;
  auto result = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<int> {
        before = std::this_thread::get_id();
        const int value = co_await pool.run([&] {
          job_thread = std::this_thread::get_id();
          return 42;
        });
        after = std::this_thread::get_id();
        co_return value;
      },
      asio::use_future);
  std::thread runner([&] {
    io_thread = std::this_thread::get_id();
    run_all(io);
  });
  runner.join();
  EXPECT_EQ(result_of(result), 42);

  EXPECT_EQ(before, io_thread);
  EXPECT_NE(job_thread, io_thread) << "the blocking job must not run on the I/O thread";
  EXPECT_NE(job_thread, std::thread::id());
  EXPECT_EQ(after, io_thread) << "the coroutine must resume on its own executor";
}

TEST(WorkerPool, ReturnsMoveOnlyAndLargeValues) {
  asio::io_context io;
  WorkerPool pool("test", 1, 8);
  auto result = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<std::string> {
        auto owned = co_await pool.run([] { return std::make_unique<int>(7); });
        auto text = co_await pool.run([] { return std::string(10000, 'x'); });
        co_return std::to_string(*owned) + ":" + std::to_string(text.size());
      },
      asio::use_future);
  run_all(io);
  EXPECT_EQ(result_of(result), "7:10000");
}

TEST(WorkerPool, ExceptionsPropagateToTheCaller) {
  asio::io_context io;
  WorkerPool pool("test", 1, 8);
  std::string caught_message;
  std::thread::id io_thread = std::this_thread::get_id();
  std::thread::id catch_thread;
  auto caught = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          co_await pool.run([]() -> int { throw std::runtime_error("disk on fire"); });
        } catch (const std::runtime_error& error) {
          caught_message = error.what();
          catch_thread = std::this_thread::get_id();
        }
      },
      asio::use_future);
  auto api_error = asio::co_spawn(io, pool.run([] { throw ApiError::not_found("post not found"); }),
                                  asio::use_future);
  run_all(io);

  result_of(caught);
  EXPECT_EQ(caught_message, "disk on fire");
  EXPECT_EQ(catch_thread, io_thread);
  try {
    result_of(api_error);
    ADD_FAILURE() << "the job's ApiError was swallowed";
  } catch (const ApiError& error) {
    EXPECT_EQ(error.status(), 404);
    EXPECT_STREQ(error.what(), "post not found");
  }
}

TEST(WorkerPool, RunsVoidJobs) {
  asio::io_context io;
  WorkerPool pool("test", 1, 8);
  std::atomic<int> runs{0};
  auto job = [&runs] { ++runs; };
  static_assert(std::is_same_v<decltype(pool.run(job)), asio::awaitable<void>>);
  auto done = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<int> {
        co_await pool.run(job);
        co_await pool.run(job);
        co_return runs.load();
      },
      asio::use_future);
  run_all(io);
  EXPECT_EQ(result_of(done), 2);
}

TEST(WorkerPool, FullQueueFailsFastWith503) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  Gate release;
  WorkerPool pool("db", 1, 1);
  OpenAtExit open_at_exit(release);
  std::latch started(1);

  auto blocker = [&] {
    started.count_down();
    release.wait();
    return 1;
  };
  auto busy = asio::co_spawn(io, pool.run(blocker), asio::use_future);
  poll_all(io);
  started.wait();  // the only worker is now blocked

  auto waiting = asio::co_spawn(io, pool.run([] { return 2; }), asio::use_future);
  poll_all(io);
  EXPECT_EQ(pool.queued(), 1u);

  auto rejected = asio::co_spawn(io, pool.run([] { return 3; }), asio::use_future);
  poll_all(io);
  ASSERT_TRUE(is_ready(rejected)) << "a full queue must fail at once, not wait";
  try {
    rejected.get();
    ADD_FAILURE() << "the third job was accepted past the queue capacity";
  } catch (const ApiError& error) {
    EXPECT_EQ(error.status(), 503);
    EXPECT_EQ(error.code(), "service_unavailable");
    EXPECT_NE(std::string(error.what()).find("db"), std::string::npos) << error.what();
  }

  release.open();
  EXPECT_EQ(drive(io, busy), 1);
  EXPECT_EQ(drive(io, waiting), 2);

  // Capacity frees up again once the queue drains.
  auto later = asio::co_spawn(io, pool.run([] { return 4; }), asio::use_future);
  EXPECT_EQ(drive(io, later), 4);
}

TEST(WorkerPool, ManyConcurrentCoroutinesAllComplete) {
  asio::io_context io;
  WorkerPool pool("test", 4, 1000);
  constexpr int kCoroutines = 500;
  std::thread::id io_thread = std::this_thread::get_id();
  int completed = 0;     // only touched on the I/O thread
  long long sum = 0;     // likewise
  int wrong_thread = 0;  // likewise
  std::atomic<int> in_jobs{0};
  for (int i = 0; i < kCoroutines; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          const int squared = co_await pool.run([&in_jobs, i] {
            ++in_jobs;
            return i * i;
          });
          const int doubled = co_await pool.run([squared] { return squared * 2; });
          if (std::this_thread::get_id() != io_thread) ++wrong_thread;
          sum += doubled;
          ++completed;
        },
        asio::detached);
  }
  run_all(io);

  long long expected = 0;
  for (int i = 0; i < kCoroutines; ++i) expected += 2LL * i * i;
  EXPECT_EQ(completed, kCoroutines);
  EXPECT_EQ(in_jobs.load(), kCoroutines);
  EXPECT_EQ(sum, expected);
  EXPECT_EQ(wrong_thread, 0);
  EXPECT_EQ(pool.queued(), 0u);
}

TEST(WorkerPool, StopDrainsQueuedWorkBeforeReturning) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  Gate release;
  constexpr std::size_t kCapacity = 100000;
  WorkerPool pool("drain", 1, kCapacity);
  OpenAtExit open_at_exit(release);
  std::latch started(1);
  std::atomic<int> ran{0};

  auto blocker = [&] {
    started.count_down();
    release.wait();
    ++ran;
    return -1;
  };
  auto busy = asio::co_spawn(io, pool.run(blocker), asio::use_future);
  poll_all(io);
  started.wait();

  std::vector<std::future<int>> accepted;
  for (int i = 0; i < 5; ++i) {
    auto job = [&ran, i] {
      ++ran;
      return i;
    };
    accepted.push_back(asio::co_spawn(io, pool.run(job), asio::use_future));
  }
  poll_all(io);
  ASSERT_EQ(pool.queued(), 5u);

  std::thread stopper([&] { pool.stop(); });
  // Wait until stop() has begun, seen from outside: the pool refuses new work. Probes that got
  // in before that are queued work too and must also run.
  auto probe_job = [&ran] {
    ++ran;
    return 100;
  };
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  bool refused = false;
  while (!refused && std::chrono::steady_clock::now() < deadline) {
    auto probe = asio::co_spawn(io, pool.run(probe_job), asio::use_future);
    poll_all(io);
    if (is_ready(probe)) {
      EXPECT_THROW(probe.get(), ApiError);
      EXPECT_LT(pool.queued(), kCapacity) << "refused for being full, not for stopping";
      refused = true;
    } else {
      accepted.push_back(std::move(probe));
      std::this_thread::yield();
    }
  }
  EXPECT_TRUE(refused) << "stop() never refused new work";
  EXPECT_EQ(ran.load(), 0) << "the worker is still blocked";

  release.open();
  stopper.join();
  ASSERT_EQ(ran.load(), static_cast<int>(1 + accepted.size()))
      << "stop() returned before the queued jobs ran";
  EXPECT_EQ(pool.queued(), 0u);

  EXPECT_EQ(drive(io, busy), -1);
  for (std::size_t i = 0; i < accepted.size(); ++i) {
    EXPECT_EQ(drive(io, accepted[i]), i < 5 ? static_cast<int>(i) : 100);
  }
}

TEST(WorkerPool, StoppedPoolRefusesWorkWith503) {
  asio::io_context io;
  WorkerPool pool("test", 2, 8);
  pool.stop();
  pool.stop();  // idempotent
  std::atomic<bool> ran{false};
  auto refused = asio::co_spawn(io, pool.run([&ran] { ran = true; }), asio::use_future);
  run_all(io);
  try {
    result_of(refused);
    ADD_FAILURE() << "a stopped pool accepted work";
  } catch (const ApiError& error) {
    EXPECT_EQ(error.status(), 503);
  }
  EXPECT_FALSE(ran.load());
}

}  // namespace
}  // namespace inkwell
