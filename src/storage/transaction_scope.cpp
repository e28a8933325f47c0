#include "storage/transaction_scope.h"

#include <algorithm>
#include <string>
#include <vector>

namespace inkwell::storage {
namespace {

// The databases whose transaction bodies are running on this thread, innermost last.
thread_local std::vector<const Database*> active_bodies;

}  // namespace

TransactionScope::TransactionScope(const Database& db) {
  active_bodies.push_back(&db);
}

// Scopes nest strictly on one thread, so the innermost is always the last.
TransactionScope::~TransactionScope() {
  active_bodies.pop_back();
}

void TransactionScope::check_outside(const Database& db, std::string_view operation) {
  if (std::find(active_bodies.begin(), active_bodies.end(), &db) != active_bodies.end()) {
    throw DatabaseError(DatabaseError::Kind::other,
                        "Database::" + std::string(operation) +
                            " called inside a transaction body of the same database; use the "
                            "Executor passed to the body (nested transactions are not supported)");
  }
}

}  // namespace inkwell::storage
