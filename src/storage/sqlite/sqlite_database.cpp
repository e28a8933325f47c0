#include "storage/sqlite/sqlite_database.h"

#include <sqlite3.h>

#include <charconv>
#include <filesystem>
#include <limits>
#include <system_error>
#include <vector>

#include "storage/transaction_scope.h"

namespace inkwell::storage {
namespace {

using Kind = DatabaseError::Kind;

struct StatementFinalizer {
  void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

DatabaseError sqlite_error(sqlite3* db, int code) {
  Kind kind = Kind::other;
  if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) {
    kind = Kind::unique_violation;
  } else {
    switch (code & 0xff) {
      case SQLITE_CONSTRAINT:
        kind = Kind::constraint;
        break;
      case SQLITE_BUSY:  // still locked after busy_timeout
      case SQLITE_LOCKED:
      case SQLITE_CANTOPEN:
      case SQLITE_IOERR:
      case SQLITE_FULL:
        kind = Kind::unavailable;
        break;
      default:
        break;
    }
  }
  return DatabaseError(kind,
                       std::string("sqlite: ") + (db ? sqlite3_errmsg(db) : sqlite3_errstr(code)));
}

int checked_size(std::string_view sql) {
  if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw DatabaseError(Kind::other, "sqlite: statement too long");
  }
  return static_cast<int>(sql.size());
}

// Prepares the one statement in sql; null when sql holds only blanks and comments.
Statement prepare_one(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), checked_size(sql), 0, &raw, &tail);
  Statement stmt(raw);
  if (rc != SQLITE_OK) throw sqlite_error(db, rc);
  const std::string_view rest = sql.substr(static_cast<std::size_t>(tail - sql.data()));
  rc = sqlite3_prepare_v3(db, rest.data(), checked_size(rest), 0, &raw, nullptr);
  const Statement second(raw);
  if (rc != SQLITE_OK || second) {
    throw DatabaseError(Kind::other,
                        "sqlite: execute() runs one statement; use execute_script() for several");
  }
  return stmt;
}

// Binds params to the statement's $N placeholders (SQLite sees "$1" as a named parameter).
void bind(sqlite3* db, sqlite3_stmt* stmt, const Params& params) {
  for (int i = 1, count = sqlite3_bind_parameter_count(stmt); i <= count; ++i) {
    const char* raw_name = sqlite3_bind_parameter_name(stmt, i);
    const std::string_view name = raw_name ? raw_name : "?";
    std::size_t number = 0;
    const auto [end, ec] = std::from_chars(name.data() + 1, name.data() + name.size(), number);
    if (name[0] != '$' || ec != std::errc() || end != name.data() + name.size() || number == 0) {
      throw DatabaseError(Kind::other, "sqlite: placeholders must be $1, $2, ... (found \"" +
                                           std::string(name) + "\")");
    }
    if (number > params.size()) {
      throw DatabaseError(Kind::other, "sqlite: the statement uses $" + std::to_string(number) +
                                           " but " + std::to_string(params.size()) +
                                           " parameters were given");
    }
    // Destructor nullptr is SQLITE_STATIC: params outlive the statement's execution.
    const int rc = std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::nullptr_t>) {
            return sqlite3_bind_null(stmt, i);
          } else if constexpr (std::is_same_v<T, std::int64_t>) {
            return sqlite3_bind_int64(stmt, i, v);
          } else if constexpr (std::is_same_v<T, double>) {
            return sqlite3_bind_double(stmt, i, v);
          } else if constexpr (std::is_same_v<T, std::string>) {
            return sqlite3_bind_text64(stmt, i, v.data(), v.size(), nullptr, SQLITE_UTF8);
          } else {
            return sqlite3_bind_int(stmt, i, v ? 1 : 0);
          }
        },
        params[number - 1]);
    if (rc != SQLITE_OK) throw sqlite_error(db, rc);
  }
}

Value column_value(sqlite3_stmt* stmt, int col) {
  switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_INTEGER:
      return static_cast<std::int64_t>(sqlite3_column_int64(stmt, col));
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt, col);
    case SQLITE_TEXT: {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
      return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, col)));
    }
    case SQLITE_BLOB: {
      const auto* blob = static_cast<const char*>(sqlite3_column_blob(stmt, col));
      const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, col));
      return size == 0 ? std::string() : std::string(blob, size);
    }
    default:
      return nullptr;
  }
}

Result run_statement(sqlite3* db, sqlite3_stmt* stmt, const Params& params) {
  bind(db, stmt, params);
  Result result;
  const int columns = sqlite3_column_count(stmt);
  for (int c = 0; c < columns; ++c) result.columns.emplace_back(sqlite3_column_name(stmt, c));
  const auto names = std::make_shared<const std::vector<std::string>>(result.columns);
  const sqlite3_int64 changes_before = sqlite3_total_changes64(db);
  for (int rc = sqlite3_step(stmt); rc != SQLITE_DONE; rc = sqlite3_step(stmt)) {
    if (rc != SQLITE_ROW) throw sqlite_error(db, rc);
    std::vector<Value> values;
    values.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) values.push_back(column_value(stmt, c));
    result.rows.emplace_back(names, std::move(values));
  }
  result.affected_rows = sqlite3_stmt_readonly(stmt) ? static_cast<std::int64_t>(result.rows.size())
                                                     : sqlite3_total_changes64(db) - changes_before;
  return result;
}

