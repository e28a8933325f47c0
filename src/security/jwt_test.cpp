#include "security/jwt.h"

#include "security/encoding.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <memory>

namespace inkwell::security {

void PrintTo(JwtError error, std::ostream* out) {
  *out << to_string(error);
}

namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

constexpr std::int64_t kNow = 1'700'000'000;

// Python `cryptography` made these keys and signed the tokens (claims iat kNow, exp kNow+3600,
// iss https://accounts.google.com, aud client-123): interoperability, not just a round trip.
constexpr std::string_view kPythonJwks =
    R"({"keys":[{"kty":"RSA","kid":"py-rsa","alg":"RS256","use":"sig","n":"sjrOb-LGGMcdclPa)"
    R"(zXl-UjbZhBRcfZiZVQP_e6bJtVW6CRyCh5OsYWQI2SI0DMaAbfawMBmI1ppBkmSZFwQ_alGcmbnMKrWD46RD)"
    R"(lmC6tquj3ETkgmX_XGfeKrwzfzoEC8qk-7BnmakeSly8AfZzxvusxZ1dJzPkYWRp1RY3gOFn1fMG3LOo2nhT)"
    R"(MfZMl1qcnlV5S9XvISFhf-csBZWBmsr5HurGyFLtmWToalrc2W37AHFJ235jjtTBB2r2W5rdTCHiMVWFsyU0)"
    R"(RhAck5a8iklB9yw43OZ_L8703U2GhSWiplQpJaEFBqX0kL7KAqMy9IxEjbugM_DHMEvHzhEjhQ","e":"AQA)"
    R"(B"},{"kty":"EC","kid":"py-ec","alg":"ES256","use":"sig","crv":"P-256","x":"NwvfcDBrl)"
    R"(qcCrevnyRjQWohmZmW_OKbI86Bbmc6jwYE","y":"uk55RFglLkwfuYAju6LPe7dbI2oi-XrXkchOscm7yn4)"
    R"("},{"kty":"RSA","use":"enc","kid":"py-enc","n":"sjrOb-LGGMcdclPazXl-UjbZhBRcfZiZVQP_)"
    R"(e6bJtVW6CRyCh5OsYWQI2SI0DMaAbfawMBmI1ppBkmSZFwQ_alGcmbnMKrWD46RDlmC6tquj3ETkgmX_XGfe)"
    R"(KrwzfzoEC8qk-7BnmakeSly8AfZzxvusxZ1dJzPkYWRp1RY3gOFn1fMG3LOo2nhTMfZMl1qcnlV5S9XvISFh)"
    R"(f-csBZWBmsr5HurGyFLtmWToalrc2W37AHFJ235jjtTBB2r2W5rdTCHiMVWFsyU0RhAck5a8iklB9yw43OZ_)"
    R"(L8703U2GhSWiplQpJaEFBqX0kL7KAqMy9IxEjbugM_DHMEvHzhEjhQ","e":"AQAB"}]})";
constexpr std::string_view kPythonRs256Token =
    R"(eyJhbGciOiJSUzI1NiIsImtpZCI6InB5LXJzYSIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2FjY29)"
    R"(1bnRzLmdvb2dsZS5jb20iLCJhdWQiOiJjbGllbnQtMTIzIiwic3ViIjoiMTIzNDU2Nzg5MCIsImVtYWlsIjo)"
    R"(iYUBleGFtcGxlLmNvbSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ.IeLCznzQSZp6meLp)"
    R"(Sg6rnCvdBNRpWT0tPiLG2ocq9zuJOF-ui4swerZ1qssC5mkKpnPqoa5KlVQEhbQ10x_A5hOdZiWYg1Zc342O)"
    R"(KrWItvdId7ynvNvU04Ensu60uQ63aOFHmmMx8EBPKmPfwzPS2fB2vUJRXVlSJiC3I3YKT5dl4UyiW8B5Lz6e)"
    R"(_J8ZoPxpx96teBqKNtMoVg61aLlROeVBlF_KQrwuwqCNtfehAFn5OR9zmkXpn_o0jZvJbgSC36KHr3yZT7vJ)"
    R"(vcJzlE62BaaDSZn2Sc14zKNEGjfDY1yDmnyqAMx5feXXSYPs5dBTqSykDXsa6GeppeK1lF9WOw)";
