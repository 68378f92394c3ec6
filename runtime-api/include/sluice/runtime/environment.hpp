// One execution environment: a handler process (bootstrap + user code) with
// its own Runtime API endpoint, driven through AWS's lifecycle. All methods
// must be called on the io thread that owns the executor.
#pragma once

#include "sluice/runtime/types.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <string>

namespace sluice::runtime {

enum class EnvState {
  starting,       // process spawned, runtime has not called /next yet
  idle,           // runtime waiting in /next, frozen
  running,        // an invocation was delivered
  response_sent,  // response/error posted; waiting for /next to end the invoke phase
  stopping,
  dead,
};
const char* to_string(EnvState s);

struct EnvironmentEvents {
  // The environment became idle (after init, or after an invocation's /next).
  std::function<void()> on_idle;
  // The environment is gone (crash, timeout, retirement, shutdown). reason is for logs.
  std::function<void(const std::string& reason)> on_dead;
};

class Environment {
 public:
  using ResultHandler = std::function<void(InvocationResult)>;
  using ReportHandler = std::function<void(const InvocationReport&)>;

  Environment(boost::asio::any_io_executor ex, EnvironmentSpec spec, std::shared_ptr<LogSink> logs,
              EnvironmentEvents events);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  // Binds the Runtime API endpoint and spawns the bootstrap. A failure to
  // spawn is reported through the pending invocation / on_dead, never thrown.
  void start();

  // Hands over an invocation. Allowed while starting (delivered once init is
  // done: a cold start) or idle. on_result fires when the runtime answers (or
  // the invocation fails); on_report after END/REPORT.
  void invoke(Invocation inv, ResultHandler on_result, ReportHandler on_report);

  // Graceful stop: thaw, SIGTERM, SIGKILL after the grace period.
  void stop(const std::string& reason);
  // Stop once the current invocation (if any) has finished.
  void retire(const std::string& reason);

  EnvState state() const;
  bool has_served() const;  // false until the first invocation was delivered
  const EnvironmentSpec& spec() const;
  const std::string& id() const;
  int pid() const;
  unsigned short port() const;
  std::chrono::steady_clock::time_point idle_since() const;
  bool retiring() const;
  // The runtime is done with its invocation and extensions are still at work on it.
  bool waiting_for_extensions() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Environments gone from their pools whose extensions still have a SHUTDOWN event to finish
// (up to 2 s); whoever stops sluice waits for them.
std::size_t extensions_shutting_down();

// Installs the SIGCHLD watcher on this executor; call once before starting environments.
void install_child_watch(boost::asio::any_io_executor ex);

// Where sluice's own bootstraps live (…/runtime-api/bootstraps), found next to
// the executable or in the source tree; SLUICE_BOOTSTRAP_DIR overrides.
std::filesystem::path default_bootstrap_dir();

// The RuntimeVersionArn this machine's runtime reports (INIT_START, GetFunctionConfiguration):
// arn:aws:lambda:REGION::runtime:HASH, HASH derived from the runtime id and the interpreter.
std::string runtime_version_arn(const std::string& region, const std::string& runtime_id,
                                const std::filesystem::path& interpreter);

}  // namespace sluice::runtime
