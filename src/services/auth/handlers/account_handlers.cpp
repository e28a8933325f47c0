// POST /auth/register, /auth/login, /auth/refresh, /auth/logout and GET /.well-known/jwks.json.
#include "base/error.h"
#include "base/json.h"
#include "security/hash.h"
#include "services/auth/auth_service.h"
#include "services/auth/domain/validation.h"

#include <boost/json/serialize.hpp>

namespace inkwell::services::auth {

namespace {

ApiError unauthorized_refresh(std::string_view message) {
  return ApiError(401, "invalid_refresh_token", std::string(message));
}

// The answer to every failed password sign-in, whatever the reason, so the response does not
// tell whether the email has an account.
ApiError bad_credentials() {
  return ApiError(401, "invalid_credentials", "the email or password is wrong");
}

ApiError locked(std::int64_t wait_ms) {
  const auto seconds = std::max<std::int64_t>(1, (wait_ms + 999) / 1000);
  return ApiError(429, "too_many_attempts",
                  "too many failed sign-ins; try again in " + std::to_string(seconds) + " s",
                  {{"retryAfterSeconds", seconds}});
}

}  // namespace

boost::asio::awaitable<http::Response> AuthService::register_account(Context& context) {
  const auto body = context.json_body();
  json::Fields fields(body);
  const auto raw_email = fields.string("email", json::Fields::Presence::required);
  const auto password = fields.string("password", json::Fields::Presence::required);
  const auto raw_name = fields.string("name", json::Fields::Presence::required);
  const auto raw_username = fields.string("username", json::Fields::Presence::optional);
  for (const auto& [key, value] : body) {
    if (key != "email" && key != "password" && key != "name" && key != "username") {
      fields.fail(key, "is not a known field");
    }
  }
  User user;
  if (raw_email) {
    auto email = normalize_email(*raw_email);
    if (email.value) {
      user.email = std::move(*email.value);
    } else {
      fields.fail("email", email.problem);
    }
  }
  if (password) {
    if (auto problem = password_problem(*password, user.email); !problem.empty()) {
      fields.fail("password", problem);
    }
  }
  if (raw_name) {
    auto name = normalize_name(*raw_name);
    if (name.value) {
      user.name = std::move(*name.value);
    } else {
      fields.fail("name", name.problem);
    }
  }
  if (raw_username) {
    if (auto problem = username_problem(*raw_username); !problem.empty()) {
      fields.fail("username", problem);
    }
  }
  fields.finish();
  const bool chosen = raw_username.has_value();
  user.username = chosen ? *raw_username : derive_username(user.name, user.email);

  // Hashing (~50 ms, 64 MiB) runs on the Argon2 pool; the account and its first session then
  // commit together on the database pool.
  auto hash = [this, pw = *password]() { return hasher_.hash(pw); };
  user.password_hash = co_await hashing_.run(std::move(hash));
  // Not a structured binding of the result: g++ 12 miscompiles those around co_await.
  auto create = [this, account = user, chosen]() {
    try {
      return database_->transaction([&](storage::Executor& tx) {
        User stored = create_user(tx, account, chosen);
        std::string token = issue_refresh_token(tx, stored.id, "");
        return std::pair{std::move(stored), std::move(token)};
      });
    } catch (const storage::DatabaseError& error) {
      if (error.kind() != storage::DatabaseError::Kind::unique_violation) throw;
      // Another registration took the email (or the chosen username) between our check and
      // our insert.
      throw ApiError(409, "email_taken", "an account with this email or username already exists",
                     {{"email", "is already registered"}});
    }
  };
  auto created = co_await runtime_.blocking.run(std::move(create));
  committed_();
  registrations_.add();
  co_return session_response(context, http::Status::created, created.first, created.second);
}

boost::asio::awaitable<http::Response> AuthService::login(Context& context) {
  const auto body = context.json_body();
  json::Fields fields(body);
  const auto raw_email = fields.string("email", json::Fields::Presence::required);
  const auto password = fields.string("password", json::Fields::Presence::required);
  if (password && password->size() > 4 * kPasswordMax) {
    fields.fail("password", "is too long");
  }
  fields.finish();
  const auto email = normalize_email(*raw_email);
  const std::string address = client_address(context);
  const std::string account_key = "account:" + (email.value ? *email.value : std::string{});

  struct Lookup {
    std::optional<User> user;
    std::optional<Throttle> ip_state;
    std::optional<Throttle> account_state;
    std::int64_t blocked_ms = 0;
  };
  // The lockout is checked before any hashing: a locked account costs the server nothing.
  auto lookup = [this, email, address, account_key]() {
    Lookup result;
    const auto now = unix_millis();
    result.ip_state = repo_->throttle(*database_, "ip:" + address);
    if (email.value) result.account_state = repo_->throttle(*database_, account_key);
    result.blocked_ms =
        std::max(blocked_for(result.ip_state, now), blocked_for(result.account_state, now));
    if (result.blocked_ms == 0 && email.value) {
      result.user = repo_->user_by_email(*database_, *email.value);
    }
    return result;
  };
  auto outcome = co_await runtime_.blocking.run(std::move(lookup));
  if (outcome.blocked_ms > 0) {
    logins_locked_.add();
    auto error = locked(outcome.blocked_ms);
    throw error;
  }
  std::optional<std::string> stored_hash;
  if (outcome.user) stored_hash = outcome.user->password_hash;
  auto verify = [this, stored_hash, pw = *password]() {
    if (stored_hash) return hasher_.verify(*stored_hash, pw);
    hasher_.burn(pw);  // an unknown email costs the same time as a wrong password
    return false;
  };
  const bool ok = co_await hashing_.run(std::move(verify));
  if (!ok) {
    auto count = [this, outcome, address, account_key, known = email.value.has_value()]() {
      const auto now = unix_millis();
      repo_->save_throttle(*database_, "ip:" + address,
                           after_failure(outcome.ip_state, config_.ip_throttle, now));
      if (known) {
        repo_->save_throttle(*database_, account_key,
                             after_failure(outcome.account_state, config_.account_throttle, now));
      }
    };
    co_await runtime_.blocking.run(std::move(count));
    logins_failed_.add();
    throw bad_credentials();
  }
  const std::string user_id = outcome.user->id;
  auto start_session = [this, user_id, account_key, clear = outcome.account_state.has_value()]() {
    return database_->transaction([&](storage::Executor& tx) {
      if (clear) repo_->clear_throttle(tx, account_key);
      return issue_refresh_token(tx, user_id, "");
    });
  };
  auto token = co_await runtime_.blocking.run(std::move(start_session));
  logins_ok_.add();
  co_return session_response(context, http::Status::ok, *outcome.user, token);
}

boost::asio::awaitable<http::Response> AuthService::refresh(Context& context) {
  const auto presented = context.cookie("inkwell_refresh");
  if (!presented || presented->empty() || presented->size() > 256) {
    refreshes_failed_.add();
    throw unauthorized_refresh("no refresh token; sign in again");
  }
  const std::string hash = security::sha256_hex(*presented);
  struct Outcome {
    std::optional<User> user;
    std::string token;
    std::string problem;
    bool reused = false;
  };
  auto rotate = [this, hash]() {
    return database_->transaction([&](storage::Executor& tx) {
      Outcome result;
      const auto now = unix_millis();
      const auto stored = repo_->refresh_token(tx, hash);
      if (!stored) {
        result.problem = "the refresh token is not known; sign in again";
        return result;
      }
      if (stored->revoked_at || !repo_->rotate_refresh_token(tx, hash, now)) {
        // A rotated token presented again means two parties hold the family: end it.
        if (stored->rotated || !stored->revoked_at) {
          repo_->revoke_family(tx, stored->family, now);
          result.reused = true;
        }
        result.problem = "the refresh token was already used or revoked; sign in again";
        return result;
      }
      if (stored->expires_at <= now) {
        result.problem = "the refresh token expired; sign in again";
        return result;
      }
      result.user = repo_->user_by_id(tx, stored->user_id);
      if (!result.user) {
        result.problem = "the account no longer exists";
        return result;
      }
      result.token = issue_refresh_token(tx, stored->user_id, stored->family);
      return result;
    });
  };
  auto outcome = co_await runtime_.blocking.run(std::move(rotate));
  if (!outcome.user) {
    (outcome.reused ? refresh_reuse_ : refreshes_failed_).add();
    auto response = http::error_response(http::Status::unauthorized, "invalid_refresh_token",
                                         outcome.problem, context.correlation_id());
    response.insert(http::beast_http::field::set_cookie, refresh_cookie(context, "", true));
    co_return response;
  }
  refreshes_ok_.add();
  co_return session_response(context, http::Status::ok, *outcome.user, outcome.token);
}

boost::asio::awaitable<http::Response> AuthService::logout(Context& context) {
  const auto presented = context.cookie("inkwell_refresh");
  if (presented && !presented->empty() && presented->size() <= 256) {
    const std::string hash = security::sha256_hex(*presented);
    auto revoke = [this, hash]() {
      database_->transaction([&](storage::Executor& tx) {
        if (const auto stored = repo_->refresh_token(tx, hash)) {
          repo_->revoke_family(tx, stored->family, unix_millis());
        }
      });
    };
    co_await runtime_.blocking.run(std::move(revoke));
  }
  http::Response response{http::Status::no_content, 11};
  response.insert(http::beast_http::field::set_cookie, refresh_cookie(context, "", true));
  co_return response;
}

boost::asio::awaitable<http::Response> AuthService::jwks(Context& /*context*/) {
  auto response = http::json_response(http::Status::ok, keys_->verification_keys().jwks());
  response.set(http::beast_http::field::cache_control, "public, max-age=300");
  co_return response;
}

}  // namespace inkwell::services::auth
