#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace inkwell::app {

class App;

// A started piece of the process: a shared resource (runtime, database) or a service.
class Module {
 public:
  virtual ~Module() = default;
  virtual void start() {}
  /// Called once every module has started, in the same order: for work that must wait for the
  /// whole process, such as outbox relays waiting for every in-process subscriber.
  virtual void started() {}
  virtual void stop() {}
};

// Named modules with dependencies, in the manner of Mimir's modules.go: a module is built by its
// init function (which reads and validates its configuration), started after everything it
// depends on and stopped before it. A module without an init function is a group.
class ModuleRegistry {
 public:
  using Init = std::function<std::unique_ptr<Module>(App&)>;

  /// Throws std::logic_error for a duplicate name.
  void add(std::string name, std::vector<std::string> dependencies, Init init = nullptr);
  /// Every module `targets` need, dependencies first, each once. Throws std::invalid_argument
  /// for an unknown name and std::logic_error for a cycle.
  std::vector<std::string> resolve(const std::vector<std::string>& targets) const;
  bool contains(std::string_view name) const { return modules_.contains(name); }
  const Init& init(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  struct Entry {
    std::vector<std::string> dependencies;
    Init init;
  };
  std::map<std::string, Entry, std::less<>> modules_;
};

}  // namespace inkwell::app
