#include "cli.hpp"

#include "sluice/common/log.hpp"
#include "sluice/common/util.hpp"
#include "sluice/stack/loader.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <stdexcept>

namespace sluice::cli {

namespace fs = std::filesystem;

namespace {

constexpr const char* usage_text = R"(sluice: AWS Lambda and API Gateway on your machine

usage:
  sluice serve [STACK] [--host H] [--port P] [--lambda-port P] [--endpoints-file F]
               [--no-freeze] [--no-sandbox] [--no-watch] [--idle-timeout SECONDS] [--account-concurrency N]
               [--async-retry-delays S1,S2] [--interpreter RUNTIME=PATH] [--state-dir DIR]
               [--drain-timeout SECONDS] [--log-format Text|JSON] [--integration-timeout SECONDS]
               [--client-timeout SECONDS] [--account-throttle RATE,BURST] [--no-schedules] [--schedule-clock TIME]
               [--schedule-speed N] [--no-event-sources] [--env-vars FILE]
               [--debug-port PORT [--debug-function FUNCTION] [--debug-args ARGS]]
  sluice invoke [FUNCTION[:QUALIFIER]] [--event FILE|-] [--stack STACK] [--no-freeze] [--no-sandbox]
               [--interpreter RUNTIME=PATH] [--state-dir DIR] [--log-format Text|JSON] [--env-vars FILE]
               [--debug-port PORT] [--debug-args ARGS]
  sluice publish FUNCTION [--description TEXT] [--stack STACK] [--state-dir DIR]
  sluice validate [STACK]
  sluice generate-event SOURCE KIND [--set key=value ...]   (--help lists sources and kinds)
  sluice trigger schedule NAME [STACK] [--endpoint URL | --endpoints-file F | --in-process] [--json]
               [--schedule-clock TIME]
  sluice deploy --stage ENV [STACK] [--dry-run] [--yes] [--endpoint-url URL] [--region R]
               [--profile P] [--role-arn ARN] [--assume-role ARN] [--lock-timeout SECONDS]
               [--force-unlock] [--max-attempts N] [--pip-arg ARG ...]
  sluice deploy --stage ENV --promote-from OTHER [STACK] [options as above]
  sluice rollback --stage ENV [STACK] [options as above]

STACK defaults to ./sluice.yaml (sluice.yml and sluice.json are found too).
Every listener binds 127.0.0.1 unless --host says otherwise.
)";

}  // namespace

std::optional<std::string> Args::get(const std::string& name) const {
  // The last occurrence wins, as with most command lines.
  auto [b, e] = options.equal_range(name);
  if (b == e) return std::nullopt;
  return std::prev(e)->second;
}

std::vector<std::string> Args::all(const std::string& name) const {
  std::vector<std::string> out;
  auto [b, e] = options.equal_range(name);
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

Args parse_args(int argc, char** argv, const std::vector<std::string>& valued) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (starts_with(s, "--") && s.size() > 2) {
      std::string name = s.substr(2), value;
      auto eq = name.find('=');
      bool takes = false;
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        takes = true;
      } else {
        for (const auto& v : valued)
          if (v == name) takes = true;
        if (takes) {
          if (i + 1 >= argc) throw std::runtime_error("option --" + name + " needs a value");
          value = argv[++i];
        }
      }
      a.options.emplace(name, value);
    } else if (s == "-h") {
      a.options.emplace("help", "");
    } else if (a.command.empty()) {
      a.command = s;
    } else {
      a.positionals.push_back(s);
    }
  }
  return a;
}

fs::path default_stack_path() {
  for (const char* name : {"sluice.yaml", "sluice.yml", "sluice.json"})
    if (fs::exists(name)) return fs::absolute(name);
  return fs::absolute("sluice.yaml");
}

int cmd_validate(const Args& a) {
  fs::path file = a.positionals.empty() ? default_stack_path() : fs::path(a.positionals[0]);
  auto result = stack::load_file(file);
  std::string report = stack::format_report(result, file);
  if (!result.ok()) {
    std::fputs(report.c_str(), stderr);
    return 1;
  }
  if (!result.problems.empty()) std::fputs(report.c_str(), stderr);
  const auto& s = *result.stack;
  std::printf("%s: valid: stack %s, %zu function%s, %zu API%s\n", file.string().c_str(), s.name.c_str(),
              s.functions.size(), s.functions.size() == 1 ? "" : "s", s.apis.size(), s.apis.size() == 1 ? "" : "s");
  return 0;
}

