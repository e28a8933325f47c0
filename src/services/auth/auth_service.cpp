#include "services/auth/auth_service.h"

#include "base/error.h"
#include "base/ids.h"
#include "base/log.h"
#include "messaging/outbox.h"
#include "security/hash.h"
#include "security/random.h"
#include "services/auth/domain/validation.h"

#include <boost/json/serialize.hpp>

namespace inkwell::services::auth {

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t unix_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

AuthService::AuthService(ServiceHost& host)
    : host_(host),
      runtime_(host.runtime()),
      config_(AuthConfig::read(host.runtime().settings)),
      hasher_(security::PasswordLimits{config_.argon2_ops, config_.argon2_mem_bytes}),
      hashing_("argon2", config_.argon2_threads, config_.argon2_queue) {
  verify_options_.issuer = config_.issuer;
  verify_options_.audiences = {config_.audience};
  // Configured key files are read now, so a bad one stops the process before anything starts.
  if (!config_.key_files.empty()) {
    try {
      keys_.emplace(security::KeyRing::load(config_.key_files, runtime_.data_dir));
    } catch (const std::invalid_argument& error) {
      throw ConfigError("JWT_PRIVATE_KEY_FILE", error.what());
    }
  }
  for (const auto* provider : {&config_.google, &config_.github}) {
    if (*provider) oauth_logins_[(*provider)->name];
  }
}

AuthService::~AuthService() = default;

void AuthService::start(storage::Database& database, std::function<void()> committed) {
  database_ = &database;
  repo_.emplace(database.dialect());
  committed_ = std::move(committed);
  if (!keys_) keys_.emplace(security::KeyRing::load("", runtime_.data_dir));
  log::info("auth signing key ready", {{"kid", keys_->active().kid()},
                                       {"verificationKeys", keys_->verification_keys().size()}});
  // Expired refresh tokens and abandoned OAuth sign-ins are pruned at start; both are also
  // refused by expiry checks, so pruning is housekeeping, not a guarantee.
  const auto now = unix_millis();
  repo_->prune_refresh_tokens(database, now - 7LL * 24 * 3600 * 1000);
  repo_->prune_oauth_states(database, now);
  add_routes();
}

void AuthService::add_routes() {
  auto& router = host_.router();
  using http::Method;
  const auto bind = [this](awaitable<Response> (AuthService::*handler)(Context&)) {
    return [this, handler](Context& context) { return guarded(handler, context); };
  };
  router.add(Method::post, "/auth/register", bind(&AuthService::register_account));
  router.add(Method::post, "/auth/login", bind(&AuthService::login));
  router.add(Method::post, "/auth/refresh", bind(&AuthService::refresh));
  router.add(Method::post, "/auth/logout", bind(&AuthService::logout));
  router.add(Method::get, "/auth/oauth/{provider}", bind(&AuthService::oauth_start));
  router.add(Method::get, "/auth/oauth/{provider}/callback", bind(&AuthService::oauth_callback));
  router.add(Method::get, "/.well-known/jwks.json", bind(&AuthService::jwks));
  router.add(Method::get, "/users/me", bind(&AuthService::me));
  router.add(Method::get, "/users/{id}", bind(&AuthService::get_user));
  router.add(Method::patch, "/users/{id}", bind(&AuthService::patch_user));
}

boost::asio::awaitable<http::Response> AuthService::guarded(
    awaitable<Response> (AuthService::*handler)(Context&), Context& context) {
  try {
    co_return co_await (this->*handler)(context);
  } catch (const storage::DatabaseError& error) {
    if (error.kind() == storage::DatabaseError::Kind::unavailable) {
      log::warn("auth database unavailable", {{"error", error.what()}});
      throw ApiError::unavailable("the account database is unavailable; retry shortly");
    }
    if (error.kind() == storage::DatabaseError::Kind::unique_violation) {
      throw ApiError(409, "conflict", "a concurrent change conflicted with this one; retry");
    }
    throw;
  }
}

bool AuthService::from_gateway(const Context& context) const {
  if (!config_.internal_token) return false;
  const auto presented = context.header("X-Internal-Token");
  return !presented.empty() && security::constant_time_equal(presented, *config_.internal_token);
}

Caller AuthService::authenticate(const Context& context) const {
  if (from_gateway(context)) {
    const auto id = context.header("X-User-Id");
    if (!id.empty() && is_uuid(id)) {
      return {std::string(id), std::string(context.header("X-User-Email")),
              std::string(context.header("X-User-Name"))};
    }
  }
  const auto authorization = context.header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.empty()) {
    throw ApiError(401, "unauthorized", "sign in first: no access token");
  }
  if (authorization.size() <= kBearer.size() ||
      !std::equal(kBearer.begin(), kBearer.end(), authorization.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) ==
               std::tolower(static_cast<unsigned char>(b));
      })) {
    throw ApiError(401, "invalid_token", "the Authorization header must be 'Bearer <token>'");
  }
  const auto token = authorization.substr(kBearer.size());
  auto verified = keys_->verification_keys().verify(token, verify_options_);
  if (const auto* error = std::get_if<security::JwtError>(&verified)) {
    throw ApiError(401, "invalid_token", "the access token is not valid",
                   {{"reason", security::to_string(*error)}});
  }
  const auto& claims = std::get<boost::json::object>(verified);
  const auto text = [&](std::string_view key) -> std::string {
    const auto* value = claims.if_contains(key);
    return value && value->is_string() ? std::string(value->get_string()) : std::string{};
  };
  Caller caller{text("sub"), text("email"), text("name")};
  if (!is_uuid(caller.id)) {
    throw ApiError(401, "invalid_token", "the access token is not valid",
                   {{"reason", "missing_claim"}});
  }
  return caller;
}

