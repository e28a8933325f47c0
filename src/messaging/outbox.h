#pragma once

#include "messaging/event.h"
#include "storage/database.h"
#include "storage/migrations.h"

#include <string_view>
#include <vector>

namespace inkwell::messaging {

/// The tables messaging needs in a service's own database (outbox, inbox, dead_letters), for
/// both dialects. Applied beside the service's migrations under the name "<service>.messaging".
storage::MigrationSet messaging_migrations(std::string_view service);

/// Adds `event` to the outbox inside the caller's transaction (topic = type, key = subject): it
/// is published only if that transaction commits.
void enqueue(storage::Executor& tx, const Event& event);

/// Records in the inbox, inside the consumer's transaction, that `group` handled `event_id`.
/// Returns false when it already had: the caller then skips the effect.
bool claim(storage::Executor& tx, std::string_view group, std::string_view event_id);

/// claim() for a batch in as few statements as possible: element i tells whether event_ids[i]
/// was recorded by this call. False for an id handled before, and for a repeat of an id earlier
/// in the list (a batch holding one event twice applies it once).
std::vector<bool> claim_all(storage::Executor& tx, std::string_view group,
                            const std::vector<std::string_view>& event_ids);

}  // namespace inkwell::messaging
