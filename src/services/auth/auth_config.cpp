#include "services/auth/auth_config.h"

#include <sodium.h>

#include <algorithm>
#include <thread>

namespace inkwell::services::auth {
namespace {

std::optional<OAuthProviderConfig> read_provider(const Settings& settings, std::string_view name,
                                                 const std::string& public_url,
                                                 const OAuthProviderConfig& defaults) {
  const std::string prefix = "OAUTH_" + std::string(name == "google" ? "GOOGLE" : "GITHUB") + "_";
  auto client_id = settings.optional(prefix + "CLIENT_ID");
  // Read every variable even when the provider is off, so none is reported as unknown.
  auto secret = settings.optional(prefix + "CLIENT_SECRET");
  const auto url = [&](std::string_view key, const std::string& fallback) {
    return *settings.url(prefix + std::string(key), fallback, {"http", "https"});
  };
  OAuthProviderConfig config = defaults;
  config.name = std::string(name);
  config.authorize_url = url("AUTH_URL", defaults.authorize_url);
  config.token_url = url("TOKEN_URL", defaults.token_url);
  config.redirect_uri =
      url("REDIRECT_URI", public_url + "/api/auth/oauth/" + std::string(name) + "/callback");
  config.scope = settings.text(prefix + "SCOPE", defaults.scope);
  if (name == "google") {
    config.jwks_url = url("JWKS_URL", defaults.jwks_url);
    config.issuer = settings.text(prefix + "ISSUER", defaults.issuer);
  } else {
    config.api_url = url("API_URL", defaults.api_url);
  }
  if (!client_id || client_id->empty()) return std::nullopt;
  if (!secret || secret->empty()) {
    throw ConfigError(prefix + "CLIENT_SECRET", "is required when " + prefix + "CLIENT_ID is set");
  }
  config.client_id = std::move(*client_id);
  config.client_secret = std::move(*secret);
  return config;
}

}  // namespace

AuthConfig AuthConfig::read(const Settings& settings) {
  AuthConfig config;
  config.key_files = settings.text("JWT_PRIVATE_KEY_FILE", "");
  config.issuer = settings.text("JWT_ISSUER", "inkwell");
  config.audience = settings.text("JWT_AUDIENCE", "inkwell");
  if (config.issuer.empty()) throw ConfigError("JWT_ISSUER", "must not be empty");
  if (config.audience.empty()) throw ConfigError("JWT_AUDIENCE", "must not be empty");
  config.access_ttl =
      std::chrono::seconds(settings.integer("JWT_ACCESS_TOKEN_TTL_SECONDS", 900, 30, 86'400));
  config.refresh_ttl =
      std::chrono::hours(24 * settings.integer("INKWELL_REFRESH_TOKEN_TTL_DAYS", 30, 1, 365));
  config.public_url =
      *settings.url("INKWELL_PUBLIC_URL", "http://localhost:8080", {"http", "https"});
  while (config.public_url.ends_with('/')) config.public_url.pop_back();
  config.cookie_path = settings.text("INKWELL_AUTH_COOKIE_PATH", "/api/auth");
  if (!config.cookie_path.starts_with('/') ||
      config.cookie_path.find_first_of(";, \t\r\n") != std::string::npos) {
    throw ConfigError("INKWELL_AUTH_COOKIE_PATH", "must be a path starting with '/'");
  }
  const auto secure =
      settings.one_of("INKWELL_AUTH_COOKIE_SECURE", "auto", {"auto", "always", "never"});
  config.cookie_secure = secure == "always"  ? CookieSecure::always
                         : secure == "never" ? CookieSecure::never
                                             : CookieSecure::automatic;
  config.internal_token = settings.optional("INKWELL_INTERNAL_TOKEN");
  if (config.internal_token && config.internal_token->size() < 16) {
    throw ConfigError("INKWELL_INTERNAL_TOKEN", "must be at least 16 characters");
  }
  const auto window = settings.integer("INKWELL_AUTH_LOCKOUT_WINDOW_SECONDS", 900, 1, 86'400);
  config.account_throttle = {
      static_cast<int>(settings.integer("INKWELL_AUTH_LOCKOUT_FAILURES", 5, 1, 1000)),
      window * 1000, window * 1000};
  config.ip_throttle = {
      static_cast<int>(settings.integer("INKWELL_AUTH_LOCKOUT_IP_FAILURES", 50, 1, 100'000)),
      window * 1000, window * 1000};
  config.argon2_ops = static_cast<unsigned long long>(
      settings.integer("INKWELL_ARGON2_OPSLIMIT", crypto_pwhash_OPSLIMIT_INTERACTIVE,
                       crypto_pwhash_OPSLIMIT_MIN, 10));
  config.argon2_mem_bytes = static_cast<std::size_t>(
      settings.integer("INKWELL_ARGON2_MEMLIMIT_KIB", crypto_pwhash_MEMLIMIT_INTERACTIVE / 1024,
                       crypto_pwhash_MEMLIMIT_MIN / 1024, 1024 * 1024) *
      1024);

  config.argon2_threads = static_cast<std::size_t>(settings.integer(
      "INKWELL_ARGON2_THREADS", std::max(1U, std::thread::hardware_concurrency()), 1, 256));
  config.argon2_queue =
      static_cast<std::size_t>(settings.integer("INKWELL_ARGON2_QUEUE", 256, 1, 100'000));

  OAuthProviderConfig google;
  google.authorize_url = "https://accounts.google.com/o/oauth2/v2/auth";
  google.token_url = "https://oauth2.googleapis.com/token";
  google.scope = "openid email profile";
  google.jwks_url = "https://www.googleapis.com/oauth2/v3/certs";
  google.issuer = "https://accounts.google.com";
  config.google = read_provider(settings, "google", config.public_url, google);
  OAuthProviderConfig github;
  github.authorize_url = "https://github.com/login/oauth/authorize";
  github.token_url = "https://github.com/login/oauth/access_token";
  github.scope = "read:user user:email";
  github.api_url = "https://api.github.com";
  config.github = read_provider(settings, "github", config.public_url, github);
  return config;
}

}  // namespace inkwell::services::auth
