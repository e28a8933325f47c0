// inkwell: one binary for every service. See `inkwell --help`.
#include "app/app.h"
#include "app/events_command.h"
#include "base/log.h"
#include "services/common/runtime.h"

#include <pthread.h>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>

namespace {

using inkwell::ConfigError;
using inkwell::Settings;

constexpr const char* kUsage = R"(inkwell — an event-driven microservices blog platform

Usage:
  inkwell serve [--services=all|gateway,auth,blog,notification,ai] [--name=value ...]
  inkwell migrate [--services=...]   apply database migrations and exit
  inkwell events dlq list|replay --topic T [--group G]
                                     inspect or replay dead-lettered events
  inkwell version                    print the version
  inkwell --help                     this text

Every setting is an environment variable with a flag of the same name: INKWELL_AUTH_PORT is
--auth-port, KAFKA_BROKERS is --kafka-brokers; flags win. The main ones:
  INKWELL_SERVICES            services to run (default all)
  INKWELL_DATA_DIR            folder for SQLite files and keys (default ./data)
  INKWELL_<SERVICE>_PORT      listen port: gateway 8080, auth 8081, blog 8082,
                              notification 8083, ai 8084 (0 picks a free port)
  INKWELL_<SERVICE>_HOST      listen address (gateway 0.0.0.0, others 127.0.0.1)
  INKWELL_<SERVICE>_DATABASE_URL  postgresql://user@host:port/db or sqlite:///path.db
                              (auth, blog, notification; default SQLite in the data dir)
  INKWELL_<SERVICE>_URL       where the gateway reaches a service (default its local port)
  KAFKA_BROKERS, REDIS_URL    external bus and cache (default: embedded, in-process)
  INKWELL_THREADS             I/O threads (default: cores)
  INKWELL_LOG_LEVEL           debug|info|warn|error (default info)
  INKWELL_ACCESS_LOG          log every request (default true)
  INKWELL_MAX_BODY_BYTES, INKWELL_HEADER_TIMEOUT_MS, INKWELL_REQUEST_TIMEOUT_MS,
  INKWELL_SHUTDOWN_GRACE_MS, INKWELL_BLOCKING_THREADS, INKWELL_DATABASE_POOL_SIZE
See README.md and ARCHITECTURE.md for the whole list.
)";

std::vector<std::string> split_services(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream stream(text);
  std::string item;
  const auto known = inkwell::app::service_names();
  while (std::getline(stream, item, ',')) {
    if (item == "all" || std::find(known.begin(), known.end(), item) != known.end()) {
      out.push_back(item);
    } else {
      throw ConfigError("INKWELL_SERVICES", "unknown service '" + item +
                                                "'; choose all or any of gateway,auth,blog,"
                                                "notification,ai");
    }
  }
  if (out.empty()) throw ConfigError("INKWELL_SERVICES", "names no service");
  return out;
}

int serve(Settings settings, bool migrate_only) {
  // Signals are taken by sigwait on this thread only; every thread started later inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  inkwell::log::init(
      settings.one_of("INKWELL_LOG_LEVEL", "info", {"debug", "info", "warn", "error"}));
  auto services = split_services(settings.text("INKWELL_SERVICES", "all"));
  if (migrate_only) {
    std::vector<std::string> databases{"runtime"};
    const auto& registry = inkwell::app::modules();
    for (const auto& name : registry.resolve(services)) {
      if (name.ends_with("-database")) databases.push_back(name);
    }
    services = databases;
  }
  inkwell::app::App app(std::move(settings), inkwell::app::modules());
  app.start(services, !migrate_only);
  if (migrate_only) {
    app.stop();
    return 0;
  }
  inkwell::log::info("started", {{"services", boost::json::array(services.begin(), services.end())},
                                 {"version", inkwell::services::version()}});
  int received = 0;
  sigwait(&signals, &received);
  inkwell::log::info("stopping", {{"signal", received == SIGINT ? "SIGINT" : "SIGTERM"}});
  app.stop();
  inkwell::log::info("stopped");
  return 0;
}

// Runs a command; a configuration error exits 2 and any other failure 1, each with one line.
template <class Command>
int report_errors(Command command) {
  try {
    return command();
  } catch (const ConfigError& error) {
    std::cerr << "inkwell: configuration error: " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "inkwell: " << error.what() << "\n";
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "--help";
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return argc > 1 ? 0 : 2;
  }
  if (command == "version" || command == "--version") {
    std::cout << "inkwell " << inkwell::services::version() << "\n";
    return 0;
  }
  if (command == "events") {
    return report_errors([&] { return inkwell::app::run_events_command({argv + 2, argv + argc}); });
  }
  if (command != "serve" && command != "migrate") {
    std::cerr << "inkwell: unknown command '" << command << "' (try inkwell --help)\n";
    return 2;
  }
  std::vector<std::string> flags(argv + 2, argv + argc);
  if (std::find(flags.begin(), flags.end(), "--help") != flags.end()) {
    std::cout << kUsage;
    return 0;
  }
  return report_errors([&] {
    return serve(Settings(Settings::process_environment(), flags), command == "migrate");
  });
}