namespace {

// An option the command does not take, or an argument too many: what to say (nullopt: none).
// Unknown commands are left to run()'s own message.
std::optional<std::string> unknown_arguments(const Args& a) {
  const std::vector<std::string> service = {"state-dir",     "no-freeze",       "no-sandbox",   "freeze-delay",
                                            "no-watch",      "idle-timeout",    "init-timeout", "account-concurrency",
                                            "async-retry-delays", "interpreter", "log-format",  "env-vars",
                                            "debug-port",    "debug-args",      "debug-function"};
  const std::vector<std::string> deploy = {"stage",  "promote-from", "dry-run",      "yes",          "endpoint-url",
                                           "region", "profile",      "role-arn",     "assume-role",  "lock-timeout",
                                           "force-unlock", "max-attempts", "pip-arg", "stack",     "state-dir"};
  struct Takes {
    std::vector<std::string> options;
    std::size_t max_positionals;
  };
  auto with = [](std::vector<std::string> base, std::initializer_list<const char*> more) {
    for (const char* m : more) base.emplace_back(m);
    return base;
  };
  const std::map<std::string, Takes> commands = {
      {"serve", {with(service, {"host", "port", "lambda-port", "endpoints-file", "drain-timeout", "integration-timeout",
                                "client-timeout", "account-throttle", "no-schedules", "schedule-clock", "schedule-speed",
                                "no-event-sources", "stack"}),
                 1}},
      {"invoke", {with(service, {"event", "stack"}), 1}},
      {"publish", {{"description", "stack", "state-dir"}, 1}},
      {"validate", {{}, 1}},
      {"generate-event", {{"set", "stack"}, 2}},
      {"trigger", {{"endpoint", "endpoints-file", "in-process", "json", "schedule-clock", "schedule-speed", "stack",
                    "state-dir"},
                   3}},
      {"deploy", {deploy, 1}},
      {"rollback", {deploy, 1}},
  };
  auto it = commands.find(a.command);
  if (it == commands.end()) return std::nullopt;
  std::vector<std::string> allowed = with(it->second.options, {"help", "quiet", "version"});
  for (const auto& [name, value] : a.options) {
    if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
    std::string msg = "unknown option --" + name;
    if (auto near = nearest(name, allowed); !near.empty()) msg += "; did you mean --" + near + "?";
    return msg;
  }
  if (a.positionals.size() > it->second.max_positionals)
    return "unexpected argument " + sluice::quoted(a.positionals[it->second.max_positionals]);
  return std::nullopt;
}

}  // namespace

int run(int argc, char** argv) {
  const std::vector<std::string> valued = {"host",          "port",           "lambda-port",        "endpoints-file",
                                           "idle-timeout",  "account-concurrency", "async-retry-delays",
                                           "interpreter",   "state-dir",      "event",              "stack",
                                           "description",   "drain-timeout",  "log-format",         "init-timeout",
                                           "integration-timeout", "client-timeout", "account-throttle", "freeze-delay",
                                           "set", "endpoint", "schedule-clock", "schedule-speed",
                                           "stage", "promote-from", "endpoint-url", "region", "profile", "role-arn",
                                           "assume-role", "lock-timeout", "max-attempts", "pip-arg",
                                           "env-vars", "debug-port", "debug-function", "debug-args"};
  Args a = parse_args(argc, argv, valued);
  if (a.command.empty() || a.command == "help" || (a.has("help") && a.command != "generate-event" && a.command != "trigger")) {
    std::fputs(usage_text, a.command.empty() && !a.has("help") ? stderr : stdout);
    return a.command.empty() && !a.has("help") ? 2 : 0;
  }
  if (a.command == "--version" || a.command == "version" || a.has("version")) {
    std::printf("sluice 0.1.0\n");
    return 0;
  }
  if (auto problem = unknown_arguments(a)) {
    std::fprintf(stderr, "sluice %s: %s (sluice --help lists the options)\n", a.command.c_str(), problem->c_str());
    return 2;
  }
  log::init(a.has("quiet"));
  if (a.command == "validate") return cmd_validate(a);
  if (a.command == "invoke") return cmd_invoke(a);
  if (a.command == "publish") return cmd_publish(a);
  if (a.command == "serve") return cmd_serve(a);
  if (a.command == "generate-event") return cmd_generate_event(a);
  if (a.command == "trigger") return cmd_trigger(a);
  if (a.command == "deploy") return cmd_deploy(a);
  if (a.command == "rollback") return cmd_rollback(a);
  std::fprintf(stderr, "sluice: unknown command '%s'\n\n%s", a.command.c_str(), usage_text);
  return 2;
}

}  // namespace sluice::cli
