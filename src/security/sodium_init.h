#pragma once

#include <sodium.h>

#include <cstdlib>

namespace inkwell::security::detail {

/// Runs sodium_init() once; libsodium's functions may not be used before it. A failure means
/// the process has no usable randomness, so it stops loudly.
inline void init_sodium() {
  static const bool ready = [] { return sodium_init() >= 0; }();
  if (!ready) std::abort();
}

}  // namespace inkwell::security::detail
