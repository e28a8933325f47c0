#include "app/module_registry.h"
#include "app/app.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace inkwell::app {
namespace {

std::size_t position(const std::vector<std::string>& order, const std::string& name) {
  return static_cast<std::size_t>(std::find(order.begin(), order.end(), name) - order.begin());
}

TEST(ModuleRegistry, DependenciesComeFirstAndEachModuleOnce) {
  ModuleRegistry registry;
  registry.add("runtime", {});
  registry.add("db", {"runtime"});
  registry.add("a", {"runtime", "db"});
  registry.add("b", {"runtime"});
  registry.add("all", {"a", "b"});
  const auto order = registry.resolve({"all"});
  EXPECT_EQ(order.size(), 5U);
  EXPECT_LT(position(order, "runtime"), position(order, "db"));
  EXPECT_LT(position(order, "db"), position(order, "a"));
  EXPECT_LT(position(order, "a"), position(order, "all"));
  EXPECT_EQ(registry.resolve({"b", "b"}), (std::vector<std::string>{"runtime", "b"}));
}

TEST(ModuleRegistry, RejectsUnknownNamesCyclesAndDuplicates) {
  ModuleRegistry registry;
  registry.add("x", {"y"});
  registry.add("y", {"x"});
  EXPECT_THROW(registry.resolve({"x"}), std::logic_error);
  EXPECT_THROW(registry.resolve({"nope"}), std::invalid_argument);
  EXPECT_THROW(registry.add("x", {}), std::logic_error);
}

TEST(Modules, EveryServiceResolvesAloneWithItsDatabaseAndRuntime) {
  const auto& registry = modules();
  for (const auto& service : service_names()) {
    const auto order = registry.resolve({service});
    EXPECT_EQ(order.front(), "runtime") << service;
    EXPECT_EQ(order.back(), service);
    const bool has_database = registry.contains(service + "-database");
    EXPECT_EQ(has_database, service == "auth" || service == "blog" || service == "notification");
    if (has_database) {
      EXPECT_LT(position(order, service + "-database"), order.size() - 1);
    }
    // No service pulls in another service.
    for (const auto& other : service_names()) {
      if (other != service) {
        EXPECT_EQ(position(order, other), order.size()) << service;
      }
    }
  }
  const auto all = registry.resolve({"all"});
  for (const auto& service : service_names()) EXPECT_LT(position(all, service), all.size());
}

}  // namespace
}  // namespace inkwell::app
