#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace inkwell::storage {

/// A value bound to or read from a statement. SQLite has no boolean type: booleans bound there
/// come back as integers 0/1, which Row::get<bool> accepts.
using Value = std::variant<std::nullptr_t, std::int64_t, double, std::string, bool>;

/// One statement parameter: converts what callers have at hand into a Value. String literals
/// and string_views become std::string, every integer type becomes int64, an empty optional or
/// nullptr becomes NULL.
struct Param {
  Param(std::nullptr_t) {}
  Param(bool b) : value(b) {}
  template <std::integral T>
  requires(!std::same_as<T, bool>) Param(T i) : value(to_int64(i)) {}
  Param(double d) : value(d) {}
  Param(const char* s) : value(s ? Value(std::string(s)) : Value(nullptr)) {}
  Param(std::string_view s) : value(std::string(s)) {}
  Param(std::string s) : value(std::move(s)) {}
  template <typename T>
  Param(const std::optional<T>& o) : value(o ? Param(*o).value : Value(nullptr)) {}
  Param(Value v) : value(std::move(v)) {}

  Value value;

 private:
  template <std::integral T>
  static std::int64_t to_int64(T i) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      if (i > static_cast<T>(std::numeric_limits<std::int64_t>::max())) {
        throw std::out_of_range("parameter does not fit a signed 64-bit integer");
      }
    }
    return static_cast<std::int64_t>(i);
  }
};

/// Statement parameters, bound to $1, $2, ... in order: `db.execute(sql, {"a", 42, nullptr})`.
class Params : public std::vector<Value> {
 public:
  Params() = default;
  Params(std::initializer_list<Param> params) {
    reserve(params.size());
    for (const Param& p : params) push_back(p.value);
  }
  /// Appends one parameter (for statements assembled in a loop).
  Params& add(Param p) {
    push_back(std::move(p.value));
    return *this;
  }
};

namespace detail {
template <typename T>
inline constexpr bool kIsOptional = false;
template <typename T>
inline constexpr bool kIsOptional<std::optional<T>> = true;
template <typename T>
inline constexpr bool kAlwaysFalse = false;
}  // namespace detail

/// One result row. Read columns by position or name with a type:
/// `row.get<std::string>("email")`, `row.get<std::optional<std::int64_t>>(2)`.
class Row {
 public:
  Row(std::shared_ptr<const std::vector<std::string>> columns, std::vector<Value> values)
      : columns_(std::move(columns)), values_(std::move(values)) {}

  std::size_t size() const { return values_.size(); }
  /// The raw value; throws DatabaseError when col is out of range.
  const Value& at(std::size_t col) const;
  /// The position of a column; throws DatabaseError when there is no such column.
  std::size_t index_of(std::string_view name) const;
  bool is_null(std::size_t col) const { return std::holds_alternative<std::nullptr_t>(at(col)); }
  bool is_null(std::string_view name) const { return is_null(index_of(name)); }

  /// Typed read. T is std::string, an integer type, double, bool, or std::optional of one of
  /// them. Throws DatabaseError on NULL into a non-optional, on a type mismatch, or when an
  /// integer does not fit T. Integers read as double; integers 0/1 read as bool.
  template <typename T>
  T get(std::size_t col) const;
  template <typename T>
  T get(std::string_view name) const {
    return get<T>(index_of(name));
  }

 private:
  [[noreturn]] void mismatch(std::size_t col, std::string_view wanted) const;
  std::string describe(std::size_t col) const;

  std::shared_ptr<const std::vector<std::string>> columns_;
  std::vector<Value> values_;
};

/// What a statement returned.
struct Result {
  std::vector<std::string> columns;
  std::vector<Row> rows;
  /// Rows inserted, updated or deleted; for a query, the number of rows returned.
  std::int64_t affected_rows = 0;
};

/// The SQL dialect behind a Database, for the few statements that differ.
enum class Dialect { postgres, sqlite };

/// Thrown by every storage operation. Messages never contain credentials.
class DatabaseError : public std::runtime_error {
 public:
  /// Why it failed, in terms a service can map to an HTTP status.
  enum class Kind {
    unique_violation,  ///< a unique or primary key constraint rejected a write (409)
    unavailable,       ///< unreachable, connection lost, pool or lock busy past its timeout (503)
    constraint,        ///< another integrity constraint: foreign key, not null, check
    other,             ///< anything else: SQL errors, type mismatches, misuse of the API
  };

  DatabaseError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

/// Something that runs statements: the Database itself (each statement on its own) or the
/// handle passed to a transaction body (valid only while the body runs). SQL uses $1, $2, ...
/// placeholders in both dialects; values are always bound, never spliced into the text.
class Executor {
 public:
  Executor() = default;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  virtual ~Executor() = default;

