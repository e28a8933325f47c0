#pragma once

#include <string>
#include <string_view>

namespace inkwell::security {

/// SHA-256 digest, raw 32 bytes.
std::string sha256(std::string_view data);

/// SHA-256 digest as 64 lower-case hex characters (e.g. to store refresh-token hashes).
std::string sha256_hex(std::string_view data);

/// The RFC 7636 S256 code challenge: base64url(sha256(verifier)).
std::string pkce_challenge_s256(std::string_view verifier);

/// Compares in time that depends only on the lengths (a length mismatch returns false at once).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace inkwell::security
