#include "services/auth/domain/validation.h"

#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>

namespace inkwell::services::auth {
namespace {

std::string_view trim(std::string_view text) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

// Decodes UTF-8 strictly (no overlongs, no surrogates); calls visit(code point) for each.
// Returns false on malformed input.
template <typename Visit>
bool for_each_code_point(std::string_view text, Visit visit) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    char32_t cp = 0;
    std::size_t length = 0;
    if (byte < 0x80) {
      cp = byte;
      length = 1;
    } else if ((byte & 0xE0U) == 0xC0U) {
      cp = byte & 0x1FU;
      length = 2;
    } else if ((byte & 0xF0U) == 0xE0U) {
      cp = byte & 0x0FU;
      length = 3;
    } else if ((byte & 0xF8U) == 0xF0U) {
      cp = byte & 0x07U;
      length = 4;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0U) != 0x80U) return false;
      cp = (cp << 6U) | (next & 0x3FU);
    }
    constexpr char32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinimum[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    visit(cp);
    i += length;
  }
  return true;
}

bool is_control(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029;
}

// Invisible on their own: spaces, zero-width characters, the byte-order mark.
bool is_blank(char32_t cp) {
  return cp == ' ' || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF || cp == 0x2060;
}

bool valid_domain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253 || domain.find('.') == std::string_view::npos) {
    return false;
  }
  std::size_t start = 0;
  while (start <= domain.size()) {
    const auto dot = std::min(domain.find('.', start), domain.size());
    const auto label = domain.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    start = dot + 1;
  }
  const auto tld = domain.substr(domain.rfind('.') + 1);
  return tld.size() >= 2 && std::none_of(tld.begin(), tld.end(), [](char c) {
           return std::isdigit(static_cast<unsigned char>(c));
         });
}

}  // namespace

Checked<std::string> normalize_email(std::string_view raw) {
  const auto email = trim(raw);
  if (email.empty()) return {std::nullopt, "is required"};
  if (email.size() > 254) return {std::nullopt, "must be at most 254 characters"};
  const auto at = email.find('@');
  if (at == std::string_view::npos || email.find('@', at + 1) != std::string_view::npos) {
    return {std::nullopt, "must be an email address"};
  }
  const auto local = email.substr(0, at);
  const auto domain = email.substr(at + 1);
  constexpr std::string_view kForbidden = "\"(),:;<>[\\]";
  const bool local_ok =
      !local.empty() && local.size() <= 64 && local.front() != '.' && local.back() != '.' &&
      local.find("..") == std::string_view::npos &&
      std::all_of(local.begin(), local.end(), [&](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte > 0x20 && byte < 0x7F && kForbidden.find(c) == std::string_view::npos;
      });
  if (!local_ok || !valid_domain(domain)) return {std::nullopt, "must be an email address"};
  std::string out(local);
  out += '@';
  std::transform(domain.begin(), domain.end(), std::back_inserter(out), lower);
  return {std::move(out), ""};
}

std::string password_problem(std::string_view password, std::string_view email) {
  std::size_t count = 0;
  if (!for_each_code_point(password, [&](char32_t) { ++count; })) {
    return "must be valid UTF-8 text";
  }
  if (count < kPasswordMin) return "must be at least 10 characters";
  if (count > kPasswordMax) return "must be at most 256 characters";
  if (is_common_password(password)) return "is too common; choose another";
  const auto same = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
  };
  if (!email.empty() && same(password, email)) return "must not be your email address";
  return {};
}

Checked<std::string> normalize_name(std::string_view raw) {
  const auto name = trim(raw);
  std::size_t count = 0;
  bool visible = false;
  bool control = false;
  if (!for_each_code_point(name, [&](char32_t cp) {
        ++count;
        control = control || is_control(cp);
        visible = visible || !is_blank(cp);
      })) {
    return {std::nullopt, "must be valid UTF-8 text"};
  }
  if (count == 0 || !visible) return {std::nullopt, "is required"};
  if (control) return {std::nullopt, "must not contain control characters"};
  if (count > kNameMax) return {std::nullopt, "must be at most 80 characters"};
  return {std::string(name), ""};
}

std::string username_problem(std::string_view username) {
  if (username.size() < kUsernameMin || username.size() > kUsernameMax) {
    return "must be 3-30 characters";
  }
  const bool ok = std::all_of(username.begin(), username.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  return ok ? std::string{} : "may contain only a-z, 0-9 and _";
}

std::string derive_username(std::string_view name, std::string_view email) {
  const auto slug = [](std::string_view text) {
    std::string out;
    for (char c : text) {
      const char l = lower(c);
      if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9')) {
        out += l;
      } else if (!out.empty() && out.back() != '_') {
        out += '_';
      }
    }
    while (!out.empty() && out.back() == '_') out.pop_back();
    if (out.size() > kUsernameMax - 4) out.resize(kUsernameMax - 4);  // room for a suffix
    while (!out.empty() && out.back() == '_') out.pop_back();
    return out;
  };
  std::string handle = slug(name);
  if (handle.size() < kUsernameMin) handle = slug(email.substr(0, email.find('@')));
  if (handle.empty()) handle = "user";
  while (handle.size() < kUsernameMin) handle += '_';
  return handle;
}

std::string username_with_suffix(std::string_view base, unsigned suffix) {
  std::string tail = std::to_string(suffix);
  tail.insert(tail.begin(), '_');
  std::string out(base.substr(0, std::min(base.size(), kUsernameMax - tail.size())));
  out.append(tail);
  return out;
}

std::string avatar_url_problem(std::string_view url) {
  if (url.size() > kAvatarUrlMax) return "must be at most 2048 characters";
  const auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return "must be an absolute http or https URL";
  const auto scheme = parsed->scheme_id();
  if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https) {
    return "must be an absolute http or https URL";
  }
  if (!parsed->has_authority() || parsed->encoded_host().empty()) return "must name a host";
  return {};
}

std::string preferences_problem(const boost::json::value& preferences) {
  if (!preferences.is_object()) return "must be a JSON object";
  if (boost::json::serialize(preferences).size() > kPreferencesMax) {
    return "must be at most 8192 bytes";
  }
  return {};
}

}  // namespace inkwell::services::auth
