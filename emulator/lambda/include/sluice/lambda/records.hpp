// What the Lambda service remembers about each invocation, for tests that ask
// "did the production alias run version 3?" or "was that exactly one cold start?".
// A plain value: no Asio here, so the embeddable engine and the Python module can
// include it cheaply.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace sluice::lambda {

struct InvocationRecord {
  std::string function;
  std::string version;     // the version that ran ("$LATEST", "3"); empty when none ran (throttled)
  std::string qualifier;   // as invoked: "", "$LATEST", "3" or an alias name
  std::string request_id;
  std::string source;      // "invoke-api", "api store/sandbox GET /movies", "cli", "python", "schedule NAME", ...
  std::string invocation_type = "RequestResponse";  // or "Event"
  std::string status;      // "success" | "function_error" | "throttled" | "error"
  std::string error_type;  // "Unhandled", "Runtime.ExitError", "Sandbox.Timedout", "TooManyRequestsException", ...
  bool cold_start = false;
  double duration_ms = 0;
  std::optional<double> init_duration_ms;
  int max_memory_used_mb = 0;
  std::chrono::system_clock::time_point started;
};

}  // namespace sluice::lambda
