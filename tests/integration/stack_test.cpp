// The local stack is what the other integration tests stand on: Kafka answers metadata requests
// and has every topic of DESIGN.md section 5 with three partitions, and Redis answers commands.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafkacpp.h>
#include <boost/url/parse.hpp>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>

namespace {

std::string required_env(const char* name) {
  const char* value = std::getenv(name);
  if (value != nullptr && *value != '\0') return value;
  const char* require = std::getenv("INKWELL_TEST_REQUIRE_STACK");
  if (require != nullptr && std::string(require) == "1") {
    ADD_FAILURE() << name << " is not set but INKWELL_TEST_REQUIRE_STACK=1 (run deploy/stack up)";
  }
  return {};
}

TEST(Stack, KafkaHasEveryTopicWithThreePartitionsAndItsDeadLetterTopic) {
  const auto brokers = required_env("KAFKA_BROKERS");
  if (brokers.empty()) GTEST_SKIP() << "KAFKA_BROKERS not set";
  std::string error;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  ASSERT_EQ(conf->set("bootstrap.servers", brokers, error), RdKafka::Conf::CONF_OK) << error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  ASSERT_TRUE(producer) << error;
  RdKafka::Metadata* raw = nullptr;
  ASSERT_EQ(producer->metadata(true, nullptr, &raw, 10'000), RdKafka::ERR_NO_ERROR);
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  std::map<std::string, std::size_t> partitions;
  for (const auto* topic : *metadata->topics())
    partitions[topic->topic()] = topic->partitions()->size();
  for (const std::string topic : {"user.registered", "user.updated", "post.created", "post.liked",
                                  "comment.created", "user.followed", "post.summarized"}) {
    EXPECT_EQ(partitions[topic], 3U) << topic;
    EXPECT_GE(partitions[topic + ".dlq"], 1U) << topic << ".dlq";
  }
}

TEST(Stack, RedisAnswersCommands) {
  const auto url_text = required_env("REDIS_URL");
  if (url_text.empty()) GTEST_SKIP() << "REDIS_URL not set";
  auto url = boost::urls::parse_absolute_uri(url_text);
  ASSERT_TRUE(url) << url_text;
  const int port = url->has_port() ? std::stoi(std::string(url->port())) : 6379;
  std::unique_ptr<redisContext, decltype(&redisFree)> redis(
      redisConnect(std::string(url->host()).c_str(), port), &redisFree);
  ASSERT_TRUE(redis && redis->err == 0) << (redis ? redis->errstr : "no context");
  auto command = [&](const char* format, auto... args) {
    return std::unique_ptr<redisReply, decltype(&freeReplyObject)>(
        static_cast<redisReply*>(redisCommand(redis.get(), format, args...)), &freeReplyObject);
  };
  auto pong = command("PING");
  ASSERT_TRUE(pong);
  EXPECT_EQ(std::string(pong->str, pong->len), "PONG");
  command("SET %s %s PX %d", "inkwell:stack-test", "value", 5000);
  auto value = command("GET %s", "inkwell:stack-test");
  ASSERT_TRUE(value && value->type == REDIS_REPLY_STRING);
  EXPECT_EQ(std::string(value->str, value->len), "value");
}

}  // namespace
