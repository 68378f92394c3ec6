// Values exchanged between an execution environment and the Lambda service.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::runtime {

enum class RuntimeKind { python, node, provided };

// Everything needed to start one execution environment of one function version.
struct EnvironmentSpec {
  std::string function_name;
  std::string version = "$LATEST";  // "$LATEST" or "3"
  RuntimeKind kind = RuntimeKind::python;
  std::string runtime_id;  // "python3.12", "nodejs20.x", "provided.al2023"
  std::string handler;
  std::filesystem::path code_dir;  // task root
  std::filesystem::path opt_dir;   // merged layers standing in for /opt; empty when none
  std::vector<std::filesystem::path> layers;  // the layers opt_dir merges, in order (more than one)
  int memory_mb = 128;
  int timeout_s = 3;
  std::map<std::string, std::string> user_env;
  std::string region = "us-east-1";
  std::string account_id = "123456789012";
  std::filesystem::path interpreter;    // python3 / node; empty for provided
  std::vector<std::string> interpreter_args;  // flags before the bootstrap (node: AWS's own)
  std::filesystem::path bootstrap_dir;  // sluice's bootstraps root (…/bootstraps)
  std::string log_format;               // "" | "Text" | "JSON"
  std::string log_level;                // AWS_LAMBDA_LOG_LEVEL, optional
  std::string system_log_level;         // JSON logs: "DEBUG" | "INFO" (default) | "WARN"
  bool freeze = true;
  // Started for a debugger: no init or invocation timeout (a breakpoint may hold it for
  // minutes), and debug_args go after interpreter_args (python, node) or before the bootstrap
  // (provided: a command that runs it, such as a debugger's launcher).
  bool debugging = false;
  std::vector<std::string> debug_args;
  // Run the processes in Lambda's file system layout (/var/task, /var/runtime, /opt; see
  // proc::Sandbox) instead of the host's paths.
  bool sandbox = false;
  // In the sandbox: a /tmp of the environment's own, this many MB (the function's ephemeral
  // storage), shared by its runtime and extensions; 0 = the host's /tmp.
  int tmp_mb = 0;
  // The stack's directory: when it is under /tmp, the private /tmp keeps showing it (with the
  // code, layers, runtime and interpreter when they are there).
  std::filesystem::path project_dir;
  // An idle environment is frozen this long after it asks for its next event,
  // unless an invocation arrives first (then it is never stopped at all).
  std::chrono::microseconds freeze_delay{2000};
  std::chrono::milliseconds init_timeout{10'000};
  std::chrono::milliseconds shutdown_grace{500};
  std::string runtime_version;  // INIT_START "Runtime Version: …" label
};

// One event handed to a runtime.
struct Invocation {
  std::string request_id;
  std::string payload;
  std::string content_type = "application/json";
  std::string invoked_arn;
  std::string trace_id;
  std::string client_context;    // decoded JSON text, or empty
  std::string cognito_identity;  // JSON text, or empty
  std::string tenant_id;
};

enum class Outcome {
  success,
  function_error,      // the runtime posted /error (or /init/error)
  timeout,             // Sandbox.Timedout
  exit_error,          // Runtime.ExitError
  out_of_memory,       // Runtime.OutOfMemory
  response_too_large,  // Function.ResponseSizeTooLarge
  invalid_response_mode,
  spawn_failed,        // the bootstrap could not be executed
  shutdown,            // sluice is stopping
};

// Chunks of a streamed response, produced by the Runtime API connection and
// consumed by whoever invoked. Single-threaded (the service's io thread).
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Registers a consumer: on_data for each chunk, on_end once (error trailers
  // may be set by then). The callback may return false to ask the producer to pause;
  // resume() lets it continue.
  virtual void consume(std::function<bool(std::string_view)> on_data, std::function<void()> on_end) = 0;
  virtual void resume() = 0;
  virtual bool ended() const = 0;
  virtual std::string content_type() const = 0;
  // Mid-stream failure reported through trailers (error body already base64-decoded).
  virtual std::string error_type() const = 0;
  virtual std::string error_body() const = 0;
  virtual std::uint64_t bytes() const = 0;
};

// The payload a caller gets when the platform ends an invocation (Sandbox.Timedout,
// Runtime.ExitError, Runtime.InvalidEntrypoint, ...): {"errorType","errorMessage"}, errorType
// first as AWS writes these (recorded invoke results in test_lambda.snapshot.json;
// Function.ResponseSizeTooLarge alone has errorMessage first).
std::string platform_error(const std::string& type, const std::string& message);

struct InvocationResult {
  Outcome outcome = Outcome::success;
  std::string payload;
  std::string content_type = "application/json";
  bool function_error = false;  // X-Amz-Function-Error: Unhandled
  std::string error_type;       // for logs and metrics, e.g. "Runtime.ExitError"
  std::shared_ptr<ResponseStream> stream;  // set when the runtime streams its response
};

// What REPORT says, plus the tail of the log for X-Amz-Log-Type: Tail.
struct InvocationReport {
  std::string request_id;
  double duration_ms = 0;
  std::int64_t billed_ms = 0;
  int memory_size_mb = 0;
  int max_memory_used_mb = 0;
  std::optional<double> init_duration_ms;
  std::string status;      // "", "timeout", "error"
  std::string error_type;  // with status "error"
  std::string log_tail;    // last 4 KB of this invocation's log
};

// A line of Lambda log output (function output or a platform line).
struct LogLine {
  std::string_view function;
  std::string_view version;
  std::string_view request_id;  // empty outside an invocation
  std::string_view text;        // without the trailing newline
  bool platform = false;        // START / END / REPORT / INIT_START ...
};

class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void write(const LogLine& line) = 0;
  // false while the sink is saturated: producers should stop reading handler output.
  virtual bool accepting() const { return true; }
};

}  // namespace sluice::runtime
