// GET /users/me, GET /users/{id|@username}, PATCH /users/{id}.
#include "base/error.h"
#include "base/ids.h"
#include "base/json.h"
#include "messaging/outbox.h"
#include "services/auth/auth_service.h"
#include "services/auth/domain/validation.h"

#include <boost/json/serialize.hpp>

namespace inkwell::services::auth {

boost::asio::awaitable<http::Response> AuthService::me(Context& context) {
  const auto caller = authenticate(context);
  auto load = [this, id = caller.id]() { return repo_->user_by_id(*database_, id); };
  auto user = co_await runtime_.blocking.run(std::move(load));
  if (!user) throw ApiError(401, "invalid_token", "the account of this token no longer exists");
  co_return http::json_response(http::Status::ok, private_view(*user));
}

boost::asio::awaitable<http::Response> AuthService::get_user(Context& context) {
  const std::string key(context.param("id"));
  const bool by_username = key.starts_with('@');
  if (by_username ? !username_problem(key.substr(1)).empty() : !is_uuid(key)) {
    throw ApiError::not_found("no such user");
  }
  auto load = [this, key, by_username]() {
    return by_username ? repo_->user_by_username(*database_, key.substr(1))
                       : repo_->user_by_id(*database_, key);
  };
  auto user = co_await runtime_.blocking.run(std::move(load));
  if (!user) throw ApiError::not_found("no such user");
  co_return http::json_response(http::Status::ok, public_view(*user));
}

boost::asio::awaitable<http::Response> AuthService::patch_user(Context& context) {
  const auto caller = authenticate(context);
  const std::string id(context.param("id"));
  if (id != caller.id && id != "me") {
    if (!is_uuid(id)) throw ApiError::not_found("no such user");
    throw ApiError(403, "forbidden", "you can change only your own profile");
  }
  const auto body = context.json_body();
  json::Fields fields(body);
  std::optional<std::string> name;
  std::optional<std::string> username;
  std::optional<std::optional<std::string>> avatar;  // set to null clears the avatar
  std::optional<std::string> preferences;
  for (const auto& [key, value] : body) {
    if (key == "name") {
      if (!value.is_string()) {
        fields.fail("name", "must be a string");
        continue;
      }
      auto checked = normalize_name(value.get_string());
      if (checked.value) {
        name = std::move(checked.value);
      } else {
        fields.fail("name", checked.problem);
      }
    } else if (key == "username") {
      if (!value.is_string()) {
        fields.fail("username", "must be a string");
      } else if (auto problem = username_problem(value.get_string()); !problem.empty()) {
        fields.fail("username", problem);
      } else {
        username = std::string(value.get_string());
      }
    } else if (key == "avatarUrl") {
      if (value.is_null()) {
        avatar.emplace(std::nullopt);
      } else if (!value.is_string()) {
        fields.fail("avatarUrl", "must be a string or null");
      } else if (auto problem = avatar_url_problem(value.get_string()); !problem.empty()) {
        fields.fail("avatarUrl", problem);
      } else {
        avatar.emplace(std::string(value.get_string()));
      }
    } else if (key == "preferences") {
      if (auto problem = preferences_problem(value); !problem.empty()) {
        fields.fail("preferences", problem);
      } else {
        preferences = boost::json::serialize(value);
      }
    } else {
      fields.fail(key, "is not a field you can change");
    }
  }
  fields.finish();

  struct Outcome {
    std::optional<User> user;
    bool changed = false;
    bool username_taken = false;
    bool conflict = false;  // another change came first; try again on the new version
  };
  auto update = [this, caller, name, username, avatar, preferences]() {
    const auto attempt = [&]() {
      return database_->transaction([&](storage::Executor& tx) {
        Outcome result;
        auto current = repo_->user_by_id(tx, caller.id);
        if (!current) return result;
        User next = *current;
        if (name) next.name = *name;
        if (username) next.username = *username;
        if (avatar) next.avatar_url = *avatar;
        if (preferences) next.preferences = *preferences;
        result.changed = next.name != current->name || next.username != current->username ||
                         next.avatar_url != current->avatar_url ||
                         next.preferences != current->preferences;
        if (!result.changed) {
          result.user = std::move(current);
          return result;
        }
        if (next.username != current->username && repo_->username_taken(tx, next.username)) {
          result.username_taken = true;
          return result;
        }
        next.version = current->version + 1;
        next.updated_at = messaging::rfc3339_utc(std::chrono::system_clock::now());
        if (!repo_->update_user(tx, next, current->version)) {
          result.conflict = true;
          return result;
        }
        // Only what other services replicate changes the event; preferences stay private but
        // still bump the version, so every change is ordered.
        messaging::enqueue(tx, user_updated(next));
        result.user = std::move(next);
        return result;
      });
    };
    for (int tries = 1;; ++tries) {
      try {
        auto result = attempt();
        if (!result.conflict || tries == 3) return result;
      } catch (const storage::DatabaseError& error) {
        // The unique index on username decides between two people claiming one handle.
        if (error.kind() != storage::DatabaseError::Kind::unique_violation) throw;
        Outcome taken;
        taken.username_taken = true;
        return taken;
      }
    }
  };
  auto outcome = co_await runtime_.blocking.run(std::move(update));
  if (outcome.username_taken) {
    throw ApiError(409, "username_taken", "this username is taken",
                   {{"username", "is already taken"}});
  }
  if (outcome.conflict) {
    throw ApiError(409, "conflict", "the profile changed at the same time; try again");
  }
  if (!outcome.user) throw ApiError(401, "invalid_token", "the account no longer exists");
  if (outcome.changed) committed_();
  co_return http::json_response(http::Status::ok, private_view(*outcome.user));
}

}  // namespace inkwell::services::auth
