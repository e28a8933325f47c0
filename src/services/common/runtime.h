#pragma once

#include "base/io_pool.h"
#include "base/metrics.h"
#include "base/settings.h"
#include "base/worker_pool.h"
#include "http/client.h"

#include <chrono>
#include <optional>
#include <string>

namespace inkwell::services {

// The shared machinery a service is built on: the I/O threads, the blocking-call pool, the
// upstream client, metrics and configuration. Owned by the app; services only borrow it.
struct Runtime {
  IoPool& io;
  const Settings& settings;
  metrics::Registry& metrics;
  WorkerPool& blocking;
  http::HttpClient& client;
  std::string data_dir;
  std::chrono::steady_clock::time_point started;
  std::chrono::milliseconds shutdown_grace;
  std::optional<std::string> kafka_brokers;  // validated host:port list; unset = embedded bus
  std::optional<std::string> redis_url;      // validated redis:// URL; unset = in-memory
};

/// The build's version string.
std::string_view version();

}  // namespace inkwell::services
