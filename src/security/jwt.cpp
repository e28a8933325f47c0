#include "security/jwt.h"

#include "base/json.h"
#include "security/encoding.h"
#include "security/hash.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace inkwell::security {

void EvpPkeyDeleter::operator()(EVP_PKEY* key) const noexcept {
  EVP_PKEY_free(key);
}

namespace {

constexpr std::size_t kMaxTokenSize = 8 * 1024;
constexpr std::size_t kEcCoordinateSize = 32;  // P-256
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;  // bigger keys only make verification slow

using PkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

// An OpenSSL object owned by a unique_ptr that frees it with the library's own function.
template <auto Free>
struct Freer {
  template <typename T>
  void operator()(T* object) const noexcept {
    Free(object);
  }
};
template <typename T, auto Free>
using Owned = std::unique_ptr<T, Freer<Free>>;

using BnPtr = Owned<BIGNUM, BN_free>;
using BioPtr = Owned<BIO, BIO_free>;
using MdCtxPtr = Owned<EVP_MD_CTX, EVP_MD_CTX_free>;
using PkeyCtxPtr = Owned<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using EcdsaSigPtr = Owned<ECDSA_SIG, ECDSA_SIG_free>;
using ParamBldPtr = Owned<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using ParamPtr = Owned<OSSL_PARAM, OSSL_PARAM_free>;

const unsigned char* bytes_of(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

// OpenSSL keeps failures on a per-thread queue; a failed check must not leave them behind.
[[noreturn]] void fail_invalid(const std::string& message) {
  ERR_clear_error();
  throw std::invalid_argument(message);
}

[[noreturn]] void fail_runtime(const std::string& message) {
  ERR_clear_error();
  throw std::runtime_error(message);
}

BnPtr bn_param(const EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) return nullptr;
  return BnPtr(bn);
}

std::string bn_to_bytes(const BIGNUM* bn, std::size_t padded_size = 0) {
  const int natural = BN_num_bytes(bn);
  const std::size_t size = padded_size != 0 ? padded_size : static_cast<std::size_t>(natural);
  std::string out(size, '\0');
  if (size == 0) return out;
  if (BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(size)) < 0) {
    fail_runtime("number does not fit its field");
  }
  return out;
}

BnPtr bytes_to_bn(std::string_view bytes) {
  BnPtr bn(BN_bin2bn(bytes_of(bytes), static_cast<int>(bytes.size()), nullptr));
  if (!bn) fail_runtime("out of memory");
  return bn;
}

bool is_p256(const EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC") != 1) return false;
  char group[64] = {};
  std::size_t length = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                     &length) != 1) {
    return false;
  }
  const std::string_view name(group, length);
  return name == "prime256v1" || name == "P-256" || name == "secp256r1";
}

bool is_usable_rsa(const EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "RSA") != 1) return false;
  const int bits = EVP_PKEY_get_bits(key);
  return bits >= kMinRsaBits && bits <= kMaxRsaBits;
}

// The public members of a JWK, as RFC 7638 lists them for each key type.
boost::json::object public_members(const EVP_PKEY* key, bool ec) {
  boost::json::object jwk;
  if (ec) {
    const BnPtr x = bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X);
    const BnPtr y = bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y);
    if (!x || !y) fail_runtime("EC key without a public point");
    jwk["kty"] = "EC";
    jwk["crv"] = "P-256";
    jwk["x"] = base64url_encode(bn_to_bytes(x.get(), kEcCoordinateSize));
    jwk["y"] = base64url_encode(bn_to_bytes(y.get(), kEcCoordinateSize));
  } else {
    const BnPtr n = bn_param(key, OSSL_PKEY_PARAM_RSA_N);
    const BnPtr e = bn_param(key, OSSL_PKEY_PARAM_RSA_E);
    if (!n || !e) fail_runtime("RSA key without a modulus");
    jwk["kty"] = "RSA";
    jwk["n"] = base64url_encode(bn_to_bytes(n.get()));
    jwk["e"] = base64url_encode(bn_to_bytes(e.get()));
  }
  return jwk;
}

std::optional<std::string_view> get_string(const boost::json::object& object,
                                           std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr || !value->is_string()) return std::nullopt;
  const auto& text = value->get_string();
  return std::string_view(text.data(), text.size());
}

// DER ECDSA-Sig-Value -> the JWS form: r || s, each left-padded to 32 bytes.
std::string der_to_raw_ecdsa(std::string_view der) {
  const unsigned char* cursor = bytes_of(der);
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
  if (!sig) fail_runtime("ECDSA signature could not be decoded");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  return bn_to_bytes(r, kEcCoordinateSize) + bn_to_bytes(s, kEcCoordinateSize);
}

