#include "storage/postgres/postgres_database.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <charconv>
#include <new>
#include <system_error>
#include <vector>

#include "storage/transaction_scope.h"

namespace inkwell::storage {
namespace {

using Kind = DatabaseError::Kind;

// Built-in type OIDs (pg_type.dat); they never change.
constexpr Oid kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kFloat4Oid = 700,
              kFloat8Oid = 701, kNumericOid = 1700;

struct PgResultClear {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultClear>;

template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;  // clang-tidy's clang 14 lacks aggregate CTAD

// libpq messages span several indented lines; errors here are one line.
std::string first_line(std::string_view text) {
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.remove_suffix(1);
  return std::string(text);
}

// Drops quoted text, where libpq echoes pieces of a URL that may hold a password.
std::string without_quoted(std::string_view text) {
  std::string out;
  bool quoted = false;
  for (char c : text) {
    if (c == '"') {
      quoted = !quoted;
    } else if (!quoted) {
      out += c;
    }
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == ':')) out.pop_back();
  return out;
}

DatabaseError pg_error(PGconn* conn, const PGresult* result) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const char* primary = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  const char* fallback =
      result && *PQresultErrorMessage(result) ? PQresultErrorMessage(result) : PQerrorMessage(conn);
  std::string message = first_line(primary ? primary : fallback);
  const std::string_view code = state ? state : "";
  Kind kind = Kind::other;
  // Class 08 is connection exceptions, except 08P01, which is what a wrong parameter count
  // gets; 57P0x are server shutdown, crash, start-up and terminated sessions.
  if (PQstatus(conn) != CONNECTION_OK || (code.starts_with("08") && code != "08P01") ||
      code.starts_with("57P")) {
    kind = Kind::unavailable;
  } else if (code == "23505") {
    kind = Kind::unique_violation;
  } else if (code.starts_with("23")) {
    kind = Kind::constraint;
  }
  if (!code.empty()) message += " [SQLSTATE " + std::string(code) + "]";
  return DatabaseError(kind, "postgres: " + message);
}

PgResult checked(PGconn* conn, PGresult* raw) {
  PgResult result(raw);
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    return result;
  }
  if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
    throw DatabaseError(Kind::other, "postgres: COPY is not supported");
  }
  throw pg_error(conn, result.get());
}

template <typename T>
T parse_number(std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw DatabaseError(Kind::other,
                        "postgres: cannot read \"" + std::string(text) + "\" as a number");
  }
  return value;
}

Value to_value(const PGresult* result, int row, int col) {
  if (PQgetisnull(result, row, col)) return nullptr;
  const std::string_view text(PQgetvalue(result, row, col),
                              static_cast<std::size_t>(PQgetlength(result, row, col)));
  switch (PQftype(result, col)) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
      return parse_number<std::int64_t>(text);
    case kFloat4Oid:
    case kFloat8Oid:
    case kNumericOid:
      return parse_number<double>(text);
    case kBoolOid:
      return text == "t";
    default:
      return std::string(text);
  }
}

Result to_result(PGresult* pg) {
  Result result;
  const int columns = PQnfields(pg);
  const int rows = PQntuples(pg);
  for (int c = 0; c < columns; ++c) result.columns.emplace_back(PQfname(pg, c));
  const auto names = std::make_shared<const std::vector<std::string>>(result.columns);
  result.rows.reserve(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    std::vector<Value> values;
    values.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) values.push_back(to_value(pg, r, c));
    result.rows.emplace_back(names, std::move(values));
  }
  const std::string_view tuples = PQcmdTuples(pg);
  result.affected_rows = tuples.empty() ? 0 : parse_number<std::int64_t>(tuples);
  return result;
}

// Parameters go as text. Numbers and booleans carry their type so `SELECT $1` keeps it;
// strings stay untyped so the server reads them as whatever the column is (uuid, jsonb, ...).
Result exec_params(PGconn* conn, std::string_view sql, const Params& params) {
  const std::string query(sql);
  std::vector<std::string> text(params.size());
  std::vector<const char*> values(params.size());
  std::vector<Oid> types(params.size(), 0);
  for (std::size_t i = 0; i < params.size(); ++i) {
    values[i] =
        std::visit(Overloaded{
                       [](std::nullptr_t) -> const char* { return nullptr; },
                       [&](std::int64_t v) -> const char* {
                         types[i] = kInt8Oid;
                         return (text[i] = std::to_string(v)).c_str();
                       },
                       [&](double v) -> const char* {
                         types[i] = kFloat8Oid;
                         char buffer[32];
                         const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
                         return (text[i] = std::string(buffer, end)).c_str();
                       },
                       [&](const std::string& v) -> const char* {
                         if (v.find('\0') != std::string::npos) {
                           throw DatabaseError(Kind::other,
                                               "postgres: parameter $" + std::to_string(i + 1) +
                                                   " contains a NUL byte, which text cannot hold");
                         }
                         return v.c_str();
                       },
                       [&](bool v) -> const char* {
                         types[i] = kBoolOid;
                         return v ? "true" : "false";
                       },
                   },
                   params[i]);
  }
  const PgResult result =
      checked(conn, PQexecParams(conn, query.c_str(), static_cast<int>(params.size()), types.data(),
                                 values.data(), nullptr, nullptr, 0));
  return to_result(result.get());
}

bool readable_now(PGconn* conn) {
  pollfd fd{PQsocket(conn), POLLIN, 0};
  return ::poll(&fd, 1, 0) > 0;
}

PgResult exec_script(PGconn* conn, std::string_view sql) {
  return checked(conn, PQexec(conn, std::string(sql).c_str()));
}

