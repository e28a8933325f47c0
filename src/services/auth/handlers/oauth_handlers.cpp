// GET /auth/oauth/{provider} and its callback: the authorization-code flow with PKCE (S256), a
// single-use state bound to the browser by a short-lived cookie, and sign-in or sign-up.
#include "base/error.h"
#include "base/log.h"
#include "messaging/outbox.h"
#include "security/hash.h"
#include "security/random.h"
#include "services/auth/auth_service.h"
#include "services/auth/domain/validation.h"

namespace inkwell::services::auth {

namespace {

constexpr std::int64_t kStateLifetimeMs = 10 * 60 * 1000;
constexpr std::string_view kBindingCookie = "inkwell_oauth";

ApiError bad_state(const std::string& message) {
  return ApiError(400, "invalid_oauth_state", message);
}

}  // namespace

OAuthProviderConfig& AuthService::provider(const Context& context) {
  const auto name = context.param("provider");
  if (name == "google" && config_.google) return *config_.google;
  if (name == "github" && config_.github) return *config_.github;
  throw ApiError::not_found("no sign-in provider '" + std::string(name.substr(0, 32)) +
                            "' is configured");
}

http::Response AuthService::oauth_error_redirect(const std::string& provider_name,
                                                 const std::string& code) {
  if (auto counts = oauth_logins_.find(provider_name); counts != oauth_logins_.end()) {
    counts->second.second.add();
  }
  http::Response response{http::Status::found, 11};
  response.set(http::beast_http::field::location,
               config_.public_url + "/login?error=" + code + "&provider=" + provider_name);
  response.set(http::beast_http::field::cache_control, "no-store");
  return response;
}

boost::asio::awaitable<http::Response> AuthService::oauth_start(Context& context) {
  const auto& config = provider(context);
  const std::string state = security::random_token(32);
  const std::string binding = security::random_token(32);
  OAuthState pending;
  pending.provider = config.name;
  pending.code_verifier = security::random_token(48);  // 64 characters (RFC 7636: 43-128)
  pending.nonce = security::random_token(16);
  pending.binding_hash = security::sha256_hex(binding);
  pending.expires_at = unix_millis() + kStateLifetimeMs;
  const std::string state_hash = security::sha256_hex(state);
  auto save_state = [this, state_hash, pending]() {
    repo_->insert_oauth_state(*database_, state_hash, pending);
  };
  co_await runtime_.blocking.run(std::move(save_state));

  std::vector<std::pair<std::string, std::string>> query{
      {"response_type", "code"},
      {"client_id", config.client_id},
      {"redirect_uri", config.redirect_uri},
      {"scope", config.scope},
      {"state", state},
      {"code_challenge", security::pkce_challenge_s256(pending.code_verifier)},
      {"code_challenge_method", "S256"},
  };
  if (config.name == "google") query.emplace_back("nonce", pending.nonce);
  const char joiner = config.authorize_url.find('?') == std::string::npos ? '?' : '&';

  http::Response response{http::Status::found, 11};
  response.set(http::beast_http::field::location,
               config.authorize_url + joiner + http::form_encode(query));
  // Lax, not Strict: the provider sends the browser back with a cross-site top-level GET.
  std::string cookie = std::string(kBindingCookie) + "=" + binding +
                       "; Path=" + config_.cookie_path +
                       "/oauth; HttpOnly; SameSite=Lax; Max-Age=600";
  if (secure_cookies(context)) cookie += "; Secure";
  response.insert(http::beast_http::field::set_cookie, cookie);
  response.set(http::beast_http::field::cache_control, "no-store");
  co_return response;
}

boost::asio::awaitable<http::Response> AuthService::oauth_callback(Context& context) {
  const auto& config = provider(context);
  const std::string name = config.name;
  const auto state = context.query_param("state");
  if (!state || state->empty() || state->size() > 256) {
    throw bad_state("the sign-in response has no state; start again");
  }
  const std::string state_hash = security::sha256_hex(*state);
  // Taken (deleted) before anything else: a state works once, even when this attempt fails.
  auto take_state = [this, state_hash]() {
    return repo_->take_oauth_state(*database_, state_hash);
  };
  auto pending = co_await runtime_.blocking.run(std::move(take_state));
  if (!pending) throw bad_state("the sign-in state is unknown or was already used; start again");
  if (pending->expires_at < unix_millis())
    throw bad_state("the sign-in took too long; start again");
  if (pending->provider != name) throw bad_state("the sign-in state belongs to another provider");
  const auto binding = context.cookie(kBindingCookie);
  if (!binding ||
      !security::constant_time_equal(security::sha256_hex(*binding), pending->binding_hash)) {
    throw bad_state("the sign-in was started in another browser; start again");
  }
  if (const auto error = context.query_param("error")) {
    co_return oauth_error_redirect(name,
                                   *error == "access_denied" ? "access_denied" : "oauth_failed");
  }
  const auto code = context.query_param("code");
  if (!code || code->empty() || code->size() > 2048) {
    throw ApiError::bad_request("the sign-in response has no authorization code");
  }

  struct Outcome {
    std::optional<User> user;
    std::string token;
    std::string failure;
  };
  const std::string verifier = pending->code_verifier;
  const std::string nonce = pending->nonce;
  const OAuthProviderConfig provider_config = config;
  auto finish = [this, provider_config, authorization_code = *code, verifier, nonce]() {
    Outcome result;
    try {
      const auto identity =
          provider_config.name == "google"
              ? google_identity(provider_config, authorization_code, verifier, nonce)
              : github_identity(provider_config, authorization_code, verifier);
      std::tie(result.user, result.token) = database_->transaction([&](storage::Executor& tx) {
        User user = sign_in_external(tx, identity);
        std::string token = issue_refresh_token(tx, user.id, "");
        return std::pair{std::optional<User>(std::move(user)), std::move(token)};
      });
    } catch (const OAuthFailure& failure) {
      log::warn("oauth sign-in refused", {{"provider", provider_config.name},
                                          {"reason", failure.code()},
                                          {"error", failure.what()}});
      result.failure = failure.code();
    } catch (const http::OutboundError& error) {
      log::warn("oauth provider unreachable",
                {{"provider", provider_config.name}, {"error", error.what()}});
      result.failure = "provider_unavailable";
    }
    return result;
  };
  auto outcome = co_await runtime_.blocking.run(std::move(finish));
  if (!outcome.user) co_return oauth_error_redirect(name, outcome.failure);
  committed_();
  oauth_logins_[name].first.add();
  http::Response response{http::Status::found, 11};
  response.set(http::beast_http::field::location, config_.public_url + "/");
  response.insert(http::beast_http::field::set_cookie, refresh_cookie(context, outcome.token));
  response.insert(http::beast_http::field::set_cookie,
                  std::string(kBindingCookie) + "=; Path=" + config_.cookie_path +
                      "/oauth; HttpOnly; SameSite=Lax; Max-Age=0");
  response.set(http::beast_http::field::cache_control, "no-store");
  co_return response;
}

User AuthService::sign_in_external(storage::Executor& tx, const ExternalIdentity& identity) {
  const auto now = messaging::rfc3339_utc(std::chrono::system_clock::now());
  if (const auto linked = repo_->external_login(tx, identity.provider, identity.subject)) {
    if (auto user = repo_->user_by_id(tx, *linked)) return *user;
  }
  if (auto user = repo_->user_by_email(tx, identity.email)) {
    // The provider verified this address, and the account is registered under it: same person.
    repo_->insert_external_login(tx, user->id, identity.provider, identity.subject, identity.email,
                                 now);
    return *user;
  }
  User user;
  user.email = identity.email;
  auto name = normalize_name(identity.name);
  user.name = name.value ? *name.value : identity.email.substr(0, identity.email.find('@'));
  user.username = derive_username(user.name, user.email);
  if (identity.avatar_url && avatar_url_problem(*identity.avatar_url).empty()) {
    user.avatar_url = identity.avatar_url;
  }
  user = create_user(tx, std::move(user), false);
  repo_->insert_external_login(tx, user.id, identity.provider, identity.subject, identity.email,
                               now);
  registrations_.add();
  return user;
}

}  // namespace inkwell::services::auth
