#pragma once

#include "base/settings.h"
#include "services/auth/domain/throttle.h"

#include <chrono>
#include <optional>
#include <string>

namespace inkwell::services::auth {

// One OAuth 2.0 provider's endpoints and client registration (OAUTH_<PROVIDER>_*).
struct OAuthProviderConfig {
  std::string name;  // "google" or "github"
  std::string client_id;
  std::string client_secret;
  std::string authorize_url;
  std::string token_url;
  std::string redirect_uri;  // this service's callback as the browser reaches it
  std::string scope;
  // Google (OpenID Connect): the ID token's signing keys and issuer.
  std::string jwks_url;
  std::string issuer;
  // GitHub: the REST API base (…/user, …/user/emails).
  std::string api_url;
};

// Whether the refresh cookie carries `Secure`: always, never, or when the request came over TLS
// (X-Forwarded-Proto: https from the proxy in front).
enum class CookieSecure { automatic, always, never };

// Everything the auth service reads from configuration, validated at construction.
struct AuthConfig {
  std::string key_files;  // JWT_PRIVATE_KEY_FILE: comma-separated PEM paths, first signs
  std::string issuer;     // JWT_ISSUER
  std::string audience;   // JWT_AUDIENCE
  std::chrono::seconds access_ttl{900};
  std::chrono::seconds refresh_ttl{std::chrono::hours(24 * 30)};
  std::string public_url;  // where browsers reach the gateway: redirects after OAuth
  std::string cookie_path;
  CookieSecure cookie_secure = CookieSecure::automatic;
  std::optional<std::string> internal_token;  // lets the gateway vouch for X-User-* headers
  ThrottlePolicy account_throttle;
  ThrottlePolicy ip_throttle;
  unsigned long long argon2_ops = 0;
  std::size_t argon2_mem_bytes = 0;
  std::size_t argon2_threads = 1;  // INKWELL_ARGON2_THREADS, default: one per core
  std::size_t argon2_queue = 256;  // INKWELL_ARGON2_QUEUE: waiting hashes before 503
  std::optional<OAuthProviderConfig> google;
  std::optional<OAuthProviderConfig> github;

  /// Reads and checks every setting; throws ConfigError naming the variable.
  static AuthConfig read(const Settings& settings);
};

}  // namespace inkwell::services::auth
