#pragma once

#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>

// Pure rules for account input: no I/O, unit-tested without HTTP (domain/validation_test.cpp).
namespace inkwell::services::auth {

inline constexpr std::size_t kPasswordMin = 10;
inline constexpr std::size_t kPasswordMax = 256;
inline constexpr std::size_t kNameMax = 80;
inline constexpr std::size_t kUsernameMin = 3;
inline constexpr std::size_t kUsernameMax = 30;
inline constexpr std::size_t kAvatarUrlMax = 2048;
inline constexpr std::size_t kPreferencesMax = 8 * 1024;  // serialized bytes

// A checked value or the reason it was refused (a message for the 422 details).
template <typename T>
struct Checked {
  std::optional<T> value;
  std::string problem;
};

/// Trims, lower-cases the domain, and checks the shape of an address (one '@', a local part of
/// 1-64 printable ASCII characters, a dotted domain of letters, digits and hyphens, at most 254
/// characters in all).
Checked<std::string> normalize_email(std::string_view raw);
/// 10-256 characters (code points), valid UTF-8, not in the common-password list, not the
/// email address itself. Returns an empty problem when acceptable.
std::string password_problem(std::string_view password, std::string_view email);
/// Trims; 1-80 code points of valid UTF-8 with at least one visible character and no control
/// characters.
Checked<std::string> normalize_name(std::string_view raw);
/// 3-30 of a-z, 0-9 and '_'.
std::string username_problem(std::string_view username);
/// A handle derived from a display name (or the email's local part when the name has no usable
/// letters): lower-cased ASCII letters and digits, other runs turned into '_', 3-30 characters.
std::string derive_username(std::string_view name, std::string_view email);
/// `base` with a numeric suffix that keeps it within 30 characters: ("ann", 7) -> "ann_7".
std::string username_with_suffix(std::string_view base, unsigned suffix);
/// An absolute http(s) URL with a host, at most 2048 characters.
std::string avatar_url_problem(std::string_view url);
/// A JSON object of at most 8 KiB once serialized.
std::string preferences_problem(const boost::json::value& preferences);
/// True when the password is in the built-in list of commonly used passwords (case-insensitive).
bool is_common_password(std::string_view password);

}  // namespace inkwell::services::auth
