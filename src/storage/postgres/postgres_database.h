#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "storage/connection_pool.h"
#include "storage/database.h"

struct pg_conn;  // libpq's PGconn, kept out of this header

namespace inkwell::storage {

// Closes a libpq connection; lets the pool own connections without including libpq here.
struct PgConnectionCloser {
  void operator()(pg_conn* conn) const noexcept;
};
using PgConnection = std::unique_ptr<pg_conn, PgConnectionCloser>;

// A PostgreSQL database reached through a bounded pool of libpq connections.
class PostgresDatabase final : public Database {
 public:
  // Connects once up front. Throws std::invalid_argument when libpq rejects the URL and
  // DatabaseError (unavailable) when the server cannot be reached.
  PostgresDatabase(const DatabaseUrl& url, const Options& options);

  Dialect dialect() const override { return Dialect::postgres; }

 protected:
  Result do_execute(std::string_view sql, const Params& params) override;
  void do_execute_script(std::string_view sql) override;
  void do_transaction(const std::function<void(Executor&)>& body) override;

 private:
  using Lease = ConnectionPool<PgConnection>::Lease;

  PgConnection connect() const;
  Lease acquire_live();
  template <typename Run>
  auto with_retry(Run&& run);

  const std::string uri_;
  const std::string redacted_;
  const std::string application_name_;
  const std::string connect_timeout_;  // whole seconds, as libpq wants them
  ConnectionPool<PgConnection> pool_;
};

}  // namespace inkwell::storage
