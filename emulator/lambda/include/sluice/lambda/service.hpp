// The Lambda service: functions, published versions and aliases, pools of
// execution environments per version, concurrency limits, synchronous,
// asynchronous (Event) and DryRun invocations. Runs on one io thread.
#pragma once

#include "sluice/lambda/local_config.hpp"
#include "sluice/lambda/destinations.hpp"
#include "sluice/lambda/records.hpp"
#include "sluice/lambda/versions.hpp"
#include "sluice/runtime/types.hpp"
#include "sluice/stack/model.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <filesystem>
#include <map>
#include <string_view>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::lambda {

enum class InvocationType { request_response, event, dry_run };

struct InvokeRequest {
  std::string function;   // name, name:qualifier, ARN or partial ARN
  std::string qualifier;  // the separate Qualifier parameter; may be empty
  std::string payload;
  InvocationType type = InvocationType::request_response;
  bool tail = false;                // X-Amz-Log-Type: Tail
  std::string client_context_b64;   // X-Amz-Client-Context (base64 JSON)
  std::string trace_header;         // X-Amzn-Trace-Id from the caller
  std::string cognito_identity;     // JSON, from callers that have one
  std::string tenant_id;
  bool payload_must_be_json = true;  // the Invoke API requires JSON
  std::string request_id;            // normally empty: a new id is made
  std::string source = "invoke";     // who is calling, for logs
};

struct ServiceError {
  unsigned status = 500;
  std::string code;     // ResourceNotFoundException, TooManyRequestsException, ...
  std::string message;
  std::string reason;   // TooManyRequestsException only
  std::string type = "User";
};

struct InvokeResponse {
  std::optional<ServiceError> error;
  unsigned status = 200;  // 200 | 202 | 204
  std::string request_id;
  std::string function_name;
  std::string executed_version;
  bool function_error = false;  // X-Amz-Function-Error: Unhandled
  std::string error_type;       // e.g. Runtime.ExitError, for access logs
  std::string payload;
  std::string content_type = "application/json";
  std::string log_result;  // base64 of the last 4 KB of the log, when tail was asked for
  std::string trace_id;
  bool cold_start = false;
  double duration_ms = 0;
  std::shared_ptr<runtime::ResponseStream> stream;  // the function streamed its response
};

struct ServiceOptions {
  std::filesystem::path state_dir;      // .sluice next to the stack file
  std::filesystem::path bootstrap_dir;  // sluice's bootstraps
  bool freeze = true;
  bool sandbox = true;  // Lambda's paths (/var/task, /opt, /var/runtime) where the machine allows it
  std::chrono::microseconds freeze_delay{2000};  // how long an idle environment runs on before it is frozen
  bool watch_code = true;
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
  std::chrono::milliseconds init_timeout{10'000};
  std::chrono::milliseconds handoff_window{100};  // wait for a finishing environment before a cold start
  int account_concurrency = 1000;
  std::vector<std::chrono::milliseconds> async_retry_delays{std::chrono::seconds(60), std::chrono::seconds(120)};
  std::map<std::string, std::filesystem::path> interpreters;  // "python3.12" -> path, "nodejs20.x" -> path
  std::string log_format;  // AWS_LAMBDA_LOG_FORMAT for managed runtimes ("" = Text)
  EnvOverrides env_overrides;  // --env-vars
  DebugOptions debug;          // --debug-port, --debug-function, --debug-args
};

struct FunctionStats {
  int environments = 0;
  int busy = 0;
  int cold_starts = 0;
  int invocations = 0;
};

// Delivers every chunk of a streamed response to on_chunk, in order, and returns once the
// stream has ended (its error trailers, if any, are set by then).
// Takes a function's response stream chunk by chunk as a consumer writes them out, with
// back-pressure: the producer pauses while 8 chunks wait and goes on below 4. One reader per
// stream; it lets go of the stream when it is destroyed.
class StreamReader {
 public:
  StreamReader(boost::asio::any_io_executor ex, std::shared_ptr<runtime::ResponseStream> stream);
  ~StreamReader();
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;
  // The next chunk, or nullopt once the stream has ended (its error trailers are set by then).
  boost::asio::awaitable<std::optional<std::string>> next();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

boost::asio::awaitable<void> read_stream(runtime::ResponseStream& stream,
                                         const std::function<void(std::string_view)>& on_chunk);

class LambdaService {
 public:
  LambdaService(boost::asio::any_io_executor ex, stack::Stack stack, ServiceOptions options,
                std::shared_ptr<runtime::LogSink> logs);
  ~LambdaService();
  LambdaService(const LambdaService&) = delete;
  LambdaService& operator=(const LambdaService&) = delete;

  boost::asio::awaitable<InvokeResponse> invoke(InvokeRequest req);

  // Publishes $LATEST of a function (PublishVersion). Throws std::runtime_error with a clear message.
  VersionStore::Published publish(const std::string& function, const std::string& description = "");

  // Applies a new validated stack: functions whose definition changed get fresh environments.
  void reload(stack::Stack stack);
  // Without the code watcher: every function's code (and layers) may have changed, so the
  // environments of $LATEST are retired and the next call starts from the code as it is now.
  void refresh_code(const std::string& why);
  const stack::Stack& stack() const;
  VersionStore& versions();
  // The runtime version ARN a function's environments report ("" for an unknown function).
  std::string runtime_version_arn(const std::string& function) const;

  // Stop accepting work, wait for in-flight invocations (up to the deadline),
  // then stop every environment (SIGTERM, then SIGKILL).
  boost::asio::awaitable<void> shutdown(std::chrono::milliseconds deadline);
  // Immediate stop of every environment.
  void stop_all();

  FunctionStats stats(const std::string& function) const;
  std::size_t in_flight() const;
  std::size_t queued_events() const;

  // The most recent invocations (oldest first; at most max_records are kept).
  std::vector<InvocationRecord> records() const;
  void clear_records();
  // Invocations that have answered but whose REPORT (and so their record) is still to come.
  std::size_t records_pending() const;
  static constexpr std::size_t max_records = 10'000;
  // Records of asynchronous invocations handed to destinations (oldest first, at most
  // max_records), and how many are still on their way.
  std::vector<DestinationDelivery> destinations() const;
  std::size_t destinations_pending() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Interpreter for a managed runtime: explicit override, then `python3.12` /
// `node` on PATH, then `python3`. Empty path when none is found.
struct Interpreter {
  std::filesystem::path path;
  std::string version;  // "3.11.7", "20.20.2"
  std::string note;     // e.g. "python3.12 not found; using python3 (3.11.7)"
};
Interpreter find_interpreter(const stack::RuntimeId& runtime,
                             const std::map<std::string, std::filesystem::path>& overrides);

}  // namespace sluice::lambda
