#include "storage/database.h"

#include <algorithm>
#include <charconv>

#include "storage/postgres/postgres_database.h"
#include "storage/sqlite/sqlite_database.h"

namespace inkwell::storage {
namespace {

[[noreturn]] void bad_url(std::string_view reason) {
  throw std::invalid_argument("invalid database URL: " + std::string(reason));
}

// Decodes %XX escapes; nullopt when an escape is malformed.
std::optional<std::string> percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    unsigned byte = 0;
    if (i + 2 >= in.size()) return std::nullopt;
    const auto [end, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, byte, 16);
    if (ec != std::errc() || end != in.data() + i + 3) return std::nullopt;
    out += static_cast<char>(byte);
    i += 2;
  }
  return out;
}

bool valid_port(std::string_view port) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  return ec == std::errc() && end == port.data() + port.size() && value >= 1 && value <= 65535;
}

// Checks `host[:port]` entries separated by commas (libpq's multi-host form). Messages never
// repeat the text: an unencoded '/' in a password could have landed here.
void check_hosts(std::string_view hosts) {
  std::size_t start = 0;
  while (start <= hosts.size()) {
    const std::size_t comma = std::min(hosts.find(',', start), hosts.size());
    std::string_view entry = hosts.substr(start, comma - start);
    std::string_view port;
    if (entry.starts_with('[')) {
      const std::size_t close = entry.find(']');
      if (close == std::string_view::npos) bad_url("unterminated [IPv6] host");
      if (close + 1 < entry.size()) {
        if (entry[close + 1] != ':') bad_url("unexpected text after an [IPv6] host");
        port = entry.substr(close + 2);
        if (!valid_port(port)) bad_url("invalid port number (expected 1-65535)");
      }
    } else if (const std::size_t colon = entry.find(':'); colon != std::string_view::npos) {
      if (!valid_port(entry.substr(colon + 1))) bad_url("invalid port number (expected 1-65535)");
    }
    if (!percent_decode(entry)) bad_url("malformed percent-encoding in the host");
    start = comma + 1;
  }
}

DatabaseUrl parse_postgres_url(std::string_view url, std::string_view scheme,
                               std::string_view rest) {
  const std::size_t authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  const std::string_view authority = rest.substr(0, authority_end);
  const std::string_view tail = rest.substr(authority_end);
  if (std::count(authority.begin(), authority.end(), '@') > 1) {
    bad_url("unencoded '@' in the user name or password (write it as %40)");
  }
  const std::size_t at = authority.find('@');
  std::string redacted = std::string(scheme) + "://";
  std::string_view hosts = authority;
  if (at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    const std::size_t colon = userinfo.find(':');
    const std::string_view user = userinfo.substr(0, colon);
    if (!percent_decode(userinfo))
      bad_url("malformed percent-encoding in the user name or password");
    redacted += std::string(user) + (colon == std::string_view::npos ? "" : ":***") + "@";
    hosts = authority.substr(at + 1);
  }
  check_hosts(hosts);
  redacted += std::string(hosts) + std::string(tail);

  const std::size_t query_start = std::min(tail.find('?'), tail.size());
  const std::string_view path = tail.substr(0, query_start);
  if (path.size() < 2 || path.find('#') != std::string_view::npos) {
    bad_url("no database name (expected postgresql://user:password@host:port/database)");
  }
  if (!percent_decode(path)) bad_url("malformed percent-encoding in the database name");
  std::string_view query = tail.substr(query_start);
  if (!query.empty()) query.remove_prefix(1);
  while (!query.empty()) {
    const std::size_t amp = std::min(query.find('&'), query.size());
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (eq == 0 || eq == std::string_view::npos || !percent_decode(pair)) {
      bad_url("malformed query string (expected ?key=value&key=value)");
    }
    query.remove_prefix(std::min(amp + 1, query.size()));
  }
  return {Dialect::postgres, std::string(url), std::move(redacted)};
}

DatabaseUrl parse_sqlite_url(std::string_view url, std::string_view rest) {
  if (rest.find_first_of("?#") != std::string_view::npos) {
    bad_url("sqlite URLs take no query parameters");
  }
  const std::optional<std::string> path = percent_decode(rest);
  if (!path) bad_url("malformed percent-encoding in the sqlite file path");
  if (path->empty() || path->ends_with('/')) {
    bad_url("no sqlite file (expected sqlite:///absolute/path.db or sqlite://relative/path.db)");
  }
  if (*path == ":memory:") {
    bad_url("in-memory sqlite is not supported: each pooled connection would see its own database");
  }
  return {Dialect::sqlite, *path, std::string(url)};
}

}  // namespace

const Value& Row::at(std::size_t col) const {
  if (col >= values_.size()) {
    throw DatabaseError(DatabaseError::Kind::other,
                        "column index " + std::to_string(col) + " out of range: the row has " +
                            std::to_string(values_.size()) + " columns");
  }
  return values_[col];
}

std::size_t Row::index_of(std::string_view name) const {
  const auto it = std::find(columns_->begin(), columns_->end(), name);
  if (it == columns_->end()) {
    throw DatabaseError(DatabaseError::Kind::other,
                        "no column named \"" + std::string(name) + "\" in the result");
  }
  return static_cast<std::size_t>(it - columns_->begin());
}

std::string Row::describe(std::size_t col) const {
  struct Describe {
    std::string operator()(std::nullptr_t) const { return "NULL"; }
    std::string operator()(std::int64_t i) const { return "integer " + std::to_string(i); }
    std::string operator()(double) const { return "a real"; }
    std::string operator()(const std::string&) const { return "text"; }
    std::string operator()(bool) const { return "a boolean"; }
  };
  return std::visit(Describe{}, values_[col]);
}

void Row::mismatch(std::size_t col, std::string_view wanted) const {
  const std::string name = col < columns_->size() ? (*columns_)[col] : "?";
  std::string message = "column \"" + name + "\" (#" + std::to_string(col) + "): cannot read " +
                        describe(col) + " as " + std::string(wanted);
  if (is_null(col)) message += "; read nullable columns as std::optional";
  throw DatabaseError(DatabaseError::Kind::other, message);
}

bool Database::ping() {
  try {
    execute("SELECT 1");
    return true;
  } catch (const DatabaseError&) {
    return false;
  }
}

DatabaseUrl parse_database_url(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    bad_url("expected postgresql://user:password@host:port/database or sqlite:///path/to/file.db");
  }
  const std::string_view scheme = url.substr(0, scheme_end);
  const std::string_view rest = url.substr(scheme_end + 3);
  if (scheme == "sqlite") return parse_sqlite_url(url, rest);
  if (scheme == "postgresql" || scheme == "postgres") return parse_postgres_url(url, scheme, rest);
  if (scheme.find_first_of("@:/") != std::string_view::npos) {
    bad_url("expected postgresql://user:password@host:port/database or sqlite:///path/to/file.db");
  }
  bad_url("unsupported scheme \"" + std::string(scheme) + "\" (use postgresql:// or sqlite://)");
}

std::unique_ptr<Database> open_database(std::string_view url, const Options& options) {
  DatabaseUrl parsed = parse_database_url(url);
  if (options.pool_size == 0) throw std::invalid_argument("database pool size must be at least 1");
  if (parsed.dialect == Dialect::postgres) {
    return std::make_unique<PostgresDatabase>(parsed, options);
  }
  return std::make_unique<SqliteDatabase>(parsed.target, options);
}

}  // namespace inkwell::storage
