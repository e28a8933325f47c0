#include "base/ids.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace inkwell {
namespace {

// Checks the canonical v4 layout: lower-case hex, dashes at 8/13/18/23, version 4, variant 10xx.
void expect_canonical_v4(const std::string& id) {
  ASSERT_EQ(id.size(), 36u) << id;
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      EXPECT_EQ(id[i], '-') << id;
    } else {
      EXPECT_TRUE((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))
          << "not lower-case hex at " << i << ": " << id;
    }
  }
  EXPECT_EQ(id[14], '4') << "version nibble: " << id;
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << "variant nibble: " << id;
}

TEST(NewUuid, IsCanonicalVersion4) {
  for (int i = 0; i < 1000; ++i) {
    const auto id = new_uuid();
    expect_canonical_v4(id);
    EXPECT_TRUE(is_uuid(id)) << id;
    if (HasFailure()) return;
  }
}

TEST(NewUuid, UsesEveryVariantNibble) {
  // The variant keeps two random bits; all four values must show up, or bits are stuck.
  std::set<char> variants;
  for (int i = 0; i < 1000; ++i) variants.insert(new_uuid()[19]);
  EXPECT_EQ(variants, (std::set<char>{'8', '9', 'a', 'b'}));
}

TEST(NewUuid, IsUniqueOver10000Calls) {
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(new_uuid());
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(NewUuid, IsUniqueAcrossThreads) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  std::vector<std::vector<std::string>> produced(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&out = produced[static_cast<std::size_t>(t)]] {
      out.reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) out.push_back(new_uuid());
    });
  }
  for (auto& thread : threads) thread.join();

  std::unordered_set<std::string> seen;
  for (const auto& ids : produced) {
    for (const auto& id : ids) {
      expect_canonical_v4(id);
      seen.insert(id);
    }
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kThreads * kPerThread))
      << "threads produced the same id (engines seeded alike?)";
}

TEST(IsUuid, AcceptsCanonicalUuidsOfAnyVersion) {
  EXPECT_TRUE(is_uuid("00000000-0000-0000-0000-000000000000"));  // nil
  EXPECT_TRUE(is_uuid("ffffffff-ffff-ffff-ffff-ffffffffffff"));  // max
  EXPECT_TRUE(is_uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8"));  // v1
  EXPECT_TRUE(is_uuid("0190b5a5-7c2e-7a3b-9f1d-3c4e5f607182"));  // v7
  EXPECT_TRUE(is_uuid("F47AC10B-58CC-4372-A567-0E02B2C3D479"));  // upper case input
}

TEST(IsUuid, RejectsMalformedText) {
  EXPECT_FALSE(is_uuid(""));
  EXPECT_FALSE(is_uuid("f47ac10b-58cc-4372-a567-0e02b2c3d47"));     // 35 chars
  EXPECT_FALSE(is_uuid("f47ac10b-58cc-4372-a567-0e02b2c3d4799"));   // 37 chars
  EXPECT_FALSE(is_uuid("f47ac10b58cc4372a5670e02b2c3d479"));        // no dashes
  EXPECT_FALSE(is_uuid("{f47ac10b-58cc-4372-a567-0e02b2c3d479}"));  // braces
  EXPECT_FALSE(is_uuid("urn:uuid:f47ac10b-58cc-4372-a567-0e02b2c3d479"));
  EXPECT_FALSE(is_uuid("f47ac10b-58cc-4372-a567-0e02b2c3d47g"));  // non-hex
  EXPECT_FALSE(is_uuid("f47ac10b-58cc-4372-a567-0e02b2c3d47 "));  // trailing space
  EXPECT_FALSE(is_uuid(" 47ac10b-58cc-4372-a567-0e02b2c3d479"));  // leading space
  EXPECT_FALSE(is_uuid("f47ac10b058cc-4372-a567-0e02b2c3d479"));  // dash moved
  EXPECT_FALSE(is_uuid("f47ac10-b58cc-4372-a567-0e02b2c3d479"));  // dash moved
  EXPECT_FALSE(is_uuid("f47ac10b-58cc-4372-a567-0e02b2c3d4-9"));  // extra dash
  EXPECT_FALSE(is_uuid("------------------------------------"));
  EXPECT_FALSE(
      is_uuid(std::string_view("f47ac10b-58cc-4372-a567-0e02b2c3d4\0"
                               "9",
                               36)));
}

}  // namespace
}  // namespace inkwell
