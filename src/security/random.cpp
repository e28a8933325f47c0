#include "security/random.h"

#include "security/encoding.h"
#include "security/sodium_init.h"

#include <sodium.h>

namespace inkwell::security {

std::string random_bytes(std::size_t n) {
  detail::init_sodium();
  std::string out(n, '\0');
  if (n > 0) randombytes_buf(out.data(), n);
  return out;
}

std::string random_token(std::size_t bytes) {
  return base64url_encode(random_bytes(bytes));
}

}  // namespace inkwell::security