constexpr std::string_view kPythonEs256Token =
    R"(eyJhbGciOiJFUzI1NiIsImtpZCI6InB5LWVjIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2FjY291)"
    R"(bnRzLmdvb2dsZS5jb20iLCJhdWQiOiJjbGllbnQtMTIzIiwic3ViIjoiMTIzNDU2Nzg5MCIsImVtYWlsIjoi)"
    R"(YUBleGFtcGxlLmNvbSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ.o1Fx5HfWcfEKrzW-b)"
    R"(RhAcvh1cw52LVlcVKnEFP3Jwxn_ohFCoH20ogZoNQW7yPVxG25ZvbdsGZfCsjBL-cEs5g)";

// Test-only keys made by the openssl CLI: `ecparam -genkey` (traditional SEC1 with a
// parameters block) and `genpkey ... -aes-128-cbc` (encrypted PKCS#8).
constexpr std::string_view kTraditionalEcPem =
    "-----BEGIN EC PARAMETERS-----\n"
    "BggqhkjOPQMBBw==\n"
    "-----END EC PARAMETERS-----\n"
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEICyFh6HrjZh43/ifdUONeV0IgQ2lmy2FvxMfa9LfhzWFoAoGCCqGSM49\n"
    "AwEHoUQDQgAEPlrxTTOay4iOFdA6vRx9hc1pkdjD5CswteqxlvCaZ98H4Xir8JKC\n"
    "K1AK7gixkcX/VV/GUVE3KjeOZOWt3M+opQ==\n"
    "-----END EC PRIVATE KEY-----\n";

constexpr std::string_view kEncryptedEcPem =
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    "MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgD/vm9qUGvMAICCAAw\n"
    "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEAQIEENdawMkp4nJpGx/j2H7E5I0EgZCz\n"
    "q1XoLbHq8zl8kteXGKAZq+3HRw57LGzvnN7QiqW341TtnVw/vsTmSIl3JayHmyBK\n"
    "mIPKp4HD7V4vTXKDFHoe50EnVZ7q3dGYoyynkBk/mG/SE+NaEE9WlL0rIICyy7ie\n"
    "PhYk5/7Y6chxQoMbsRAQKaSyKNWQwW3x4VWcWt/Tbcg7f4HYrTPYGCV0zDe1fLg=\n"
    "-----END ENCRYPTED PRIVATE KEY-----\n";

system_clock::time_point at(std::int64_t unix_seconds) {
  return system_clock::time_point(seconds(unix_seconds));
}

std::string generate_rsa_pem(unsigned bits) {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr), &EVP_PKEY_CTX_free);
  EXPECT_TRUE(ctx);
  EXPECT_EQ(EVP_PKEY_keygen_init(ctx.get()), 1);
  EXPECT_EQ(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), static_cast<int>(bits)), 1);
  EVP_PKEY* raw = nullptr;
  EXPECT_EQ(EVP_PKEY_generate(ctx.get(), &raw), 1);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(raw, &EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr),
            1);
  std::string pem(BIO_ctrl_pending(bio.get()), '\0');
  BIO_read(bio.get(), pem.data(), static_cast<int>(pem.size()));
  return pem;
}

// One RSA key for the whole binary: generating them is slow.
const std::string& rsa_pem() {
  static const std::string pem = generate_rsa_pem(2048);
  return pem;
}

boost::json::object claims(std::int64_t exp = kNow + 600) {
  return {{"sub", "user-1"},
          {"iss", "https://inkwell.test"},
          {"aud", "inkwell"},
          {"iat", kNow},
          {"exp", exp}};
}

VerifyOptions options() {
  VerifyOptions options;
  options.issuer = "https://inkwell.test";
  options.audiences = {"inkwell"};
  options.now = at(kNow);
  return options;
}

KeySet set_of(const SigningKey& key) {
  KeySet set;
  set.add(key);
  return set;
}

std::string part(std::string_view text) {
  return base64url_encode(text);
}

// A token with the given header and payload JSON and signature bytes, signed by no one.
std::string forge(std::string_view header, std::string_view payload,
                  std::string_view signature = "sig") {
  return part(header) + "." + part(payload) + "." + part(signature);
}

JwtError error_of(const std::variant<boost::json::object, JwtError>& result) {
  EXPECT_TRUE(std::holds_alternative<JwtError>(result));
  return std::holds_alternative<JwtError>(result) ? std::get<JwtError>(result)
                                                  : JwtError::missing_claim;
}

