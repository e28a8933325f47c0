#include "app/app.h"

#include "base/log.h"

#include <stdexcept>

namespace inkwell::app {

App::App(Settings settings, const ModuleRegistry& registry)
    : settings_(std::move(settings)), registry_(registry) {}

App::~App() {
  stop();
}

void App::start(const std::vector<std::string>& targets, bool check_flags) {
  for (const auto& name : registry_.resolve(targets)) {
    const auto& init = registry_.init(name);
    if (init) built_.emplace_back(name, init(*this));
  }
  if (check_flags) settings_.reject_unknown_flags();
  try {
    for (; started_ < built_.size(); ++started_) {
      built_[started_].second->start();
    }
    for (auto& [name, module] : built_) module->started();
  } catch (...) {
    stop();
    throw;
  }
}

void App::stop() {
  while (started_ > 0) {
    auto& [name, module] = built_[--started_];
    try {
      module->stop();
    } catch (const std::exception& error) {
      log::error("module failed to stop", {{"module", name}, {"error", error.what()}});
    }
  }
  // Destroy in reverse order too: services before the databases and runtime they borrow.
  while (!built_.empty()) built_.pop_back();
}

services::Runtime& App::runtime() {
  if (runtime_ == nullptr) throw std::logic_error("runtime module has not started");
  return *runtime_;
}

storage::Database& App::database(const std::string& service) {
  const auto it = databases_.find(service);
  if (it == databases_.end()) throw std::logic_error("no database module for " + service);
  return *it->second;
}

messaging::EventBus& App::bus() {
  if (bus_ == nullptr) throw std::logic_error("bus module has not been built");
  return *bus_;
}

void App::set_database(const std::string& service, storage::Database* database) {
  databases_[service] = database;
}

}  // namespace inkwell::app
