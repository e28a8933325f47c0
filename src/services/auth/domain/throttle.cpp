#include "services/auth/domain/throttle.h"

namespace inkwell::services::auth {

std::int64_t blocked_for(const std::optional<Throttle>& current, std::int64_t now_ms) {
  if (!current || current->blocked_until <= now_ms) return 0;
  return current->blocked_until - now_ms;
}

Throttle after_failure(const std::optional<Throttle>& current, const ThrottlePolicy& policy,
                       std::int64_t now_ms) {
  Throttle next;
  if (current && now_ms - current->window_started_at < policy.window_ms) {
    next = *current;
  } else {
    next.window_started_at = now_ms;
  }
  ++next.failures;
  if (next.failures >= policy.max_failures) {
    next.blocked_until = now_ms + policy.block_ms;
    // The block starts a fresh window: after it ends, the next failures count from zero.
    next.failures = 0;
    next.window_started_at = now_ms + policy.block_ms;
  }
  return next;
}

}  // namespace inkwell::services::auth