// RS256 signatures are raw PKCS#1 v1.5 bytes, so a test can make tokens with any header.
std::string sign_rs256_by_hand(const SigningKey& key, std::string_view header,
                               std::string_view payload) {
  const std::string input = part(header) + "." + part(payload);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.native()), 1);
  std::size_t size = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &size, data, input.size()), 1);
  std::string signature(size, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                           data, input.size()),
            1);
  return input + "." + part(signature);
}

struct Parts {
  std::string header, payload, signature;
};

Parts split(const std::string& token) {
  const auto a = token.find('.');
  const auto b = token.find('.', a + 1);
  return {token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1)};
}

TEST(SigningKey, GeneratesEs256KeysWithThumbprintKids) {
  const std::string pem = SigningKey::generate_es256_pem();
  EXPECT_NE(pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  const SigningKey key = SigningKey::from_pem(pem);
  EXPECT_EQ(key.alg(), "ES256");
  EXPECT_EQ(key.kid().size(), 43U);
  EXPECT_EQ(key.kid(), jwk_thumbprint(key.public_jwk()));
  EXPECT_EQ(SigningKey::from_pem(pem, "named").kid(), "named");
  EXPECT_NE(SigningKey::from_pem(SigningKey::generate_es256_pem()).kid(), key.kid());

  const auto jwk = key.public_jwk();
  EXPECT_EQ(jwk.at("kty"), "EC");
  EXPECT_EQ(jwk.at("crv"), "P-256");
  EXPECT_EQ(jwk.at("alg"), "ES256");
  EXPECT_EQ(jwk.at("use"), "sig");
  EXPECT_EQ(base64url_decode(jwk.at("x").as_string())->size(), 32U);
  EXPECT_EQ(base64url_decode(jwk.at("y").as_string())->size(), 32U);
  EXPECT_FALSE(jwk.contains("d"));
}

TEST(SigningKey, PrivatePemRoundTrips) {
  const SigningKey key = SigningKey::from_pem(SigningKey::generate_es256_pem());
  EXPECT_EQ(SigningKey::from_pem(key.private_pem()).kid(), key.kid());
}

TEST(SigningKey, RejectsBadAndUnsupportedKeys) {
  EXPECT_THROW(SigningKey::from_pem(""), std::invalid_argument);
  EXPECT_THROW(SigningKey::from_pem("not a key"), std::invalid_argument);
  EXPECT_THROW(
      SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
      std::invalid_argument);
  EXPECT_THROW(SigningKey::from_pem(generate_rsa_pem(1024)), std::invalid_argument);

  // A P-384 key and an Ed25519 key are valid keys of unsupported kinds.
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> p384(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"), &EVP_PKEY_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> ed(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), &EVP_PKEY_free);
  for (EVP_PKEY* other : {p384.get(), ed.get()}) {
    ASSERT_NE(other, nullptr);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), other, nullptr, nullptr, 0, nullptr, nullptr), 1);
    std::string pem(BIO_ctrl_pending(bio.get()), '\0');
    BIO_read(bio.get(), pem.data(), static_cast<int>(pem.size()));
    EXPECT_THROW(SigningKey::from_pem(pem), std::invalid_argument);
  }
}

TEST(SigningKey, ReadsTraditionalPemAndRefusesEncryptedPem) {
  const SigningKey key = SigningKey::from_pem(kTraditionalEcPem);
  EXPECT_EQ(key.alg(), "ES256");
  EXPECT_EQ(key.kid(), jwk_thumbprint(key.public_jwk()));
  EXPECT_THROW(SigningKey::from_pem(kEncryptedEcPem), std::invalid_argument);
}

TEST(SigningKey, RefusesAPublicKeyPem) {
  const SigningKey key = SigningKey::from_pem(SigningKey::generate_es256_pem());
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio.get(), key.native()), 1);
  std::string pem(BIO_ctrl_pending(bio.get()), '\0');
  BIO_read(bio.get(), pem.data(), static_cast<int>(pem.size()));
  EXPECT_THROW(SigningKey::from_pem(pem), std::invalid_argument);
}