// The Executor handed to a transaction body: statements on the transaction's connection.
class PostgresTransaction final : public Executor {
 public:
  explicit PostgresTransaction(PGconn* conn) : conn_(conn) {}
  Dialect dialect() const override { return Dialect::postgres; }

 protected:
  Result do_execute(std::string_view sql, const Params& params) override {
    check_open();
    Result result = exec_params(conn_, sql, params);
    check_open();
    return result;
  }
  void do_execute_script(std::string_view sql) override {
    check_open();
    exec_script(conn_, sql);
    check_open();
  }

 private:
  // A COMMIT or ROLLBACK run by the body would leave the rest of it outside any transaction.
  void check_open() const {
    if (PQtransactionStatus(conn_) == PQTRANS_IDLE) {
      throw DatabaseError(Kind::other,
                          "postgres: the transaction was ended inside its body; return or throw "
                          "from the body instead of running COMMIT or ROLLBACK");
    }
  }

  PGconn* conn_;
};

}  // namespace

void PgConnectionCloser::operator()(pg_conn* conn) const noexcept {
  PQfinish(conn);
}

PostgresDatabase::PostgresDatabase(const DatabaseUrl& url, const Options& options)
    : uri_(url.target),
      redacted_(url.redacted),
      application_name_(options.application_name),
      connect_timeout_(std::to_string(std::max<long long>(
          1, static_cast<long long>((options.connect_timeout.count() + 999) / 1000)))),
      pool_(options.pool_size, options.acquire_timeout,
            {[this] { return connect(); },
             [](PgConnection& conn) {
               return PQstatus(conn.get()) == CONNECTION_OK &&
                      PQtransactionStatus(conn.get()) == PQTRANS_IDLE;
             }}) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(uri_.c_str(), &error);
  if (!parsed) {
    const std::string message = error ? first_line(error) : "out of memory";
    PQfreemem(error);
    throw std::invalid_argument("invalid database URL: " + without_quoted(message));
  }
  PQconninfoFree(parsed);
  pool_.acquire();  // fail at start-up, not on the first request, when the server is unreachable
}

PgConnection PostgresDatabase::connect() const {
  // Keywords before dbname are defaults: the URI, expanded in place of dbname, overrides them.
  const char* const keys[] = {"application_name", "connect_timeout", "client_encoding", "dbname",
                              nullptr};
  const char* const values[] = {application_name_.c_str(), connect_timeout_.c_str(), "UTF8",
                                uri_.c_str(), nullptr};
  PgConnection conn(PQconnectdbParams(keys, values, 1));
  if (!conn) throw std::bad_alloc();
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw DatabaseError(Kind::unavailable, "postgres: cannot connect to " + redacted_ + ": " +
                                               first_line(PQerrorMessage(conn.get())));
  }
  // Notices ("relation already exists, skipping") are not errors; keep them off stderr.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

PostgresDatabase::Lease PostgresDatabase::acquire_live() {
  Lease lease = pool_.acquire();
  // The server may have closed an idle connection (restart, pg_terminate_backend, idle
  // timeout). Reading what it sent meanwhile, without blocking, notices that: first a FATAL
  // message, then the end of the stream, which marks the connection bad.
  PGconn* conn = lease->get();
  for (int i = 0; i < 4 && PQstatus(conn) == CONNECTION_OK && readable_now(conn); ++i) {
    PQconsumeInput(conn);
  }
  if (PQstatus(conn) != CONNECTION_OK) *lease = connect();
  return lease;
}

// Runs run(lease), and once more on another connection when the connection died under it.
// Only for work outside a transaction. A statement that reached the server just before the
// connection died may run twice; that rare case is the price of riding out server restarts.
template <typename Run>
auto PostgresDatabase::with_retry(Run&& run) {
  for (int attempt = 0;; ++attempt) {
    Lease lease = acquire_live();
    try {
      return run(lease);
    } catch (const DatabaseError& e) {
      if (attempt > 0 || e.kind() != Kind::unavailable) throw;
    }
  }
}

Result PostgresDatabase::do_execute(std::string_view sql, const Params& params) {
  TransactionScope::check_outside(*this, "execute");
  return with_retry([&](Lease& lease) { return exec_params(lease->get(), sql, params); });
}

void PostgresDatabase::do_execute_script(std::string_view sql) {
  TransactionScope::check_outside(*this, "execute_script");
  with_retry([&](Lease& lease) { exec_script(lease->get(), sql); });
}

void PostgresDatabase::do_transaction(const std::function<void(Executor&)>& body) {
  TransactionScope::check_outside(*this, "transaction");
  // BEGIN may be retried like a lone statement: nothing has happened in the transaction yet.
  Lease lease = with_retry([](Lease& leased) {
    exec_script(leased->get(), "BEGIN");
    return std::move(leased);
  });
  PGconn* conn = lease->get();
  PostgresTransaction tx(conn);
  try {
    const TransactionScope scope(*this);
    body(tx);
  } catch (...) {
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
      PQclear(PQexec(conn, "ROLLBACK"));  // if this fails too, the pool drops the connection
    }
    throw;
  }
  PgResult commit;
  try {
    commit = exec_script(conn, "COMMIT");
  } catch (const DatabaseError& e) {
    if (e.kind() != Kind::unavailable) throw;
    throw DatabaseError(Kind::unavailable,
                        std::string(e.what()) + " (during COMMIT: the outcome is unknown)");
  }
  // COMMIT of a transaction in which a statement failed (and the body caught it) rolls back.
  if (std::string_view(PQcmdStatus(commit.get())) == "ROLLBACK") {
    throw DatabaseError(Kind::other,
                        "postgres: the transaction was rolled back because a statement in it "
                        "failed");
  }
}

}  // namespace inkwell::storage
