#pragma once

#include "base/metrics.h"
#include "base/worker_pool.h"
#include "http/outbound.h"
#include "messaging/bus.h"
#include "security/jwt.h"
#include "security/key_ring.h"
#include "security/password.h"
#include "services/auth/auth_config.h"
#include "services/auth/repo/auth_repo.h"
#include "services/common/service_host.h"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

namespace inkwell::services::auth {

// The caller of a request, from a verified access token or from the gateway's X-User-* headers.
struct Caller {
  std::string id;
  std::string email;
  std::string name;
};

// What a provider told us about the person signing in.
struct ExternalIdentity {
  std::string provider;
  std::string subject;  // the provider's stable user id
  std::string email;    // verified
  std::string name;
  std::optional<std::string> avatar_url;
};

/// Wall-clock time as Unix seconds and milliseconds (token claims, expiry columns).
std::int64_t unix_seconds();
std::int64_t unix_millis();

// A sign-in with a provider that did not work out, for a reason the person can be shown
// (`code` goes to the app's login page as ?error=<code>).
class OAuthFailure : public std::runtime_error {
 public:
  OAuthFailure(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// The auth service: accounts, sessions (access JWTs and rotating refresh tokens), OAuth sign-in
// with Google and GitHub, profiles and the JWKS. Handlers live in handlers/, rules in domain/,
// SQL in repo/.
class AuthService {
 public:
  static constexpr std::string_view kName = "auth";
  static constexpr std::uint16_t kDefaultPort = 8081;

  /// Reads and validates the configuration (and any configured key files); throws ConfigError.
  explicit AuthService(ServiceHost& host);
  ~AuthService();

  /// Loads or creates the signing keys, registers the routes. `committed` is called after a
  /// transaction that wrote to the outbox commits (it wakes the relay).
  void start(storage::Database& database, std::function<void()> committed);

  /// Registrations, logins, refreshes and OAuth sign-ins for /metrics.
  void collect(metrics::Exposition& out) const;

 private:
  using Response = http::Response;
  using Context = http::Context;
  template <typename T>
  using awaitable = boost::asio::awaitable<T>;

  void add_routes();
  /// Runs a handler, turning storage failures into the shared error shape: an unreachable or
  /// busy database is 503 (retry later), a unique-key race is 409; anything else stays a 500.
  awaitable<Response> guarded(awaitable<Response> (AuthService::*handler)(Context&),
                              Context& context);

  // handlers/account_handlers.cpp
  awaitable<Response> register_account(Context& context);
  awaitable<Response> login(Context& context);
  awaitable<Response> refresh(Context& context);
  awaitable<Response> logout(Context& context);
  awaitable<Response> jwks(Context& context);
  // handlers/user_handlers.cpp
  awaitable<Response> me(Context& context);
  awaitable<Response> get_user(Context& context);
  awaitable<Response> patch_user(Context& context);
  // handlers/oauth_handlers.cpp
  awaitable<Response> oauth_start(Context& context);
  awaitable<Response> oauth_callback(Context& context);

  /// The verified caller; throws ApiError 401.
  Caller authenticate(const Context& context) const;
  /// Signs an access token for `user`.
  std::string access_token(const User& user) const;
  /// A new refresh token of `family` (a new family when empty), stored hashed in `tx`.
  std::string issue_refresh_token(storage::Executor& tx, const std::string& user_id,
                                  std::string family);
  /// 200/201 with {user, accessToken, tokenType, expiresIn} and the refresh cookie.
  Response session_response(const Context& context, http::Status status, const User& user,
                            const std::string& refresh_token) const;
  std::string refresh_cookie(const Context& context, const std::string& value,
                             bool clear = false) const;
  bool secure_cookies(const Context& context) const;
  /// The client's address: the gateway's X-Forwarded-For when the gateway vouches for the
  /// request, otherwise the peer.
  std::string client_address(const Context& context) const;
  bool from_gateway(const Context& context) const;
  /// Creates an account inside `tx`, choosing a free username when none was asked for; emits
  /// user.registered. Throws ApiError 409 for a taken email or username.
  User create_user(storage::Executor& tx, User user, bool username_chosen);
  /// The account for an external identity: linked before, or with the same verified email (then
  /// linked), or new.
  User sign_in_external(storage::Executor& tx, const ExternalIdentity& identity);

  // oauth/providers.cpp: code exchange and identity, blocking (run on the worker pool).
  ExternalIdentity google_identity(const OAuthProviderConfig& provider, const std::string& code,
                                   const std::string& verifier, const std::string& nonce);
  ExternalIdentity github_identity(const OAuthProviderConfig& provider, const std::string& code,
                                   const std::string& verifier);
  /// Google's signing keys, fetched on first use and again when a token names an unknown key.
  std::shared_ptr<const security::KeySet> google_keys(const OAuthProviderConfig& provider,
                                                      const std::string& kid);
  /// The configured provider named by the route; throws 404 when it is not configured.
  OAuthProviderConfig& provider(const Context& context);
  /// 302 to the app's login page with ?error=<code>.
  http::Response oauth_error_redirect(const std::string& provider, const std::string& code);

  ServiceHost& host_;
  Runtime& runtime_;
  AuthConfig config_;
  security::PasswordHasher hasher_;
  // Argon2id runs here, not on the shared blocking pool: one thread per core bounds both CPU and
  // memory (each hash holds INKWELL_ARGON2_MEMLIMIT_KIB), and database calls never queue
  // behind hashes. A full queue answers 503.
  WorkerPool hashing_;
  std::optional<security::KeyRing> keys_;  // set by start()
  security::VerifyOptions verify_options_;
  storage::Database* database_ = nullptr;
  std::optional<AuthRepo> repo_;
  std::function<void()> committed_;
  http::OutboundClient outbound_;

  std::mutex google_keys_mutex_;
  std::shared_ptr<const security::KeySet> google_keys_;        // guarded by google_keys_mutex_
  std::chrono::steady_clock::time_point google_keys_fetched_;  // guarded by google_keys_mutex_
  std::string google_missing_kid_;                             // guarded by google_keys_mutex_

  metrics::Counter registrations_;
  metrics::Counter logins_ok_;
  metrics::Counter logins_failed_;
  metrics::Counter logins_locked_;
  metrics::Counter refreshes_ok_;
  metrics::Counter refreshes_failed_;
  metrics::Counter refresh_reuse_;
  std::map<std::string, std::pair<metrics::Counter, metrics::Counter>, std::less<>>
      oauth_logins_;  // provider -> (ok, failed); keys fixed at construction
};

}  // namespace inkwell::services::auth
