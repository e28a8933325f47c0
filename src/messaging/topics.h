#pragma once

#include <array>
#include <string>
#include <string_view>

namespace inkwell::messaging {

/// Every event type of DESIGN.md section 5; each is also a topic.
inline constexpr std::array<std::string_view, 7> kTopics{
    "user.registered", "user.updated",  "post.created",   "post.liked",
    "comment.created", "user.followed", "post.summarized"};

/// Where messages a consumer gave up on go.
inline std::string dead_letter_topic(std::string_view topic) {
  return std::string(topic) + ".dlq";
}

}  // namespace inkwell::messaging
