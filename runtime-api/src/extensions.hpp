// The parts of Lambda's Extensions API and Telemetry API that are pure data: which files
// are extensions, the environment they get, subscription requests as Lambda validates them,
// and records as each subscriber receives them. The lifecycle lives in environment.cpp.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::runtime::ext {

// /opt/extensions/*: the external extensions of a merged layer directory, by name.
std::vector<std::filesystem::path> extension_files(const std::filesystem::path& opt_dir);

// An extension's environment: the runtime's without the runtime's own variables (handler,
// task root, log group and stream, X-Ray, sluice's interpreter search paths) and without
// anything starting with "_". As "KEY=VALUE".
std::vector<std::string> extension_environment(std::map<std::string, std::string> runtime_env);

// Go's wording of an exec failure, as Lambda reports Extension.LaunchError:
// "fork/exec /opt/extensions/x: permission denied".
std::string exec_error(const std::filesystem::path& path, int err);

bool looks_like_uuid(std::string_view s);

// The line Lambda logs for an extension when init ends (Text log format).
std::string extension_line(const std::string& name, const std::string& state, const std::vector<std::string>& events,
                           const std::string& error_type);
// ... and for a Telemetry API (or Logs API) subscription.
std::string subscription_line(bool telemetry, const std::string& name, const std::vector<std::string>& types);

// A PUT /2022-07-01/telemetry (telemetry) or PUT /2020-08-15/logs body, validated.
struct SubscriptionRequest {
  bool logs_api = false;
  std::string schema;
  std::vector<std::string> types;  // as given: platform, function, extension
  bool platform = false, function = false, extension = false;
  std::size_t max_items = 10000, max_bytes = 262144;
  std::chrono::milliseconds timeout{1000};
  unsigned short port = 0;  // of http://sandbox.localdomain:PORT/path
  std::string path = "/";
};
// nullopt with every problem in `problems` ("; "-separated) when the body is invalid.
std::optional<SubscriptionRequest> parse_subscription(bool telemetry, const std::string& body, std::string& problems);

// One event or log line, before it is shaped for a subscriber.
struct TeleItem {
  std::string time;  // ISO 8601 with milliseconds
  std::string type;  // platform.*, "function", "extension"
  nlohmann::ordered_json record;  // platform events
  std::string line;  // function / extension output
};
// {"time","type","record"} as this subscriber receives it, or "" when it does not get it
// (a type it did not ask for, an event its API does not have). json_logs: the function's
// log format is JSON (its JSON lines are then objects for schema 2022-12-13 and later).
std::string render_record(const SubscriptionRequest& s, const TeleItem& it, bool json_logs);

}  // namespace sluice::runtime::ext
