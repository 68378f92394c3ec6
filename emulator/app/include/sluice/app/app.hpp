// The embeddable engine: everything `sluice serve` runs (the Lambda service, the
// Invoke API, every API of the stack, the stack-file watch), on one io_context
// driven by a thread of its own. `sluice serve` is a thin wrapper around it and
// the Python package binds it. Every public method may be called from any
// thread except the engine's own: work is posted onto the io_context and the
// caller waits for the answer.
#pragma once

#include "sluice/lambda/local_config.hpp"
#include "sluice/lambda/destinations.hpp"
#include "sluice/lambda/records.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::app {

// The stack file could not be loaded; what() is the whole report, problems one line each.
class StackError : public std::runtime_error {
 public:
  StackError(std::string report, std::vector<std::string> problems)
      : std::runtime_error(std::move(report)), problems_(std::move(problems)) {}
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// Anything else the engine refuses (a busy port, an unknown function, a stopped app).
// code is AWS's error code when the Lambda service answered with one.
class EngineError : public std::runtime_error {
 public:
  explicit EngineError(const std::string& message, std::string code = "")
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

struct ApiInfo {
  std::string name;
  std::string type;  // "rest" | "http"
  std::string url;   // http://127.0.0.1:PORT
  std::vector<std::string> stages;
};

struct UrlInfo {
  std::string function;
  std::string url;  // http://127.0.0.1:PORT
  std::string auth_type, invoke_mode;
};

struct Endpoints {
  std::string lambda;  // http://127.0.0.1:PORT
  std::vector<ApiInfo> apis;
  std::vector<UrlInfo> urls;  // function URLs
  std::size_t functions = 0;
  std::string region;  // the stack's
};

// {"lambda": URL, "apis": {NAME: {"type", "url", "stages"}}, "urls": {FUNCTION: URL}}, as
// `sluice serve` prints it ("urls" only when a function has a URL).
std::string endpoints_json(const Endpoints& e);

// What is wrong with an interpreter given for a runtime (RUNTIME=PATH): "" when PATH is an
// executable file, else why not, naming both (a wrong path must not fall back silently).
std::string interpreter_problem(const std::string& runtime, const std::filesystem::path& path);

struct AppOptions {
  std::filesystem::path stack_path;
  std::string host = "127.0.0.1";
  int lambda_port = 3001;  // 0 = ephemeral
  int api_port = 3000;     // first API port; 0 = ephemeral ports for every API
  std::filesystem::path state_dir;  // empty: .sluice/ next to the stack file
  bool freeze = true;
  bool sandbox = true;  // Lambda's paths for functions (see lambda::ServiceOptions)
  std::optional<std::chrono::microseconds> freeze_delay;
  bool watch = true;  // code directories and the stack file
  std::optional<std::chrono::milliseconds> idle_timeout, init_timeout;
  std::optional<int> account_concurrency;
  std::optional<std::pair<double, int>> account_throttle;  // API Gateway's account-level limit (rate, burst)
  std::optional<std::vector<std::chrono::milliseconds>> async_retry_delays;
  std::map<std::string, std::filesystem::path> interpreters;  // "python3.12" -> path
  std::string log_format;  // "" | "Text" | "JSON"
  lambda::EnvOverrides env_overrides;  // --env-vars
  lambda::DebugOptions debug;          // the function started under a debugger
  std::optional<std::chrono::milliseconds> integration_timeout;
  std::optional<std::chrono::milliseconds> client_timeout;
  std::chrono::milliseconds drain_timeout{30'000};
  std::optional<std::filesystem::path> endpoints_file;  // rewritten on every reload
  // Where Lambda log lines and access-log lines are written as they happen
  // (serve: stdout, tagged); nullptr keeps them in memory only (logs()).
  std::FILE* log_output = nullptr;
  std::size_t captured_lines_per_function = 10'000;  // 0: keep none (serve: the console has them)
  // SIGINT/SIGTERM drain and stop; a second signal stops at once (the CLI).
  bool handle_signals = false;
  // Schedules of the stack fire on their own (rate/cron) when true; trigger() works either way.
  bool schedules = true;
  bool event_sources = true;  // poll the stack's SQS event sources
  std::optional<std::chrono::system_clock::time_point> schedule_clock;  // the schedule time at start
  double schedule_speed = 1.0;  // schedule seconds per real second; 0 = a fixed clock
  // Called once the listeners are bound, before the engine thread starts and
  // before endpoints_file is written (the CLI prints the endpoints here).
  std::function<void(const Endpoints&)> on_started;
  // Called about every 50 ms by a thread waiting for the engine (invoke, trigger, ...); it may
  // throw to abandon the wait, the call then keeps running on the engine. The Python package
  // turns Ctrl-C into KeyboardInterrupt this way.
  std::function<void()> while_waiting;
};

struct InvokeResult {
  std::string payload;
  std::string content_type = "application/json";
  bool function_error = false;  // X-Amz-Function-Error: Unhandled
  std::string error_type;       // e.g. Runtime.ExitError
  std::string log_tail;         // the invocation's log, decoded (last 4 KB)
  std::string executed_version;
  std::string request_id;
  double duration_ms = 0;
  bool cold_start = false;
};

struct Published {
  std::string function, version, code_sha256;
  bool created = false;
};

// One schedule fired on demand (trigger()): the function's answer.
struct Triggered {
  std::string schedule, function;  // function as invoked: "name" or "name:qualifier"
  std::chrono::system_clock::time_point time;  // the event's "time"
  std::string event;                            // the payload sent
  std::string request_id, executed_version, payload;
  bool function_error = false;
  std::string error_type;  // as InvokeResult's
  bool cold_start = false;
  double duration_ms = 0;
};

struct LogEntry {
  std::string version, request_id, text;
  bool platform = false;
};

class App {
 public:
  // Loads and validates the stack file: throws StackError listing every problem.
  explicit App(AppOptions options);
  ~App();  // stop()s
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Non-fatal problems of the stack file (warnings), as the CLI prints them; empty when none.
  const std::string& warnings() const;

