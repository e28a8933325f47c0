#include "services/auth/repo/auth_repo.h"

namespace inkwell::services::auth {
namespace {

User to_user(const storage::Row& row) {
  User user;
  user.id = row.get<std::string>(0);
  user.email = row.get<std::string>(1);
  user.username = row.get<std::string>(2);
  user.password_hash = row.get<std::optional<std::string>>(3);
  user.name = row.get<std::string>(4);
  user.avatar_url = row.get<std::optional<std::string>>(5);
  user.preferences = row.get<std::string>(6);
  user.version = row.get<std::int64_t>(7);
  user.created_at = row.get<std::string>(8);
  user.updated_at = row.get<std::string>(9);
  return user;
}

}  // namespace

AuthRepo::AuthRepo(storage::Dialect dialect) : dialect_(dialect) {
  // PostgreSQL keeps uuid and timestamptz columns; read them back as the text the API shows.
  const auto stamp = [dialect](std::string_view column) {
    if (dialect == storage::Dialect::sqlite) return std::string(column);
    return "to_char(" + std::string(column) +
           " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
  };
  const std::string id = dialect == storage::Dialect::sqlite ? "id" : "id::text";
  user_columns_ = id +
                  ", email, username, password_hash, name, avatar_url, preferences, version, " +
                  stamp("created_at") + ", " + stamp("updated_at");
}

std::optional<User> AuthRepo::one_user(storage::Executor& db, std::string_view where,
                                       std::string_view value) const {
  auto result =
      db.execute("SELECT " + user_columns_ + " FROM users WHERE " + std::string(where), {value});
  if (result.rows.empty()) return std::nullopt;
  return to_user(result.rows.front());
}

std::optional<User> AuthRepo::user_by_id(storage::Executor& db, std::string_view id) const {
  return one_user(db, dialect_ == storage::Dialect::sqlite ? "id = $1" : "id = $1::uuid", id);
}

std::optional<User> AuthRepo::user_by_email(storage::Executor& db, std::string_view email) const {
  return one_user(db, "lower(email) = lower($1)", email);
}

std::optional<User> AuthRepo::user_by_username(storage::Executor& db,
                                               std::string_view username) const {
  return one_user(db, "username = $1", username);
}

bool AuthRepo::username_taken(storage::Executor& db, std::string_view username) const {
  return !db.execute("SELECT 1 FROM users WHERE username = $1", {username}).rows.empty();
}

void AuthRepo::insert_user(storage::Executor& db, const User& user) const {
  db.execute(
      "INSERT INTO users (id, email, username, password_hash, name, avatar_url, preferences, "
      "version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
      {user.id, user.email, user.username, user.password_hash, user.name, user.avatar_url,
       user.preferences, user.version, user.created_at, user.updated_at});
}

bool AuthRepo::update_user(storage::Executor& db, const User& user,
                           std::int64_t previous_version) const {
  const auto result = db.execute(
      std::string("UPDATE users SET name = $1, username = $2, avatar_url = $3, preferences = $4, "
                  "version = $5, updated_at = $6 WHERE ") +
          (dialect_ == storage::Dialect::sqlite ? "id = $7" : "id = $7::uuid") +
          " AND version = $8",
      {user.name, user.username, user.avatar_url, user.preferences, user.version, user.updated_at,
       user.id, previous_version});
  return result.affected_rows == 1;
}

std::optional<std::string> AuthRepo::external_login(storage::Executor& db,
                                                    std::string_view provider,
                                                    std::string_view provider_user_id) const {
  auto result =
      db.execute(std::string("SELECT ") +
                     (dialect_ == storage::Dialect::sqlite ? "user_id" : "user_id::text") +
                     " FROM external_logins WHERE provider = $1 AND provider_user_id = $2",
                 {provider, provider_user_id});
  if (result.rows.empty()) return std::nullopt;
  return result.rows.front().get<std::string>(0);
}

void AuthRepo::insert_external_login(storage::Executor& db, std::string_view user_id,
                                     std::string_view provider, std::string_view provider_user_id,
                                     std::string_view email, std::string_view now) const {
  db.execute(
      "INSERT INTO external_logins (user_id, provider, provider_user_id, email, created_at) "
      "VALUES ($1, $2, $3, $4, $5)",
      {user_id, provider, provider_user_id, email, now});
}

void AuthRepo::insert_refresh_token(storage::Executor& db, const RefreshToken& token,
                                    std::string_view now) const {
  db.execute(
      "INSERT INTO refresh_tokens (hash, family, user_id, created_at, expires_at) "
      "VALUES ($1, $2, $3, $4, $5)",
      {token.hash, token.family, token.user_id, now, token.expires_at});
}

std::optional<RefreshToken> AuthRepo::refresh_token(storage::Executor& db,
                                                    std::string_view hash) const {
  auto result =
      db.execute(std::string("SELECT hash, family, ") +
                     (dialect_ == storage::Dialect::sqlite ? "user_id" : "user_id::text") +
                     ", expires_at, revoked_at, rotated FROM refresh_tokens WHERE hash = $1",
                 {hash});
  if (result.rows.empty()) return std::nullopt;
  const auto& row = result.rows.front();
  return RefreshToken{row.get<std::string>(0),
                      row.get<std::string>(1),
                      row.get<std::string>(2),
                      row.get<std::int64_t>(3),
                      row.get<std::optional<std::int64_t>>(4),
                      row.get<bool>(5)};
}

bool AuthRepo::rotate_refresh_token(storage::Executor& db, std::string_view hash,
                                    std::int64_t now_ms) const {
  return db.execute(
               "UPDATE refresh_tokens SET revoked_at = $1, rotated = $2 "
               "WHERE hash = $3 AND revoked_at IS NULL",
               {now_ms, true, hash})
             .affected_rows == 1;
}

void AuthRepo::revoke_family(storage::Executor& db, std::string_view family,
                             std::int64_t now_ms) const {
  db.execute("UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
             {now_ms, family});
}

void AuthRepo::prune_refresh_tokens(storage::Executor& db, std::int64_t before_ms) const {
  db.execute("DELETE FROM refresh_tokens WHERE expires_at < $1", {before_ms});
}

void AuthRepo::insert_oauth_state(storage::Executor& db, std::string_view state_hash,
                                  const OAuthState& state) const {
  db.execute(
      "INSERT INTO oauth_states (state_hash, provider, code_verifier, nonce, binding_hash, "
      "expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
      {state_hash, state.provider, state.code_verifier, state.nonce, state.binding_hash,
       state.expires_at});
}

std::optional<OAuthState> AuthRepo::take_oauth_state(storage::Executor& db,
                                                     std::string_view state_hash) const {
  auto result = db.execute(
      "DELETE FROM oauth_states WHERE state_hash = $1 "
      "RETURNING provider, code_verifier, nonce, binding_hash, expires_at",
      {state_hash});
  if (result.rows.empty()) return std::nullopt;
  const auto& row = result.rows.front();
  return OAuthState{row.get<std::string>(0), row.get<std::string>(1), row.get<std::string>(2),
                    row.get<std::string>(3), row.get<std::int64_t>(4)};
}

void AuthRepo::prune_oauth_states(storage::Executor& db, std::int64_t now_ms) const {
  db.execute("DELETE FROM oauth_states WHERE expires_at < $1", {now_ms});
}

std::optional<Throttle> AuthRepo::throttle(storage::Executor& db, std::string_view key) const {
  auto result = db.execute(
      "SELECT failures, window_started_at, blocked_until FROM login_throttle WHERE key = $1",
      {key});
  if (result.rows.empty()) return std::nullopt;
  const auto& row = result.rows.front();
  return Throttle{row.get<int>(0), row.get<std::int64_t>(1), row.get<std::int64_t>(2)};
}

void AuthRepo::save_throttle(storage::Executor& db, std::string_view key,
                             const Throttle& value) const {
  db.execute(
      "INSERT INTO login_throttle (key, failures, window_started_at, blocked_until) "
      "VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, "
      "window_started_at = excluded.window_started_at, blocked_until = excluded.blocked_until",
      {key, value.failures, value.window_started_at, value.blocked_until});
}

void AuthRepo::clear_throttle(storage::Executor& db, std::string_view key) const {
  db.execute("DELETE FROM login_throttle WHERE key = $1", {key});
}

}  // namespace inkwell::services::auth
