#include "services/auth/domain/user.h"

#include "base/json.h"

namespace inkwell::services::auth {
namespace {

boost::json::value nullable(const std::optional<std::string>& text) {
  return text ? boost::json::value(*text) : boost::json::value(nullptr);
}

constexpr std::string_view kSource = "/auth";

}  // namespace

boost::json::object private_view(const User& user) {
  auto preferences = json::try_parse(user.preferences);
  return {
      {"id", user.id},
      {"email", user.email},
      {"username", user.username},
      {"name", user.name},
      {"avatarUrl", nullable(user.avatar_url)},
      {"preferences",
       preferences && preferences->is_object() ? std::move(*preferences) : boost::json::object{}},
      {"hasPassword", user.password_hash.has_value()},
      {"version", user.version},
      {"createdAt", user.created_at},
      {"updatedAt", user.updated_at},
  };
}

boost::json::object public_view(const User& user) {
  return {
      {"id", user.id},
      {"username", user.username},
      {"name", user.name},
      {"avatarUrl", nullable(user.avatar_url)},
      {"createdAt", user.created_at},
  };
}

messaging::Event user_registered(const User& user) {
  return messaging::make_event(kSource, "user.registered", user.id,
                               {{"userId", user.id},
                                {"email", user.email},
                                {"username", user.username},
                                {"name", user.name},
                                {"avatarUrl", nullable(user.avatar_url)},
                                {"version", user.version}});
}

messaging::Event user_updated(const User& user) {
  return messaging::make_event(kSource, "user.updated", user.id,
                               {{"userId", user.id},
                                {"username", user.username},
                                {"name", user.name},
                                {"avatarUrl", nullable(user.avatar_url)},
                                {"version", user.version}});
}

}  // namespace inkwell::services::auth
