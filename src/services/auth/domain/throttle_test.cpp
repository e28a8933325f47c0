#include "services/auth/domain/throttle.h"

#include <gtest/gtest.h>

namespace inkwell::services::auth {
namespace {

constexpr ThrottlePolicy kPolicy{3, 60'000, 120'000};

TEST(Throttle, BlocksAfterTheLimitWithinTheWindow) {
  std::optional<Throttle> state;
  std::int64_t now = 1'000'000;
  for (int i = 0; i < 2; ++i) {
    state = after_failure(state, kPolicy, now += 1000);
    EXPECT_EQ(blocked_for(state, now), 0) << i;
  }
  state = after_failure(state, kPolicy, now += 1000);
  EXPECT_EQ(blocked_for(state, now), 120'000);
  EXPECT_EQ(blocked_for(state, now + 119'999), 1);
  EXPECT_EQ(blocked_for(state, now + 120'000), 0);
}

TEST(Throttle, FailuresOutsideTheWindowStartOver) {
  std::optional<Throttle> state;
  std::int64_t now = 5'000'000;
  state = after_failure(state, kPolicy, now);
  state = after_failure(state, kPolicy, now + 1000);
  // The window has passed: this failure is the first of a new one.
  state = after_failure(state, kPolicy, now + 61'000);
  EXPECT_EQ(state->failures, 1);
  EXPECT_EQ(blocked_for(state, now + 61'000), 0);
}

TEST(Throttle, NoRecordIsNotBlocked) {
  EXPECT_EQ(blocked_for(std::nullopt, 42), 0);
}

}  // namespace
}  // namespace inkwell::services::auth
