#pragma once

#include <string>
#include <string_view>

namespace inkwell {

/// A random RFC 4122 version-4 UUID in canonical lower-case form. Not for secrets:
/// tokens come from libsodium.
std::string new_uuid();

/// True for a canonical (8-4-4-4-12, hex) UUID of any version.
bool is_uuid(std::string_view text);

}  // namespace inkwell
