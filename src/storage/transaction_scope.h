#pragma once

#include <string_view>

#include "storage/database.h"

namespace inkwell::storage {

// Marks this thread as running a transaction body of one database, so calling that database
// again from the body fails loudly instead of deadlocking on its own pool or write lock.
class TransactionScope {
 public:
  explicit TransactionScope(const Database& db);
  ~TransactionScope();
  TransactionScope(const TransactionScope&) = delete;
  TransactionScope& operator=(const TransactionScope&) = delete;

  // Throws DatabaseError (other) when this thread is inside a transaction body of db.
  static void check_outside(const Database& db, std::string_view operation);
};

}  // namespace inkwell::storage