Result execute_one(sqlite3* db, std::string_view sql, const Params& params) {
  const Statement stmt = prepare_one(db, sql);
  return stmt ? run_statement(db, stmt.get(), params) : Result{};
}

void exec_script(sqlite3* db, std::string_view sql) {
  if (sqlite3_exec(db, std::string(sql).c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    throw sqlite_error(db, sqlite3_extended_errcode(db));
  }
}

// The Executor handed to a transaction body: statements on the transaction's connection.
class SqliteTransaction final : public Executor {
 public:
  explicit SqliteTransaction(sqlite3* db) : db_(db) {}
  Dialect dialect() const override { return Dialect::sqlite; }

 protected:
  Result do_execute(std::string_view sql, const Params& params) override {
    check_open();
    Result result = execute_one(db_, sql, params);
    check_open();
    return result;
  }
  void do_execute_script(std::string_view sql) override {
    check_open();
    exec_script(db_, sql);
    check_open();
  }

 private:
  // A COMMIT or ROLLBACK run by the body would leave the rest of it outside any transaction.
  void check_open() const {
    if (sqlite3_get_autocommit(db_)) {
      throw DatabaseError(Kind::other,
                          "sqlite: the transaction was ended inside its body; return or throw "
                          "from the body instead of running COMMIT or ROLLBACK");
    }
  }

  sqlite3* db_;
};

}  // namespace

void SqliteConnectionCloser::operator()(sqlite3* conn) const noexcept {
  sqlite3_close_v2(conn);
}

SqliteDatabase::SqliteDatabase(std::string path, const Options& options)
    : path_(std::move(path)),
      busy_timeout_(options.busy_timeout),
      pool_(options.pool_size, options.acquire_timeout,
            {[this] { return connect(); },
             // A connection left inside a transaction (a BEGIN run through execute) is closed,
             // which rolls the transaction back.
             [](SqliteConnection& conn) { return sqlite3_get_autocommit(conn.get()) != 0; }}) {
  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    throw DatabaseError(Kind::unavailable, "sqlite: cannot create the folder " + parent.string() +
                                               ": " + ec.message());
  }
  pool_.acquire();  // fail at start-up, not on the first request, when the file is unusable
}

SqliteConnection SqliteDatabase::connect() const {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(
      path_.c_str(), &raw,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  SqliteConnection conn(raw);
  try {
    if (rc != SQLITE_OK) throw sqlite_error(raw, rc);
    sqlite3_busy_timeout(raw, static_cast<int>(busy_timeout_.count()));
    exec_script(raw, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
  } catch (const DatabaseError&) {
    throw DatabaseError(Kind::unavailable, "sqlite: cannot open " + path_ + ": " +
                                               (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  return conn;
}

std::unique_lock<std::timed_mutex> SqliteDatabase::lock_writer() {
  std::unique_lock lock(writer_, std::defer_lock);
  if (!lock.try_lock_for(busy_timeout_)) {
    throw DatabaseError(Kind::unavailable, "sqlite: " + path_ +
                                               " stayed locked by another writer for " +
                                               std::to_string(busy_timeout_.count()) + " ms");
  }
  return lock;
}

Result SqliteDatabase::do_execute(std::string_view sql, const Params& params) {
  TransactionScope::check_outside(*this, "execute");
  auto lease = pool_.acquire();
  sqlite3* db = lease->get();
  const Statement stmt = prepare_one(db, sql);
  if (!stmt) return {};
  std::unique_lock<std::timed_mutex> writer;
  if (!sqlite3_stmt_readonly(stmt.get())) writer = lock_writer();
  return run_statement(db, stmt.get(), params);
}

void SqliteDatabase::do_execute_script(std::string_view sql) {
  TransactionScope::check_outside(*this, "execute_script");
  auto lease = pool_.acquire();
  const auto writer = lock_writer();
  exec_script(lease->get(), sql);
}

void SqliteDatabase::do_transaction(const std::function<void(Executor&)>& body) {
  TransactionScope::check_outside(*this, "transaction");
  auto lease = pool_.acquire();
  sqlite3* db = lease->get();
  const auto writer = lock_writer();
  // IMMEDIATE takes the write lock now: a transaction that read first and wrote later could
  // otherwise fail with SQLITE_BUSY at once instead of waiting its turn.
  exec_script(db, "BEGIN IMMEDIATE");
  SqliteTransaction tx(db);
  try {
    const TransactionScope scope(*this);
    body(tx);
    exec_script(db, "COMMIT");
  } catch (...) {
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

}  // namespace inkwell::storage