std::string AuthService::access_token(const User& user) const {
  const auto now = unix_seconds();
  return keys_->active().sign({
      {"iss", config_.issuer},
      {"aud", config_.audience},
      {"sub", user.id},
      {"email", user.email},
      {"name", user.name},
      {"username", user.username},
      {"iat", now},
      {"nbf", now},
      {"exp", now + config_.access_ttl.count()},
      {"jti", new_uuid()},
  });
}

std::string AuthService::issue_refresh_token(storage::Executor& tx, const std::string& user_id,
                                             std::string family) {
  auto token = security::random_token(32);
  RefreshToken stored;
  stored.hash = security::sha256_hex(token);
  stored.family = family.empty() ? new_uuid() : std::move(family);
  stored.user_id = user_id;
  stored.expires_at =
      unix_millis() +
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.refresh_ttl).count();
  repo_->insert_refresh_token(tx, stored, messaging::rfc3339_utc(std::chrono::system_clock::now()));
  return token;
}

bool AuthService::secure_cookies(const Context& context) const {
  switch (config_.cookie_secure) {
    case CookieSecure::always:
      return true;
    case CookieSecure::never:
      return false;
    case CookieSecure::automatic:
      break;
  }
  return config_.public_url.starts_with("https:") || context.header("X-Forwarded-Proto") == "https";
}

std::string AuthService::refresh_cookie(const Context& context, const std::string& value,
                                        bool clear) const {
  std::string cookie = "inkwell_refresh=" + value + "; Path=" + config_.cookie_path +
                       "; HttpOnly; SameSite=Strict; Max-Age=" +
                       (clear ? std::string("0") : std::to_string(config_.refresh_ttl.count()));
  if (secure_cookies(context)) cookie += "; Secure";
  return cookie;
}

