// Diagnostic logging (spdlog, one named logger per module). The Lambda log
// lines a user reads (START/END/REPORT, handler output) are program output and
// go through sluice::lambda's log sinks instead.
#pragma once
#include <spdlog/logger.h>

#include <memory>
#include <string>

namespace sluice::log {

// Level from SLUICE_LOG (trace|debug|info|warn|error|off), default info.
void init(bool quiet = false);
std::shared_ptr<spdlog::logger> get(const std::string& module);

}  // namespace sluice::log
