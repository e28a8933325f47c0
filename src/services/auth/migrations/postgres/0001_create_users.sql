-- Accounts. The email is stored normalized (trimmed, domain lower-cased) and is unique without
-- regard to case, so "Ann@x.io" and "ann@x.io" cannot be two accounts.
CREATE TABLE users (
  id uuid PRIMARY KEY,
  email text NOT NULL,
  username text NOT NULL,
  password_hash text,
  name text NOT NULL,
  avatar_url text,
  preferences text NOT NULL DEFAULT '{}',
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_username_key ON users (username);

CREATE TABLE external_logins (
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  provider text NOT NULL,
  provider_user_id text NOT NULL,
  email text,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (provider, provider_user_id)
);
CREATE INDEX external_logins_user ON external_logins (user_id);

-- Refresh tokens are stored only as SHA-256 hashes. A family is one sign-in: every rotation
-- adds a row to it, and presenting a rotated token revokes the whole family.
CREATE TABLE refresh_tokens (
  hash text PRIMARY KEY,
  family text NOT NULL,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at bigint NOT NULL,
  revoked_at bigint,
  rotated boolean NOT NULL DEFAULT false
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

-- Pending OAuth sign-ins: single-use state, the PKCE verifier, the OIDC nonce and the hash of the
-- browser-binding cookie.
CREATE TABLE oauth_states (
  state_hash text PRIMARY KEY,
  provider text NOT NULL,
  code_verifier text NOT NULL,
  nonce text NOT NULL,
  binding_hash text NOT NULL,
  expires_at bigint NOT NULL
);

-- Failed sign-in counters per account and per client address (the lockout window).
CREATE TABLE login_throttle (
  key text PRIMARY KEY,
  failures integer NOT NULL,
  window_started_at bigint NOT NULL,
  blocked_until bigint NOT NULL DEFAULT 0
);
