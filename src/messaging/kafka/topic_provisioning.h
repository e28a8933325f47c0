#pragma once

#include "messaging/kafka/kafka_options.h"

#include <string>
#include <vector>

namespace inkwell::messaging::kafka {

/// Creates every topic of `topics` and its `<topic>.dlq` that the cluster does not have yet,
/// with options.partitions and options.replication_factor, through the admin API; topics that
/// exist are left as they are (whatever their partition count). Returns the topics it created,
/// once the cluster's metadata lists them. Throws std::runtime_error when the brokers cannot be
/// reached or refuse, within options.admin_timeout.
std::vector<std::string> provision_topics(const KafkaOptions& options,
                                          const std::vector<std::string>& topics);

}  // namespace inkwell::messaging::kafka
