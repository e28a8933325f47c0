#include "security/password.h"

#include "security/random.h"
#include "security/sodium_init.h"

#include <array>
#include <stdexcept>

namespace inkwell::security {
namespace {

constexpr std::string_view kArgon2idPrefix = "$argon2id$";

// libsodium wants a NUL-terminated hash no longer than crypto_pwhash_STRBYTES - 1.
bool to_c_string(std::string_view stored_hash, std::array<char, crypto_pwhash_STRBYTES>& out) {
  if (stored_hash.empty() || stored_hash.size() >= out.size()) return false;
  if (stored_hash.find('\0') != std::string_view::npos) return false;
  out.fill('\0');
  stored_hash.copy(out.data(), stored_hash.size());
  return true;
}

}  // namespace

PasswordHasher::PasswordHasher(PasswordLimits limits) : limits_(limits) {
  detail::init_sodium();
  dummy_hash_ = hash(random_token());
}

std::string PasswordHasher::hash(std::string_view password) const {
  std::array<char, crypto_pwhash_STRBYTES> out{};
  if (crypto_pwhash_str_alg(out.data(), password.data(), password.size(), limits_.ops, limits_.mem,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("password hashing failed: out of memory");
  }
  return std::string(out.data());
}

bool PasswordHasher::verify(std::string_view stored_hash, std::string_view password) const {
  std::array<char, crypto_pwhash_STRBYTES> c_hash{};
  if (!to_c_string(stored_hash, c_hash)) return false;
  return crypto_pwhash_str_verify(c_hash.data(), password.data(), password.size()) == 0;
}

void PasswordHasher::burn(std::string_view password) const {
  static_cast<void>(verify(dummy_hash_, password));
}

bool PasswordHasher::needs_rehash(std::string_view stored_hash) const {
  std::array<char, crypto_pwhash_STRBYTES> c_hash{};
  if (!to_c_string(stored_hash, c_hash)) return true;
  if (stored_hash.substr(0, kArgon2idPrefix.size()) != kArgon2idPrefix) return true;
  return crypto_pwhash_str_needs_rehash(c_hash.data(), limits_.ops, limits_.mem) != 0;
}

}  // namespace inkwell::security
