// Talking to Google and GitHub: exchanging the authorization code (with the PKCE verifier) and
// reading who signed in. Blocking; runs on the worker pool.
#include "base/json.h"
#include "base/log.h"
#include "security/encoding.h"
#include "services/auth/auth_service.h"
#include "services/auth/domain/validation.h"

#include <boost/json/parse.hpp>

namespace inkwell::services::auth {

namespace {

constexpr std::chrono::milliseconds kProviderTimeout{10'000};

std::string text(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value && value->is_string() ? std::string(value->get_string()) : std::string{};
}

boost::json::object parse_json_object(const http::OutboundResponse& response,
                                      std::string_view what) {
  auto parsed = json::try_parse(response.body);
  if (!parsed || !parsed->is_object()) {
    throw OAuthFailure("oauth_failed", std::string(what) + " answered " +
                                           std::to_string(response.status) + " without JSON");
  }
  return std::move(parsed->as_object());
}

// The token endpoint's answer, or OAuthFailure with the provider's error.
boost::json::object exchange_code(const http::OutboundClient& client,
                                  const OAuthProviderConfig& provider, const std::string& code,
                                  const std::string& verifier) {
  http::OutboundRequest request;
  request.method = "POST";
  request.url = provider.token_url;
  request.timeout = kProviderTimeout;
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                     {"Accept", "application/json"},
                     {"User-Agent", "inkwell-auth"}};
  request.body = http::form_encode({{"grant_type", "authorization_code"},
                                    {"code", code},
                                    {"redirect_uri", provider.redirect_uri},
                                    {"client_id", provider.client_id},
                                    {"client_secret", provider.client_secret},
                                    {"code_verifier", verifier}});
  const auto response = client.send(request);
  auto body = parse_json_object(response, "the token endpoint");
  // GitHub reports errors with 200 and an "error" member; Google with 400/401.
  if (response.status != 200 || body.contains("error")) {
    throw OAuthFailure("oauth_exchange_failed",
                       "the token endpoint refused the code: " + text(body, "error") + " " +
                           text(body, "error_description"));
  }
  if (text(body, "access_token").empty()) {
    throw OAuthFailure("oauth_exchange_failed", "the token endpoint returned no access token");
  }
  return body;
}

// The "kid" of a compact JWS, read without trusting anything else in it.
std::string token_kid(std::string_view token) {
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return {};
  const auto header = security::base64url_decode(token.substr(0, dot));
  if (!header) return {};
  auto parsed = json::try_parse(*header);
  if (!parsed || !parsed->is_object()) return {};
  return text(parsed->as_object(), "kid");
}

std::string checked_email(std::string_view email) {
  auto normalized = normalize_email(email);
  if (!normalized.value) {
    throw OAuthFailure("email_not_verified", "the provider gave no usable email address");
  }
  return *normalized.value;
}

}  // namespace

std::shared_ptr<const security::KeySet> AuthService::google_keys(
    const OAuthProviderConfig& provider, const std::string& kid) {
  std::lock_guard lock(google_keys_mutex_);
  const auto now = std::chrono::steady_clock::now();
  const bool fresh = now - google_keys_fetched_ < std::chrono::hours(1);
  // A kid the cached set lacks means Google rotated: fetch again, but ask about one missing kid
  // at most every 30 s (the token endpoint, not the client, chooses the token, so this is rare).
  const bool asked_recently =
      kid == google_missing_kid_ && now - google_keys_fetched_ < std::chrono::seconds(30);
  if (google_keys_ && fresh && (google_keys_->has(kid) || asked_recently)) return google_keys_;
  http::OutboundRequest request;
  request.url = provider.jwks_url;
  request.timeout = kProviderTimeout;
  const auto response = outbound_.send(request);
  if (response.status != 200) {
    throw OAuthFailure("provider_unavailable",
                       "the JWKS endpoint answered " + std::to_string(response.status));
  }
  auto parsed = json::try_parse(response.body);
  if (!parsed) throw OAuthFailure("provider_unavailable", "the JWKS is not JSON");
  try {
    google_keys_ = std::make_shared<const security::KeySet>(security::KeySet::from_jwks(*parsed));
  } catch (const std::invalid_argument& error) {
    throw OAuthFailure("provider_unavailable",
                       std::string("the JWKS is unusable: ") + error.what());
  }
  google_keys_fetched_ = now;
  google_missing_kid_ = google_keys_->has(kid) ? std::string{} : kid;
  return google_keys_;
}

ExternalIdentity AuthService::google_identity(const OAuthProviderConfig& provider,
                                              const std::string& code, const std::string& verifier,
                                              const std::string& nonce) {
  const auto tokens = exchange_code(outbound_, provider, code, verifier);
  const std::string id_token = text(tokens, "id_token");
  if (id_token.empty()) {
    throw OAuthFailure("oauth_exchange_failed", "the token endpoint returned no ID token");
  }
  const auto keys = google_keys(provider, token_kid(id_token));
  security::VerifyOptions options;
  options.issuer = provider.issuer;
  options.audiences = {provider.client_id};
  // Google's tokens carry either spelling of its issuer.
  if (provider.issuer == "https://accounts.google.com") {
    options.alternative_issuers = {"accounts.google.com"};
  }
  auto verified = keys->verify(id_token, options);
  if (const auto* error = std::get_if<security::JwtError>(&verified)) {
    throw OAuthFailure("oauth_failed",
                       "the ID token did not verify: " + std::string(security::to_string(*error)));
  }
  const auto& claims = std::get<boost::json::object>(verified);
  if (text(claims, "nonce") != nonce) {
    throw OAuthFailure("oauth_failed", "the ID token's nonce does not match this sign-in");
  }
  const auto* verified_flag = claims.if_contains("email_verified");
  const bool email_verified =
      verified_flag && ((verified_flag->is_bool() && verified_flag->get_bool()) ||
                        (verified_flag->is_string() && verified_flag->get_string() == "true"));
  if (!email_verified) {
    throw OAuthFailure("email_not_verified", "Google has not verified this email address");
  }
  ExternalIdentity identity;
  identity.provider = "google";
  identity.subject = text(claims, "sub");
  if (identity.subject.empty() || identity.subject.size() > 255) {
    throw OAuthFailure("oauth_failed", "the ID token has no subject");
  }
  identity.email = checked_email(text(claims, "email"));
  identity.name = text(claims, "name");
  if (auto picture = text(claims, "picture"); !picture.empty()) identity.avatar_url = picture;
  return identity;
}

ExternalIdentity AuthService::github_identity(const OAuthProviderConfig& provider,
                                              const std::string& code,
                                              const std::string& verifier) {
  const auto tokens = exchange_code(outbound_, provider, code, verifier);
  const std::string access = text(tokens, "access_token");
  const auto api = [&](std::string_view path) {
    http::OutboundRequest request;
    request.url = provider.api_url + std::string(path);
    request.timeout = kProviderTimeout;
    request.headers = {{"Authorization", "Bearer " + access},
                       {"Accept", "application/vnd.github+json"},
                       {"X-GitHub-Api-Version", "2022-11-28"},
                       {"User-Agent", "inkwell-auth"}};
    auto response = outbound_.send(request);
    if (response.status != 200) {
      throw OAuthFailure("oauth_failed", "GitHub " + std::string(path) + " answered " +
                                             std::to_string(response.status));
    }
    auto parsed = json::try_parse(response.body);
    if (!parsed) throw OAuthFailure("oauth_failed", "GitHub " + std::string(path) + " is not JSON");
    return std::move(*parsed);
  };
  const auto profile = api("/user");
  const auto emails = api("/user/emails");
  if (!profile.is_object() || !emails.is_array()) {
    throw OAuthFailure("oauth_failed", "GitHub's user API answered in an unexpected shape");
  }
  ExternalIdentity identity;
  identity.provider = "github";
  const auto* id = profile.as_object().if_contains("id");
  if (id && id->is_int64()) {
    identity.subject = std::to_string(id->get_int64());
  } else if (id && id->is_uint64()) {
    identity.subject = std::to_string(id->get_uint64());
  } else {
    throw OAuthFailure("oauth_failed", "GitHub's user has no id");
  }
  // Only the primary address, and only when GitHub verified it.
  for (const auto& entry : emails.as_array()) {
    if (!entry.is_object()) continue;
    const auto& object = entry.as_object();
    const auto* primary = object.if_contains("primary");
    const auto* verified = object.if_contains("verified");
    if (primary && primary->is_bool() && primary->get_bool() && verified && verified->is_bool() &&
        verified->get_bool()) {
      identity.email = checked_email(text(object, "email"));
    }
  }
  if (identity.email.empty()) {
    throw OAuthFailure("email_not_verified", "the GitHub account has no verified primary email");
  }
  identity.name = text(profile.as_object(), "name");
  if (identity.name.empty()) identity.name = text(profile.as_object(), "login");
  if (auto avatar = text(profile.as_object(), "avatar_url"); !avatar.empty()) {
    identity.avatar_url = avatar;
  }
  return identity;
}

}  // namespace inkwell::services::auth
