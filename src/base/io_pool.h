#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

namespace inkwell {

// N single-threaded io_contexts, each run by its own thread. A connection lives on one context
// for its whole life, so the hot path takes no scheduler locks, needs no strands and wakes no
// other thread (the one-io_context-many-threads model measured at about half the throughput
// on two cores: see ARCHITECTURE.md).
class IoPool {
 public:
  explicit IoPool(std::size_t threads);
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  /// The context for the next connection, round-robin.
  boost::asio::io_context& next();
  /// The first context: acceptors and process-wide timers live here.
  boost::asio::io_context& main() { return *contexts_.front(); }
  std::size_t size() const { return contexts_.size(); }

  /// Starts one thread per context. Called once.
  void start();
  /// Stops every context and joins the threads. Idempotent.
  void stop();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace inkwell