TEST(JwkThumbprint, MatchesRfc7638Example) {
  const boost::json::object jwk = {
      {"kty", "RSA"},
      {"n",
       "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJEC"
       "PebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Q"
       "vzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh"
       "6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"},
      {"e", "AQAB"},
      {"alg", "RS256"},
      {"kid", "2011-04-29"}};
  EXPECT_EQ(jwk_thumbprint(jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  EXPECT_EQ(jwk_thumbprint({{"kty", "RSA"}, {"e", "AQAB"}}), std::nullopt);
  EXPECT_EQ(jwk_thumbprint({{"kty", "oct"}, {"k", "AAAA"}}), std::nullopt);

  // The RFC's key loads from its JWK and gets the same kid when it has none.
  boost::json::object without_kid = jwk;
  without_kid.erase("kid");
  const KeySet set = KeySet::from_jwks(boost::json::object{{"keys", {without_kid}}});
  EXPECT_TRUE(set.has("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
}

TEST(Jwt, Es256RoundTrip) {
  const SigningKey key = SigningKey::from_pem(SigningKey::generate_es256_pem());
  const std::string token = key.sign(claims());
  const auto header = boost::json::parse(*base64url_decode(split(token).header));
  EXPECT_EQ(header.at("alg"), "ES256");
  EXPECT_EQ(header.at("typ"), "JWT");
  EXPECT_EQ(header.at("kid").as_string(), key.kid());
  EXPECT_EQ(base64url_decode(split(token).signature)->size(), 64U);

  const auto result = set_of(key).verify(token, options());
  ASSERT_TRUE(std::holds_alternative<boost::json::object>(result))
      << to_string(std::get<JwtError>(result));
  EXPECT_EQ(std::get<boost::json::object>(result).at("sub"), "user-1");
}

TEST(Jwt, Rs256RoundTrip) {
  const SigningKey key = SigningKey::from_pem(rsa_pem());
  EXPECT_EQ(key.alg(), "RS256");
  const auto jwk = key.public_jwk();
  EXPECT_EQ(jwk.at("kty"), "RSA");
  EXPECT_EQ(jwk.at("e"), "AQAB");
  EXPECT_EQ(base64url_decode(jwk.at("n").as_string())->size(), 256U);
  EXPECT_FALSE(jwk.contains("d"));
  const std::string token = key.sign(claims());
  EXPECT_EQ(base64url_decode(split(token).signature)->size(), 256U);
  const auto result = set_of(key).verify(token, options());
  ASSERT_TRUE(std::holds_alternative<boost::json::object>(result))
      << to_string(std::get<JwtError>(result));
}

TEST(Jwt, PublicJwkRoundTripsThroughFromJwks) {
  const SigningKey ec = SigningKey::from_pem(SigningKey::generate_es256_pem());
  const SigningKey rsa = SigningKey::from_pem(rsa_pem());
  KeySet published;
  published.add(ec);
  published.add(rsa);
  const KeySet loaded =
      KeySet::from_jwks(boost::json::parse(boost::json::serialize(published.jwks())));
  EXPECT_EQ(loaded.size(), 2U);
  EXPECT_EQ(loaded.jwks(), published.jwks());
  for (const SigningKey* key : {&ec, &rsa}) {
    EXPECT_TRUE(
        std::holds_alternative<boost::json::object>(loaded.verify(key->sign(claims()), options())));
  }
}

TEST(Jwt, VerifiesTokensSignedByPythonCryptography) {
  const KeySet set = KeySet::from_jwks(boost::json::parse(kPythonJwks));
  EXPECT_EQ(set.size(), 2U);  // the "use": "enc" key is skipped
  EXPECT_TRUE(set.has("py-rsa"));
  EXPECT_TRUE(set.has("py-ec"));
  EXPECT_FALSE(set.has("py-enc"));
  VerifyOptions google;
  google.issuer = "accounts.google.com";
  google.alternative_issuers = {"https://accounts.google.com"};
  google.audiences = {"client-123"};
  google.now = at(kNow + 60);
  for (const std::string_view token : {kPythonRs256Token, kPythonEs256Token}) {
    const auto result = set.verify(token, google);
    ASSERT_TRUE(std::holds_alternative<boost::json::object>(result))
        << to_string(std::get<JwtError>(result));
    EXPECT_EQ(std::get<boost::json::object>(result).at("email"), "a@example.com");
  }
  google.now = at(kNow + 3600 + 31);
  EXPECT_EQ(error_of(set.verify(kPythonRs256Token, google)), JwtError::expired);
}

TEST(Jwt, RejectsAlgNone) {
  const SigningKey key = SigningKey::from_pem(SigningKey::generate_es256_pem());
  const std::string payload = boost::json::serialize(claims());
  const std::string kid = key.kid();
  const KeySet set = set_of(key);
  EXPECT_EQ(
      error_of(set.verify(
          part(R"({"alg":"none","kid":")" + kid + "\"}") + "." + part(payload) + ".", options())),
      JwtError::unsupported_algorithm);
  EXPECT_EQ(error_of(set.verify(forge(R"({"alg":"none"})", payload), options())),
            JwtError::unsupported_algorithm);
  EXPECT_EQ(error_of(set.verify(forge(R"({"alg":"None"})", payload), options())),
            JwtError::unsupported_algorithm);
  EXPECT_EQ(error_of(set.verify(forge(R"({"typ":"JWT"})", payload), options())),
            JwtError::malformed);
}

TEST(Jwt, RejectsHmacAndAlgorithmConfusion) {
  const SigningKey ec = SigningKey::from_pem(SigningKey::generate_es256_pem());
  const SigningKey rsa = SigningKey::from_pem(rsa_pem());
  KeySet set;
  set.add(ec);
  set.add(rsa);
  const std::string payload = boost::json::serialize(claims());
  // HS256 keyed with the public key's bytes is the classic confusion attack.
  EXPECT_EQ(error_of(set.verify(forge(R"({"alg":"HS256","kid":")" + rsa.kid() + "\"}", payload),
                                options())),
            JwtError::unsupported_algorithm);
  // An RS256 header naming the EC key, and the reverse.
  EXPECT_EQ(error_of(set.verify(forge(R"({"alg":"RS256","kid":")" + ec.kid() + "\"}", payload,
                                      std::string(256, 'x')),
                                options())),
            JwtError::unsupported_algorithm);
  EXPECT_EQ(error_of(set.verify(forge(R"({"alg":"ES256","kid":")" + rsa.kid() + "\"}", payload,
                                      std::string(64, 'x')),
                                options())),
            JwtError::unsupported_algorithm);
  EXPECT_EQ(error_of(set.verify(forge(R"({"alg":"PS256","kid":")" + rsa.kid() + "\"}", payload),
                                options())),
            JwtError::unsupported_algorithm);
}

