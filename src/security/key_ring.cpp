#include "security/key_ring.h"

#include "security/random.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace inkwell::security {
namespace {

constexpr std::size_t kMaxPemFileSize = 64 * 1024;
constexpr std::string_view kGeneratedKeyName = "jwt-signing-key.pem";

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::invalid_argument(path + ": " + problem);
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string read_pem_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::string contents;
  contents.resize(kMaxPemFileSize + 1);
  in.read(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (in.bad()) fail(path, "cannot read");
  contents.resize(static_cast<std::size_t>(in.gcount()));
  if (contents.size() > kMaxPemFileSize) fail(path, "too large for a PEM key");
  return contents;
}

SigningKey load_key(const std::string& path) {
  const std::string pem = read_pem_file(path);
  try {
    return SigningKey::from_pem(pem);
  } catch (const std::exception& e) {
    fail(path, e.what());
  }
}

void write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      fail(path, std::string("cannot write: ") + std::strerror(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
}

// Moves `from` to `to` only if `to` does not exist yet. False when it already exists.
bool place_without_replacing(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return true;
  }
  if (errno == EEXIST) return false;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
    fail(to, std::string("cannot create: ") + std::strerror(errno));
  }
  // The file system has no RENAME_NOREPLACE: link() is just as exclusive.
  if (::link(from.c_str(), to.c_str()) == 0) {
    ::unlink(from.c_str());
    return true;
  }
  if (errno == EEXIST) return false;
  fail(to, std::string("cannot create: ") + std::strerror(errno));
}

// Writes a new key to `path` unless one is there; a concurrent writer's key wins.
void generate_key_file(const std::string& path) {
  const std::string pem = SigningKey::generate_es256_pem();
  const std::string temp = path + ".tmp-" + random_token(9);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail(temp, std::string("cannot create: ") + std::strerror(errno));
  try {
    if (::fchmod(fd, 0600) != 0) fail(temp, std::string("cannot chmod: ") + std::strerror(errno));
    write_all(fd, pem, temp);
    if (::fsync(fd) != 0) fail(temp, std::string("cannot sync: ") + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  ::close(fd);
  bool placed = false;
  try {
    placed = place_without_replacing(temp, path);
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  if (!placed) {
    ::unlink(temp.c_str());
    return;
  }
  // Make the new directory entry durable too.
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace

KeyRing::KeyRing(std::vector<SigningKey> keys) : keys_(std::move(keys)) {
  for (const auto& key : keys_) verification_.add(key);
}

KeyRing KeyRing::from_keys(std::vector<SigningKey> keys) {
  if (keys.empty()) throw std::invalid_argument("a key ring needs at least one key");
  for (std::size_t i = 0; i < keys.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (keys[i].kid() == keys[j].kid()) {
        throw std::invalid_argument("two signing keys share the kid " + keys[i].kid());
      }
    }
  }
  return KeyRing(std::move(keys));
}

KeyRing KeyRing::load(std::string_view pem_paths, const std::string& data_dir) {
  std::vector<SigningKey> keys;
  std::vector<std::string> paths;
  if (!trim(pem_paths).empty()) {
    std::string_view rest = pem_paths;
    while (true) {
      const auto comma = rest.find(',');
      const std::string_view item = trim(rest.substr(0, comma));
      if (item.empty()) throw std::invalid_argument("empty path in the list of JWT key files");
      paths.emplace_back(item);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  } else {
    if (data_dir.empty()) throw std::invalid_argument("no JWT key file and no data directory");
    const std::filesystem::path dir(data_dir);
    const std::string path = (dir / kGeneratedKeyName).string();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) fail(data_dir, "cannot create directory: " + ec.message());
    if (!std::filesystem::exists(path, ec)) generate_key_file(path);
    paths.push_back(path);
  }
  for (const auto& path : paths) {
    keys.push_back(load_key(path));
    for (std::size_t i = 0; i + 1 < keys.size(); ++i) {
      if (keys[i].kid() == keys.back().kid()) fail(path, "the same key is listed twice");
    }
  }
  return KeyRing(std::move(keys));
}

}  // namespace inkwell::security