// The JWS form r || s -> DER; nullopt when it cannot be one.
std::optional<std::string> raw_to_der_ecdsa(std::string_view raw) {
  if (raw.size() != 2 * kEcCoordinateSize) return std::nullopt;
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BnPtr r(BN_bin2bn(bytes_of(raw), static_cast<int>(kEcCoordinateSize), nullptr));
  BnPtr s(BN_bin2bn(bytes_of(raw.substr(kEcCoordinateSize)), static_cast<int>(kEcCoordinateSize),
                    nullptr));
  if (!sig || !r || !s) return std::nullopt;
  if (ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return std::nullopt;
  static_cast<void>(r.release());  // owned by sig now
  static_cast<void>(s.release());
  const int size = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (size <= 0) return std::nullopt;
  std::string der(static_cast<std::size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != size) return std::nullopt;
  return der;
}

bool verify_signature(EVP_PKEY* key, std::string_view signing_input, std::string_view signature) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), bytes_of(signature), signature.size(), bytes_of(signing_input),
                          signing_input.size()) == 1;
}

// The key built from a JWK's public members; nullptr when they do not make a usable key.
PkeyPtr key_from_params(const char* type, const OSSL_PARAM* params) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params)) !=
      1) {
    return nullptr;
  }
  PkeyPtr key(raw);
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return key;
}

PkeyPtr ec_key_from_jwk(const boost::json::object& jwk) {
  const auto crv = get_string(jwk, "crv");
  const auto x_text = get_string(jwk, "x");
  const auto y_text = get_string(jwk, "y");
  if (!crv || *crv != "P-256" || !x_text || !y_text) return nullptr;
  const auto x = base64url_decode(*x_text);
  const auto y = base64url_decode(*y_text);
  if (!x || !y || x->size() != kEcCoordinateSize || y->size() != kEcCoordinateSize) return nullptr;
  std::string point = "\x04" + *x + *y;  // uncompressed SEC1 point
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld) return nullptr;
  if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return nullptr;
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return nullptr;
  PkeyPtr key = key_from_params("EC", params.get());
  if (key && !is_p256(key.get())) return nullptr;
  return key;
}

PkeyPtr rsa_key_from_jwk(const boost::json::object& jwk) {
  const auto n_text = get_string(jwk, "n");
  const auto e_text = get_string(jwk, "e");
  if (!n_text || !e_text) return nullptr;
  const auto n_bytes = base64url_decode(*n_text);
  const auto e_bytes = base64url_decode(*e_text);
  if (!n_bytes || !e_bytes || n_bytes->empty() || e_bytes->empty()) return nullptr;
  if (n_bytes->size() > kMaxRsaBits / 8 + 1 || e_bytes->size() > 8) return nullptr;
  const BnPtr n = bytes_to_bn(*n_bytes);
  const BnPtr e = bytes_to_bn(*e_bytes);
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld) return nullptr;
  if (OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return nullptr;
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return nullptr;
  PkeyPtr key = key_from_params("RSA", params.get());
  if (key && !is_usable_rsa(key.get())) return nullptr;
  return key;
}

std::shared_ptr<EVP_PKEY> share(PkeyPtr key) {
  return std::shared_ptr<EVP_PKEY>(key.release(), EvpPkeyDeleter{});
}

// A NumericDate claim: absent, a finite number, or (nullopt + bad) anything else.
struct NumericDate {
  bool present = false;
  bool bad = false;
  double value = 0;
};

NumericDate numeric_date(const boost::json::object& claims, std::string_view name) {
  NumericDate date;
  const auto* value = claims.if_contains(name);
  if (value == nullptr) return date;
  date.present = true;
  if (value->is_int64()) {
    date.value = static_cast<double>(value->get_int64());
  } else if (value->is_uint64()) {
    date.value = static_cast<double>(value->get_uint64());
  } else if (value->is_double() && std::isfinite(value->get_double())) {
    date.value = value->get_double();
  } else {
    date.bad = true;
  }
  return date;
}

