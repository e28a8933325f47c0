// The passwords of at least 10 characters that top the public breach-frequency lists, and a few
// predictable patterns. Shorter ones are refused by the length rule already. Compared without
// regard to case.
#include "services/auth/domain/validation.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace inkwell::services::auth {
namespace {

constexpr std::array<std::string_view, 120> kCommon = {
    "0123456789",      "0987654321",       "1029384756",    "1111111111",    "1122334455",
    "1212121212",      "1234512345",       "1234567890",    "12345678910",   "123456789a",
    "123456789q",      "1234567891",       "12345678901",   "123456789012",  "1234567890q",
    "1234qwerasdf",    "123abc123abc",     "123qweasdzxc",  "1357924680",    "1q2w3e4r5t",
    "1q2w3e4r5t6y",    "1qaz2wsx3edc",     "2222222222",    "3333333333",    "5555555555",
    "6666666666",      "7777777777",       "8888888888",    "9876543210",    "9999999999",
    "aaaaaaaaaa",      "abc1234567",       "abcd123456",    "abcdefghij",    "abcdef123456",
    "access1234",      "administrator",    "admin12345",    "admin123456",   "asdfghjkl1",
    "asdfghjkl;",      "asdfasdfasdf",     "baseball123",   "basketball",    "blink182blink",
    "changeme123",     "charlie1234",      "chocolate1",    "computer123",   "dragon12345",
    "football12",      "football123",      "freedom1234",   "generation",    "hello12345",
    "helloworld",      "iloveyou12",       "iloveyou123",   "jennifer12",    "jessica123",
    "letmein123",      "letmein1234",      "liverpool1",    "login12345",    "master1234",
    "michael123",      "monkey1234",       "mustang123",    "myspace123",    "nopassword",
    "passw0rd123",     "password01",       "password1!",    "password10",    "password11",
    "password12",      "password123",      "password1234",  "password12345", "password2024",
    "password99",      "passwordpassword", "password!!",    "pokemon123",    "princess12",
    "princess123",     "q1w2e3r4t5",       "q1w2e3r4t5y6",  "qazwsxedc1",    "qazwsxedcrfv",
    "qwer1234qwer",    "qwerty1234",       "qwerty12345",   "qwerty123456",  "qwertyqwerty",
    "qwertyuiop",      "qwertyuiop1",      "qwertyuiop123", "shadow1234",    "soccer1234",
    "starwars12",      "starwars123",      "sunshine12",    "sunshine123",   "superman12",
    "superman123",     "trustno1trustno1", "welcome123",    "welcome1234",   "whatever12",
    "zaq12wsxcde",     "zaq1zaq1zaq1",     "zxcvbnm123",    "zxcvbnmasdf",   "inkwell123",
    "inkwellpassword", "blogging123",      "mypassword",    "mypassword1",   "mypassword123",
};

}  // namespace

bool is_common_password(std::string_view password) {
  if (password.size() > 32) return false;
  std::string folded(password);
  std::transform(folded.begin(), folded.end(), folded.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::find(kCommon.begin(), kCommon.end(), std::string_view(folded)) != kCommon.end();
}

}  // namespace inkwell::services::auth
