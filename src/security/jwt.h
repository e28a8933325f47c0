#pragma once

#include <openssl/types.h>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace inkwell::security {

enum class JwtError {
  malformed,
  unsupported_algorithm,
  unknown_key,
  bad_signature,
  expired,
  not_yet_valid,
  wrong_issuer,
  wrong_audience,
  missing_claim
};

/// The enumerator's name, e.g. "bad_signature" (for logs; never shown to clients as a reason).
std::string_view to_string(JwtError error);

struct VerifyOptions {
  std::string issuer;  // required match of "iss" (empty = do not check)
  std::vector<std::string>
      audiences;  // "aud" (string or array) must contain one (empty = do not check)
  std::chrono::seconds leeway{30};
  std::optional<std::chrono::system_clock::time_point> now;  // injected clock for tests
  bool require_exp = true;
  /// Further accepted "iss" values when `issuer` is set (Google signs with both
  /// "https://accounts.google.com" and "accounts.google.com").
  std::vector<std::string> alternative_issuers;
};

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* key) const noexcept;
};

// A private signing key (EC P-256 -> ES256, RSA >= 2048 bits -> RS256) with its key id.
class SigningKey {
 public:
  /// Reads a PEM private key (PKCS#8 or traditional; encrypted keys are refused). Throws
  /// std::invalid_argument on a bad or unsupported key. `kid` defaults to the key's RFC 7638
  /// JWK thumbprint.
  static SigningKey from_pem(std::string_view pem, std::string kid = "");
  /// A new P-256 private key as PKCS#8 PEM.
  static std::string generate_es256_pem();

  const std::string& kid() const { return kid_; }
  /// "ES256" or "RS256".
  std::string_view alg() const;
  /// {kty, crv, x, y | n, e, kid, alg, use: "sig"}: the public half only.
  boost::json::object public_jwk() const;
  /// A compact JWS with header {alg, typ: "JWT", kid} over the serialized claims.
  std::string sign(const boost::json::object& claims) const;
  /// The private key in PKCS#8 PEM (to write a generated key to disk).
  std::string private_pem() const;

  EVP_PKEY* native() const { return key_.get(); }

 private:
  SigningKey(std::unique_ptr<EVP_PKEY, EvpPkeyDeleter> key, std::string kid, bool ec);

  std::unique_ptr<EVP_PKEY, EvpPkeyDeleter> key_;
  std::string kid_;
  bool ec_;  // EC P-256 (ES256) or RSA (RS256)
};

/// The RFC 7638 thumbprint (base64url of SHA-256) of a public EC P-256 or RSA JWK; nullopt when
/// the JWK lacks the required members.
std::optional<std::string> jwk_thumbprint(const boost::json::object& jwk);

// A set of public verification keys, from a JWKS document or from signing keys. Copyable (keys
// are shared, immutable) and safe to use from many threads at once for verification.
class KeySet {
 public:
  /// Skips keys it cannot use (unknown kty/crv, "use" other than "sig", an "alg" other than
  /// ES256/RS256, RSA outside 2048..8192 bits, invalid points). A key without "kid" gets its
  /// thumbprint; a repeated kid keeps the first. Throws std::invalid_argument if the document is
  /// not {"keys": [...]}.
  static KeySet from_jwks(const boost::json::value& jwks);
  /// Adds the public half of `key`, replacing a key with the same kid.
  void add(const SigningKey& key);
  /// {"keys": [...]}: public keys only.
  boost::json::object jwks() const;
  bool has(std::string_view kid) const;
  std::size_t size() const { return keys_.size(); }

  /// Verifies signature and claims. Rejects alg "none", HS*, any alg not matching the key's type
  /// (alg confusion), missing/unknown kid (if the set has exactly one key and the token has no
  /// kid, that key may be used), bad base64url, non-object JSON, exp/nbf/iat not numbers, a
  /// "crit" header, tokens over 8 KiB. Never throws.
  std::variant<boost::json::object, JwtError> verify(std::string_view token,
                                                     const VerifyOptions& options) const;

 private:
  struct Key {
    std::string kid;
    bool ec = false;
    std::shared_ptr<EVP_PKEY> key;
    boost::json::object jwk;
  };

  const Key* find(std::string_view kid) const;

  std::vector<Key> keys_;
};

}  // namespace inkwell::security
