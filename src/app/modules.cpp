// The registry: every module of the binary, declared once, with its dependencies. `all` is a
// group that depends on every service; each service can also run alone.
#include "app/app.h"
#include "base/log.h"
#include "messaging/embedded/embedded_bus.h"
#include "messaging/kafka/kafka_bus.h"
#include "messaging/outbox.h"
#include "messaging/relay.h"
#include "services/auth/auth_service.h"
#include "services/common/service_host.h"
#include "services/gateway/gateway_service.h"
#include "storage/database.h"
#include "storage/migrations.h"

#include "inkwell_migrations_auth.h"

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

namespace inkwell::app {
namespace {

constexpr std::string_view kRuntime = "runtime";
constexpr std::string_view kBus = "bus";

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
    url_ = database_url(app.settings(), service_);
    options_.pool_size =
        static_cast<std::size_t>(app.settings().integer("INKWELL_DATABASE_POOL_SIZE", 8, 1, 512));
  }

  void start() override {
    database_ = storage::open_database(url_, options_);
    auto report = storage::apply_migrations(*database_, migrations());
    const auto messaging = storage::apply_migrations(
        *database_, messaging::messaging_migrations(service_));  // outbox, inbox, dead letters
    report.applied.insert(report.applied.end(), messaging.applied.begin(), messaging.applied.end());
    log::info(
        "database ready",
        {{"service", service_},
         {"dialect", database_->dialect() == storage::Dialect::postgres ? "postgres" : "sqlite"},
         {"migrationsApplied", report.applied.size()}});
    app_.set_database(service_, database_.get());
  }

  void stop() override { database_.reset(); }

 private:
  // Each service's own tables; a service without migrations yet gets an empty set.
  storage::MigrationSet migrations() const {
    if (service_ == services::auth::AuthService::kName) return inkwell_migrations_auth();
    return storage::MigrationSet{service_, {}, {}};
  }

  App& app_;
  std::string service_;
  std::string url_;
  storage::Options options_;
  std::unique_ptr<storage::Database> database_;
};

// The event bus: Kafka when KAFKA_BROKERS is set, otherwise the in-process bus (which carries
// events only between services of this process).
class BusModule : public Module {
 public:
  explicit BusModule(App& app) : metrics_(app.runtime().metrics) {
    const auto& settings = app.settings();
    const auto& runtime = app.runtime();
    const int attempts =
        static_cast<int>(settings.integer("INKWELL_EVENT_MAX_ATTEMPTS", 5, 1, 100));
    if (runtime.kafka_brokers) {
      messaging::kafka::KafkaOptions options;
      options.brokers = *runtime.kafka_brokers;
      options.partitions =
          static_cast<int>(settings.integer("INKWELL_KAFKA_PARTITIONS", 3, 1, 1000));
      options.replication_factor =
          static_cast<int>(settings.integer("INKWELL_KAFKA_REPLICATION", 1, 1, 16));
      options.max_attempts = attempts;
      options.admin_timeout = std::chrono::seconds(5);  // bounds a shutdown during a retry
      auto kafka = std::make_unique<messaging::kafka::KafkaBus>(options);
      metrics_id_ =
          metrics_.add([bus = kafka.get()](metrics::Exposition& out) { bus->collect(out); });
      bus_ = std::move(kafka);
      kafka_ = true;
    } else {
      messaging::EmbeddedBusOptions options;
      options.max_attempts = attempts;
      bus_ = std::make_unique<messaging::EmbeddedBus>(options);
      metrics_id_ = metrics_.add([bus = bus_.get()](metrics::Exposition& out) {
        for (const auto& [group, stats] : bus->stats()) {
          out.counter("events_consumed_total", "Events handled by a consumer group.",
                      {{"group", group}}, static_cast<double>(stats.consumed));
          out.counter("events_failed_total", "Handler attempts that failed.", {{"group", group}},
                      static_cast<double>(stats.failed));
          out.counter("events_dead_lettered_total", "Events given up on.", {{"group", group}},
                      static_cast<double>(stats.dead_lettered));
        }
      });
    }
    app.set_bus(bus_.get());
  }

