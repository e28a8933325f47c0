#pragma once

#include "services/auth/domain/throttle.h"
#include "services/auth/domain/user.h"
#include "storage/database.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace inkwell::services::auth {

// One stored refresh token (only its hash is kept).
struct RefreshToken {
  std::string hash;
  std::string family;
  std::string user_id;
  std::int64_t expires_at = 0;  // Unix milliseconds
  std::optional<std::int64_t> revoked_at;
  bool rotated = false;  // revoked because a newer token of its family replaced it
};

// A pending OAuth sign-in, keyed by the hash of its state.
struct OAuthState {
  std::string provider;
  std::string code_verifier;
  std::string nonce;
  std::string binding_hash;
  std::int64_t expires_at = 0;
};

// The auth service's SQL, for both dialects. Every statement binds its values; the only text
// that differs by dialect is how a timestamp column is read back.
class AuthRepo {
 public:
  explicit AuthRepo(storage::Dialect dialect);

  std::optional<User> user_by_id(storage::Executor& db, std::string_view id) const;
  /// Case-insensitive, as the unique index is.
  std::optional<User> user_by_email(storage::Executor& db, std::string_view email) const;
  std::optional<User> user_by_username(storage::Executor& db, std::string_view username) const;
  bool username_taken(storage::Executor& db, std::string_view username) const;
  /// Throws DatabaseError(unique_violation) when the email or the username is taken.
  void insert_user(storage::Executor& db, const User& user) const;
  /// Writes name, username, avatar, preferences, version and updated_at of `user`, provided the
  /// stored version is `previous_version`; false when another change came first.
  bool update_user(storage::Executor& db, const User& user, std::int64_t previous_version) const;

  std::optional<std::string> external_login(storage::Executor& db, std::string_view provider,
                                            std::string_view provider_user_id) const;
  void insert_external_login(storage::Executor& db, std::string_view user_id,
                             std::string_view provider, std::string_view provider_user_id,
                             std::string_view email, std::string_view now) const;

  void insert_refresh_token(storage::Executor& db, const RefreshToken& token,
                            std::string_view now) const;
  std::optional<RefreshToken> refresh_token(storage::Executor& db, std::string_view hash) const;
  /// Marks a live token rotated; false when it was already revoked (a concurrent rotation or a
  /// replay).
  bool rotate_refresh_token(storage::Executor& db, std::string_view hash,
                            std::int64_t now_ms) const;
  void revoke_family(storage::Executor& db, std::string_view family, std::int64_t now_ms) const;
  /// Deletes tokens that expired before `before_ms`.
  void prune_refresh_tokens(storage::Executor& db, std::int64_t before_ms) const;

  void insert_oauth_state(storage::Executor& db, std::string_view state_hash,
                          const OAuthState& state) const;
  /// Deletes and returns the state: a state can be used once.
  std::optional<OAuthState> take_oauth_state(storage::Executor& db,
                                             std::string_view state_hash) const;
  void prune_oauth_states(storage::Executor& db, std::int64_t now_ms) const;

  std::optional<Throttle> throttle(storage::Executor& db, std::string_view key) const;
  void save_throttle(storage::Executor& db, std::string_view key, const Throttle& value) const;
  void clear_throttle(storage::Executor& db, std::string_view key) const;

 private:
  std::optional<User> one_user(storage::Executor& db, std::string_view where,
                               std::string_view value) const;

  storage::Dialect dialect_;
  std::string user_columns_;
};

}  // namespace inkwell::services::auth
