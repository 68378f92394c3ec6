// runtime-api/src/env_vars.hpp: the process environment a runtime gets.
#include "env_vars.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>

using namespace sluice::runtime;
using Env = std::map<std::string, std::string>;

namespace {

// Sets (or unsets) a variable of this process for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

EnvironmentSpec spec(RuntimeKind kind, std::string runtime_id) {
  EnvironmentSpec s;
  s.function_name = "orders";
  s.version = "$LATEST";
  s.kind = kind;
  s.runtime_id = std::move(runtime_id);
  s.handler = "app.handler";
  s.code_dir = "/work/fn/src";
  s.memory_mb = 256;
  s.timeout_s = 7;
  s.region = "eu-west-3";
  return s;
}

EnvContext context(const std::string& runtime_dir = "/opt/sluice/bootstraps/python") {
  EnvContext c;
  c.runtime_api = "127.0.0.1:40123";
  c.log_stream_name = "2024/03/04/[$LATEST]0123456789abcdef0123456789abcdef";
  c.runtime_dir = runtime_dir;
  return c;
}

std::string get(const Env& env, const std::string& k) {
  auto it = env.find(k);
  return it == env.end() ? "<unset>" : it->second;
}

}  // namespace

TEST_CASE("the variables AWS sets, from the spec", "[env]") {
  auto s = spec(RuntimeKind::python, "python3.12");
  s.interpreter = "/usr/local/bin/python3.12";
  auto env = build_environment(s, context());
  CHECK(get(env, "_HANDLER") == "app.handler");
  CHECK(get(env, "LAMBDA_TASK_ROOT") == "/work/fn/src");
  CHECK(get(env, "LAMBDA_RUNTIME_DIR") == "/opt/sluice/bootstraps/python");
  CHECK(get(env, "AWS_LAMBDA_LOG_GROUP_NAME") == "/aws/lambda/orders");
  CHECK(get(env, "AWS_LAMBDA_LOG_STREAM_NAME") == "2024/03/04/[$LATEST]0123456789abcdef0123456789abcdef");
  CHECK(get(env, "AWS_EXECUTION_ENV") == "AWS_Lambda_python3.12");
  CHECK(get(env, "AWS_REGION") == "eu-west-3");
  CHECK(get(env, "AWS_DEFAULT_REGION") == "eu-west-3");
  CHECK(get(env, "AWS_LAMBDA_FUNCTION_NAME") == "orders");
  CHECK(get(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE") == "256");
  CHECK(get(env, "AWS_LAMBDA_FUNCTION_VERSION") == "$LATEST");
  CHECK(get(env, "AWS_LAMBDA_INITIALIZATION_TYPE") == "on-demand");
  CHECK(get(env, "AWS_LAMBDA_RUNTIME_API") == "127.0.0.1:40123");
  CHECK(get(env, "LANG") == "en_US.UTF-8");
  CHECK(get(env, "TZ") == ":UTC");
  CHECK(get(env, "PWD") == "/work/fn/src");
  CHECK(get(env, "SHLVL") == "0");
  CHECK(get(env, "AWS_XRAY_CONTEXT_MISSING") == "LOG_ERROR");
  // The interpreter's directory comes first on PATH.
  CHECK(get(env, "PATH").rfind("/usr/local/bin:", 0) == 0);
  CHECK(get(env, "LD_LIBRARY_PATH").find("/work/fn/src:/work/fn/src/lib") != std::string::npos);
  CHECK(env.count("AWS_LAMBDA_LOG_FORMAT") == 0);
  CHECK(env.count("AWS_LAMBDA_LOG_LEVEL") == 0);

  s.version = "3";
  s.log_format = "JSON";
  s.log_level = "DEBUG";
  env = build_environment(s, context());
  CHECK(get(env, "AWS_LAMBDA_FUNCTION_VERSION") == "3");
  CHECK(get(env, "AWS_LAMBDA_LOG_FORMAT") == "JSON");
  CHECK(get(env, "AWS_LAMBDA_LOG_LEVEL") == "DEBUG");
}

TEST_CASE("precedence: defaults < customer < credentials < runtime < platform", "[env]") {
  ScopedEnv key("AWS_ACCESS_KEY_ID", "AKIDHOST");
  ScopedEnv secret("AWS_SECRET_ACCESS_KEY", nullptr);
  ScopedEnv token("AWS_SESSION_TOKEN", nullptr);
  auto s = spec(RuntimeKind::python, "python3.12");
  s.user_env = {
      {"LANG", "fr_FR.UTF-8"},            // unreserved default: the customer wins
      {"TZ", "Europe/Paris"},             // settable on AWS
      {"PATH", "/custom/bin"},            // unreserved
      {"MY_SETTING", "42"},               // plain customer variable
      {"AWS_ACCESS_KEY_ID", "AKIDUSER"},  // credentials win over the customer
      {"AWS_SECRET_ACCESS_KEY", "user-secret"},
      {"_HANDLER", "evil.handler"},             // runtime: the customer cannot override
      {"LAMBDA_TASK_ROOT", "/elsewhere"},       // runtime
      {"AWS_EXECUTION_ENV", "AWS_Lambda_fake"},  // runtime
      {"AWS_LAMBDA_FUNCTION_NAME", "impostor"},  // platform
      {"AWS_REGION", "mars-north-1"},            // platform
      {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "10240"},
      {"AWS_LAMBDA_RUNTIME_API", "169.254.100.1:9001"},
  };
  auto env = build_environment(s, context());
  CHECK(get(env, "LANG") == "fr_FR.UTF-8");
  CHECK(get(env, "TZ") == "Europe/Paris");
  CHECK(get(env, "PATH") == "/custom/bin");
  CHECK(get(env, "MY_SETTING") == "42");
  CHECK(get(env, "AWS_ACCESS_KEY_ID") == "AKIDHOST");
  CHECK(get(env, "AWS_SECRET_ACCESS_KEY") == "user-secret");  // no host value to override it
  CHECK(env.count("AWS_SESSION_TOKEN") == 0);
  CHECK(get(env, "_HANDLER") == "app.handler");
  CHECK(get(env, "LAMBDA_TASK_ROOT") == "/work/fn/src");
  CHECK(get(env, "AWS_EXECUTION_ENV") == "AWS_Lambda_python3.12");
  CHECK(get(env, "AWS_LAMBDA_FUNCTION_NAME") == "orders");
  CHECK(get(env, "AWS_REGION") == "eu-west-3");
  CHECK(get(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE") == "256");
  CHECK(get(env, "AWS_LAMBDA_RUNTIME_API") == "127.0.0.1:40123");
}

TEST_CASE("PYTHONPATH is set for python only", "[env]") {
  CHECK(get(build_environment(spec(RuntimeKind::python, "python3.12"), context()), "PYTHONPATH") ==
        "/opt/sluice/bootstraps/python");
  CHECK(build_environment(spec(RuntimeKind::node, "nodejs20.x"), context("/b/node")).count("PYTHONPATH") == 0);
  CHECK(build_environment(spec(RuntimeKind::provided, "provided.al2023"), context("/b")).count("PYTHONPATH") == 0);
  // A customer may still set it, as on AWS.
  auto s = spec(RuntimeKind::provided, "provided.al2");
  s.user_env["PYTHONPATH"] = "/mine";
  CHECK(get(build_environment(s, context("/b")), "PYTHONPATH") == "/mine");
}

TEST_CASE("NODE_PATH for node, with and without layers", "[env]") {
  auto s = spec(RuntimeKind::node, "nodejs20.x");
  auto env = build_environment(s, context("/b/node"));
  CHECK(get(env, "NODE_PATH") == "/b/node/node_modules:/b/node:/work/fn/src");

  s.opt_dir = "/work/fn/.sluice/opt";
  env = build_environment(s, context("/b/node"));
  CHECK(get(env, "NODE_PATH") ==
        "/work/fn/.sluice/opt/nodejs/node20/node_modules:/work/fn/.sluice/opt/nodejs/node_modules:"
        "/b/node/node_modules:/b/node:/work/fn/src");

  s.runtime_id = "nodejs22.x";
  env = build_environment(s, context("/b/node"));
  CHECK(get(env, "NODE_PATH").rfind("/work/fn/.sluice/opt/nodejs/node22/node_modules:", 0) == 0);
  CHECK(get(env, "AWS_EXECUTION_ENV") == "AWS_Lambda_nodejs22.x");

  CHECK(build_environment(spec(RuntimeKind::python, "python3.12"), context()).count("NODE_PATH") == 0);
}

TEST_CASE("custom runtimes get no AWS_EXECUTION_ENV", "[env]") {
  for (const char* id : {"provided", "provided.al2", "provided.al2023"}) {
    auto env = build_environment(spec(RuntimeKind::provided, id), context("/b"));
    CHECK(env.count("AWS_EXECUTION_ENV") == 0);
    CHECK(get(env, "_HANDLER") == "app.handler");
  }
}

TEST_CASE("_SLUICE_OPT_DIR only with layers, and never for custom runtimes", "[env]") {
  auto py = spec(RuntimeKind::python, "python3.12");
  CHECK(build_environment(py, context()).count("_SLUICE_OPT_DIR") == 0);
  py.opt_dir = "/layers/merged";
  auto env = build_environment(py, context());
  CHECK(get(env, "_SLUICE_OPT_DIR") == "/layers/merged");
  // The layers' bin and lib directories are searched too, after the system's.
  CHECK(get(env, "PATH").size() > std::string(":/layers/merged/bin").size());
  CHECK(get(env, "PATH").substr(get(env, "PATH").size() - std::string(":/layers/merged/bin").size()) ==
        ":/layers/merged/bin");
  CHECK(get(env, "LD_LIBRARY_PATH").find("/layers/merged/lib") != std::string::npos);

  auto node = spec(RuntimeKind::node, "nodejs20.x");
  node.opt_dir = "/layers/merged";
  CHECK(get(build_environment(node, context("/b/node")), "_SLUICE_OPT_DIR") == "/layers/merged");

  auto custom = spec(RuntimeKind::provided, "provided.al2023");
  CHECK(build_environment(custom, context("/b")).count("_SLUICE_OPT_DIR") == 0);
  custom.opt_dir = "/layers/merged";
  env = build_environment(custom, context("/b"));
  CHECK(env.count("_SLUICE_OPT_DIR") == 0);
  CHECK(get(env, "LD_LIBRARY_PATH").find("/layers/merged/lib") != std::string::npos);
}