TEST(Jwt, RejectsTamperedPayloadAndSignature) {
  const SigningKey key = SigningKey::from_pem(SigningKey::generate_es256_pem());
  const KeySet set = set_of(key);
  const Parts parts = split(key.sign(claims()));
  boost::json::object admin = claims();
  admin["sub"] = "admin";
  const std::string tampered =
      parts.header + "." + part(boost::json::serialize(admin)) + "." + parts.signature;
  EXPECT_EQ(error_of(set.verify(tampered, options())), JwtError::bad_signature);

  std::string signature = *base64url_decode(parts.signature);
  signature[10] = static_cast<char>(signature[10] ^ 1);
  EXPECT_EQ(
      error_of(set.verify(parts.header + "." + parts.payload + "." + part(signature), options())),
      JwtError::bad_signature);
  // Wrong lengths, a DER signature instead of r||s, r = s = 0.
  EXPECT_EQ(error_of(set.verify(parts.header + "." + parts.payload + "." + part(signature + "x"),
                                options())),
            JwtError::bad_signature);
  EXPECT_EQ(
      error_of(set.verify(parts.header + "." + parts.payload + "." + part(signature.substr(0, 63)),
                          options())),
      JwtError::bad_signature);
  EXPECT_EQ(error_of(set.verify(
                parts.header + "." + parts.payload + "." + part(std::string(64, '\0')), options())),
            JwtError::bad_signature);
}

TEST(Jwt, RejectsTamperedRs256Signature) {
  const SigningKey key = SigningKey::from_pem(rsa_pem());
  const KeySet set = set_of(key);
  const Parts parts = split(key.sign(claims()));
  std::string signature = *base64url_decode(parts.signature);
  signature[100] = static_cast<char>(signature[100] ^ 0x40);
  EXPECT_EQ(
      error_of(set.verify(parts.header + "." + parts.payload + "." + part(signature), options())),
      JwtError::bad_signature);
  EXPECT_EQ(error_of(set.verify(
                parts.header + "." + parts.payload + "." + part(signature.substr(1)), options())),
            JwtError::bad_signature);
}