std::optional<JwtError> check_claims(const boost::json::object& claims,
                                     const VerifyOptions& options) {
  const auto now_point = options.now.value_or(std::chrono::system_clock::now());
  const double now = std::chrono::duration<double>(now_point.time_since_epoch()).count();
  const auto leeway = static_cast<double>(options.leeway.count());

  const NumericDate exp = numeric_date(claims, "exp");
  const NumericDate nbf = numeric_date(claims, "nbf");
  const NumericDate iat = numeric_date(claims, "iat");
  if (exp.bad || nbf.bad || iat.bad) return JwtError::malformed;
  if (!exp.present && options.require_exp) return JwtError::missing_claim;
  if (exp.present && now >= exp.value + leeway) return JwtError::expired;
  if (nbf.present && now + leeway < nbf.value) return JwtError::not_yet_valid;

  if (!options.issuer.empty()) {
    const auto* iss = claims.if_contains("iss");
    if (iss == nullptr) return JwtError::missing_claim;
    if (!iss->is_string()) return JwtError::malformed;
    const std::string_view value(iss->get_string().data(), iss->get_string().size());
    const bool accepted =
        value == options.issuer ||
        std::find(options.alternative_issuers.begin(), options.alternative_issuers.end(), value) !=
            options.alternative_issuers.end();
    if (!accepted) return JwtError::wrong_issuer;
  }

  if (!options.audiences.empty()) {
    const auto* aud = claims.if_contains("aud");
    if (aud == nullptr) return JwtError::missing_claim;
    const auto wanted = [&](const boost::json::value& item) {
      if (!item.is_string()) return false;
      const std::string_view value(item.get_string().data(), item.get_string().size());
      return std::find(options.audiences.begin(), options.audiences.end(), value) !=
             options.audiences.end();
    };
    if (aud->is_string()) {
      if (!wanted(*aud)) return JwtError::wrong_audience;
    } else if (aud->is_array()) {
      const auto& items = aud->get_array();
      if (!std::all_of(items.begin(), items.end(),
                       [](const boost::json::value& item) { return item.is_string(); })) {
        return JwtError::malformed;
      }
      if (std::none_of(items.begin(), items.end(), wanted)) return JwtError::wrong_audience;
    } else {
      return JwtError::malformed;
    }
  }
  return std::nullopt;
}

std::optional<boost::json::object> decode_object(std::string_view part) {
  const auto text = base64url_decode(part);
  if (!text) return std::nullopt;
  auto value = json::try_parse(*text);
  if (!value || !value->is_object()) return std::nullopt;
  return std::move(value->as_object());
}

}  // namespace

std::string_view to_string(JwtError error) {
  switch (error) {
    case JwtError::malformed:
      return "malformed";
    case JwtError::unsupported_algorithm:
      return "unsupported_algorithm";
    case JwtError::unknown_key:
      return "unknown_key";
    case JwtError::bad_signature:
      return "bad_signature";
    case JwtError::expired:
      return "expired";
    case JwtError::not_yet_valid:
      return "not_yet_valid";
    case JwtError::wrong_issuer:
      return "wrong_issuer";
    case JwtError::wrong_audience:
      return "wrong_audience";
    case JwtError::missing_claim:
      return "missing_claim";
  }
  return "unknown";
}

// ---- SigningKey ----

SigningKey::SigningKey(std::unique_ptr<EVP_PKEY, EvpPkeyDeleter> key, std::string kid, bool ec)
    : key_(std::move(key)), kid_(std::move(kid)), ec_(ec) {}

SigningKey SigningKey::from_pem(std::string_view pem, std::string kid) {
  if (pem.empty() || pem.size() > 64 * 1024) fail_invalid("not a PEM private key");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail_runtime("out of memory");
  // A callback that supplies no passphrase: an encrypted key fails instead of prompting on a tty.
  pem_password_cb* no_passphrase = [](char*, int, int, void*) { return -1; };
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) fail_invalid("not a PEM private key (or an encrypted one)");
  bool ec = false;
  if (is_p256(key.get())) {
    ec = true;
  } else if (EVP_PKEY_is_a(key.get(), "EC") == 1) {
    fail_invalid("unsupported EC curve (only P-256 is supported)");
  } else if (EVP_PKEY_is_a(key.get(), "RSA") == 1) {
    if (!is_usable_rsa(key.get())) fail_invalid("RSA key must have 2048 to 8192 bits");
  } else {
    fail_invalid("unsupported key type (EC P-256 or RSA expected)");
  }
  if (kid.empty()) {
    auto thumbprint = jwk_thumbprint(public_members(key.get(), ec));
    if (!thumbprint) fail_runtime("key thumbprint failed");
    kid = std::move(*thumbprint);
  }
  ERR_clear_error();
  return SigningKey(std::move(key), std::move(kid), ec);
}