  virtual Dialect dialect() const = 0;

  /// Runs one statement with params bound to $1..$N. Throws DatabaseError.
  Result execute(std::string_view sql, const Params& params = {}) {
    return do_execute(sql, params);
  }

  /// Runs several `;`-separated statements without parameters (migrations, set-up scripts).
  void execute_script(std::string_view sql) { do_execute_script(sql); }

 protected:
  virtual Result do_execute(std::string_view sql, const Params& params) = 0;
  virtual void do_execute_script(std::string_view sql) = 0;
};

/// A database reached through a pool of connections; safe to use from many threads.
/// Calls block: run them on a worker pool, not on an I/O thread.
class Database : public Executor {
 public:
  /// True when a trivial query succeeds (reconnecting if needed); never throws DatabaseError.
  bool ping();

  /// Runs body inside one transaction on one connection: commits when body returns, rolls back
  /// and rethrows when it throws, and returns what body returns. Inside body, use only the
  /// Executor it is given; calling this Database from body throws DatabaseError (nested
  /// transactions are not supported), as does running COMMIT or ROLLBACK yourself.
  template <typename Body>
  requires std::invocable<Body&, Executor&>
  auto transaction(Body&& body) -> std::remove_cvref_t<std::invoke_result_t<Body&, Executor&>> {
    using R = std::remove_cvref_t<std::invoke_result_t<Body&, Executor&>>;
    if constexpr (std::is_void_v<R>) {
      do_transaction([&](Executor& tx) { body(tx); });
    } else {
      std::optional<R> out;
      do_transaction([&](Executor& tx) { out.emplace(body(tx)); });
      return std::move(*out);
    }
  }

 protected:
  virtual void do_transaction(const std::function<void(Executor&)>& body) = 0;
};

/// How to connect. Every wait is bounded; running out of time throws `unavailable`.
struct Options {
  std::size_t pool_size = 8;
  std::chrono::milliseconds connect_timeout{5000};
  /// SQLite: how long a writer waits for the file lock (and for this process's other writers).
  std::chrono::milliseconds busy_timeout{5000};
  /// How long a caller waits for a free pooled connection.
  std::chrono::milliseconds acquire_timeout{5000};
  /// PostgreSQL application_name, shown in pg_stat_activity (a URL parameter overrides it).
  std::string application_name = "inkwell";
};

/// A database URL taken apart.
struct DatabaseUrl {
  Dialect dialect = Dialect::sqlite;
  /// The libpq connection URI, or the SQLite file path.
  std::string target;
  /// The URL with its password replaced by "***": safe to log.
  std::string redacted;
};

/// Parses `postgresql://user:pass@host:port/db?key=value` (also `postgres://`),
/// `sqlite:///absolute/path.db` or `sqlite://relative/path.db`. Throws std::invalid_argument
/// with a one-line reason that never repeats the password.
DatabaseUrl parse_database_url(std::string_view url);

/// Opens a database and one connection to it, so a wrong address fails here. Creates a SQLite
/// file's parent folder. Throws std::invalid_argument for a malformed URL or options, and
/// DatabaseError (`unavailable`) when the database cannot be reached.
std::unique_ptr<Database> open_database(std::string_view url, const Options& options = {});

template <typename T>
T Row::get(std::size_t col) const {
  const Value& v = at(col);
  if constexpr (detail::kIsOptional<T>) {
    if (std::holds_alternative<std::nullptr_t>(v)) return std::nullopt;
    return get<typename T::value_type>(col);
  } else {
    if constexpr (std::is_same_v<T, std::string>) {
      if (const auto* s = std::get_if<std::string>(&v)) return *s;
      mismatch(col, "text");
    } else if constexpr (std::is_same_v<T, bool>) {
      if (const auto* b = std::get_if<bool>(&v)) return *b;
      if (const auto* i = std::get_if<std::int64_t>(&v); i && (*i == 0 || *i == 1)) return *i == 1;
      mismatch(col, "boolean");
    } else if constexpr (std::is_same_v<T, double>) {
      if (const auto* d = std::get_if<double>(&v)) return *d;
      if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
      mismatch(col, "real");
    } else if constexpr (std::is_integral_v<T>) {
      const auto* i = std::get_if<std::int64_t>(&v);
      if (i && std::in_range<T>(*i)) return static_cast<T>(*i);
      mismatch(col, i ? "a narrower integer type" : "integer");
    } else {
      static_assert(detail::kAlwaysFalse<T>,
                    "Row::get reads std::string, integers, double, bool or std::optional of them");
    }
  }
}

}  // namespace inkwell::storage