TEST(Jwt, RejectsUnknownAndMissingKids) {
  const SigningKey a = SigningKey::from_pem(SigningKey::generate_es256_pem());
  const SigningKey b = SigningKey::from_pem(SigningKey::generate_es256_pem());
  EXPECT_EQ(error_of(set_of(a).verify(b.sign(claims()), options())), JwtError::unknown_key);
  EXPECT_EQ(error_of(KeySet().verify(a.sign(claims()), options())), JwtError::unknown_key);
  EXPECT_EQ(error_of(set_of(a).verify(forge(R"({"alg":"ES256","kid":7})", "{}"), options())),
            JwtError::malformed);
}

TEST(Jwt, ATokenWithoutKidNeedsASetOfExactlyOneKey) {
  const SigningKey rsa = SigningKey::from_pem(rsa_pem());
  const std::string token =
      sign_rs256_by_hand(rsa, R"({"alg":"RS256"})", boost::json::serialize(claims()));
  EXPECT_TRUE(std::holds_alternative<boost::json::object>(set_of(rsa).verify(token, options())));
  KeySet two = set_of(rsa);
  two.add(SigningKey::from_pem(SigningKey::generate_es256_pem()));
  EXPECT_EQ(error_of(two.verify(token, options())), JwtError::unknown_key);
}

TEST(Jwt, RejectsATokenFromAnotherKeyWithTheSameKid) {
  const SigningKey real = SigningKey::from_pem(SigningKey::generate_es256_pem(), "shared");
  const SigningKey impostor = SigningKey::from_pem(SigningKey::generate_es256_pem(), "shared");
  EXPECT_EQ(error_of(set_of(real).verify(impostor.sign(claims()), options())),
            JwtError::bad_signature);
}

TEST(Jwt, ChecksExpiryAndNotBeforeWithLeeway) {
  const SigningKey key = SigningKey::from_pem(SigningKey::generate_es256_pem());
  const KeySet set = set_of(key);
  VerifyOptions opts = options();
  const std::string token = key.sign(claims(kNow + 600));
  opts.now = at(kNow + 600 + 29);
  EXPECT_TRUE(std::holds_alternative<boost::json::object>(set.verify(token, opts)));
  opts.now = at(kNow + 600 + 30);
  EXPECT_EQ(error_of(set.verify(token, opts)), JwtError::expired);
  opts.leeway = seconds(0);
  opts.now = at(kNow + 600);
  EXPECT_EQ(error_of(set.verify(token, opts)), JwtError::expired);

  boost::json::object future = claims();
  future["nbf"] = kNow + 100;
  const std::string early = key.sign(future);
  EXPECT_EQ(error_of(set.verify(early, options())), JwtError::not_yet_valid);
  opts = options();
  opts.now = at(kNow + 70);
  EXPECT_TRUE(std::holds_alternative<boost::json::object>(set.verify(early, opts)));

  boost::json::object doubles = claims();
  doubles["exp"] = static_cast<double>(kNow) + 600.5;
  doubles["nbf"] = static_cast<double>(kNow) - 0.5;
  doubles["iat"] = static_cast<double>(kNow);
  EXPECT_TRUE(
      std::holds_alternative<boost::json::object>(set.verify(key.sign(doubles), options())));
  doubles["exp"] = static_cast<double>(kNow) - 100.25;
  EXPECT_EQ(error_of(set.verify(key.sign(doubles), options())), JwtError::expired);
}

TEST(Jwt, ExpIsRequiredUnlessTurnedOff) {
  const SigningKey key = SigningKey::from_pem(SigningKey::generate_es256_pem());
  boost::json::object no_exp = claims();
  no_exp.erase("exp");
  const std::string token = key.sign(no_exp);
  EXPECT_EQ(error_of(set_of(key).verify(token, options())), JwtError::missing_claim);
  VerifyOptions opts = options();
  opts.require_exp = false;
  EXPECT_TRUE(std::holds_alternative<boost::json::object>(set_of(key).verify(token, opts)));
}