std::string SigningKey::generate_es256_pem() {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") != 1) {
    fail_runtime("EC key generation failed");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &raw) != 1) fail_runtime("EC key generation failed");
  const PkeyPtr key(raw);
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    fail_runtime("writing the key failed");
  }
  std::string pem(BIO_ctrl_pending(bio.get()), '\0');
  if (BIO_read(bio.get(), pem.data(), static_cast<int>(pem.size())) !=
      static_cast<int>(pem.size())) {
    fail_runtime("writing the key failed");
  }
  return pem;
}

std::string_view SigningKey::alg() const {
  return ec_ ? "ES256" : "RS256";
}

boost::json::object SigningKey::public_jwk() const {
  boost::json::object jwk = public_members(key_.get(), ec_);
  jwk["kid"] = kid_;
  jwk["alg"] = alg();
  jwk["use"] = "sig";
  return jwk;
}

std::string SigningKey::private_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    fail_runtime("writing the key failed");
  }
  std::string pem(BIO_ctrl_pending(bio.get()), '\0');
  if (BIO_read(bio.get(), pem.data(), static_cast<int>(pem.size())) !=
      static_cast<int>(pem.size())) {
    fail_runtime("writing the key failed");
  }
  return pem;
}

std::string SigningKey::sign(const boost::json::object& claims) const {
  boost::json::object header;
  header["alg"] = alg();
  header["typ"] = "JWT";
  header["kid"] = kid_;
  std::string input = base64url_encode(boost::json::serialize(header));
  input += '.';
  input += base64url_encode(boost::json::serialize(claims));

  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1) {
    fail_runtime("signing failed");
  }
  std::size_t size = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &size, bytes_of(input), input.size()) != 1) {
    fail_runtime("signing failed");
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     bytes_of(input), input.size()) != 1) {
    fail_runtime("signing failed");
  }
  signature.resize(size);
  if (ec_) signature = der_to_raw_ecdsa(signature);
  input += '.';
  input += base64url_encode(signature);
  return input;
}

std::optional<std::string> jwk_thumbprint(const boost::json::object& jwk) {
  const auto kty = get_string(jwk, "kty");
  if (!kty) return std::nullopt;
  // Members in lexicographic order, no whitespace (RFC 7638 section 3.2); the values are
  // base64url or fixed names, so serialize() quotes them exactly as the RFC expects.
  std::string canonical;
  const auto member = [&](std::string_view name) -> bool {
    const auto value = get_string(jwk, name);
    if (!value) return false;
    canonical += canonical.empty() ? "{" : ",";
    canonical += boost::json::serialize(boost::json::string_view(name.data(), name.size()));
    canonical += ':';
    canonical += boost::json::serialize(boost::json::string_view(value->data(), value->size()));
    return true;
  };
  bool complete = false;
  if (*kty == "EC") {
    complete = member("crv") && member("kty") && member("x") && member("y");
  } else if (*kty == "RSA") {
    complete = member("e") && member("kty") && member("n");
  }
  if (!complete) return std::nullopt;
  canonical += '}';
  return base64url_encode(sha256(canonical));
}

// ---- KeySet ----

KeySet KeySet::from_jwks(const boost::json::value& jwks) {
  const auto* document = jwks.if_object();
  const auto* keys = document != nullptr ? document->if_contains("keys") : nullptr;
  if (keys == nullptr || !keys->is_array()) {
    throw std::invalid_argument(R"(JWKS document is not {"keys": [...]})");
  }
  KeySet set;
  for (const auto& item : keys->get_array()) {
    try {
      const auto* jwk = item.if_object();
      if (jwk == nullptr) continue;
      const auto* use = jwk->if_contains("use");
      if (use != nullptr && !(use->is_string() && use->get_string() == "sig")) continue;
      const auto kty = get_string(*jwk, "kty");
      if (!kty) continue;
      const bool ec = *kty == "EC";
      if (!ec && *kty != "RSA") continue;
      if (const auto* alg = jwk->if_contains("alg"); alg != nullptr) {
        if (!alg->is_string() || alg->get_string() != (ec ? "ES256" : "RS256")) continue;
      }
      PkeyPtr key = ec ? ec_key_from_jwk(*jwk) : rsa_key_from_jwk(*jwk);
      ERR_clear_error();
      if (!key) continue;
      Key entry;
      entry.ec = ec;
      entry.jwk = public_members(key.get(), ec);
      if (const auto* kid = jwk->if_contains("kid"); kid != nullptr) {
        if (!kid->is_string()) continue;
        entry.kid = std::string(kid->get_string());
      } else {
        entry.kid = jwk_thumbprint(entry.jwk).value_or("");
      }
      if (entry.kid.empty() || set.find(entry.kid) != nullptr) continue;
      entry.jwk["kid"] = entry.kid;
      entry.jwk["alg"] = ec ? "ES256" : "RS256";
      entry.jwk["use"] = "sig";
      entry.key = share(std::move(key));
      set.keys_.push_back(std::move(entry));
    } catch (const std::exception&) {
      ERR_clear_error();  // one unusable key does not spoil the others
    }
  }
  return set;
}

