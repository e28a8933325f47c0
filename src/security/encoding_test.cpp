#include "security/encoding.h"

#include "security/random.h"

#include <gtest/gtest.h>

#include <set>

namespace inkwell::security {
namespace {

TEST(Base64Url, EncodesRfc4648VectorsWithoutPadding) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64Url, UsesTheUrlSafeAlphabet) {
  EXPECT_EQ(base64url_encode(std::string("\xfb\xff\xbf", 3)), "-_-_");
  EXPECT_EQ(base64url_decode("-_-_"), std::string("\xfb\xff\xbf", 3));
}

TEST(Base64Url, DecodesWhatItEncodes) {
  for (std::size_t n = 0; n < 70; ++n) {
    const std::string bytes = random_bytes(n);
    EXPECT_EQ(base64url_decode(base64url_encode(bytes)), bytes) << n;
  }
  EXPECT_EQ(base64url_decode("Zm9vYmE"), "fooba");
  EXPECT_EQ(base64url_decode(""), "");
}

TEST(Base64Url, RejectsPaddingForeignCharactersAndImpossibleLengths) {
  EXPECT_EQ(base64url_decode("Zg=="), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm8="), std::nullopt);
  EXPECT_EQ(base64url_decode("ab+c"), std::nullopt);  // standard alphabet
  EXPECT_EQ(base64url_decode("ab/c"), std::nullopt);
  EXPECT_EQ(base64url_decode("ab c"), std::nullopt);
  EXPECT_EQ(base64url_decode("ab.c"), std::nullopt);
  EXPECT_EQ(base64url_decode(std::string("ab\0c", 4)), std::nullopt);
  EXPECT_EQ(base64url_decode("\xc3\xa9xx"), std::nullopt);
  EXPECT_EQ(base64url_decode("Z"), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm9vY"), std::nullopt);
}

TEST(Base64Url, RejectsNonZeroTrailingBits) {
  EXPECT_EQ(base64url_decode("Zh"), std::nullopt);   // "Zg" is the one spelling of "f"
  EXPECT_EQ(base64url_decode("Zm9"), std::nullopt);  // "Zm8" is the one spelling of "fo"
}

TEST(RandomToken, IsUrlSafeOfTheRightLengthAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string token = random_token();
    EXPECT_EQ(token.size(), 43U);
    EXPECT_EQ(base64url_decode(token)->size(), 32U);
    seen.insert(token);
  }
  EXPECT_EQ(seen.size(), 100U);
  EXPECT_EQ(random_token(16).size(), 22U);
  EXPECT_EQ(random_bytes(0), "");
  EXPECT_EQ(random_bytes(64).size(), 64U);
}

}  // namespace
}  // namespace inkwell::security