  // Kafka being away must not stop or delay a service: writes go to the outbox and the relays
  // catch up (DESIGN.md section 5). So Kafka's start (topic provisioning, consumers) runs in the
  // background and is retried until it succeeds.
  void start() override {
    if (!kafka_) {
      bus_->start();
      return;
    }
    retry_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      while (!stopping_) {
        lock.unlock();
        const bool ok = try_start();
        lock.lock();
        if (ok || wake_.wait_for(lock, std::chrono::seconds(5), [this] { return stopping_; })) {
          break;
        }
      }
    });
  }

  void stop() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (retry_.joinable()) retry_.join();
    bus_->stop();
    metrics_.remove(metrics_id_);
  }

 private:
  bool try_start() {
    try {
      bus_->start();
      return true;
    } catch (const std::exception& error) {
      log::warn("event bus unavailable; retrying in the background", {{"error", error.what()}});
      return false;
    }
  }

  metrics::Registry& metrics_;
  std::uint64_t metrics_id_ = 0;
  std::unique_ptr<messaging::EventBus> bus_;
  bool kafka_ = false;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread retry_;
};

// A service: its operational routes (health, metrics, version), its domain routes where the
// service is built (auth so far), and, when it owns a database, the relay that publishes its
// outbox.
class ServiceModule : public Module {
 public:
  ServiceModule(App& app, const ServiceSpec& spec)
      : app_(app), spec_(spec), host_(app.runtime(), std::string(spec.name), spec.port) {
    host_.set_bus_health([&bus = app.bus()] { return bus.health(); });
    if (spec.name == services::auth::AuthService::kName) {
      auth_ = std::make_unique<services::auth::AuthService>(host_);
    }
  }

  void start() override {
    if (spec_.has_database) {
      auto& database = app_.database(std::string(spec_.name));
      host_.set_database(&database);
      relay_ = std::make_unique<messaging::OutboxRelay>(std::string(spec_.name), database,
                                                        app_.bus().publisher());
      metrics_id_ = app_.runtime().metrics.add([this](metrics::Exposition& out) {
        const std::string_view service = spec_.name;
        out.counter("outbox_published_total", "Outbox rows published and marked sent.",
                    {{"service", service}}, static_cast<double>(relay_->published()));
        out.counter("outbox_publish_failures_total", "Outbox batches the broker did not take.",
                    {{"service", service}}, static_cast<double>(relay_->failures()));
        if (auth_) auth_->collect(out);
      });
    }
    if (auth_) auth_->start(app_.database(std::string(spec_.name)), [this] { relay_->wake(); });
    host_.start();
  }
  // Relays start once every service has subscribed, so in-process subscribers miss nothing.
  void started() override {
    if (relay_) relay_->start();
  }
  void stop() override {
    host_.stop();
    if (relay_) relay_->stop();
    if (metrics_id_ != 0) app_.runtime().metrics.remove(metrics_id_);
  }

 private:
  App& app_;
  const ServiceSpec& spec_;
  services::ServiceHost host_;
  std::unique_ptr<services::auth::AuthService> auth_;
  std::unique_ptr<messaging::OutboxRelay> relay_;
  std::uint64_t metrics_id_ = 0;
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
  registry.add(std::string(kBus), {std::string(kRuntime)},
               [](App& app) { return std::make_unique<BusModule>(app); });
  std::vector<std::string> all;
  for (const auto& spec : kServices) {
    const std::string name(spec.name);
    std::vector<std::string> dependencies{std::string(kRuntime), std::string(kBus)};
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

std::vector<std::string> database_services() {
  std::vector<std::string> out;
  for (const auto& spec : kServices) {
    if (spec.has_database) out.emplace_back(spec.name);
  }
  return out;
}

std::string database_url(const Settings& settings, const std::string& service) {
  const auto data_dir =
      std::filesystem::absolute(settings.text("INKWELL_DATA_DIR", "data")).string();
  return *settings.url("INKWELL_" + upper(service) + "_DATABASE_URL",
                       "sqlite://" + data_dir + "/" + service + ".db",
                       {"postgresql", "postgres", "sqlite"});
}

std::vector<std::string> service_names() {
  std::vector<std::string> out;
  for (const auto& spec : kServices) out.emplace_back(spec.name);
  return out;
}

}  // namespace inkwell::app
