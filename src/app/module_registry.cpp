#include "app/module_registry.h"

#include <set>
#include <stdexcept>

namespace inkwell::app {

void ModuleRegistry::add(std::string name, std::vector<std::string> dependencies, Init init) {
  if (modules_.contains(name)) throw std::logic_error("module registered twice: " + name);
  modules_.emplace(std::move(name), Entry{std::move(dependencies), std::move(init)});
}

std::vector<std::string> ModuleRegistry::resolve(const std::vector<std::string>& targets) const {
  std::vector<std::string> order;
  std::set<std::string, std::less<>> done;
  std::set<std::string, std::less<>> visiting;
  std::function<void(std::string_view)> visit = [&](std::string_view name) {
    if (done.contains(name)) return;
    const auto it = modules_.find(name);
    if (it == modules_.end())
      throw std::invalid_argument("unknown module '" + std::string(name) + "'");
    if (!visiting.insert(std::string(name)).second) {
      throw std::logic_error("module dependency cycle through " + std::string(name));
    }
    for (const auto& dependency : it->second.dependencies) visit(dependency);
    visiting.erase(visiting.find(name));
    done.insert(std::string(name));
    order.emplace_back(name);
  };
  for (const auto& target : targets) visit(target);
  return order;
}

const ModuleRegistry::Init& ModuleRegistry::init(std::string_view name) const {
  const auto it = modules_.find(name);
  if (it == modules_.end())
    throw std::invalid_argument("unknown module '" + std::string(name) + "'");
  return it->second.init;
}

std::vector<std::string> ModuleRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : modules_) out.push_back(name);
  return out;
}

}  // namespace inkwell::app
