// The registry: every module of the binary, declared once, with its dependencies. `all` is a
// group that depends on every service; each service can also run alone.
#include "app/app.h"
#include "base/log.h"
#include "services/common/service_host.h"
#include "services/gateway/gateway_service.h"
#include "storage/database.h"
#include "storage/migrations.h"

#include <filesystem>
#include <optional>
#include <thread>

namespace inkwell::app {
namespace {

constexpr std::string_view kRuntime = "runtime";

// The service table: name, default port, whether it owns a database.
struct ServiceSpec {
  std::string_view name;
  std::uint16_t port;
  bool has_database;
};
constexpr ServiceSpec kServices[] = {
    {"ai", 8084, false},      {"auth", 8081, true},         {"blog", 8082, true},
    {"gateway", 8080, false}, {"notification", 8083, true},
};

std::string upper(std::string_view name) {
  std::string out(name);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The I/O threads (one io_context each), the blocking pool, the upstream client and metrics.
class RuntimeModule : public Module {
 public:
  explicit RuntimeModule(App& app)
      : threads_(static_cast<std::size_t>(app.settings().integer(
            "INKWELL_THREADS", std::max(1U, std::thread::hardware_concurrency()), 1, 256))),
        blocking_(
            "blocking",
            static_cast<std::size_t>(app.settings().integer("INKWELL_BLOCKING_THREADS", 8, 1, 256)),
            static_cast<std::size_t>(
                app.settings().integer("INKWELL_BLOCKING_QUEUE", 1024, 1, 1'000'000))),
        io_(threads_),
        client_(http::ClientOptions{
            .connect_timeout = app.settings().millis("INKWELL_UPSTREAM_CONNECT_TIMEOUT_MS",
                                                     std::chrono::milliseconds(2'000),
                                                     std::chrono::milliseconds(10)),
            .request_timeout = app.settings().millis("INKWELL_UPSTREAM_TIMEOUT_MS",
                                                     std::chrono::milliseconds(10'000),
                                                     std::chrono::milliseconds(10)),
        }),
        runtime_{
            io_,
            app.settings(),
            metrics_,
            blocking_,
            client_,
            std::filesystem::absolute(app.settings().text("INKWELL_DATA_DIR", "data")).string(),
            std::chrono::steady_clock::now(),
            app.settings().millis("INKWELL_SHUTDOWN_GRACE_MS", std::chrono::milliseconds(10'000),
                                  std::chrono::milliseconds(0)),
            app.settings().host_ports("KAFKA_BROKERS"),
            app.settings().url("REDIS_URL", std::nullopt, {"redis"})} {
    app.set_runtime(&runtime_);
    metrics_.add([this](metrics::Exposition& out) {
      out.gauge("worker_pool_queued", "Blocking calls waiting for a worker.",
                {{"pool", "blocking"}}, static_cast<double>(blocking_.queued()));
      client_.collect(out);
    });
  }

  void start() override { io_.start(); }

  void stop() override {
    io_.stop();
    blocking_.stop();
  }

 private:
  std::size_t threads_;
  metrics::Registry metrics_;
  WorkerPool blocking_;
  IoPool io_;
  http::HttpClient client_;
  services::Runtime runtime_;
};

// One service's database: opened and migrated at start, closed at stop.
class DatabaseModule : public Module {
 public:
  DatabaseModule(App& app, std::string service) : app_(app), service_(std::move(service)) {
    const auto& data_dir = app.runtime().data_dir;
    url_ = *app.settings().url("INKWELL_" + upper(service_) + "_DATABASE_URL",
                               "sqlite://" + data_dir + "/" + service_ + ".db",
                               {"postgresql", "postgres", "sqlite"});
    options_.pool_size =
        static_cast<std::size_t>(app.settings().integer("INKWELL_DATABASE_POOL_SIZE", 8, 1, 512));
  }

  void start() override {
    database_ = storage::open_database(url_, options_);
    const auto report = storage::apply_migrations(*database_, migrations());
    log::info(
        "database ready",
        {{"service", service_},
         {"dialect", database_->dialect() == storage::Dialect::postgres ? "postgres" : "sqlite"},
         {"migrationsApplied", report.applied.size()}});
    app_.set_database(service_, database_.get());
  }

  void stop() override { database_.reset(); }

 private:
  // No service owns tables yet; each service issue adds its migration set here.
  storage::MigrationSet migrations() const { return storage::MigrationSet{service_, {}, {}}; }

  App& app_;
  std::string service_;
  std::string url_;
  storage::Options options_;
  std::unique_ptr<storage::Database> database_;
};

// A service that so far has only its operational routes (health, metrics, version).
class ServiceModule : public Module {
 public:
  ServiceModule(App& app, const ServiceSpec& spec)
      : app_(app), spec_(spec), host_(app.runtime(), std::string(spec.name), spec.port) {}

  void start() override {
    if (spec_.has_database) host_.set_database(&app_.database(std::string(spec_.name)));
    host_.start();
  }
  void stop() override { host_.stop(); }

 private:
  App& app_;
  const ServiceSpec& spec_;
  services::ServiceHost host_;
};

// The gateway: the public port, aggregating the health of every service behind it.
class GatewayModule : public Module {
 public:
  explicit GatewayModule(App& app) : gateway_(app.runtime(), upstreams(app.settings())) {}
  void start() override { gateway_.start(); }
  void stop() override { gateway_.stop(); }

 private:
  // Each service where this process's configuration puts it (INKWELL_<SVC>_PORT); a service
  // elsewhere, or on port 0, is named by INKWELL_<SVC>_URL instead.
  static std::vector<std::pair<std::string, std::uint16_t>> upstreams(const Settings& settings) {
    std::vector<std::pair<std::string, std::uint16_t>> out;
    for (const auto& spec : kServices) {
      if (spec.name == services::gateway::GatewayService::kName) continue;
      out.emplace_back(spec.name,
                       settings.port("INKWELL_" + upper(spec.name) + "_PORT", spec.port));
    }
    return out;
  }
  services::gateway::GatewayService gateway_;
};

ModuleRegistry build() {
  ModuleRegistry registry;
  registry.add(std::string(kRuntime), {},
               [](App& app) { return std::make_unique<RuntimeModule>(app); });
  std::vector<std::string> all;
  for (const auto& spec : kServices) {
    const std::string name(spec.name);
    std::vector<std::string> dependencies{std::string(kRuntime)};
    if (spec.has_database) {
      registry.add(name + "-database", {std::string(kRuntime)},
                   [name](App& app) { return std::make_unique<DatabaseModule>(app, name); });
      dependencies.push_back(name + "-database");
    }
    if (spec.name == services::gateway::GatewayService::kName) {
      registry.add(name, dependencies,
                   [](App& app) { return std::make_unique<GatewayModule>(app); });
    } else {
      registry.add(name, dependencies,
                   [&spec](App& app) { return std::make_unique<ServiceModule>(app, spec); });
    }
    all.push_back(name);
  }
  registry.add("all", all);
  return registry;
}

}  // namespace

const ModuleRegistry& modules() {
  static const ModuleRegistry registry = build();
  return registry;
}

std::vector<std::string> service_names() {
  std::vector<std::string> out;
  for (const auto& spec : kServices) out.emplace_back(spec.name);
  return out;
}

}  // namespace inkwell::app
