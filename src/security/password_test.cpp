#include "security/password.h"

#include <gtest/gtest.h>

namespace inkwell::security {
namespace {

PasswordHasher fast_hasher() {
  return PasswordHasher(PasswordLimits{crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN});
}

TEST(PasswordHasher, HashesWithArgon2idAndVerifies) {
  const PasswordHasher hasher = fast_hasher();
  const std::string stored = hasher.hash("correct horse battery staple");
  EXPECT_EQ(stored.rfind("$argon2id$", 0), 0U) << stored;
  EXPECT_TRUE(hasher.verify(stored, "correct horse battery staple"));
  EXPECT_FALSE(hasher.verify(stored, "correct horse battery stapler"));
  EXPECT_FALSE(hasher.verify(stored, ""));
}

TEST(PasswordHasher, SaltsEveryHash) {
  const PasswordHasher hasher = fast_hasher();
  EXPECT_NE(hasher.hash("same"), hasher.hash("same"));
}

TEST(PasswordHasher, KeepsEmbeddedNulsAndUnicode) {
  const PasswordHasher hasher = fast_hasher();
  const std::string password("p\0w \xc3\xa9", 6);
  const std::string stored = hasher.hash(password);
  EXPECT_TRUE(hasher.verify(stored, password));
  EXPECT_FALSE(hasher.verify(stored, "p"));
}

TEST(PasswordHasher, MalformedStoredHashesAreFalseNotErrors) {
  const PasswordHasher hasher = fast_hasher();
  const std::string stored = hasher.hash("pw");
  EXPECT_FALSE(hasher.verify("", "pw"));
  EXPECT_FALSE(hasher.verify("not a hash", "pw"));
  EXPECT_FALSE(hasher.verify("$argon2id$v=19$m=8,t=1,p=1$", "pw"));
  EXPECT_FALSE(hasher.verify(stored.substr(0, stored.size() - 5), "pw"));
  EXPECT_FALSE(hasher.verify(stored + std::string(1, '\0') + "x", "pw"));
  EXPECT_FALSE(hasher.verify(std::string(1000, 'a'), "pw"));
  EXPECT_TRUE(hasher.needs_rehash("not a hash"));
}

TEST(PasswordHasher, BurnAcceptsAnyPassword) {
  const PasswordHasher hasher = fast_hasher();
  hasher.burn("anything");
  hasher.burn("");
}

TEST(PasswordHasher, NeedsRehashWhenLimitsOrAlgorithmDiffer) {
  const PasswordHasher fast = fast_hasher();
  const PasswordHasher slower(
      PasswordLimits{crypto_pwhash_OPSLIMIT_MIN + 1, crypto_pwhash_MEMLIMIT_MIN});
  const std::string stored = fast.hash("pw");
  EXPECT_FALSE(fast.needs_rehash(stored));
  EXPECT_TRUE(slower.needs_rehash(stored));
  EXPECT_TRUE(slower.verify(stored, "pw"));  // old hashes still verify

  char argon2i[crypto_pwhash_STRBYTES] = {};
  ASSERT_EQ(crypto_pwhash_str_alg(argon2i, "pw", 2, crypto_pwhash_OPSLIMIT_MIN + 2,
                                  crypto_pwhash_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2I13),
            0);
  const PasswordHasher argon2i_limits(
      PasswordLimits{crypto_pwhash_OPSLIMIT_MIN + 2, crypto_pwhash_MEMLIMIT_MIN});
  EXPECT_TRUE(argon2i_limits.verify(argon2i, "pw"));
  EXPECT_TRUE(argon2i_limits.needs_rehash(argon2i));
}

TEST(PasswordHasher, WorksWithTheInteractiveDefaults) {
  const PasswordHasher hasher;
  const std::string stored = hasher.hash("hunter2");
  EXPECT_TRUE(hasher.verify(stored, "hunter2"));
  EXPECT_FALSE(hasher.verify(stored, "hunter3"));
  EXPECT_FALSE(hasher.needs_rehash(stored));
  hasher.burn("hunter2");
}

}  // namespace
}  // namespace inkwell::security