  // Binds every listener (throws EngineError naming the address) and starts the engine thread.
  void start();
  // Blocks until the engine has stopped (the CLI: after a signal).
  void wait();
  // Drains in-flight requests (up to drain_timeout), stops every handler process
  // and joins the engine thread. Idempotent.
  void stop();
  bool running() const;

  Endpoints endpoints() const;
  std::string endpoints_json() const;  // what `sluice serve` prints

  // One synchronous invocation (function may be name, name:qualifier or an ARN).
  // Throws EngineError for what the Lambda service refuses (ResourceNotFoundException, ...).
  InvokeResult invoke(const std::string& function, const std::string& payload, const std::string& qualifier = "",
                      const std::string& source = "python");
  // Asynchronous (Event) invocation; returns the request id.
  std::string invoke_async(const std::string& function, const std::string& payload, const std::string& qualifier = "",
                           const std::string& source = "python");
  Published publish(const std::string& function, const std::string& description = "");

  // Every invocation so far (oldest first), once each has its REPORT.
  std::vector<lambda::InvocationRecord> records();
  void clear_records();
  // Invocation records handed to async destinations (oldest first); `settled`: wait (up to
  // `wait`) until none is still on its way.
  std::vector<lambda::DestinationDelivery> destinations(std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  std::vector<LogEntry> logs(const std::string& function);
  std::vector<std::string> access_log();

  // Loads the stack file again and applies it (as an edit while serving does).
  // Throws StackError and keeps the running stack when it is invalid.
  void reload();

  // Fires a schedule now (synchronously: the function's answer comes back). Throws
  // EngineError naming the schedules there are when there is no such schedule.
  Triggered trigger(const std::string& schedule);
  // The schedule clock: its time, moving it (what became due fires), the next firing of a schedule.
  std::chrono::system_clock::time_point schedule_time();
  void set_schedule_time(std::chrono::system_clock::time_point t);
  void advance_schedule_clock(std::chrono::milliseconds d);
  std::optional<std::chrono::system_clock::time_point> next_schedule_time(const std::string& schedule);
  std::vector<std::string> schedules();
  std::vector<std::string> functions();  // the stack's functions, by name

  // Runs fn on the engine thread and waits (for components added by other modules).
  void run_on_engine(std::function<void()> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::app
