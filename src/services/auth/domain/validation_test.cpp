#include "services/auth/domain/validation.h"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace inkwell::services::auth {
namespace {

TEST(NormalizeEmail, TrimsAndLowerCasesOnlyTheDomain) {
  const auto email = normalize_email("  Ann.Lee+blog@Example.COM \n");
  ASSERT_TRUE(email.value) << email.problem;
  EXPECT_EQ(*email.value, "Ann.Lee+blog@example.com");
}

TEST(NormalizeEmail, RefusesWhatIsNotAnAddress) {
  for (const char* bad :
       {"", "   ", "ann", "ann@", "@example.com", "ann@@example.com", "ann@example",
        "ann@exa mple.com", "a b@example.com", "ann@-example.com", "ann@example.c",
        "ann..lee@example.com", ".ann@example.com", "ann@example.123", "\"ann\"@example.com",
        "ann@example.com'; DROP TABLE users; --"}) {
    EXPECT_FALSE(normalize_email(bad).value) << bad;
  }
  EXPECT_FALSE(normalize_email(std::string(250, 'a') + "@example.com").value);
  EXPECT_FALSE(normalize_email(std::string(65, 'a') + "@example.com").value);
}

TEST(PasswordProblem, EnforcesLengthInCharactersNotBytes) {
  EXPECT_NE(password_problem("short", ""), "");
  EXPECT_EQ(password_problem("correct horse", ""), "");
  // Ten characters of two bytes each: long enough.
  EXPECT_EQ(password_problem("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
                             "\xC3\xA9\xC3\xA9",
                             ""),
            "");
  // Nine characters of two bytes each (18 bytes): too short.
  EXPECT_NE(password_problem("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
                             "\xC3\xA9",
                             ""),
            "");
  EXPECT_EQ(password_problem(std::string(256, 'x'), ""), "");
  EXPECT_NE(password_problem(std::string(257, 'x'), ""), "");
  EXPECT_NE(password_problem("\xFF\xFE\xFD\xFC\xFB\xFA\xF9\xF8\xF7\xF6\xF5", ""), "");
}

TEST(PasswordProblem, RefusesCommonPasswordsAndTheEmail) {
  EXPECT_NE(password_problem("password123", ""), "");
  EXPECT_NE(password_problem("QWERTYUIOP", ""), "");
  EXPECT_NE(password_problem("ann@example.com", "ann@example.com"), "");
  EXPECT_TRUE(is_common_password("1234567890"));
  EXPECT_FALSE(is_common_password("violet-tugboat-81"));
}

TEST(NormalizeName, TrimsAndCountsCodePoints) {
  EXPECT_EQ(*normalize_name("  Ann Lee ").value, "Ann Lee");
  EXPECT_TRUE(normalize_name(std::string(80, 'a')).value);
  EXPECT_FALSE(normalize_name(std::string(81, 'a')).value);
  std::string eighty_accents;
  for (int i = 0; i < 80; ++i) eighty_accents += "\xC3\xA9";
  EXPECT_TRUE(normalize_name(eighty_accents).value);
  EXPECT_FALSE(normalize_name("").value);
  EXPECT_FALSE(normalize_name("   ").value);
  EXPECT_FALSE(normalize_name("\xE2\x80\x8B\xE2\x80\x8B").value);  // zero-width spaces only
  EXPECT_FALSE(normalize_name("Ann\x01Lee").value);
  EXPECT_FALSE(normalize_name("Ann\xC0\xAF").value);  // overlong encoding
}

TEST(Username, RulesAndDerivation) {
  EXPECT_EQ(username_problem("ann_lee"), "");
  EXPECT_NE(username_problem("an"), "");
  EXPECT_NE(username_problem("Ann"), "");
  EXPECT_NE(username_problem("ann-lee"), "");
  EXPECT_NE(username_problem(std::string(31, 'a')), "");
  EXPECT_EQ(derive_username("Ann Lee", "x@example.com"), "ann_lee");
  EXPECT_EQ(derive_username("  Zoë  O'Brien!! ", "x@example.com"), "zo_o_brien");
  EXPECT_EQ(derive_username("李小龙", "bruce.lee@example.com"), "bruce_lee");
  EXPECT_EQ(derive_username("Al", "al@example.com"), "al_");
  for (const auto& name : {std::string(100, 'x'), std::string("A")}) {
    EXPECT_EQ(username_problem(derive_username(name, "q@example.com")), "") << name;
  }
  EXPECT_EQ(username_with_suffix("ann", 7), "ann_7");
  EXPECT_EQ(username_with_suffix(std::string(30, 'a'), 12).size(), 30U);
  EXPECT_EQ(username_problem(username_with_suffix(std::string(26, 'a'), 123456)), "");
}

TEST(AvatarUrl, OnlyAbsoluteHttpUrls) {
  EXPECT_EQ(avatar_url_problem("https://cdn.example.com/a.png"), "");
  EXPECT_EQ(avatar_url_problem("http://example.com/a.png?s=40"), "");
  for (const char* bad : {"javascript:alert(1)", "data:image/png;base64,AAAA", "/a.png",
                          "ftp://example.com/a.png", "https://", "not a url"}) {
    EXPECT_NE(avatar_url_problem(bad), "") << bad;
  }
  EXPECT_NE(avatar_url_problem("https://example.com/" + std::string(2048, 'a')), "");
}

TEST(Preferences, ObjectsOfBoundedSize) {
  EXPECT_EQ(preferences_problem(boost::json::parse(R"({"theme":"dark"})")), "");
  EXPECT_NE(preferences_problem(boost::json::parse("[1,2]")), "");
  EXPECT_NE(preferences_problem(boost::json::parse("\"x\"")), "");
  boost::json::object big{{"k", std::string(9000, 'x')}};
  EXPECT_NE(preferences_problem(big), "");
}

}  // namespace
}  // namespace inkwell::services::auth
