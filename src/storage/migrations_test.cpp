#include "storage/migrations.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "inkwell_migrations_storage_test.h"

namespace inkwell::storage {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST(EmbeddedMigrations, CarryTheFilesVerbatimInVersionOrder) {
  const MigrationSet& set = inkwell_migrations_storage_test();
  EXPECT_EQ(set.service, "storage_test");
  for (const auto& [dialect, list] :
       {std::pair{"postgres", &set.postgres}, {"sqlite", &set.sqlite}}) {
    ASSERT_EQ(list->size(), 3u) << dialect;
    const std::string dir = std::string(INKWELL_STORAGE_TESTDATA) + "/migrations/" + dialect + "/";
    const std::pair<int, std::string> expected[] = {
        {1, "create_notes"}, {2, "seed_notes"}, {10, "index_tags"}};
    for (std::size_t i = 0; i < 3; ++i) {
      const Migration& m = (*list)[i];
      EXPECT_EQ(m.version, expected[i].first);
      EXPECT_EQ(m.name, expected[i].second);
      char prefix[8];
      std::snprintf(prefix, sizeof prefix, "%04d_", m.version);
      EXPECT_EQ(m.sql, read_file(dir + prefix + m.name + ".sql")) << dialect << " " << m.name;
    }
  }
  EXPECT_NO_THROW(validate_migrations(set));
}

std::string validation_error(const MigrationSet& set) {
  try {
    validate_migrations(set);
  } catch (const MigrationError& e) {
    return e.what();
  }
  ADD_FAILURE() << "the set passed validation";
  return "";
}

TEST(ValidateMigrations, RequiresUniqueIncreasingVersions) {
  EXPECT_EQ(validation_error({"blog", {{1, "a", ""}, {1, "b", ""}}, {}}),
            "blog postgres migration 1 follows version 1: versions must be unique and increasing");
  EXPECT_EQ(validation_error({"blog", {}, {{2, "a", ""}, {1, "b", ""}}}),
            "blog sqlite migration 1 follows version 2: versions must be unique and increasing");
  EXPECT_EQ(validation_error({"blog", {{0, "a", ""}}, {}}),
            "blog postgres migration 0: versions start at 1");
}

TEST(ValidateMigrations, RequiresNamesAndAService) {
  EXPECT_EQ(validation_error({"blog", {{1, "", ""}}, {}}), "blog postgres migration 1 has no name");
  EXPECT_EQ(validation_error({"", {}, {}}), "migration set has no service name");
}

TEST(ValidateMigrations, RequiresBothDialectsToMatch) {
  const std::string expected =
      "blog migration 2 (b) differs between postgres and sqlite: every migration needs a file "
      "with the same version and name in both folders";
  EXPECT_EQ(validation_error({"blog", {{1, "a", ""}, {2, "b", ""}}, {{1, "a", ""}}}), expected);
  EXPECT_EQ(validation_error({"blog", {{1, "a", ""}, {2, "b", ""}}, {{1, "a", ""}, {2, "c", ""}}}),
            expected);
  EXPECT_NO_THROW(validate_migrations({"blog", {{1, "a", "x"}, {5, "b", "y"}}, {}}));
}

}  // namespace
}  // namespace inkwell::storage
