#include "storage/database.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace inkwell::storage {
namespace {

using Kind = DatabaseError::Kind;

TEST(Params, ConvertWhatCallersHaveAtHand) {
  const std::string owned = "owned";
  const Params params{"literal",
                      std::string_view("view"),
                      owned,
                      42,
                      7LL,
                      3u,
                      1.5,
                      true,
                      nullptr,
                      std::optional<int>{},
                      std::optional<std::string>("set")};
  ASSERT_EQ(params.size(), 11u);
  EXPECT_EQ(params[0], Value(std::string("literal")));
  EXPECT_EQ(params[1], Value(std::string("view")));
  EXPECT_EQ(params[2], Value(std::string("owned")));
  EXPECT_EQ(params[3], Value(std::int64_t{42}));
  EXPECT_EQ(params[4], Value(std::int64_t{7}));
  EXPECT_EQ(params[5], Value(std::int64_t{3}));
  EXPECT_EQ(params[6], Value(1.5));
  EXPECT_EQ(params[7], Value(true));
  EXPECT_EQ(params[8], Value(nullptr));
  EXPECT_EQ(params[9], Value(nullptr));
  EXPECT_EQ(params[10], Value(std::string("set")));
}

TEST(Params, CanBeBuiltInALoop) {
  Params params;
  params.add("a").add(1);
  EXPECT_EQ(params, (Params{"a", 1}));
}

TEST(Params, RejectUnsignedValuesBeyondInt64) {
  EXPECT_THROW(Params{std::numeric_limits<std::uint64_t>::max()}, std::out_of_range);
}

class RowTest : public ::testing::Test {
 protected:
  const Row row_{std::make_shared<const std::vector<std::string>>(std::vector<std::string>{
                     "id", "name", "score", "flag", "missing", "bit", "big"}),
                 {std::int64_t{5}, std::string("ada"), 2.5, true, nullptr, std::int64_t{1},
                  std::int64_t{5'000'000'000}}};
};

TEST_F(RowTest, ReadsTypedValuesByPositionAndName) {
  EXPECT_EQ(row_.get<std::int64_t>(0), 5);
  EXPECT_EQ(row_.get<int>("id"), 5);
  EXPECT_EQ(row_.get<std::string>("name"), "ada");
  EXPECT_EQ(row_.get<double>("score"), 2.5);
  EXPECT_EQ(row_.get<double>("id"), 5.0);
  EXPECT_TRUE(row_.get<bool>("flag"));
  EXPECT_TRUE(row_.get<bool>("bit"));  // SQLite's booleans
  EXPECT_EQ(row_.get<std::int64_t>("big"), 5'000'000'000);
}

TEST_F(RowTest, ReadsNullsAsOptionals) {
  EXPECT_TRUE(row_.is_null("missing"));
  EXPECT_FALSE(row_.is_null(0));
  EXPECT_EQ(row_.get<std::optional<std::string>>("missing"), std::nullopt);
  EXPECT_EQ(row_.get<std::optional<int>>("id"), 5);
}

std::string error_of(const std::function<void()>& read) {
  try {
    read();
  } catch (const DatabaseError& e) {
    EXPECT_EQ(e.kind(), Kind::other);
    return e.what();
  }
  ADD_FAILURE() << "expected a DatabaseError";
  return "";
}

TEST_F(RowTest, ReportsMismatchesClearly) {
  EXPECT_EQ(error_of([&] { row_.get<std::int64_t>("name"); }),
            "column \"name\" (#1): cannot read text as integer");
  EXPECT_EQ(error_of([&] { row_.get<std::string>("missing"); }),
            "column \"missing\" (#4): cannot read NULL as text; read nullable columns as "
            "std::optional");
  EXPECT_EQ(error_of([&] { row_.get<int>("big"); }),
            "column \"big\" (#6): cannot read integer 5000000000 as a narrower integer type");
  EXPECT_EQ(error_of([&] { row_.get<bool>("id"); }),
            "column \"id\" (#0): cannot read integer 5 as boolean");
  EXPECT_EQ(error_of([&] { row_.get<double>("name"); }),
            "column \"name\" (#1): cannot read text as real");
  EXPECT_EQ(error_of([&] { row_.get<std::string>("nope"); }),
            "no column named \"nope\" in the result");
  EXPECT_EQ(error_of([&] { row_.get<std::string>(7); }),
            "column index 7 out of range: the row has 7 columns");
}

std::string url_error(std::string_view url) {
  try {
    parse_database_url(url);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted " << url;
  return "";
}

TEST(DatabaseUrl, ParsesPostgresUrlsAndRedactsThePassword) {
  const DatabaseUrl url =
      parse_database_url("postgresql://ink:s3cret@db.local:5432/blog?sslmode=disable");
  EXPECT_EQ(url.dialect, Dialect::postgres);
  EXPECT_EQ(url.target, "postgresql://ink:s3cret@db.local:5432/blog?sslmode=disable");
  EXPECT_EQ(url.redacted, "postgresql://ink:***@db.local:5432/blog?sslmode=disable");

  EXPECT_EQ(parse_database_url("postgres://ink@[::1]:5432,other:6543/blog").redacted,
            "postgres://ink@[::1]:5432,other:6543/blog");
  EXPECT_EQ(parse_database_url("postgresql:///blog").dialect, Dialect::postgres);
}

TEST(DatabaseUrl, ParsesSqliteUrls) {
  const DatabaseUrl absolute = parse_database_url("sqlite:///var/lib/inkwell/blog.db");
  EXPECT_EQ(absolute.dialect, Dialect::sqlite);
  EXPECT_EQ(absolute.target, "/var/lib/inkwell/blog.db");
  EXPECT_EQ(parse_database_url("sqlite://data/blog.db").target, "data/blog.db");
  EXPECT_EQ(parse_database_url("sqlite://data/my%20blog.db").target, "data/my blog.db");
}

TEST(DatabaseUrl, RejectsMalformedUrlsWithoutEchoingThePassword) {
  const std::string prefix = "invalid database URL: ";
  EXPECT_EQ(url_error("blog.db"), prefix +
                                      "expected postgresql://user:password@host:port/database "
                                      "or sqlite:///path/to/file.db");
  EXPECT_EQ(url_error("mysql://a@b/c"),
            prefix + "unsupported scheme \"mysql\" (use postgresql:// or sqlite://)");
  EXPECT_EQ(url_error("postgresql://ink:pw@host:99999/blog"),
            prefix + "invalid port number (expected 1-65535)");
  EXPECT_EQ(url_error("postgresql://ink:pw@host:5432"),
            prefix + "no database name (expected postgresql://user:password@host:port/database)");
  EXPECT_EQ(url_error("postgresql://ink:pw@host/blog?sslmode"),
            prefix + "malformed query string (expected ?key=value&key=value)");
  EXPECT_EQ(url_error("sqlite://"), prefix +
                                        "no sqlite file (expected sqlite:///absolute/path.db or "
                                        "sqlite://relative/path.db)");
  EXPECT_EQ(url_error("sqlite:///data/"), url_error("sqlite://"));
  EXPECT_EQ(url_error("sqlite:///a.db?mode=ro"), prefix + "sqlite URLs take no query parameters");
  EXPECT_NE(url_error("sqlite://:memory:"), "");

  // Passwords with unencoded '@', '/' or '%' end up where a message could echo them.
  for (const std::string_view url :
       {"postgresql://ink:Zq@9x@host/blog", "postgresql://ink:Zq/9x@host/blog",
        "postgresql://ink:Zq%zz9x@host/blog", "postgresql://ink:Zq:9x@host:x/blog"}) {
    const std::string message = url_error(url);
    EXPECT_EQ(message.find("Zq"), std::string::npos) << message;
    EXPECT_EQ(message.find("9x"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(OpenDatabase, RejectsAnEmptyPool) {
  EXPECT_THROW(open_database("sqlite:///tmp/never-created/x.db", {.pool_size = 0}),
               std::invalid_argument);
}

}  // namespace
}  // namespace inkwell::storage
