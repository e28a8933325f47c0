#pragma once

#include <cstddef>
#include <string>

namespace inkwell::security {

/// `n` bytes from libsodium's CSPRNG.
std::string random_bytes(std::size_t n);

/// A URL-safe secret: base64url of `bytes` random bytes (43 characters for the default 32).
std::string random_token(std::size_t bytes = 32);

}  // namespace inkwell::security
