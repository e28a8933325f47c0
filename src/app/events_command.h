#pragma once

#include <string>
#include <vector>

namespace inkwell::app {

/// `inkwell events dlq list|replay --topic T [--group G] [settings...]`: the operator's view of
/// dead letters. Returns the process exit code.
int run_events_command(const std::vector<std::string>& args);

}  // namespace inkwell::app
