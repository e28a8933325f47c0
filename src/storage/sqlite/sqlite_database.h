#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "storage/connection_pool.h"
#include "storage/database.h"

struct sqlite3;

namespace inkwell::storage {

// Closes a SQLite connection; lets the pool own connections without including sqlite3.h here.
struct SqliteConnectionCloser {
  void operator()(sqlite3* conn) const noexcept;
};
using SqliteConnection = std::unique_ptr<sqlite3, SqliteConnectionCloser>;

// A SQLite file shared by a small pool of connections: in WAL mode readers run alongside the
// single writer, and writers queue on a mutex here instead of spinning in SQLite's busy handler.
class SqliteDatabase final : public Database {
 public:
  // Creates the file's parent folder and opens one connection. Throws DatabaseError
  // (unavailable) when the file cannot be opened.
  SqliteDatabase(std::string path, const Options& options);

  Dialect dialect() const override { return Dialect::sqlite; }

 protected:
  Result do_execute(std::string_view sql, const Params& params) override;
  void do_execute_script(std::string_view sql) override;
  void do_transaction(const std::function<void(Executor&)>& body) override;

 private:
  SqliteConnection connect() const;
  std::unique_lock<std::timed_mutex> lock_writer();

  const std::string path_;
  const std::chrono::milliseconds busy_timeout_;
  // Held by whoever writes through this object (a transaction, a script, or a statement that
  // is not read-only): the right to write to the file. Taken after a connection is leased.
  std::timed_mutex writer_;
  ConnectionPool<SqliteConnection> pool_;
};

}  // namespace inkwell::storage
