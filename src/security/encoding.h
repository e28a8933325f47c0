#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace inkwell::security {

/// Base64url (RFC 4648 section 5) without padding, as JWS and PKCE use it.
std::string base64url_encode(std::string_view bytes);

/// Decodes unpadded base64url. Returns nullopt for '=', characters outside the alphabet, an
/// impossible length, or non-zero unused trailing bits (so every value has one spelling).
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace inkwell::security
