#pragma once
#include "sluice/runtime/types.hpp"

#include <map>
#include <string>

namespace sluice::runtime {

struct EnvContext {
  std::string runtime_api;      // 127.0.0.1:PORT
  std::string log_stream_name;  // YYYY/MM/DD/[$LATEST]<hex>
  std::filesystem::path runtime_dir;
  int telemetry_log_fd = -1;  // the descriptor a managed runtime writes framed log records to
};

// The process environment AWS gives a runtime (reference §2.1), with local
// paths standing in for /var/task, /var/runtime and /opt.
std::map<std::string, std::string> build_environment(const EnvironmentSpec& spec, const EnvContext& ctx);

}  // namespace sluice::runtime
