#include "messaging/outbox.h"

#include <algorithm>
#include <string>
#include <unordered_set>

namespace inkwell::messaging {
namespace {

// The partial indexes keep the relay's "next pending rows in order" read and the pruning scan
// proportional to what they return, however many sent rows the table still holds.
constexpr std::string_view kPostgres = R"(
CREATE TABLE outbox (
  seq bigserial PRIMARY KEY,
  id text NOT NULL UNIQUE,
  topic text NOT NULL,
  key text NOT NULL,
  payload text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE TABLE inbox (
  consumer_group text NOT NULL,
  event_id text NOT NULL,
  handled_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, event_id)
);
CREATE TABLE dead_letters (
  id bigserial PRIMARY KEY,
  consumer_group text NOT NULL,
  topic text NOT NULL,
  event_id text,
  payload text NOT NULL,
  error text NOT NULL,
  attempts integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  replayed_at timestamptz
);
CREATE INDEX dead_letters_open ON dead_letters (consumer_group, topic, id)
  WHERE replayed_at IS NULL;
)";

// Times are stored as RFC 3339 text with milliseconds, so they compare as strings.
constexpr std::string_view kSqlite = R"(
CREATE TABLE outbox (
  seq integer PRIMARY KEY AUTOINCREMENT,
  id text NOT NULL UNIQUE,
  topic text NOT NULL,
  key text NOT NULL,
  payload text NOT NULL,
  created_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  sent_at text
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE TABLE inbox (
  consumer_group text NOT NULL,
  event_id text NOT NULL,
  handled_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY (consumer_group, event_id)
);
CREATE TABLE dead_letters (
  id integer PRIMARY KEY AUTOINCREMENT,
  consumer_group text NOT NULL,
  topic text NOT NULL,
  event_id text,
  payload text NOT NULL,
  error text NOT NULL,
  attempts integer NOT NULL,
  created_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  replayed_at text
);
CREATE INDEX dead_letters_open ON dead_letters (consumer_group, topic, id)
  WHERE replayed_at IS NULL;
)";

// `inkwell events dlq replay` on the embedded bus asks the running server to replay dead
// letters by stamping them; the bus replays what is stamped (EmbeddedBus, request_replay()).
constexpr std::string_view kPostgresReplayRequests =
    "ALTER TABLE dead_letters ADD COLUMN replay_requested_at timestamptz;";
constexpr std::string_view kSqliteReplayRequests =
    "ALTER TABLE dead_letters ADD COLUMN replay_requested_at text;";

// Ids per INSERT in claim_all(): far below both dialects' limits on bound parameters.
constexpr std::size_t kClaimsPerStatement = 1'000;

}  // namespace

storage::MigrationSet messaging_migrations(std::string_view service) {
  return {std::string(service) + ".messaging",
          {{1, "create_messaging_tables", std::string(kPostgres)},
           {2, "dead_letter_replay_requests", std::string(kPostgresReplayRequests)}},
          {{1, "create_messaging_tables", std::string(kSqlite)},
           {2, "dead_letter_replay_requests", std::string(kSqliteReplayRequests)}}};
}

void enqueue(storage::Executor& tx, const Event& event) {
  tx.execute("INSERT INTO outbox (id, topic, key, payload) VALUES ($1, $2, $3, $4)",
             {event.id, event.type, event.subject, encode(event)});
}

bool claim(storage::Executor& tx, std::string_view group, std::string_view event_id) {
  return tx.execute(
               "INSERT INTO inbox (consumer_group, event_id) VALUES ($1, $2) "
               "ON CONFLICT DO NOTHING",
               {group, event_id})
             .affected_rows == 1;
}

std::vector<bool> claim_all(storage::Executor& tx, std::string_view group,
                            const std::vector<std::string_view>& event_ids) {
  std::unordered_set<std::string> recorded;
  for (std::size_t start = 0; start < event_ids.size(); start += kClaimsPerStatement) {
    const std::size_t end = std::min(event_ids.size(), start + kClaimsPerStatement);
    std::string sql = "INSERT INTO inbox (consumer_group, event_id) VALUES ";
    storage::Params params{group};
    for (std::size_t i = start; i < end; ++i) {
      sql += (i > start ? ", ($1, $" : "($1, $") + std::to_string(params.size() + 1) + ")";
      params.emplace_back(std::string(event_ids[i]));
    }
    // A repeated id within one statement is inserted once and returned once.
    const storage::Result rows =
        tx.execute(sql + " ON CONFLICT DO NOTHING RETURNING event_id", params);
    for (const storage::Row& row : rows.rows) recorded.insert(row.get<std::string>(0));
  }
  std::vector<bool> claimed;
  claimed.reserve(event_ids.size());
  for (const std::string_view id : event_ids) {
    // The first occurrence of a recorded id takes it; a repeat finds it gone.
    claimed.push_back(recorded.erase(std::string(id)) == 1);
  }
  return claimed;
}

}  // namespace inkwell::messaging
