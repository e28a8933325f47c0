#include "security/key_ring.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace inkwell::security {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("inkwell-keyring-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  std::string file(const std::string& name, const std::string& contents) const {
    const fs::path file = path_ / name;
    std::ofstream(file, std::ios::binary) << contents;
    return file.string();
  }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

VerifyOptions no_claim_checks() {
  VerifyOptions options;
  options.require_exp = false;
  return options;
}

bool verifies(const KeySet& keys, const std::string& token) {
  return std::holds_alternative<boost::json::object>(keys.verify(token, no_claim_checks()));
}

TEST(KeyRing, GeneratesAKeyOnceInTheDataDirWithMode0600) {
  const TempDir dir;
  const std::string data_dir = (dir.path() / "data").string();  // created on demand
  const KeyRing first = KeyRing::load("", data_dir);
  const fs::path file = fs::path(data_dir) / "jwt-signing-key.pem";
  ASSERT_TRUE(fs::exists(file));
  struct stat info {};
  ASSERT_EQ(::stat(file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600U);
  EXPECT_EQ(first.active().alg(), "ES256");

  const KeyRing second = KeyRing::load("", data_dir);
  EXPECT_EQ(second.active().kid(), first.active().kid());
  EXPECT_TRUE(verifies(second.verification_keys(), first.active().sign({{"sub", "u"}})));
  // No temporary files are left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(data_dir), fs::directory_iterator()), 1);
}

TEST(KeyRing, LoadsListedFilesFirstIsActiveAllVerify) {
  const TempDir dir;
  const std::string old_pem = SigningKey::generate_es256_pem();
  const std::string new_pem = SigningKey::generate_es256_pem();
  const std::string old_path = dir.file("old.pem", old_pem);
  const std::string new_path = dir.file("new.pem", new_pem);

  const KeyRing before = KeyRing::load(old_path, "/nonexistent");
  const std::string old_token = before.active().sign({{"sub", "u"}});

  const KeyRing rotated = KeyRing::load(" " + new_path + " , " + old_path + " ", "/nonexistent");
  EXPECT_EQ(rotated.active().kid(), SigningKey::from_pem(new_pem).kid());
  EXPECT_EQ(rotated.verification_keys().size(), 2U);
  EXPECT_TRUE(verifies(rotated.verification_keys(), old_token));
  EXPECT_TRUE(verifies(rotated.verification_keys(), rotated.active().sign({{"sub", "u"}})));
  const auto jwks = rotated.verification_keys().jwks();
  ASSERT_EQ(jwks.at("keys").as_array().size(), 2U);
  EXPECT_EQ(jwks.at("keys").as_array()[0].at("kid").as_string(), rotated.active().kid());
  EXPECT_EQ(jwks.at("keys").as_array()[1].at("kid").as_string(), before.active().kid());
  for (const auto& jwk : jwks.at("keys").as_array()) EXPECT_FALSE(jwk.as_object().contains("d"));
  // Nothing was generated when files are given.
  EXPECT_FALSE(fs::exists("/nonexistent"));
}

TEST(KeyRing, ProblemsNameTheFile) {
  const TempDir dir;
  const std::string missing = (dir.path() / "missing.pem").string();
  const std::string garbage = dir.file("garbage.pem", "not a key");
  const std::string good = dir.file("good.pem", SigningKey::generate_es256_pem());
  const auto message_of = [](const std::string& paths) -> std::string {
    try {
      static_cast<void>(KeyRing::load(paths, ""));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message_of(missing).find(missing), std::string::npos) << message_of(missing);
  EXPECT_NE(message_of(garbage).find(garbage), std::string::npos) << message_of(garbage);
  EXPECT_NE(message_of(good + "," + good).find(good), std::string::npos);
  EXPECT_NE(message_of(good + ",,"), "");
  EXPECT_NE(message_of(good + "," + garbage).find(garbage), std::string::npos);
}

TEST(KeyRing, AnExistingKeyFileIsNeverReplaced) {
  const TempDir dir;
  const std::string pem = SigningKey::generate_es256_pem();
  dir.file("jwt-signing-key.pem", pem);
  const KeyRing ring = KeyRing::load("", dir.path().string());
  EXPECT_EQ(ring.active().kid(), SigningKey::from_pem(pem).kid());

  // A broken one is reported, not overwritten.
  const TempDir broken;
  const std::string path = broken.file("jwt-signing-key.pem", "garbage");
  EXPECT_THROW(static_cast<void>(KeyRing::load("", broken.path().string())), std::invalid_argument);
  std::ifstream in(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "garbage");
}

TEST(KeyRing, FromKeysNeedsDistinctKids) {
  std::vector<SigningKey> keys;
  keys.push_back(SigningKey::from_pem(SigningKey::generate_es256_pem(), "a"));
  keys.push_back(SigningKey::from_pem(SigningKey::generate_es256_pem(), "b"));
  const KeyRing ring = KeyRing::from_keys(std::move(keys));
  EXPECT_EQ(ring.active().kid(), "a");
  EXPECT_TRUE(ring.verification_keys().has("b"));

  std::vector<SigningKey> same;
  same.push_back(SigningKey::from_pem(SigningKey::generate_es256_pem(), "a"));
  same.push_back(SigningKey::from_pem(SigningKey::generate_es256_pem(), "a"));
  EXPECT_THROW(static_cast<void>(KeyRing::from_keys(std::move(same))), std::invalid_argument);
  EXPECT_THROW(static_cast<void>(KeyRing::from_keys({})), std::invalid_argument);
}

}  // namespace
}  // namespace inkwell::security