http::Response AuthService::session_response(const Context& context, http::Status status,
                                             const User& user,
                                             const std::string& refresh_token) const {
  auto response = http::json_response(status, boost::json::object{
                                                  {"user", private_view(user)},
                                                  {"accessToken", access_token(user)},
                                                  {"tokenType", "Bearer"},
                                                  {"expiresIn", config_.access_ttl.count()},
                                              });
  response.insert(http::beast_http::field::set_cookie, refresh_cookie(context, refresh_token));
  response.set(http::beast_http::field::cache_control, "no-store");
  return response;
}

std::string AuthService::client_address(const Context& context) const {
  if (from_gateway(context)) {
    // The gateway appends the address it saw; the last hop is the one it vouches for.
    auto forwarded = context.header("X-Forwarded-For");
    const auto comma = forwarded.rfind(',');
    if (comma != std::string_view::npos) forwarded = forwarded.substr(comma + 1);
    while (!forwarded.empty() && forwarded.front() == ' ') forwarded.remove_prefix(1);
    if (!forwarded.empty() && forwarded.size() <= 64) return std::string(forwarded);
  }
  return context.remote_address();
}

User AuthService::create_user(storage::Executor& tx, User user, bool username_chosen) {
  if (repo_->user_by_email(tx, user.email)) {
    throw ApiError(409, "email_taken", "an account with this email already exists",
                   {{"email", "is already registered"}});
  }
  if (username_chosen) {
    if (repo_->username_taken(tx, user.username)) {
      throw ApiError(409, "username_taken", "this username is taken",
                     {{"username", "is already taken"}});
    }
  } else {
    const std::string base = user.username;
    for (unsigned attempt = 2; repo_->username_taken(tx, user.username); ++attempt) {
      // Small numbers first, as people would pick; random ones once those are crowded.
      const unsigned suffix =
          attempt < 20 ? attempt : 20 + static_cast<unsigned>(unix_millis() % 1'000'000);
      user.username = username_with_suffix(base, suffix);
    }
  }
  const auto now = messaging::rfc3339_utc(std::chrono::system_clock::now());
  user.id = new_uuid();
  user.version = 1;
  user.created_at = now;
  user.updated_at = now;
  // A concurrent registration of the same email or username loses here, on the unique indexes.
  repo_->insert_user(tx, user);
  messaging::enqueue(tx, user_registered(user));
  return user;
}

void AuthService::collect(metrics::Exposition& out) const {
  out.gauge("worker_pool_queued", "Blocking calls waiting for a worker.", {{"pool", "argon2"}},
            static_cast<double>(hashing_.queued()));
  out.counter("auth_registrations_total", "Accounts created (password and OAuth).", {},
              static_cast<double>(registrations_.value()));
  out.counter("auth_logins_total", "Password sign-in attempts by result.", {{"result", "ok"}},
              static_cast<double>(logins_ok_.value()));
  out.counter("auth_logins_total", "Password sign-in attempts by result.", {{"result", "failed"}},
              static_cast<double>(logins_failed_.value()));
  out.counter("auth_logins_total", "Password sign-in attempts by result.", {{"result", "locked"}},
              static_cast<double>(logins_locked_.value()));
  out.counter("auth_refreshes_total", "Refresh-token rotations by result.", {{"result", "ok"}},
              static_cast<double>(refreshes_ok_.value()));
  out.counter("auth_refreshes_total", "Refresh-token rotations by result.", {{"result", "failed"}},
              static_cast<double>(refreshes_failed_.value()));
  out.counter("auth_refreshes_total", "Refresh-token rotations by result.", {{"result", "reused"}},
              static_cast<double>(refresh_reuse_.value()));
  for (const auto& [provider, counts] : oauth_logins_) {
    out.counter("auth_oauth_logins_total", "OAuth sign-ins by provider and result.",
                {{"provider", provider}, {"result", "ok"}},
                static_cast<double>(counts.first.value()));
    out.counter("auth_oauth_logins_total", "OAuth sign-ins by provider and result.",
                {{"provider", provider}, {"result", "failed"}},
                static_cast<double>(counts.second.value()));
  }
}

}  // namespace inkwell::services::auth
