#include "storage/migrations.h"

#include <algorithm>
#include <cstdint>
#include <optional>

namespace inkwell::storage {
namespace {

constexpr std::string_view kCreatePostgres = R"(
CREATE TABLE IF NOT EXISTS schema_migrations (
  service text NOT NULL,
  version integer NOT NULL,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (service, version)
))";

constexpr std::string_view kCreateSqlite = R"(
CREATE TABLE IF NOT EXISTS schema_migrations (
  service text NOT NULL,
  version integer NOT NULL,
  name text NOT NULL,
  applied_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY (service, version)
))";

// A stable advisory lock key (FNV-1a), the same in every process and build.
std::int64_t lock_key(std::string_view name) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const char c : "inkwell.schema_migrations:" + std::string(name)) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return static_cast<std::int64_t>(hash);
}

void validate_list(const MigrationSet& set, std::string_view dialect,
                   const std::vector<Migration>& list) {
  const std::string where = set.service + " " + std::string(dialect) + " migration ";
  int previous = 0;
  for (const Migration& m : list) {
    if (m.version <= 0) {
      throw MigrationError(where + std::to_string(m.version) + ": versions start at 1");
    }
    if (m.version <= previous) {
      throw MigrationError(where + std::to_string(m.version) + " follows version " +
                           std::to_string(previous) + ": versions must be unique and increasing");
    }
    if (m.name.empty()) throw MigrationError(where + std::to_string(m.version) + " has no name");
    previous = m.version;
  }
}

// The name recorded for a version, if it was applied.
std::optional<std::string> recorded_name(Executor& ex, const std::string& service, int version) {
  const Result result = ex.execute(
      "SELECT name FROM schema_migrations WHERE service = $1 AND version = $2", {service, version});
  if (result.rows.empty()) return std::nullopt;
  return result.rows[0].get<std::string>(0);
}

// True when m is recorded as applied; throws when it was recorded under another name.
bool already_applied(const std::string& service, const Migration& m,
                     const std::optional<std::string>& recorded) {
  if (!recorded) return false;
  if (*recorded != m.name) {
    throw MigrationError(service + " migration " + std::to_string(m.version) +
                         " was applied as \"" + *recorded + "\" but is now named \"" + m.name +
                         "\": applied migrations must not be edited; add a new one instead");
  }
  return true;
}

}  // namespace

void validate_migrations(const MigrationSet& set) {
  if (set.service.empty()) throw MigrationError("migration set has no service name");
  validate_list(set, "postgres", set.postgres);
  validate_list(set, "sqlite", set.sqlite);
  if (set.postgres.empty() || set.sqlite.empty()) return;
  for (std::size_t i = 0; i < std::max(set.postgres.size(), set.sqlite.size()); ++i) {
    const Migration* pg = i < set.postgres.size() ? &set.postgres[i] : nullptr;
    const Migration* lite = i < set.sqlite.size() ? &set.sqlite[i] : nullptr;
    if (!pg || !lite || pg->version != lite->version || pg->name != lite->name) {
      const Migration& odd = pg ? *pg : *lite;
      throw MigrationError(set.service + " migration " + std::to_string(odd.version) + " (" +
                           odd.name +
                           ") differs between postgres and sqlite: every migration "
                           "needs a file with the same version and name in both folders");
    }
  }
}

MigrationReport apply_migrations(Database& db, const MigrationSet& set) {
  validate_migrations(set);
  const bool postgres = db.dialect() == Dialect::postgres;
  const std::vector<Migration>& migrations = postgres ? set.postgres : set.sqlite;

  // Concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's catalog: serialize.
  db.transaction([&](Executor& tx) {
    if (postgres) tx.execute("SELECT pg_advisory_xact_lock($1)", {lock_key("")});
    tx.execute_script(postgres ? kCreatePostgres : kCreateSqlite);
  });

  // Refuse edited history before changing anything.
  std::vector<const Migration*> pending;
  for (const Migration& m : migrations) {
    if (!already_applied(set.service, m, recorded_name(db, set.service, m.version))) {
      pending.push_back(&m);
    }
  }

  MigrationReport report;
  for (const Migration* m : pending) {
    db.transaction([&](Executor& tx) {
      if (postgres) tx.execute("SELECT pg_advisory_xact_lock($1)", {lock_key(set.service)});
      // Another process may have applied it while this one waited for the lock.
      if (already_applied(set.service, *m, recorded_name(tx, set.service, m->version))) return;
      try {
        tx.execute_script(m->sql);
      } catch (const DatabaseError& e) {
        throw DatabaseError(e.kind(), set.service + " migration " + std::to_string(m->version) +
                                          " (" + m->name + ") failed: " + e.what());
      }
      tx.execute("INSERT INTO schema_migrations (service, version, name) VALUES ($1, $2, $3)",
                 {set.service, m->version, m->name});
      report.applied.push_back(m->version);
    });
  }
  return report;
}

}  // namespace inkwell::storage
