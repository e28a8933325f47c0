#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "storage/database.h"

namespace inkwell::storage {

/// One schema change, applied once inside its own transaction. `sql` may hold several
/// statements. PostgreSQL runs it in a transaction, so it cannot use CREATE INDEX CONCURRENTLY.
struct Migration {
  int version = 0;
  std::string name;
  std::string sql;
};

/// A service's migrations for both dialects, in version order; inkwell_embed_migrations()
/// in CMake builds one from `migrations/{postgres,sqlite}/0001_name.sql` files.
struct MigrationSet {
  std::string service;
  std::vector<Migration> postgres;
  std::vector<Migration> sqlite;
};

/// What apply_migrations() did.
struct MigrationReport {
  std::vector<int> applied;  ///< versions applied by this call, in order
};

/// A migration set that is inconsistent, or that contradicts the history in the database.
class MigrationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Checks a set without a database: a service name, versions positive, unique and increasing,
/// names present, and when both dialects have migrations, the same versions and names in
/// both. Throws MigrationError.
void validate_migrations(const MigrationSet& set);

/// Creates `schema_migrations` if needed and applies, in version order, the migrations of
/// db's dialect that it does not record for set.service, each in its own transaction together
/// with its schema_migrations row. Running it again applies nothing. Concurrent runs (threads
/// or processes) apply each migration exactly once: PostgreSQL serializes them with an advisory
/// lock keyed by the service name, SQLite with BEGIN IMMEDIATE. Throws MigrationError before
/// changing anything when a recorded version has a different name (history was edited), and
/// DatabaseError when a migration fails (that migration is rolled back; earlier ones stay).
MigrationReport apply_migrations(Database& db, const MigrationSet& set);

}  // namespace inkwell::storage
