// inkwell_auth_bench: the references bench/auth compares the auth service with.
//
// `hash` is bare libsodium: N threads each looping crypto_pwhash_str_verify (one login is one
// verify) against an Argon2id hash made with the limits the service uses (INKWELL_ARGON2_OPSLIMIT
// and INKWELL_ARGON2_MEMLIMIT_KIB, or --ops / --mem-kib; default libsodium INTERACTIVE). Then,
// for half the time, the same threads loop crypto_pwhash_str_alg (the cost of a registration).
//
// `verify` is one thread verifying a real ES256 token with KeySet::verify, signed by a fresh key
// with the claims the service puts in an access token; then, for half the time, signing.
//
// Each prints one JSON line on stdout.
//
//   inkwell_auth_bench hash [--threads 2] [--duration 10] [--ops N] [--mem-kib N]
//   inkwell_auth_bench verify [--duration 10]

#include "base/ids.h"
#include "security/jwt.h"

#include <sodium.h>
#include <boost/json/object.hpp>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t parse_number(std::string_view name, std::string_view text) {
  if (!text.empty() && text.back() == 's') text.remove_suffix(1);  // "10s" as wrk writes it
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value == 0) {
    throw std::invalid_argument(std::string(name) + " takes a positive whole number, got '" +
                                std::string(text) + "'");
  }
  return value;
}

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* value = std::getenv(name);
  return value && *value ? parse_number(name, value) : fallback;
}

// Runs `body` on `threads` threads for `seconds`; returns completed calls per second.
double rate(unsigned threads, double seconds, const std::function<void()>& body) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> done{0};
  std::vector<std::thread> workers;
  const auto start = Clock::now();
  for (unsigned i = 0; i < threads; ++i) {
    workers.emplace_back([&] {
      std::uint64_t mine = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        body();
        ++mine;
      }
      done += mine;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& worker : workers) worker.join();
  const std::chrono::duration<double> elapsed = Clock::now() - start;
  return static_cast<double>(done.load()) / elapsed.count();
}

int run_hash(unsigned threads, double seconds, std::uint64_t ops, std::size_t mem) {
  constexpr std::string_view kPassword = "correct horse battery staple 42";
  std::array<char, crypto_pwhash_STRBYTES> stored{};
  if (crypto_pwhash_str_alg(stored.data(), kPassword.data(), kPassword.size(), ops, mem,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("crypto_pwhash_str_alg failed (out of memory?)");
  }
  const double verifies = rate(threads, seconds, [&] {
    if (crypto_pwhash_str_verify(stored.data(), kPassword.data(), kPassword.size()) != 0) {
      std::fputs("crypto_pwhash_str_verify rejected the password\n", stderr);
      std::abort();
    }
  });
  const double hashes = rate(threads, seconds / 2, [&] {
    std::array<char, crypto_pwhash_STRBYTES> out{};
    if (crypto_pwhash_str_alg(out.data(), kPassword.data(), kPassword.size(), ops, mem,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
      std::fputs("crypto_pwhash_str_alg failed\n", stderr);
      std::abort();
    }
  });
  std::printf(
      "{\"hashes_per_s\":%.2f,\"threads\":%u,\"str_hash_per_s\":%.2f,\"ops\":%llu,\"mem_kib\":%zu}"
      "\n",
      verifies, threads, hashes, static_cast<unsigned long long>(ops), mem / 1024);
  return 0;
}

int run_verify(double seconds) {
  const auto key =
      inkwell::security::SigningKey::from_pem(inkwell::security::SigningKey::generate_es256_pem());
  inkwell::security::KeySet keys;
  keys.add(key);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const boost::json::object claims{
      {"iss", "inkwell"},
      {"aud", "inkwell"},
      {"sub", inkwell::new_uuid()},
      {"email", "bench@example.com"},
      {"name", "Bench User"},
      {"username", "bench-user"},
      {"iat", now},
      {"nbf", now},
      {"exp", now + 900},
      {"jti", inkwell::new_uuid()},
  };
  const auto token = key.sign(claims);
  inkwell::security::VerifyOptions options;
  options.issuer = "inkwell";
  options.audiences = {"inkwell"};
  if (!std::holds_alternative<boost::json::object>(keys.verify(token, options))) {
    throw std::runtime_error("the token does not verify");
  }
  const double verifications = rate(1, seconds, [&] {
    if (!std::holds_alternative<boost::json::object>(keys.verify(token, options))) {
      std::fputs("verification failed\n", stderr);
      std::abort();
    }
  });
  const double signatures = rate(1, seconds / 2, [&] {
    if (key.sign(claims).empty()) std::abort();
  });
  std::printf(
      "{\"verifications_per_s\":%.0f,\"per_core\":%.0f,\"signs_per_s\":%.0f,\"token_bytes\":%zu}\n",
      verifications, verifications, signatures, token.size());
  return 0;
}

int usage() {
  std::fputs(
      "usage: inkwell_auth_bench hash [--threads N] [--duration S] [--ops N] [--mem-kib N]\n"
      "       inkwell_auth_bench verify [--duration S]\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) return usage();
    if (sodium_init() < 0) throw std::runtime_error("sodium_init failed");
    const std::string_view mode = argv[1];
    unsigned threads = 2;
    double seconds = 10;
    auto ops = env_number("INKWELL_ARGON2_OPSLIMIT", crypto_pwhash_OPSLIMIT_INTERACTIVE);
    auto mem_kib =
        env_number("INKWELL_ARGON2_MEMLIMIT_KIB", crypto_pwhash_MEMLIMIT_INTERACTIVE / 1024);
    for (int i = 2; i < argc; i += 2) {
      const std::string_view flag = argv[i];
      if (i + 1 >= argc) return usage();
      const std::string_view value = argv[i + 1];
      if (flag == "--threads") {
        threads = static_cast<unsigned>(parse_number(flag, value));
      } else if (flag == "--duration") {
        seconds = static_cast<double>(parse_number(flag, value));
      } else if (flag == "--ops") {
        ops = parse_number(flag, value);
      } else if (flag == "--mem-kib") {
        mem_kib = parse_number(flag, value);
      } else {
        return usage();
      }
    }
    if (mode == "hash") return run_hash(threads, seconds, ops, mem_kib * 1024);
    if (mode == "verify") return run_verify(seconds);
    return usage();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "inkwell_auth_bench: %s\n", error.what());
    return 1;
  }
}
