// `sluice deploy` and `sluice rollback`: options, the stack, and errors as one sentence.
#include "cli.hpp"

#include "sluice/aws/client.hpp"
#include "sluice/deploy/deploy.hpp"
#include "sluice/stack/loader.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>

namespace sluice::cli {

namespace fs = std::filesystem;

namespace {

int parse_int(const Args& a, const std::string& name, int fallback) {
  auto v = a.get(name);
  if (!v) return fallback;
  char* end = nullptr;
  long n = std::strtol(v->c_str(), &end, 10);
  if (v->empty() || *end || n < 0) throw std::runtime_error("--" + name + " needs a non-negative whole number, not '" + *v + "'");
  return static_cast<int>(n);
}

int deploy_or_rollback(const Args& a, bool rollback) {
  const char* cmd = rollback ? "rollback" : "deploy";
  auto stage = a.get("stage");
  if (!stage || stage->empty()) {
    std::fprintf(stderr, "sluice %s: --stage ENV is required (the stage, and the alias name, to %s)\n", cmd, cmd);
    return 2;
  }
  if (auto problem = deploy::stage_name_error(*stage); !problem.empty()) {
    std::fprintf(stderr, "sluice %s: --stage %s\n", cmd, problem.c_str());
    return 2;
  }
  deploy::Options o;
  o.stage = *stage;
  o.mode = rollback ? deploy::Mode::rollback : deploy::Mode::deploy;
  if (auto from = a.get("promote-from")) {
    if (rollback) {
      std::fprintf(stderr, "sluice rollback: --promote-from belongs to sluice deploy\n");
      return 2;
    }
    if (*from == *stage) {
      std::fprintf(stderr, "sluice deploy: --promote-from names the stage being deployed (%s)\n", from->c_str());
      return 2;
    }
    o.mode = deploy::Mode::promote;
    o.promote_from = *from;
  }
  o.dry_run = a.has("dry-run");
  o.yes = a.has("yes");
  o.endpoint_url = a.get("endpoint-url");
  o.region = a.get("region").value_or("");
  o.profile = a.get("profile").value_or("");
  o.execution_role_arn = a.get("role-arn").value_or("");
  o.assume_role_arn = a.get("assume-role").value_or("");
  o.force_unlock = a.has("force-unlock");
  // pip's extra arguments for requirements layers: SLUICE_PIP_ARGS (split on white space),
  // then every --pip-arg (one argument each: --pip-arg --no-index or --pip-arg=--no-index).
  if (const char* env = std::getenv("SLUICE_PIP_ARGS")) {
    std::istringstream words(env);
    for (std::string w; words >> w;) o.pip_args.push_back(w);
  }
  for (const auto& v : a.all("pip-arg")) o.pip_args.push_back(v);
  try {
    o.lock_timeout_s = parse_int(a, "lock-timeout", 60);
    o.max_attempts = parse_int(a, "max-attempts", 3);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice %s: %s\n", cmd, e.what());
    return 2;
  }
  if (o.max_attempts < 1) o.max_attempts = 1;

  fs::path file = a.positionals.empty() ? (a.get("stack") ? fs::path(*a.get("stack")) : default_stack_path())
                                        : fs::path(a.positionals[0]);
  auto result = stack::load_file(file);
  if (!result.ok()) {
    std::fputs(stack::format_report(result, file).c_str(), stderr);
    return 1;
  }
  if (!result.problems.empty()) std::fputs(stack::format_report(result, file).c_str(), stderr);
  try {
    return deploy::run(*result.stack, o);
  } catch (const aws::CredentialsError& e) {
    std::fprintf(stderr, "sluice %s: %s\n", cmd, e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice %s: %s\n", cmd, deploy::describe_error(e).c_str());
  }
  return 1;
}

}  // namespace

int cmd_deploy(const Args& a) { return deploy_or_rollback(a, false); }
int cmd_rollback(const Args& a) { return deploy_or_rollback(a, true); }

}  // namespace sluice::cli