TEST(Jwt, NonNumericTimesAreMalformed) {
  const SigningKey key = SigningKey::from_pem(SigningKey::generate_es256_pem());
  for (const char* name : {"exp", "nbf", "iat"}) {
    boost::json::object bad = claims();
    bad[name] = "1700000600";
    EXPECT_EQ(error_of(set_of(key).verify(key.sign(bad), options())), JwtError::malformed) << name;
    bad[name] = nullptr;
    EXPECT_EQ(error_of(set_of(key).verify(key.sign(bad), options())), JwtError::malformed) << name;
  }
  boost::json::object huge = claims();
  huge["exp"] = 18446744073709551615ULL;  // uint64 is a number too, and far away
  EXPECT_TRUE(
      std::holds_alternative<boost::json::object>(set_of(key).verify(key.sign(huge), options())));
}

TEST(Jwt, ChecksIssuer) {
  const SigningKey key = SigningKey::from_pem(SigningKey::generate_es256_pem());
  const KeySet set = set_of(key);
  boost::json::object other = claims();
  other["iss"] = "https://evil.test";
  EXPECT_EQ(error_of(set.verify(key.sign(other), options())), JwtError::wrong_issuer);
  other.erase("iss");
  EXPECT_EQ(error_of(set.verify(key.sign(other), options())), JwtError::missing_claim);
  VerifyOptions any = options();
  any.issuer.clear();
  EXPECT_TRUE(std::holds_alternative<boost::json::object>(set.verify(key.sign(other), any)));
}

TEST(Jwt, ChecksAudienceAsStringOrArray) {
  const SigningKey key = SigningKey::from_pem(SigningKey::generate_es256_pem());
  const KeySet set = set_of(key);
  boost::json::object c = claims();
  c["aud"] = "someone-else";
  EXPECT_EQ(error_of(set.verify(key.sign(c), options())), JwtError::wrong_audience);
  c["aud"] = boost::json::array{"a", "inkwell", "b"};
  EXPECT_TRUE(std::holds_alternative<boost::json::object>(set.verify(key.sign(c), options())));
  c["aud"] = boost::json::array{"a", "b"};
  EXPECT_EQ(error_of(set.verify(key.sign(c), options())), JwtError::wrong_audience);
  c["aud"] = boost::json::array{};
  EXPECT_EQ(error_of(set.verify(key.sign(c), options())), JwtError::wrong_audience);
  c["aud"] = 5;
  EXPECT_EQ(error_of(set.verify(key.sign(c), options())), JwtError::malformed);
  c.erase("aud");
  EXPECT_EQ(error_of(set.verify(key.sign(c), options())), JwtError::missing_claim);
  VerifyOptions two = options();
  two.audiences = {"web", "inkwell"};
  EXPECT_TRUE(std::holds_alternative<boost::json::object>(set.verify(key.sign(claims()), two)));
}

TEST(Jwt, HostileInputIsMalformedNeverAnException) {
  const SigningKey key = SigningKey::from_pem(SigningKey::generate_es256_pem());
  const KeySet set = set_of(key);
  const Parts good = split(key.sign(claims()));
  const std::string kid_header = R"({"alg":"ES256","kid":")" + key.kid() + "\"}";
  const std::vector<std::string> tokens = {
      "",
      ".",
      "..",
      "...",
      "a.b",
      "a.b.c.d",
      good.header + "." + good.payload,
      good.header + "." + good.payload + ".",
      good.header + "." + good.payload + "." + good.signature + ".",
      good.header + "=." + good.payload + "." + good.signature,
      good.header + "." + good.payload + "." + good.signature + "=",
      good.header + "." + good.payload + "+." + good.signature,
      "e30." + good.payload + "." + good.signature,  // header {}
      part("[1]") + "." + good.payload + "." + good.signature,
      part("\"ES256\"") + "." + good.payload + "." + good.signature,
      part("{") + "." + good.payload + "." + good.signature,
      part(R"({"alg":5})") + "." + good.payload + "." + good.signature,
      part(R"({"alg":"ES256","crit":["exp"]})") + "." + good.payload + "." + good.signature,
      part(std::string(100, '[')) + "." + good.payload + "." + good.signature,
      std::string(9000, 'a') + "." + good.payload + "." + good.signature,
      std::string("\0\0\0", 3),
  };
  for (const auto& token : tokens) {
    const auto result = set.verify(token, options());
    EXPECT_TRUE(std::holds_alternative<JwtError>(result)) << token;
    if (std::holds_alternative<JwtError>(result)) {
      EXPECT_EQ(std::get<JwtError>(result), JwtError::malformed) << token;
    }
  }
}

