#pragma once

#include "app/module_registry.h"
#include "base/settings.h"
#include "services/common/runtime.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace inkwell::storage {
class Database;
}
namespace inkwell::messaging {
class EventBus;
}

namespace inkwell::app {

// The process: its settings, the modules it was asked to run, and the resources those modules
// publish to each other (the runtime, each service's database).
class App {
 public:
  App(Settings settings, const ModuleRegistry& registry);
  ~App();

  Settings& settings() { return settings_; }

  /// Builds every module `targets` need (reading and validating all configuration first, so a
  /// bad value stops the process before anything starts), then starts them in dependency order.
  /// On a failed start, what already started is stopped again and the error rethrown.
  /// `check_flags` rejects flags no built module read (off for `migrate`, which builds only the
  /// databases but accepts the same command line as `serve`).
  void start(const std::vector<std::string>& targets, bool check_flags = true);
  /// Stops started modules in reverse order. Idempotent.
  void stop();

  // Published by modules during start.
  services::Runtime& runtime();
  void set_runtime(services::Runtime* runtime) { runtime_ = runtime; }
  storage::Database& database(const std::string& service);
  void set_database(const std::string& service, storage::Database* database);
  messaging::EventBus& bus();
  void set_bus(messaging::EventBus* bus) { bus_ = bus; }

 private:
  Settings settings_;
  const ModuleRegistry& registry_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> built_;
  std::size_t started_ = 0;
  services::Runtime* runtime_ = nullptr;
  std::map<std::string, storage::Database*> databases_;
  messaging::EventBus* bus_ = nullptr;
};

/// The registry of every module this binary has (src/app/modules.cpp).
const ModuleRegistry& modules();
/// Names a user may pass to --services.
std::vector<std::string> service_names();
/// The services that own a database (and so an outbox, an inbox and dead letters).
std::vector<std::string> database_services();
/// INKWELL_<SERVICE>_DATABASE_URL, defaulting to a SQLite file in INKWELL_DATA_DIR.
std::string database_url(const Settings& settings, const std::string& service);

}  // namespace inkwell::app
