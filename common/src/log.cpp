#include "sluice/common/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <mutex>

namespace sluice::log {
namespace {
std::mutex mu;
spdlog::level::level_enum level = spdlog::level::info;
std::shared_ptr<spdlog::sinks::sink> shared_sink;
}  // namespace

void init(bool quiet) {
  std::lock_guard lk(mu);
  if (const char* env = std::getenv("SLUICE_LOG")) {
    level = spdlog::level::from_str(env);
  } else if (quiet) {
    level = spdlog::level::warn;
  }
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->set_level(level); });
}

std::shared_ptr<spdlog::logger> get(const std::string& module) {
  std::lock_guard lk(mu);
  if (auto existing = spdlog::get(module)) return existing;
  if (!shared_sink) shared_sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(module, shared_sink);
  logger->set_pattern("%^[sluice %n] %l: %v%$");
  logger->set_level(level);
  spdlog::register_logger(logger);
  return logger;
}

}  // namespace sluice::log
