#pragma once

#include "messaging/event.h"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace inkwell::services::auth {

// An account as the auth service stores it.
struct User {
  std::string id;
  std::string email;
  std::string username;
  std::optional<std::string> password_hash;  // empty for accounts that only sign in with OAuth
  std::string name;
  std::optional<std::string> avatar_url;
  std::string preferences = "{}";  // a JSON object, serialized
  std::int64_t version = 1;
  std::string created_at;  // RFC 3339 UTC
  std::string updated_at;
};

/// What the account's owner sees (GET /users/me, register, login): everything but the hash.
boost::json::object private_view(const User& user);
/// What anyone may see (GET /users/{id}): id, username, name, avatarUrl, createdAt.
boost::json::object public_view(const User& user);

/// `user.registered` and `user.updated` as DESIGN.md section 5 defines their data.
messaging::Event user_registered(const User& user);
messaging::Event user_updated(const User& user);

}  // namespace inkwell::services::auth
