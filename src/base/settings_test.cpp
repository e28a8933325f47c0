#include "base/settings.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace inkwell {
namespace {

using Environment = std::map<std::string, std::string, std::less<>>;
using namespace std::chrono_literals;

// Runs `read` and returns the ConfigError it threw.
ConfigError config_error(const std::function<void()>& read) {
  try {
    read();
  } catch (const ConfigError& error) {
    return error;
  }
  ADD_FAILURE() << "expected a ConfigError";
  return ConfigError("none", "none");
}

// what() starts with the variable name, so an operator sees which setting is wrong.
void expect_names(const ConfigError& error, const std::string& variable) {
  EXPECT_EQ(error.variable(), variable);
  EXPECT_EQ(std::string(error.what()).rfind(variable + ": ", 0), 0u) << error.what();
}

Settings with_env(Environment environment) {
  return Settings(std::move(environment), {});
}

TEST(Settings, FlagForMapsVariableNamesToFlags) {
  EXPECT_EQ(Settings::flag_for("INKWELL_AUTH_PORT"), "auth-port");
  EXPECT_EQ(Settings::flag_for("KAFKA_BROKERS"), "kafka-brokers");
  EXPECT_EQ(Settings::flag_for("INKWELL_LOG_LEVEL"), "log-level");
  EXPECT_EQ(Settings::flag_for("DATABASE_URL"), "database-url");
  EXPECT_EQ(Settings::flag_for("PORT"), "port");
}

TEST(Settings, ReadsTheEnvironment) {
  const auto settings = with_env({{"INKWELL_AUTH_PORT", "8081"}, {"INKWELL_LOG_LEVEL", "debug"}});
  EXPECT_EQ(settings.port("INKWELL_AUTH_PORT", 1), 8081);
  EXPECT_EQ(settings.text("INKWELL_LOG_LEVEL", "info"), "debug");
  EXPECT_EQ(settings.text("INKWELL_MISSING", "fallback"), "fallback");
  EXPECT_EQ(settings.optional("INKWELL_MISSING"), std::nullopt);
}

TEST(Settings, FlagsOverrideTheEnvironment) {
  const Settings settings({{"INKWELL_AUTH_PORT", "8081"}, {"KAFKA_BROKERS", "env:9092"}},
                          {"--auth-port=9000", "--kafka-brokers", "flag:9092"});
  EXPECT_EQ(settings.port("INKWELL_AUTH_PORT", 1), 9000);
  EXPECT_EQ(settings.host_ports("KAFKA_BROKERS"), "flag:9092");
}

TEST(Settings, AcceptsBothFlagForms) {
  const Settings settings({}, {"--auth-port=9001", "--log-level", "warn", "--greeting=a=b"});
  EXPECT_EQ(settings.port("INKWELL_AUTH_PORT", 1), 9001);
  EXPECT_EQ(settings.text("INKWELL_LOG_LEVEL", "info"), "warn");
  EXPECT_EQ(settings.text("INKWELL_GREETING", ""), "a=b") << "only the first '=' splits";
  EXPECT_NO_THROW(settings.reject_unknown_flags());
}

TEST(Settings, RejectsMalformedFlags) {
  expect_names(config_error([] { Settings({}, {"auth-port=1"}); }), "auth-port=1");
  expect_names(config_error([] { Settings({}, {"-p"}); }), "-p");
  expect_names(config_error([] { Settings({}, {"--auth-port"}); }), "--auth-port");
  expect_names(config_error([] {
                 Settings({}, {"--auth-port", "--log-level=info"});
               }),
               "--auth-port");
}

TEST(Settings, EmptyEnvironmentValuesCountAsUnset) {
  const auto settings = with_env({{"INKWELL_AUTH_PORT", ""},
                                  {"INKWELL_LOG_LEVEL", ""},
                                  {"DATABASE_URL", ""},
                                  {"KAFKA_BROKERS", ""},
                                  {"INKWELL_DEBUG", ""}});
  EXPECT_EQ(settings.optional("INKWELL_LOG_LEVEL"), std::nullopt);
  EXPECT_EQ(settings.text("INKWELL_LOG_LEVEL", "info"), "info");
  EXPECT_EQ(settings.port("INKWELL_AUTH_PORT", 8081), 8081);
  EXPECT_EQ(settings.url("DATABASE_URL", std::nullopt, {"postgresql"}), std::nullopt);
  EXPECT_EQ(settings.host_ports("KAFKA_BROKERS"), std::nullopt);
  EXPECT_EQ(settings.boolean("INKWELL_DEBUG", true), true);
}

TEST(Settings, Port) {
  const auto settings = with_env({{"A", "0"}, {"B", "65535"}, {"C", "80"}});
  EXPECT_EQ(settings.port("A", 1), 0);
  EXPECT_EQ(settings.port("B", 1), 65535);
  EXPECT_EQ(settings.port("C", 1), 80);
  EXPECT_EQ(settings.port("UNSET", 8080), 8080);

  for (const std::string bad :
       {"65536", "-1", "http", "80x", " 80", "80 ", "8.0", "+80", "0x50", "99999999999999999999"}) {
    SCOPED_TRACE(bad);
    const auto settings_bad = with_env({{"INKWELL_AUTH_PORT", bad}});
    const auto error = config_error([&] { settings_bad.port("INKWELL_AUTH_PORT", 1); });
    expect_names(error, "INKWELL_AUTH_PORT");
    EXPECT_NE(std::string(error.what()).find("'" + bad + "'"), std::string::npos)
        << "shows the bad value: " << error.what();
  }
}

TEST(Settings, Integer) {
  const auto settings = with_env({{"N", "-5"}, {"M", "100"}});
  EXPECT_EQ(settings.integer("N", 0, -10, 10), -5);
  EXPECT_EQ(settings.integer("M", 0, 0, 100), 100);
  EXPECT_EQ(settings.integer("UNSET", 7, 0, 10), 7);

  for (const std::string bad : {"101", "-1", "ten", "1e2", "", "5.0", "9223372036854775808"}) {
    SCOPED_TRACE(bad);
    const Settings settings_bad({}, {"--pool-size=" + bad});
    const auto error = config_error([&] { settings_bad.integer("INKWELL_POOL_SIZE", 4, 0, 100); });
    expect_names(error, "INKWELL_POOL_SIZE");
    EXPECT_NE(std::string(error.what()).find("from 0 to 100"), std::string::npos) << error.what();
  }
}

TEST(Settings, Millis) {
  const auto settings = with_env({{"INKWELL_TIMEOUT_MS", "1500"}});
  EXPECT_EQ(settings.millis("INKWELL_TIMEOUT_MS", 10ms, 1ms), 1500ms);
  EXPECT_EQ(settings.millis("UNSET", 250ms, 1ms), 250ms);

  for (const std::string bad : {"0", "-3", "1s", "abc", "86400001"}) {
    SCOPED_TRACE(bad);
    const auto settings_bad = with_env({{"INKWELL_TIMEOUT_MS", bad}});
    expect_names(config_error([&] { settings_bad.millis("INKWELL_TIMEOUT_MS", 10ms, 1ms); }),
                 "INKWELL_TIMEOUT_MS");
  }
}

TEST(Settings, Boolean) {
  for (const std::string yes : {"true", "1", "yes", "on"}) {
    EXPECT_TRUE(with_env({{"F", yes}}).boolean("F", false)) << yes;
  }
  for (const std::string no : {"false", "0", "no", "off"}) {
    EXPECT_FALSE(with_env({{"F", no}}).boolean("F", true)) << no;
  }
  EXPECT_TRUE(with_env({}).boolean("F", true));

  for (const std::string bad : {"maybe", "2", "ture", " true"}) {
    SCOPED_TRACE(bad);
    const auto settings_bad = with_env({{"INKWELL_DEBUG", bad}});
    expect_names(config_error([&] { settings_bad.boolean("INKWELL_DEBUG", false); }),
                 "INKWELL_DEBUG");
  }
}

TEST(Settings, OneOf) {
  const auto settings = with_env({{"INKWELL_LOG_LEVEL", "warn"}});
  EXPECT_EQ(settings.one_of("INKWELL_LOG_LEVEL", "info", {"debug", "info", "warn"}), "warn");
  EXPECT_EQ(settings.one_of("UNSET", "info", {"debug", "info", "warn"}), "info");

  const auto settings_bad = with_env({{"INKWELL_LOG_LEVEL", "verbose"}});
  const auto error = config_error([&] {
    settings_bad.one_of("INKWELL_LOG_LEVEL", "info", {"debug", "info", "warn"});
  });
  expect_names(error, "INKWELL_LOG_LEVEL");
  EXPECT_NE(std::string(error.what()).find("debug, info, warn"), std::string::npos)
      << "lists the choices: " << error.what();
  EXPECT_NE(std::string(error.what()).find("'verbose'"), std::string::npos) << error.what();
}

TEST(Settings, Url) {
  const auto settings = with_env({{"DATABASE_URL", "postgresql://u:secret@db:5432/inkwell"},
                                  {"SQLITE_URL", "sqlite:///var/lib/inkwell.db"}});
  EXPECT_EQ(settings.url("DATABASE_URL", std::nullopt, {"postgresql", "sqlite"}),
            "postgresql://u:secret@db:5432/inkwell");
  EXPECT_EQ(settings.url("SQLITE_URL", std::nullopt, {"postgresql", "sqlite"}),
            "sqlite:///var/lib/inkwell.db");
  EXPECT_EQ(settings.url("UNSET", std::string("redis://cache:6379"), {"redis"}),
            "redis://cache:6379");
  EXPECT_EQ(settings.url("UNSET", std::nullopt, {"redis"}), std::nullopt);
}

TEST(Settings, UrlErrorsNeverEchoThePassword) {
  for (const std::string bad : {
           "mysql://u:secret@h/db",             // wrong scheme
           "postgresql://u:secret@/db",         // no host
           "u:secret@h/db",                     // not absolute
           "postgresql://u:secret@h:port/db",   // non-numeric port
           "postgresql://u:secret@h:99999/db",  // port out of range
           "postgresql://u:secret@h:0/db",      // port zero
           "postgresql://u:secret@h/db name",   // space
           "postgresql//u:secret@h/db",         // missing colon
       }) {
    SCOPED_TRACE(bad);
    const auto settings = with_env({{"DATABASE_URL", bad}});
    const auto error = config_error([&] {
      settings.url("DATABASE_URL", std::nullopt, {"postgresql", "sqlite"});
    });
    expect_names(error, "DATABASE_URL");
    EXPECT_EQ(std::string(error.what()).find("secret"), std::string::npos)
        << "leaks the password: " << error.what();
  }
}

TEST(Settings, UrlNamesTheAllowedSchemes) {
  const auto settings = with_env({{"DATABASE_URL", "mysql://u:secret@h/db"}});
  const auto error = config_error([&] {
    settings.url("DATABASE_URL", std::nullopt, {"postgresql", "sqlite"});
  });
  EXPECT_NE(std::string(error.what()).find("postgresql://"), std::string::npos) << error.what();
  EXPECT_NE(std::string(error.what()).find("sqlite://"), std::string::npos) << error.what();
}

TEST(Settings, HostPorts) {
  const auto settings =
      with_env({{"KAFKA_BROKERS", "kafka-1:9092,kafka-2:9093,10.0.0.5:19092,[::1]:9092"}});
  EXPECT_EQ(settings.host_ports("KAFKA_BROKERS"),
            "kafka-1:9092,kafka-2:9093,10.0.0.5:19092,[::1]:9092");
  EXPECT_EQ(with_env({}).host_ports("KAFKA_BROKERS"), std::nullopt);

  for (const std::string bad : {"kafka", "kafka:", ":9092", "kafka:0", "kafka:65536", "kafka:abc",
                                "kafka:9092,", ",kafka:9092", "a:1,,b:2"}) {
    SCOPED_TRACE(bad);
    const auto settings_bad = with_env({{"KAFKA_BROKERS", bad}});
    expect_names(config_error([&] { settings_bad.host_ports("KAFKA_BROKERS"); }), "KAFKA_BROKERS");
  }
}

TEST(Settings, RejectUnknownFlagsNamesTheFlag) {
  const Settings settings({}, {"--auth-port=9000", "--atuh-host=0.0.0.0"});
  settings.port("INKWELL_AUTH_PORT", 1);
  settings.text("INKWELL_AUTH_HOST", "127.0.0.1");
  const auto error = config_error([&] { settings.reject_unknown_flags(); });
  expect_names(error, "--atuh-host");
  EXPECT_NE(std::string(error.what()).find("unknown flag"), std::string::npos) << error.what();
}

TEST(Settings, RejectUnknownFlagsAcceptsFlagsThatWereRead) {
  const Settings settings({}, {"--auth-port=9000", "--kafka-brokers", "k:9092"});
  settings.port("INKWELL_AUTH_PORT", 1);
  settings.host_ports("KAFKA_BROKERS");
  EXPECT_NO_THROW(settings.reject_unknown_flags());
}

TEST(Settings, EnvironmentVariablesAreNotFlags) {
  // An environment variable nobody reads is not an error; only flags are checked.
  const auto settings = with_env({{"INKWELL_UNUSED", "x"}, {"PATH", "/bin"}});
  EXPECT_NO_THROW(settings.reject_unknown_flags());
}

TEST(Settings, ProcessEnvironmentReadsRealVariables) {
  ASSERT_EQ(setenv("INKWELL_SETTINGS_TEST_VALUE", "a=b=c", 1), 0);
  const auto environment = Settings::process_environment();
  unsetenv("INKWELL_SETTINGS_TEST_VALUE");
  const auto found = environment.find("INKWELL_SETTINGS_TEST_VALUE");
  ASSERT_NE(found, environment.end());
  EXPECT_EQ(found->second, "a=b=c");
}

}  // namespace
}  // namespace inkwell
