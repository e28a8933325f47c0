#pragma once

#include "security/jwt.h"

#include <string>
#include <string_view>
#include <vector>

namespace inkwell::security {

// The auth service's signing keys: the active key signs; all keys verify and are published.
class KeyRing {
 public:
  /// `pem_paths`: comma-separated PEM file paths, first = active (JWT_PRIVATE_KEY_FILE may list
  /// two for rotation). When empty, uses `<data_dir>/jwt-signing-key.pem`, generating an ES256
  /// key once (mode 0600, written to a temporary file and renamed into place without ever
  /// replacing an existing file). Throws std::invalid_argument naming the file on problems.
  static KeyRing load(std::string_view pem_paths, const std::string& data_dir);
  /// A ring of keys already in memory, first = active (for tests). Throws std::invalid_argument
  /// when empty or when two keys share a kid.
  static KeyRing from_keys(std::vector<SigningKey> keys);

  const SigningKey& active() const { return keys_.front(); }
  const KeySet& verification_keys() const { return verification_; }

 private:
  explicit KeyRing(std::vector<SigningKey> keys);

  std::vector<SigningKey> keys_;
  KeySet verification_;
};

}  // namespace inkwell::security