TEST(Jwt, ASignedPayloadThatIsNotAnObjectIsMalformed) {
  const SigningKey rsa = SigningKey::from_pem(rsa_pem());
  const KeySet set = set_of(rsa);
  const std::string header = R"({"alg":"RS256","kid":")" + rsa.kid() + "\"}";
  for (const char* payload : {"[1,2]", "\"text\"", "{", "", "null"}) {
    EXPECT_EQ(error_of(set.verify(sign_rs256_by_hand(rsa, header, payload), options())),
              JwtError::malformed)
        << payload;
  }
}

TEST(KeySet, FromJwksRejectsDocumentsThatAreNotKeySets) {
  EXPECT_THROW(KeySet::from_jwks(boost::json::parse("[]")), std::invalid_argument);
  EXPECT_THROW(KeySet::from_jwks(boost::json::parse("{}")), std::invalid_argument);
  EXPECT_THROW(KeySet::from_jwks(boost::json::parse(R"({"keys":{}})")), std::invalid_argument);
  EXPECT_EQ(KeySet::from_jwks(boost::json::parse(R"({"keys":[]})")).size(), 0U);
}

TEST(KeySet, FromJwksSkipsKeysItCannotUse) {
  const SigningKey ec = SigningKey::from_pem(SigningKey::generate_es256_pem());
  boost::json::object good = ec.public_jwk();
  boost::json::array keys;
  keys.push_back(1);
  keys.push_back(boost::json::object{{"kty", "oct"}, {"k", "c2VjcmV0"}, {"kid", "hmac"}});
  auto p384 = good;
  p384["crv"] = "P-384";
  p384["kid"] = "p384";
  keys.push_back(p384);
  auto off_curve = good;
  std::string x = *base64url_decode(good.at("x").as_string());
  x[31] = static_cast<char>(x[31] ^ 1);
  off_curve["x"] = base64url_encode(x);
  off_curve["kid"] = "off-curve";
  keys.push_back(off_curve);
  auto short_x = good;
  short_x["x"] = base64url_encode(x.substr(1));
  short_x["kid"] = "short";
  keys.push_back(short_x);
  auto wrong_alg = good;
  wrong_alg["alg"] = "RS256";
  wrong_alg["kid"] = "wrong-alg";
  keys.push_back(wrong_alg);
  auto enc = good;
  enc["use"] = "enc";
  enc["kid"] = "enc";
  keys.push_back(enc);
  auto numeric_kid = good;
  numeric_kid["kid"] = 5;
  keys.push_back(numeric_kid);
  keys.push_back(
      boost::json::object{{"kty", "RSA"}, {"kid", "tiny"}, {"n", "AQAB"}, {"e", "AQAB"}});
  keys.push_back(
      boost::json::object{{"kty", "RSA"}, {"kid", "bad-b64"}, {"n", "!!"}, {"e", "AQAB"}});
  keys.push_back(good);
  auto duplicate = SigningKey::from_pem(SigningKey::generate_es256_pem(), ec.kid()).public_jwk();
  keys.push_back(duplicate);

  const KeySet set = KeySet::from_jwks(boost::json::object{{"keys", keys}});
  EXPECT_EQ(set.size(), 1U);
  EXPECT_TRUE(set.has(ec.kid()));
  EXPECT_TRUE(
      std::holds_alternative<boost::json::object>(set.verify(ec.sign(claims()), options())));
}

TEST(KeySet, CopiesShareKeysAndStayValid) {
  KeySet copy;
  {
    const SigningKey key = SigningKey::from_pem(SigningKey::generate_es256_pem());
    KeySet original = set_of(key);
    copy = original;
    const std::string token = key.sign(claims());
    EXPECT_TRUE(std::holds_alternative<boost::json::object>(copy.verify(token, options())));
  }
  EXPECT_EQ(copy.size(), 1U);
  EXPECT_EQ(copy.jwks().at("keys").as_array().size(), 1U);
}

TEST(JwtError, HasNames) {
  EXPECT_EQ(to_string(JwtError::bad_signature), "bad_signature");
  EXPECT_EQ(to_string(JwtError::missing_claim), "missing_claim");
}

}  // namespace
}  // namespace inkwell::security