void KeySet::add(const SigningKey& key) {
  if (EVP_PKEY_up_ref(key.native()) != 1) fail_runtime("EVP_PKEY_up_ref failed");
  Key entry;
  entry.kid = key.kid();
  entry.ec = key.alg() == "ES256";
  entry.key = share(PkeyPtr(key.native()));
  entry.jwk = key.public_jwk();
  const auto same = std::find_if(keys_.begin(), keys_.end(),
                                 [&](const Key& existing) { return existing.kid == entry.kid; });
  if (same != keys_.end()) {
    *same = std::move(entry);
  } else {
    keys_.push_back(std::move(entry));
  }
}

boost::json::object KeySet::jwks() const {
  boost::json::array keys;
  for (const auto& entry : keys_) keys.push_back(entry.jwk);
  boost::json::object document;
  document["keys"] = std::move(keys);
  return document;
}

bool KeySet::has(std::string_view kid) const {
  return find(kid) != nullptr;
}

const KeySet::Key* KeySet::find(std::string_view kid) const {
  const auto found =
      std::find_if(keys_.begin(), keys_.end(), [&](const Key& entry) { return entry.kid == kid; });
  return found == keys_.end() ? nullptr : &*found;
}

std::variant<boost::json::object, JwtError> KeySet::verify(std::string_view token,
                                                           const VerifyOptions& options) const {
  try {
    if (token.empty() || token.size() > kMaxTokenSize) return JwtError::malformed;
    const auto first_dot = token.find('.');
    if (first_dot == std::string_view::npos) return JwtError::malformed;
    const auto second_dot = token.find('.', first_dot + 1);
    if (second_dot == std::string_view::npos ||
        token.find('.', second_dot + 1) != std::string_view::npos) {
      return JwtError::malformed;
    }
    const std::string_view header_part = token.substr(0, first_dot);
    const std::string_view payload_part = token.substr(first_dot + 1, second_dot - first_dot - 1);
    const std::string_view signature_part = token.substr(second_dot + 1);

    const auto header = decode_object(header_part);
    if (!header) return JwtError::malformed;
    const auto* alg_value = header->if_contains("alg");
    if (alg_value == nullptr || !alg_value->is_string()) return JwtError::malformed;
    const auto& alg = alg_value->get_string();
    if (alg != "ES256" && alg != "RS256") return JwtError::unsupported_algorithm;
    // No JWS extension is understood, so one marked critical must be refused (RFC 7515 4.1.11).
    if (header->contains("crit")) return JwtError::malformed;
    const auto signature = base64url_decode(signature_part);
    if (!signature || signature->empty()) return JwtError::malformed;
    const auto payload = base64url_decode(payload_part);
    if (!payload) return JwtError::malformed;

    const Key* key = nullptr;
    if (const auto* kid = header->if_contains("kid"); kid != nullptr) {
      if (!kid->is_string()) return JwtError::malformed;
      key = find(std::string_view(kid->get_string().data(), kid->get_string().size()));
    } else if (keys_.size() == 1) {
      key = &keys_.front();
    }
    if (key == nullptr) return JwtError::unknown_key;
    // The key decides the algorithm; a token may not pick another one (alg confusion).
    if ((alg == "ES256") != key->ec) return JwtError::unsupported_algorithm;

    std::string signature_bytes = *signature;
    if (key->ec) {
      auto der = raw_to_der_ecdsa(signature_bytes);
      if (!der) return JwtError::bad_signature;
      signature_bytes = std::move(*der);
    } else if (signature_bytes.size() !=
               static_cast<std::size_t>(EVP_PKEY_get_size(key->key.get()))) {
      return JwtError::bad_signature;
    }
    const bool valid =
        verify_signature(key->key.get(), token.substr(0, second_dot), signature_bytes);
    ERR_clear_error();
    if (!valid) return JwtError::bad_signature;

    auto value = json::try_parse(*payload);
    if (!value || !value->is_object()) return JwtError::malformed;
    auto& claims = value->as_object();
    if (const auto error = check_claims(claims, options)) return *error;
    return std::move(claims);
  } catch (...) {
    ERR_clear_error();
    return JwtError::malformed;
  }
}

}  // namespace inkwell::security
