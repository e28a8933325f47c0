#pragma once

#include <sodium.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace inkwell::security {

/// Argon2id cost parameters; tests lower them to crypto_pwhash_OPSLIMIT_MIN / MEMLIMIT_MIN.
struct PasswordLimits {
  unsigned long long ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
  std::size_t mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
};

// Hashes and checks passwords with Argon2id in libsodium's self-describing string format.
class PasswordHasher {
 public:
  explicit PasswordHasher(PasswordLimits limits = {});

  /// A new "$argon2id$..." string with a random salt. Throws std::runtime_error when the
  /// memory for the hash cannot be had.
  std::string hash(std::string_view password) const;
  /// False for a wrong password and for a malformed or unsupported stored hash.
  bool verify(std::string_view stored_hash, std::string_view password) const;
  /// Same cost as verify() against a fixed dummy hash made at construction, for unknown accounts
  /// (so a wrong password and an unknown email take about the same time).
  void burn(std::string_view password) const;
  /// True when the stored hash is not Argon2id with this hasher's limits (or is malformed).
  bool needs_rehash(std::string_view stored_hash) const;

  const PasswordLimits& limits() const { return limits_; }

 private:
  PasswordLimits limits_;
  std::string dummy_hash_;
};

}  // namespace inkwell::security
