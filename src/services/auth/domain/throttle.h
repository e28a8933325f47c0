#pragma once

#include <cstdint>
#include <optional>

namespace inkwell::services::auth {

// Failed sign-ins counted for one key ("account:<email>" or "ip:<address>").
struct Throttle {
  int failures = 0;
  std::int64_t window_started_at = 0;  // Unix milliseconds
  std::int64_t blocked_until = 0;
};

// When repeated failures lock a key: `max_failures` within `window_ms` block it for `block_ms`.
struct ThrottlePolicy {
  int max_failures = 5;
  std::int64_t window_ms = 15 * 60 * 1000;
  std::int64_t block_ms = 15 * 60 * 1000;
};

/// Milliseconds until the key may try again; 0 when it is not blocked.
std::int64_t blocked_for(const std::optional<Throttle>& current, std::int64_t now_ms);
/// The counter after one more failure at `now_ms`: a new window when the last one ended, and a
/// block once the window holds `max_failures`.
Throttle after_failure(const std::optional<Throttle>& current, const ThrottlePolicy& policy,
                       std::int64_t now_ms);

}  // namespace inkwell::services::auth
