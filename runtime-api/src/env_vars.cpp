#include "env_vars.hpp"

#include <cstdlib>

namespace sluice::runtime {
namespace {

std::string host_env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

void append_path(std::string& list, const std::string& entry) {
  if (entry.empty()) return;
  if (!list.empty()) list += ':';
  list += entry;
}

}  // namespace

std::map<std::string, std::string> build_environment(const EnvironmentSpec& spec, const EnvContext& ctx) {
  const std::string task = spec.code_dir.string();
  const std::string opt = spec.opt_dir.string();

  // Precedence as on AWS: unreserved platform defaults < customer < credentials < runtime < platform.
  std::map<std::string, std::string> env;

  // -- unreserved platform values (customers may override these)
  std::string path;
  if (!spec.interpreter.empty()) append_path(path, spec.interpreter.parent_path().string());
  append_path(path, host_env("PATH").empty() ? "/usr/local/bin:/usr/bin:/bin" : host_env("PATH"));
  if (!opt.empty()) append_path(path, opt + "/bin");
  env["PATH"] = path;

  std::string ld;
  append_path(ld, host_env("LD_LIBRARY_PATH"));
  append_path(ld, task);
  append_path(ld, task + "/lib");
  if (!opt.empty()) append_path(ld, opt + "/lib");
  env["LD_LIBRARY_PATH"] = ld;

  env["LANG"] = "en_US.UTF-8";
  env["TZ"] = ":UTC";
  env["PWD"] = task;
  env["SHLVL"] = "0";
  env["AWS_XRAY_CONTEXT_MISSING"] = "LOG_ERROR";
  env["AWS_XRAY_DAEMON_ADDRESS"] = "127.0.0.1:2000";
  env["_AWS_XRAY_DAEMON_ADDRESS"] = "127.0.0.1";
  env["_AWS_XRAY_DAEMON_PORT"] = "2000";
  if (spec.kind == RuntimeKind::python) env["PYTHONPATH"] = ctx.runtime_dir.string();
  if (spec.kind == RuntimeKind::node) {
    std::string np;
    if (!opt.empty()) {
      // nodejs20.x -> node20
      std::string major;
      for (char c : spec.runtime_id)
        if (c >= '0' && c <= '9') major.push_back(c);
      append_path(np, opt + "/nodejs/node" + major + "/node_modules");
      append_path(np, opt + "/nodejs/node_modules");
    }
    append_path(np, (ctx.runtime_dir / "node_modules").string());
    append_path(np, ctx.runtime_dir.string());
    append_path(np, task);
    env["NODE_PATH"] = np;
  }
  // Local conveniences that AWS does not need: where the developer keeps AWS
  // credentials and endpoints, so handlers can reach real or emulated services.
  for (const char* pass : {"HOME", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                           "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"}) {
    if (auto v = host_env(pass); !v.empty()) env[pass] = v;
  }

  // -- customer
  for (const auto& [k, v] : spec.user_env) env[k] = v;

  // -- credentials: the developer's own when set (AWS always sets these)
  for (const char* cred : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}) {
    if (auto v = host_env(cred); !v.empty()) env[cred] = v;
  }

  // -- runtime
  env["_HANDLER"] = spec.handler;
  env["LAMBDA_TASK_ROOT"] = task;
  env["LAMBDA_RUNTIME_DIR"] = ctx.runtime_dir.string();
  env["AWS_LAMBDA_LOG_GROUP_NAME"] = "/aws/lambda/" + spec.function_name;
  env["AWS_LAMBDA_LOG_STREAM_NAME"] = ctx.log_stream_name;
  if (spec.kind != RuntimeKind::provided) env["AWS_EXECUTION_ENV"] = "AWS_Lambda_" + spec.runtime_id;
  if (!spec.log_format.empty()) env["AWS_LAMBDA_LOG_FORMAT"] = spec.log_format;
  if (!spec.log_level.empty()) env["AWS_LAMBDA_LOG_LEVEL"] = spec.log_level;

  // -- platform
  env["AWS_REGION"] = spec.region;
  env["AWS_DEFAULT_REGION"] = spec.region;
  env["AWS_LAMBDA_FUNCTION_NAME"] = spec.function_name;
  env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = std::to_string(spec.memory_mb);
  env["AWS_LAMBDA_FUNCTION_VERSION"] = spec.version;
  env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "on-demand";
  env["AWS_LAMBDA_RUNTIME_API"] = ctx.runtime_api;
  // Managed runtimes log through this descriptor (AWS's: 62, recorded for java and dotnet, whose
  // runtimes leave it in the environment; Node's and Python's remove it before user code runs).
  if (ctx.telemetry_log_fd >= 0 && spec.kind != RuntimeKind::provided)
    env["_LAMBDA_TELEMETRY_LOG_FD"] = std::to_string(ctx.telemetry_log_fd);

  // -- private to sluice's own bootstraps, removed by them before user code runs
  if (!opt.empty() && spec.kind != RuntimeKind::provided) env["_SLUICE_OPT_DIR"] = opt;
  return env;
}

}  // namespace sluice::runtime
