// The deploy procedure. Every step reads what exists remotely, then creates, updates or
// leaves it alone; the same code runs twice: once to plan (reads only; mutations are
// recorded, not made) and once to apply. Steps are ordered so that each is re-runnable:
// a deploy killed anywhere is repaired by the next one, which reads the real state again.
#include "sluice/deploy/deploy.hpp"

#include "naming.hpp"
#include "progress.hpp"
#include "remote.hpp"
#include "state.hpp"

#include "sluice/aws/client.hpp"
#include "sluice/common/hash.hpp"
#include "sluice/common/util.hpp"
#include "sluice/package/package.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <set>
#include <thread>
#include <cerrno>
#include <csignal>
#include <unistd.h>

namespace sluice::deploy {

namespace {

namespace fs = std::filesystem;

const std::string kNew = "(new)";
const std::string kLambdaApi = "/2015-03-31/functions/";
// Lambda's event-invoke-config resource of function RN (a qualifier goes in the query).
std::string invoke_config_path(const std::string& rn) { return "/2019-09-25/functions/" + rn + "/event-invoke-config"; }

enum class Change { create, update, remove, unchanged };

struct Item {
  Change change;
  std::string kind, name, detail;
};

const char* verb(Change c) {
  switch (c) {
    case Change::create: return "create";
    case Change::update: return "update";
    case Change::remove: return "remove";
    case Change::unchanged: return "unchanged";
  }
  return "";
}

struct Unit {
  std::string label;  // "package core", "function recommend", "layer layers/common"
  fs::path dir;       // the directory zipped (a requirements layer: the requirements file)
  std::string layer_name;  // layers: the Lambda layer's name (without the stack prefix)
  package::Archive archive;
  std::string s3_key;
};

struct FnState {
  std::string remote_name;
  std::string unit;            // key into units_
  std::string version;         // the version the alias gets (published, reused, or kNew)
  bool exists = false;
  std::string url;             // the stage alias's function URL, once known
};

struct ApiOut {
  std::string type, id, stage, url;
  json authorizers = json::object();  // HTTP APIs: name -> id (moto cannot list them)
  // Lambda authorizers: name -> the FUNCTION[:QUALIFIER] their URI invokes (for the next deploy
  // to find the statement of one that invokes something else by then).
  json authorizer_functions = json::object();
  // REST: the description (sluice's fingerprint tag) of the deployment the stage serves, so that
  // another stage's deploy can tell what this stage's authorizers invoke.
  std::string deployment = "";
  // Lambda authorizers: name -> the FUNCTION[:QUALIFIER]s whose statements this deploy kept
  // because another REST stage still serves a deployment that invokes them.
  json retired_authorizer_functions = json::object();
};

std::string git_commit(const fs::path& dir) {
  std::string cmd = "git -C '" + dir.string() + "' rev-parse HEAD 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "";
  char buf[128] = {0};
  std::string out;
  if (std::fgets(buf, sizeof buf, p)) out = buf;
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.size() == 40 ? out : "";
}

json env_vars(const json& config) {
  if (config.contains("Environment") && config["Environment"].is_object() &&
      config["Environment"].contains("Variables") && config["Environment"]["Variables"].is_object())
    return config["Environment"]["Variables"];
  return json::object();
}

std::vector<std::string> layer_arns(const json& config) {
  std::vector<std::string> out;
  if (config.contains("Layers") && config["Layers"].is_array())
    for (const auto& l : config["Layers"]) {
      if (l.is_string()) out.push_back(l.get<std::string>());
      else if (l.is_object() && l.contains("Arn")) out.push_back(l["Arn"].get<std::string>());
    }
  return out;
}

std::string jstr(const json& j, const char* key) {
  if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  return "";
}

// rec[field] when rec is an object and that field an object too; else an empty object.
const json& object_field(const json& rec, const char* field) {
  static const json empty = json::object();
  return rec.is_object() && rec.contains(field) && rec[field].is_object() ? rec[field] : empty;
}

// "production, staging"
std::string listing(const std::set<std::string>& stages) { return join({stages.begin(), stages.end()}, ", "); }

long jint(const json& j, const char* key, long fallback = 0) {
  if (j.is_object() && j.contains(key) && j[key].is_number()) return j[key].get<long>();
  return fallback;
}

// A whole number that may come as a number or as its text (API Gateway's PATCH values are text).
long jnumber(const json& j, const char* key, long fallback = 0) {
  if (j.is_object() && j.contains(key) && j[key].is_string()) {
    const std::string t = j[key].get<std::string>();
    char* end = nullptr;
    long n = std::strtol(t.c_str(), &end, 10);
    return !t.empty() && end && *end == '\0' ? n : fallback;
  }
  return jint(j, key, fallback);
}

// The LoggingConfig a function wants: the stack's `logging`, or AWS's default (Text) without
// one. JSON carries both levels (AWS's INFO for one not set); Text carries none (AWS refuses
// levels with Text). LogGroup is AWS's business: never sent, never compared.
json want_logging(const std::optional<stack::LoggingSpec>& l) {
  if (!l || l->format != "JSON") return {{"LogFormat", "Text"}};
  return {{"LogFormat", "JSON"}, {"ApplicationLogLevel", l->application_level()}, {"SystemLogLevel", l->system_level()}};
}

// A configuration's LoggingConfig, normalised the same way for comparison: none at all (moto,
// or configurations from before AWS had it) is Text, and a JSON one without a level has INFO.
json logging_of(const json& config) {
  const json& lc = object_field(config, "LoggingConfig");
  return want_logging(
      stack::LoggingSpec{jstr(lc, "LogFormat"), jstr(lc, "ApplicationLogLevel"), jstr(lc, "SystemLogLevel")});
}

// The configuration fields deploy owns, for comparison: desired vs remote.
std::vector<std::string> config_differences(const json& want, const json& have) {
  std::vector<std::string> diffs;
  for (const char* k : {"Runtime", "Handler", "Role", "Description"})
    if (jstr(want, k) != jstr(have, k)) diffs.push_back(k);
  for (const char* k : {"MemorySize", "Timeout"})
    if (jint(want, k) != jint(have, k)) diffs.push_back(k);
  // Lambda's default (512 MB) when a configuration does not say.
  auto storage = [](const json& j) {
    return j.contains("EphemeralStorage") && j["EphemeralStorage"].is_object() ? jint(j["EphemeralStorage"], "Size", 512)
                                                                                  : 512;
  };
  if (storage(want) != storage(have)) diffs.push_back("EphemeralStorage");
  if (env_vars(want) != env_vars(have)) diffs.push_back("Environment");
  if (layer_arns(want) != layer_arns(have)) diffs.push_back("Layers");
  // The format always; the levels only when JSON is wanted (logging_of gives Text none).
  if (logging_of(want) != logging_of(have)) diffs.push_back("LoggingConfig");
  if (jstr(object_field(want, "DeadLetterConfig"), "TargetArn") != jstr(object_field(have, "DeadLetterConfig"), "TargetArn"))
    diffs.push_back("DeadLetterConfig");
  return diffs;
}

json routing_weights(const json& alias) {
  if (alias.contains("RoutingConfig") && alias["RoutingConfig"].is_object() &&
      alias["RoutingConfig"].contains("AdditionalVersionWeights") &&
      alias["RoutingConfig"]["AdditionalVersionWeights"].is_object())
    return alias["RoutingConfig"]["AdditionalVersionWeights"];
  return json::object();
}

bool weights_equal(const json& a, const json& b) {
  if (a.size() != b.size()) return false;
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (!b.contains(it.key())) return false;
    if (std::abs(it.value().get<double>() - b[it.key()].get<double>()) > 1e-9) return false;
  }
  return true;
}

bool holder_is_gone(const std::string& lock_body);

// A CORS configuration as API Gateway v2 (camelCase keys) or Lambda's function URLs (PascalCase)
// take it.
json cors_config(const stack::CorsSpec& c, bool pascal_case) {
  auto key = [&](std::string k) {
    if (pascal_case) k[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(k[0])));
    return k;
  };
  json cors = {{key("allowOrigins"), c.allow_origins},   {key("allowMethods"), c.allow_methods},
               {key("allowHeaders"), c.allow_headers},   {key("exposeHeaders"), c.expose_headers},
               {key("allowCredentials"), c.allow_credentials}};
  if (c.max_age) cors[key("maxAge")] = *c.max_age;
  return cors;
}

// Whether what AWS holds is the wanted CORS configuration (null: none). AWS leaves out empty
// lists and a false allowCredentials.
bool same_cors_config(const json& want, const json& have) {
  if (!want.is_object()) return have.is_null() || have.empty();
  if (!have.is_object()) return false;
  for (const auto& [k, v] : want.items()) {
    json h = have.value(k, json());
    if (v.is_array() && v.empty() && (h.is_null() || (h.is_array() && h.empty()))) continue;
    if ((k == "allowCredentials" || k == "AllowCredentials") && v == false && h.is_null()) continue;
    if (h != v) return false;
  }
  return true;
}

std::string user_at_host() {
  const char* user = std::getenv("USER");
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return std::string(user && *user ? user : "unknown") + "@" + host;
}

// Method-setting keys come back as "~1movies/GET" or "movies/GET": compare them unescaped.
std::string normal_setting_key(std::string k) {
  for (std::size_t p = 0; (p = k.find("~1", p)) != std::string::npos;) k.replace(p, 2, "/");
  while (!k.empty() && k.front() == '/') k.erase(0, 1);
  return k;
}

// ---------------------------------------------------------------------------------------

class Deployer {
 public:
  Deployer(const stack::Stack& st, const Options& o, aws::Client& client)
      : st_(st), o_(o), r_(client), region_(client.region()), stage_(o.stage) {}

  int run();
  // The change being applied when an exception left run() ("" when none was).
  const std::string& failing_step() const { return failing_step_; }

 private:
  // Planning and applying share every step; `apply_` says which.
  template <class F>
  void change(Change ch, const std::string& kind, const std::string& name, const std::string& detail, F&& f) {
    items_.push_back({ch, kind, name, detail});
    if (!apply_) return;
    p_.line(std::string("  ") + verb(ch) + " " + kind + " " + name + (detail.empty() ? "" : " (" + detail + ")"));
    failing_step_ = std::string(verb(ch)) + " " + kind + " " + name;
    f();
    failing_step_.clear();
  }
  void same(const std::string& kind, const std::string& name, const std::string& detail = "") {
    items_.push_back({Change::unchanged, kind, name, detail});
  }

  void pass(bool apply);
  void print_plan() const;
  void print_summary() const;
  bool confirm() const;

  void identify();
  void prepare_code();
  // The unit key of a function's requirements layer: one per file and Python version.
  std::string requirements_unit(const stack::FunctionSpec& f) const {
    return "layer " + fs::relative(*f.requirements, st_.base_dir).string() + " " + f.runtime.id;
  }
  void step_bucket();
  void step_role();
  // The event-invoke configs this stage's record says its last deploy wrote on function NAME
  // (remote RN), on qualifiers other than `keep`: removed unless another stage's record names
  // them too (`why` ends the plan's line).
  void remove_recorded_invoke_configs(const std::string& name, const std::string& rn,
                                      const std::set<std::string>& keep, const std::string& why);
  void step_uploads();
  void step_layers();
  void step_functions();
  void step_function(const stack::FunctionSpec& f);
  std::string step_version(const stack::FunctionSpec& f, FnState& fs, const json& want, bool changed);
  void step_alias(const std::string& fn, const std::string& remote_name, const std::string& version,
                  const json& weights);
  void step_aliases_from_record(const json& record);
  // Creates or updates alias NAME of a remote function (the stage's, or another the stack defines).
  void put_alias(const std::string& rn, const std::string& name, const std::string& version, const json& weights,
                 const std::string& description);
  // What this stage's definitions invoke through a qualifier: routes and Lambda authorizers
  // (stage variables resolved), event sources, async destinations; `by` names the definition.
  struct Reach {
    std::string function, qualifier, by;
  };
  std::vector<Reach> reached_qualifiers() const;
  // The aliases (other than the stage's) and versions those reach: an alias the stack defines
  // for the function is created or updated as the stack describes it; anything else must
  // exist already. Refused in the plan, before any change, when it cannot be.
  void step_reached_aliases();
  bool version_available(const std::string& fn, const std::string& rn, const std::string& version);
  [[noreturn]] void refuse(const std::string& why) const;
  void step_function_url(const stack::FunctionSpec& f, const std::string& remote_name);
  // Async destinations: the role's permission to reach them, and the stage alias's
  // event-invoke config naming them.
  std::string destination_arn(const stack::DestinationSpec& d) const;
  json destinations_policy() const;
  void step_role_destinations(const std::string& role_name);
  void step_destinations();
  void step_event_sources();
  void wait_updated(const std::string& remote_name);
  void retry_while_role_settles(const std::function<void()>& call);
  void step_rest_api(const stack::ApiSpec& api);
  void step_http_api(const stack::ApiSpec& api);
  void step_permission(const std::string& function_expr, const std::string& qualifier_expr, const std::string& api_id,
                       const std::map<std::string, std::string>& variables, const std::string& source_arn,
                       const std::string& sid_suffix);
  void step_keys_and_plans();
  void step_schedules();
  void step_schedule(const stack::ScheduleSpec& s, const std::string& target_id);
  // The statement ids of the function's (or its qualifier's) resource policy.
  std::vector<std::string> policy_sids(const std::string& remote_fn, const std::string& qualifier);
  bool has_permission(const std::string& remote_fn, const std::string& qualifier, const std::string& sid);
  // Adds a statement to the function's (or its qualifier's) policy; one already there (a
  // previous run got this far) is fine.
  void add_statement(const std::string& remote_fn, const std::string& qualifier, const json& statement);
  // Removes a statement from the function's (or its qualifier's) policy; one already gone is fine.
  void remove_statement(const std::string& remote_fn, const std::string& qualifier, const std::string& sid);
  // Every item of a paged Lambda listing (Marker / NextMarker): path's `field` array, page by page.
  std::vector<json> lambda_list(const std::string& path, const char* field);
  void remove_api_permissions(const std::string& api_id, const std::string& label);
  // The statements step_permission added for Lambda authorizer AUTHORIZER while it invoked
  // `target`, as {function, qualifier, sid}; those `now` (what it invokes now) still needs stay out.
  std::vector<std::array<std::string, 3>> authorizer_grants(const stack::ApiSpec& api, const std::string& api_id,
                                                             const std::string& authorizer, const std::string& target,
                                                             const std::string& now);
  // Deletes the API's authorizers (`remote`, by name; `id_field` names their id: REST "id", HTTP
  // "authorizerId") that the stack no longer has; retire_authorizer_permissions() takes their
  // statements later.
  void remove_gone_authorizers(const stack::ApiSpec& api, const std::string& label, const std::string& base,
                               const std::map<std::string, json>& remote, const char* id_field);
  // The statements of the API's Lambda authorizers on what they invoked before and no longer do
  // (`now`: name -> FUNCTION[:QUALIFIER], "" for JWT; gone ones: not in the stack), as `remote`
  // (the authorizers as this run found them), this stage's record and the other stages' say.
  // REST (`rest_base` not empty): one that another stage still serves a deployment invoking
  // (per its record; or one sluice cannot tell, not serving the definition tagged `tag`) stays,
  // and is returned (name -> targets) for the record, so that a later deploy removes it.
  json retire_authorizer_permissions(const stack::ApiSpec& api, const std::string& api_id, const std::string& label,
                                     const std::map<std::string, json>& remote,
                                     const std::map<std::string, std::string>& now, const std::string& rest_base = "",
                                     const std::string& tag = "");
  // The REST API's stages other than this one whose deployment is not tagged `tag`: stage ->
  // the description of the deployment it serves.
  std::map<std::string, std::string> rest_stages_elsewhere(const std::string& base, const std::string& tag);
  void step_schedule_permission(const std::string& remote_fn, const std::string& qualifier, const std::string& rule,
                                const std::string& rule_arn);
  void remove_schedule_rule(const std::string& rule, const json& targets, const std::string& target_id,
                            const std::string& recorded_target);
  json events(const std::string& action, const json& body) { return r_.target("events", "AWSEvents", action, body); }
  void step_removed();
  // The other stages' current records (state/STAGE/current.json), by stage; read once a pass.
  const std::map<std::string, json>& other_stage_records();
  void step_removed_plans(std::map<std::string, std::set<std::string>>& plan_users,
                          std::map<std::string, std::set<std::string>>& key_users);
  void detach_from_usage_plans(const std::string& api_id, const std::string& stage);
  void step_record();
  json build_record() const;
  const stack::StageSpec* stage_spec(const stack::ApiSpec& api) const;

  // lock
  void acquire_lock();
  void release_lock();

  const stack::Stack& st_;
  const Options& o_;
  Remote r_;
  Progress p_;
  std::string region_, stage_, account_, bucket_, role_arn_, commit_;
  bool apply_ = false;
  std::string failing_step_;
  bool bucket_exists_ = false;
  bool bucket_created_ = false;
  bool locked_ = false;
  std::vector<Item> items_;
  std::map<std::string, Unit> units_;
  std::map<std::string, std::string> layer_arn_;  // layer unit key -> ARN (or kNew)
  std::map<std::string, FnState> fns_;
  std::map<std::string, json> aliases_;            // function -> {"version", "weights"}
  std::map<std::string, ApiOut> apis_;
  json schedules_ = json::object();                // schedule -> {rule, arn, expression, state, target}
  json plans_ = json::object();                    // usage plan name -> id, of plans bound to this stage
  // Function -> the aliases other than the stage's that this pass puts (step_reached_aliases).
  std::map<std::string, std::set<std::string>> reached_aliases_;
  // Function -> the qualifiers whose event-invoke config step_destinations wrote (or found as
  // the stack wants it): recorded, so that the next deploy removes those it no longer writes.
  json invoke_configs_ = json::object();
  std::optional<std::map<std::string, json>> other_records_;  // other_stage_records()
  json keys_ = json::object();                     // API key name -> id, of those plans' keys
  std::map<std::string, std::string> rest_stage_ready_;  // api -> api id once its stage exists
  json source_record_;                             // promote / rollback: the record applied
  json previous_current_;                          // the record current before this run
};

// ---- identity, code -------------------------------------------------------------------

void Deployer::identify() {
  std::string xml = r_.query("sts", "GetCallerIdentity", "2011-06-15");
  account_ = xml_text(xml, "Account");
  if (account_.empty()) throw std::runtime_error("sts:GetCallerIdentity answered without an account id");
  bucket_ = bucket_name(st_.name, account_, region_);
  commit_ = git_commit(st_.base_dir);
}

void Deployer::prepare_code() {
  if (o_.mode != Mode::deploy) return;
  std::map<std::string, std::vector<const package::Archive*>> layers_of;
  for (const auto& [name, f] : st_.functions) {
    std::string key = f.package.empty() ? "function " + name : "package " + f.package;
    if (!units_.count(key)) {
      Unit u;
      u.label = key;
      u.dir = f.code_dir;
      u.archive = package::zip_directory(f.code_dir);
      u.s3_key = "code/" + u.archive.sha256_hex + ".zip";
      units_.emplace(key, std::move(u));
    }
    for (const auto& l : f.layers) {
      std::string lkey = "layer " + fs::relative(l, st_.base_dir).string();
      if (!units_.count(lkey)) {
        Unit u;
        u.label = lkey;
        u.dir = l;
        u.layer_name = fs::relative(l, st_.base_dir).string();
        u.archive = package::zip_directory(l);
        u.s3_key = "layers/" + u.archive.sha256_hex + ".zip";
        units_.emplace(lkey, std::move(u));
      }
    }
    if (f.requirements) {
      // One layer per requirements file and Python version, built by pip for Lambda's
      // platform (cached next to the file, keyed by its bytes, the version and the pip args).
      const std::string rel = fs::relative(*f.requirements, st_.base_dir).string();
      const std::string rkey = requirements_unit(f);
      if (!units_.count(rkey)) {
        package::RequirementsOptions ro;
        ro.extra_pip_args = o_.pip_args;
        p_.line("requirements layer " + rel + " for " + f.runtime.id + " ...");
        auto built = package::build_python_layer(*f.requirements, f.runtime.id, ro);
        p_.line("  " + std::string(built.from_cache ? "cached: " : "built: ") + built.zip_path.string() + " (" +
                human_bytes(built.archive.bytes.size()) + ")");
        Unit u;
        u.label = "requirements " + rel + " (" + f.runtime.id + ")";
        u.dir = *f.requirements;
        u.layer_name = rel + "-" + f.runtime.id;
        u.archive = std::move(built.archive);
        u.s3_key = "layers/" + u.archive.sha256_hex + ".zip";
        units_.emplace(rkey, std::move(u));
      }
    }
    fns_[name].unit = key;
    fns_[name].remote_name = function_name(st_.name, name);
  }
  // Limits before any upload.
  for (const auto& [name, f] : st_.functions) {
    std::vector<const package::Archive*> layers;
    if (f.requirements) layers.push_back(&units_.at(requirements_unit(f)).archive);
    for (const auto& l : f.layers) layers.push_back(&units_.at("layer " + fs::relative(l, st_.base_dir).string()).archive);
    package::check_limits(name, units_.at(fns_[name].unit).archive, layers);
  }
}

// ---- bucket, role, uploads --------------------------------------------------------------

void Deployer::step_bucket() {
  bucket_exists_ = r_.bucket_exists(bucket_);
  if (bucket_exists_) {
    same("bucket", bucket_);
    return;
  }
  change(Change::create, "bucket", bucket_, "", [&] {
    r_.create_bucket(bucket_, region_);
    bucket_exists_ = true;
  });
}

void Deployer::step_role() {
  if (o_.mode == Mode::rollback) return;
  if (!o_.execution_role_arn.empty()) {
    role_arn_ = o_.execution_role_arn;
    same("role", role_arn_, "--role-arn");
    return;
  }
  const std::string name = "sluice-" + st_.name + "-lambda";
  const std::string policy = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
  std::string xml;
  try {
    xml = r_.query("iam", "GetRole", "2010-05-08", {{"RoleName", name}});
  } catch (const aws::ServiceError& e) {
    if (!is_not_found(e)) throw;
  }
  if (xml.empty()) {
    role_arn_ = "arn:aws:iam::" + account_ + ":role/" + name;
    change(Change::create, "role", name, "with AWSLambdaBasicExecutionRole", [&] {
      const std::string trust =
          R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]})";
      std::string created = r_.query("iam", "CreateRole", "2010-05-08",
                                     {{"RoleName", name},
                                      {"AssumeRolePolicyDocument", trust},
                                      {"Description", "Execution role of the sluice stack " + st_.name}});
      auto arn = xml_text(created, "Arn");
      if (!arn.empty()) role_arn_ = arn;
      r_.query("iam", "AttachRolePolicy", "2010-05-08", {{"RoleName", name}, {"PolicyArn", policy}});
    });
    step_role_destinations(name);
    return;
  }
  role_arn_ = xml_text(xml, "Arn");
  std::string attached = r_.query("iam", "ListAttachedRolePolicies", "2010-05-08", {{"RoleName", name}});
  if (attached.find(policy) == std::string::npos) {
    change(Change::update, "role", name, "attach AWSLambdaBasicExecutionRole", [&] {
      r_.query("iam", "AttachRolePolicy", "2010-05-08", {{"RoleName", name}, {"PolicyArn", policy}});
    });
  } else {
    same("role", name);
  }
  step_role_destinations(name);
}

// The ARN a destination has once deployed: a function of the stack is its remote function
// under the stage's alias (or the qualifier the stack gives).
std::string Deployer::destination_arn(const stack::DestinationSpec& d) const {
  if (!d.arn.empty()) return d.arn;
  return "arn:aws:lambda:" + region_ + ":" + account_ + ":function:" + function_name(st_.name, d.function) + ":" +
         (d.qualifier.empty() ? stage_ : d.qualifier);
}

// What the execution role must be allowed to do for the stack's destinations, dead-letter
// queues and event sources (null: nothing).
json Deployer::destinations_policy() const {
  std::map<std::string, std::set<std::string>> by_action;
  for (const auto& [name, f] : st_.functions)
    for (const auto* d : {&f.async.on_success, &f.async.on_failure, &f.async.dead_letter}) {
      if (!*d) continue;
      const auto& dest = **d;
      std::string arn = destination_arn(dest);
      if (dest.service == "sqs") by_action["sqs:SendMessage"].insert(arn);
      else if (dest.service == "sns") by_action["sns:Publish"].insert(arn);
      else if (dest.service == "events") by_action["events:PutEvents"].insert(arn);
      else if (dest.service == "lambda") by_action["lambda:InvokeFunction"].insert(arn);
      else if (dest.service == "s3") {
        by_action["s3:PutObject"].insert(arn + "/*");
        by_action["s3:ListBucket"].insert(arn);
      }
    }
  // Event sources: Lambda reads and deletes the queue's messages with the function's role.
  for (const auto& [name, e] : st_.event_sources)
    for (const char* action : {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"})
      by_action[action].insert(e.queue_arn);
  if (by_action.empty()) return nullptr;
  json statements = json::array();
  for (const auto& [action, arns] : by_action)
    statements.push_back({{"Effect", "Allow"}, {"Action", action}, {"Resource", json(arns)}});
  return {{"Version", "2012-10-17"}, {"Statement", statements}};
}

// An inline policy of the stack's role, "sluice-integrations", kept to what the async
// destinations, dead-letter queues and SQS event sources need.
void Deployer::step_role_destinations(const std::string& role_name) {
  const std::string policy_name = "sluice-integrations";
  json want = destinations_policy();
  json have;
  try {
    std::string xml = r_.query("iam", "GetRolePolicy", "2010-05-08", {{"RoleName", role_name}, {"PolicyName", policy_name}});
    have = json::parse(url_decode(xml_text(xml, "PolicyDocument")), nullptr, false);
  } catch (const aws::ServiceError& e) {
    if (!is_not_found(e)) throw;
  }
  const std::string label = role_name + " " + policy_name;
  if (want.is_null()) {
    if (have.is_object())
      change(Change::remove, "role policy", label, "no destinations or event sources any more", [&] {
        r_.query("iam", "DeleteRolePolicy", "2010-05-08", {{"RoleName", role_name}, {"PolicyName", policy_name}});
      });
    return;
  }
  if (have.is_object() && have.value("Statement", json()) == want["Statement"]) {
    same("role policy", label);
    return;
  }
  std::vector<std::string> actions;
  for (const auto& st : want["Statement"]) actions.push_back(st["Action"].get<std::string>());
  change(have.is_object() ? Change::update : Change::create, "role policy", label,
         "for destinations and event sources: " + join(actions, ", "), [&] {
           r_.query("iam", "PutRolePolicy", "2010-05-08",
                    {{"RoleName", role_name}, {"PolicyName", policy_name}, {"PolicyDocument", want.dump()}});
         });
}

namespace {

// A mapping's filter patterns, each in compact JSON, sorted: what AWS answers and what the stack
// wants compare equal when they hold the same patterns, however written.
std::vector<std::string> filter_patterns(const json& mapping) {
  std::vector<std::string> out;
  if (!mapping.contains("FilterCriteria") || !mapping["FilterCriteria"].is_object()) return out;
  const json& c = mapping["FilterCriteria"];
  if (!c.contains("Filters") || !c["Filters"].is_array()) return out;
  for (const auto& f : c["Filters"]) {
    std::string text = jstr(f, "Pattern");
    auto parsed = json::parse(text, nullptr, false);
    out.push_back(parsed.is_discarded() ? text : parsed.dump());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// SQS event source mappings on the stage's alias of each function (or the qualifier the stack
// gives): created, updated (batch size, window, response types, enabled, filters) and deleted to
// match.
void Deployer::step_event_sources() {
  for (const auto& [fname, f] : st_.functions) {
    const std::string rn = function_name(st_.name, fname);
    std::map<std::string, std::map<std::string, const stack::EventSourceSpec*>> wanted;  // qualifier -> queue -> spec
    for (const auto& [name, e] : st_.event_sources)
      if (e.function == fname) wanted[e.qualifier.empty() ? stage_ : e.qualifier][e.queue_arn] = &e;
    if (!wanted.count(stage_)) wanted[stage_];  // the stage's alias: mappings gone from the stack are removed
    for (const auto& [qual, queues] : wanted) {
      const std::string target = rn + ":" + qual;
      std::vector<json> have;
      if (auto out = r_.get("lambda", "/2015-03-31/event-source-mappings/", {{"FunctionName", target}}))
        if (out->contains("EventSourceMappings") && (*out)["EventSourceMappings"].is_array())
          for (const auto& m : (*out)["EventSourceMappings"]) have.push_back(m);  // those of this alias
      for (const auto& [queue, e] : queues) {
        json want = {{"BatchSize", e->batch_size},
                     {"MaximumBatchingWindowInSeconds", e->batching_window_s},
                     {"FunctionResponseTypes", e->report_batch_item_failures ? json::array({"ReportBatchItemFailures"})
                                                                            : json::array()},
                     {"Enabled", e->enabled}};
        // FilterCriteria: the stack's patterns; an empty object removes a mapping's filters.
        json filters = json::array();
        for (const auto& pattern : e->filters) filters.push_back({{"Pattern", pattern}});
        if (!filters.empty()) want["FilterCriteria"] = {{"Filters", filters}};
        // ScalingConfig: the maximum concurrency; an empty object removes it.
        if (e->max_concurrency > 0) want["ScalingConfig"] = {{"MaximumConcurrency", e->max_concurrency}};
        std::string detail = queue + ", batches of " + std::to_string(e->batch_size);
        if (!e->filters.empty()) detail += ", " + std::to_string(e->filters.size()) + " filter(s)";
        auto it = std::find_if(have.begin(), have.end(), [&](const json& m) { return jstr(m, "EventSourceArn") == queue; });
        if (it == have.end()) {
          change(Change::create, "event source", target, detail, [&] {
            json body = want;
            body["FunctionName"] = target;
            body["EventSourceArn"] = queue;
            retry_while_role_settles([&] { r_.call("POST", "lambda", "/2015-03-31/event-source-mappings/", body); });
          });
          continue;
        }
        std::vector<std::string> d;
        if (jint(*it, "BatchSize", 10) != e->batch_size) d.push_back("BatchSize");
        if (jint(*it, "MaximumBatchingWindowInSeconds", 0) != e->batching_window_s)
          d.push_back("MaximumBatchingWindowInSeconds");
        json types = it->value("FunctionResponseTypes", json::array());
        if ((!types.empty()) != e->report_batch_item_failures) d.push_back("FunctionResponseTypes");
        std::string state = jstr(*it, "State");
        bool enabled = state.empty() ? it->value("Enabled", true) : (state == "Enabled" || state == "Enabling" ||
                                                                     state == "Creating" || state == "Updating");
        if (enabled != e->enabled) d.push_back(e->enabled ? "enable" : "disable");
        int have_max = 0;
        if (it->contains("ScalingConfig") && (*it)["ScalingConfig"].is_object())
          have_max = jint((*it)["ScalingConfig"], "MaximumConcurrency", 0);
        if (have_max != e->max_concurrency) {
          d.push_back("ScalingConfig");
          if (e->max_concurrency == 0) want["ScalingConfig"] = json::object();
        }
        if (filter_patterns(*it) != filter_patterns(want)) {
          d.push_back("FilterCriteria");
          if (e->filters.empty()) want["FilterCriteria"] = json::object();
        }
        const std::string uuid = jstr(*it, "UUID");
        if (d.empty())
          same("event source", target, detail);
        else
          change(Change::update, "event source", target, queue + " (" + join(d, ", ") + ")", [&] {
            r_.call("PUT", "lambda", "/2015-03-31/event-source-mappings/" + uuid, want);
          });
        have.erase(it);
      }
      for (const auto& m : have) {
        if (jstr(m, "EventSourceArn").rfind("arn:aws:sqs:", 0) != 0) continue;  // not one of ours
        const std::string uuid = jstr(m, "UUID");
        change(Change::remove, "event source", target, jstr(m, "EventSourceArn"), [&] {
          r_.call("DELETE", "lambda", "/2015-03-31/event-source-mappings/" + uuid);
        });
      }
    }
  }
}

// The asynchronous invocation config (retries, event age, destinations) of each alias this
// deploy gives a function: the stage's, and those the stack defines that something reaches in
// this stage. Lambda keeps one config per function, version and alias, and an event invoked
// through an alias (as API Gateway, event sources and destinations invoke the stage's) goes by
// the alias's, not the function's: each alias gets the stack's settings. One left at AWS's
// defaults with no destinations needs none, and an existing one is removed. Runs once every
// function and alias of the stage exists, since AWS checks that a destination exists. The
// qualifiers configured are recorded: one the stage's record names and this run no longer
// configures (an alias no route reaches any more) loses its config, unless another stage's
// record names it too.
namespace {
// The destination of an event-invoke config's OnSuccess / OnFailure ("" when none).
std::string dest_of(const json& cfg, const char* side) {
  if (!cfg.is_object() || !cfg.contains("DestinationConfig") || !cfg["DestinationConfig"].is_object())
    return std::string();
  const auto& d = cfg["DestinationConfig"];
  return d.contains(side) && d[side].is_object() ? jstr(d[side], "Destination") : std::string();
}
}  // namespace

void Deployer::step_destinations() {
  for (const auto& [name, f] : st_.functions) {
    const std::string rn = function_name(st_.name, name);
    const std::string path = invoke_config_path(rn);
    const std::string want_success = f.async.on_success ? destination_arn(*f.async.on_success) : "";
    const std::string want_failure = f.async.on_failure ? destination_arn(*f.async.on_failure) : "";
    const bool destinations = !want_success.empty() || !want_failure.empty();
    const bool defaults = !destinations && f.async.max_retry_attempts == 2 && f.async.max_event_age_s == 21600;
    std::vector<std::string> detail;
    if (!want_success.empty()) detail.push_back("on success " + want_success);
    if (!want_failure.empty()) detail.push_back("on failure " + want_failure);
    if (!destinations)
      detail.push_back("retries " + std::to_string(f.async.max_retry_attempts) + ", max age " +
                       std::to_string(f.async.max_event_age_s) + " s");
    json body = {{"MaximumRetryAttempts", f.async.max_retry_attempts},
                 {"MaximumEventAgeInSeconds", f.async.max_event_age_s}};
    if (destinations) {
      json dc = {{"OnSuccess", json::object()}, {"OnFailure", json::object()}};
      if (!want_success.empty()) dc["OnSuccess"] = {{"Destination", want_success}};
      if (!want_failure.empty()) dc["OnFailure"] = {{"Destination", want_failure}};
      body["DestinationConfig"] = dc;
    }
    std::set<std::string> aliases = {stage_};
    if (auto it = reached_aliases_.find(name); it != reached_aliases_.end())
      aliases.insert(it->second.begin(), it->second.end());
    for (const auto& alias : aliases) {
      const aws::Pairs q = {{"Qualifier", alias}};
      const std::string label = rn + ":" + alias;
      std::optional<json> have = r_.get("lambda", path, q);  // none for a new function or alias (404)
      // AWS answers an alias's own config with the alias's ARN. moto answers the function's own
      // (unqualified) one whatever the qualifier: compared with, but never removed as the alias's.
      const bool own = have && ends_with(jstr(*have, "FunctionArn"), ":" + alias);
      const bool had_destinations = have && (!dest_of(*have, "OnSuccess").empty() || !dest_of(*have, "OnFailure").empty());
      if (defaults) {
        if (own)
          change(Change::remove, had_destinations ? "async destinations" : "async invoke config", label, "",
                 [&] { r_.call("DELETE", "lambda", path, nullptr, q); });
        continue;
      }
      const char* kind = destinations ? "async destinations" : "async invoke config";
      const bool same_config = have && dest_of(*have, "OnSuccess") == want_success &&
                               dest_of(*have, "OnFailure") == want_failure &&
                               jint(*have, "MaximumRetryAttempts", 2) == f.async.max_retry_attempts &&
                               jint(*have, "MaximumEventAgeInSeconds", 21600) == f.async.max_event_age_s;
      if (same_config) {
        same(kind, label, join(detail, ", "));
        continue;
      }
      change(own ? Change::update : Change::create, kind, label, join(detail, ", "),
             [&] { retry_while_role_settles([&] { r_.call("PUT", "lambda", path, body, q); }); });
    }
    if (!defaults) invoke_configs_[name] = aliases;
    remove_recorded_invoke_configs(name, rn, aliases, "stage " + stage_ + " no longer deploys this alias");
  }
}

void Deployer::remove_recorded_invoke_configs(const std::string& name, const std::string& rn,
                                              const std::set<std::string>& keep, const std::string& why) {
  const std::string path = invoke_config_path(rn);
  const json& recorded = object_field(previous_current_, "event_invoke_configs");
  if (!recorded.contains(name) || !recorded[name].is_array()) return;
  for (const auto& rq : recorded[name]) {
    if (!rq.is_string() || keep.count(rq.get<std::string>())) continue;
    const std::string alias = rq.get<std::string>();
    const std::string label = rn + ":" + alias;
    std::set<std::string> users;
    for (const auto& [other, rec] : other_stage_records()) {
      const json& theirs = object_field(rec, "event_invoke_configs");
      if (theirs.contains(name) && theirs[name].is_array() && std::count(theirs[name].begin(), theirs[name].end(), alias))
        users.insert(other);
    }
    if (!users.empty()) {
      same("async invoke config", label, "still configured by " + listing(users));
      continue;
    }
    const aws::Pairs q = {{"Qualifier", alias}};
    std::optional<json> have = r_.get("lambda", path, q);
    // Only the alias's own config (see step_destinations): moto answers the function's for every qualifier.
    if (!have || !ends_with(jstr(*have, "FunctionArn"), ":" + alias)) continue;
    const bool had_destinations = !dest_of(*have, "OnSuccess").empty() || !dest_of(*have, "OnFailure").empty();
    change(Change::remove, had_destinations ? "async destinations" : "async invoke config", label, why,
           [this, path, q] { r_.call("DELETE", "lambda", path, nullptr, q); });
  }
}

void Deployer::step_uploads() {
  for (auto& [key, u] : units_) {
    bool exists = bucket_exists_ && r_.object_exists(bucket_, u.s3_key);
    if (exists) {
      same("upload", u.s3_key, u.label);
      continue;
    }
    change(Change::create, "upload", u.s3_key, u.label + ", " + human_bytes(u.archive.bytes.size()), [&] {
      r_.put_object(bucket_, u.s3_key, u.archive.bytes, "application/zip", false,
                    [&](std::size_t sent, std::size_t total) { p_.upload(u.s3_key, sent, total); });
      p_.upload_done(u.s3_key, u.archive.bytes.size());
    });
  }
}

void Deployer::step_layers() {
  for (auto& [key, u] : units_) {
    if (!starts_with(key, "layer ")) continue;
    std::string lname = statement_id(st_.name + "-" + u.layer_name);
    if (lname.size() > 140) lname.resize(140);  // Lambda's limit for a layer name
    while (!lname.empty() && lname.back() == '-') lname.pop_back();
    const std::string description = "sluice sha256:" + u.archive.sha256_hex;
    std::string found;
    if (auto list = r_.get("lambda", "/2018-10-31/layers/" + lname + "/versions")) {
      for (const auto& v : (*list)["LayerVersions"])
        if (jstr(v, "Description") == description) found = jstr(v, "LayerVersionArn");
    }
    if (!found.empty()) {
      layer_arn_[key] = found;
      same("layer", lname, u.archive.sha256_hex.substr(0, 12));
      continue;
    }
    layer_arn_[key] = kNew;
    change(Change::create, "layer version", lname, "", [&] {
      json body = {{"Description", description},
                   {"Content", {{"S3Bucket", bucket_}, {"S3Key", u.s3_key}}}};
      auto out = r_.call("POST", "lambda", "/2018-10-31/layers/" + lname + "/versions", body);
      layer_arn_[key] = jstr(out, "LayerVersionArn");
    });
  }
}

// ---- functions, versions, aliases -------------------------------------------------------

// A role created, or given a policy, seconds ago may not be usable by Lambda yet (IAM is
// eventually consistent): Lambda then refuses the call naming the role ("cannot be assumed",
// "does not have permissions to call SendMessage"); that one refusal is retried for a while.
void Deployer::retry_while_role_settles(const std::function<void()>& call) {
  for (int attempt = 0;; ++attempt) {
    try {
      call();
      return;
    } catch (const aws::ServiceError& e) {
      if (e.code != "InvalidParameterValueException" ||
          (e.message.find("role") == std::string::npos && e.message.find("permission") == std::string::npos) ||
          attempt >= 10)
        throw;
      p_.line("    the execution role is not usable yet; retrying in 3 s");
      std::this_thread::sleep_for(std::chrono::seconds(3));
    }
  }
}

void Deployer::wait_updated(const std::string& remote_name) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  for (;;) {
    auto cfg = r_.call("GET", "lambda", kLambdaApi + remote_name + "/configuration");
    std::string state = jstr(cfg, "State"), last = jstr(cfg, "LastUpdateStatus");
    if (last == "Failed" || state == "Failed")
      throw std::runtime_error("the update of " + remote_name + " failed: " + jstr(cfg, "LastUpdateStatusReason") +
                               jstr(cfg, "StateReason"));
    if (last != "InProgress" && state != "Pending") return;
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("the update of " + remote_name + " did not finish within 5 minutes");
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

void Deployer::step_functions() {
  if (o_.mode == Mode::deploy) {
    for (const auto& [name, f] : st_.functions) step_function(f);
  } else {
    step_aliases_from_record(source_record_);
  }
  // Before anything invokes or grants them (destinations, event sources, permissions).
  if (o_.mode != Mode::rollback) step_reached_aliases();
}

void Deployer::step_function(const stack::FunctionSpec& f) {
  FnState& fs = fns_[f.name];
  const Unit& unit = units_.at(fs.unit);
  const std::string& rn = fs.remote_name;
  json want = {{"Runtime", f.runtime.id},
               {"Handler", f.handler.empty() ? "bootstrap" : f.handler},
               {"Role", role_arn_},
               {"Description", f.description},
               {"MemorySize", f.memory_mb},
               {"Timeout", f.timeout_s},
               {"EphemeralStorage", {{"Size", f.ephemeral_mb}}},
               {"Environment", {{"Variables", f.environment}}}};
  // The requirements layer first: the stack's own layers come later and win in /opt.
  json layers = json::array();
  if (f.requirements) layers.push_back(layer_arn_[requirements_unit(f)]);
  for (const auto& l : f.layers) layers.push_back(layer_arn_["layer " + fs::relative(l, st_.base_dir).string()]);
  want["Layers"] = layers;
  want["LoggingConfig"] = want_logging(f.logging);
  // The dead-letter queue; an empty TargetArn removes one.
  want["DeadLetterConfig"] = {{"TargetArn", f.async.dead_letter ? f.async.dead_letter->arn : ""}};

  auto remote = r_.get("lambda", kLambdaApi + rn);
  bool changed = false;
  if (!remote) {
    changed = true;
    change(Change::create, "function", rn, f.runtime.id, [&] {
      json body = want;
      // Without `logging`, AWS's own default (Text) is left to AWS.
      if (!f.logging) body.erase("LoggingConfig");
      if (!f.async.dead_letter) body.erase("DeadLetterConfig");
      body["FunctionName"] = rn;
      body["Code"] = {{"S3Bucket", bucket_}, {"S3Key", unit.s3_key}};
      body["Publish"] = false;
      body["PackageType"] = "Zip";
      retry_while_role_settles([&] { r_.call("POST", "lambda", "/2015-03-31/functions", body); });
      wait_updated(rn);
    });
  } else {
    const json& cfg = (*remote)["Configuration"];
    if (jstr(cfg, "CodeSha256") != unit.archive.sha256_b64) {
      changed = true;
      change(Change::update, "function code", rn, unit.s3_key, [&] {
        r_.call("PUT", "lambda", kLambdaApi + rn + "/code", {{"S3Bucket", bucket_}, {"S3Key", unit.s3_key}});
        wait_updated(rn);
      });
    }
    auto diffs = config_differences(want, cfg);
    if (!diffs.empty()) {
      changed = true;
      change(Change::update, "function configuration", rn, join(diffs, ", "), [&] {
        json body = want;
        // LoggingConfig only when it differs: an update of another field leaves it alone.
        if (std::find(diffs.begin(), diffs.end(), "LoggingConfig") == diffs.end()) body.erase("LoggingConfig");
        if (std::find(diffs.begin(), diffs.end(), "DeadLetterConfig") == diffs.end()) body.erase("DeadLetterConfig");
        retry_while_role_settles([&] { r_.call("PUT", "lambda", kLambdaApi + rn + "/configuration", body); });
        wait_updated(rn);
      });
    }
    if (!changed) same("function", rn);
  }

  // Reserved concurrency is not part of a version: set on the function itself.
  long have = -1;
  if (remote) {
    auto c = r_.get("lambda", "/2019-09-30/functions/" + rn + "/concurrency");
    if (c) have = jint(*c, "ReservedConcurrentExecutions", -1);
  }
  long want_c = f.reserved_concurrency ? *f.reserved_concurrency : -1;
  if (have != want_c) {
    if (want_c >= 0)
      change(remote ? Change::update : Change::create, "reserved concurrency", rn, std::to_string(want_c), [&] {
        r_.call("PUT", "lambda", "/2017-10-31/functions/" + rn + "/concurrency",
                {{"ReservedConcurrentExecutions", want_c}});
      });
    else
      change(Change::remove, "reserved concurrency", rn, "", [&] {
        r_.call("DELETE", "lambda", "/2017-10-31/functions/" + rn + "/concurrency");
      });
  }

  // Asynchronous invocation settings, on the function (AWS's defaults need no call); the
  // aliases events come through get theirs in step_destinations.
  {
    json have_async;
    if (remote) {
      if (auto cfg = r_.get("lambda", invoke_config_path(rn))) have_async = *cfg;
    }
    long retries = have_async.is_object() ? jint(have_async, "MaximumRetryAttempts", 2) : 2;
    long age = have_async.is_object() ? jint(have_async, "MaximumEventAgeInSeconds", 21600) : 21600;
    if (retries != f.async.max_retry_attempts || age != f.async.max_event_age_s)
      change(have_async.is_object() ? Change::update : Change::create, "async invoke config", rn,
             "retries " + std::to_string(f.async.max_retry_attempts) + ", max age " +
                 std::to_string(f.async.max_event_age_s) + " s",
             [&] {
               r_.call("PUT", "lambda", invoke_config_path(rn),
                       {{"MaximumRetryAttempts", f.async.max_retry_attempts},
                        {"MaximumEventAgeInSeconds", f.async.max_event_age_s}});
             });
  }

  std::string version = step_version(f, fs, want, changed || !remote);
  fs.version = version;

  // The alias named after the stage: the stack's spec decides the version ("$LATEST" means
  // the version this deploy published); without a spec, the new version.
  json weights = json::object();
  std::string target = version;
  auto spec = f.aliases.find(stage_);
  if (spec != f.aliases.end()) {
    if (spec->second.version != "$LATEST") target = spec->second.version;
    if (spec->second.additional) {
      std::string extra = spec->second.additional->first == "$LATEST" ? version : spec->second.additional->first;
      weights[extra] = spec->second.additional->second;
    }
  }
  step_alias(f.name, rn, target, weights);
  step_function_url(f, rn);
}

// The function URL of the stage's alias (each stage its own URL; the stack's `qualifier` is
// the local choice of alias): created, updated or removed to match `url:`, with the public
// permissions an AuthType NONE URL needs (lambda:InvokeFunctionUrl for FunctionUrlAuthType NONE,
// and lambda:InvokeFunction when invoked through the URL, both asked for since October 2025).
void Deployer::step_function_url(const stack::FunctionSpec& f, const std::string& rn) {
  const std::string path = "/2021-10-31/functions/" + rn + "/url";
  const aws::Pairs q = {{"Qualifier", stage_}};
  const std::string label = rn + ":" + stage_;
  std::optional<json> remote;
  try {
    remote = r_.get("lambda", path, q);  // none yet for a new function or alias (404)
  } catch (const aws::ServiceError& e) {
    if (!is_not_found(e)) throw;
  }
  const std::string public_sid = "sluice-url-public", invoke_sid = "sluice-url-invoke";
  if (!f.url) {
    if (remote)
      change(Change::remove, "function URL", label, jstr(*remote, "FunctionUrl"), [&] {
        r_.call("DELETE", "lambda", path, nullptr, q);
        remove_statement(rn, stage_, public_sid);
        remove_statement(rn, stage_, invoke_sid);
      });
    return;
  }
  json want = {{"AuthType", f.url->auth_type}, {"InvokeMode", f.url->invoke_mode}};
  if (f.url->cors) want["Cors"] = cors_config(*f.url->cors, true);
  auto differences = [&](const json& have) {
    std::vector<std::string> d;
    if (jstr(have, "AuthType") != f.url->auth_type) d.push_back("AuthType");
    std::string mode = jstr(have, "InvokeMode");
    if (!mode.empty() && mode != f.url->invoke_mode && !(mode == "Buffered" && f.url->invoke_mode == "BUFFERED"))
      d.push_back("InvokeMode");
    if (!same_cors_config(want.value("Cors", json()), have.value("Cors", json()))) d.push_back("Cors");
    return d;
  };
  std::string detail = "AuthType " + f.url->auth_type + ", " + f.url->invoke_mode;
  if (!remote) {
    change(Change::create, "function URL", label, detail, [&] {
      auto made = r_.call("POST", "lambda", path, want, q);
      fns_[f.name].url = jstr(made, "FunctionUrl");
    });
  } else {
    fns_[f.name].url = jstr(*remote, "FunctionUrl");
    auto d = differences(*remote);
    if (d.empty()) {
      same("function URL", label, detail);
    } else {
      change(Change::update, "function URL", label, join(d, ", "), [&] {
        json body = want;
        if (!body.contains("Cors")) body["Cors"] = json::object();  // an empty one clears it
        auto updated = r_.call("PUT", "lambda", path, body, q);
        if (!jstr(updated, "FunctionUrl").empty()) fns_[f.name].url = jstr(updated, "FunctionUrl");
      });
    }
  }
  // Anyone may call an AuthType NONE URL; an AWS_IAM one is for callers whose IAM policies allow it.
  bool is_public = f.url->auth_type == "NONE";
  bool have_public = remote && has_permission(rn, stage_, public_sid);
  if (is_public && !have_public) {
    change(Change::create, "permission", label, "lambda:InvokeFunctionUrl and lambda:InvokeFunction for everyone, "
           "through the function URL", [&] {
      add_statement(rn, stage_, {{"StatementId", public_sid}, {"Action", "lambda:InvokeFunctionUrl"},
                                 {"Principal", "*"}, {"FunctionUrlAuthType", "NONE"}});
      add_statement(rn, stage_, {{"StatementId", invoke_sid}, {"Action", "lambda:InvokeFunction"},
                                 {"Principal", "*"}, {"InvokedViaFunctionUrl", true}});
    });
  } else if (!is_public && have_public) {
    change(Change::remove, "permission", label, "public access through the function URL (now AWS_IAM)", [&] {
      remove_statement(rn, stage_, public_sid);
      remove_statement(rn, stage_, invoke_sid);
    });
  }
}

std::string Deployer::step_version(const stack::FunctionSpec& f, FnState& fs, const json& want, bool changed) {
  const Unit& unit = units_.at(fs.unit);
  const std::string& rn = fs.remote_name;
  // The newest published version, if it already holds this code and configuration, is
  // reused: a deploy killed between an update and its publication publishes next time.
  std::string latest_match;
  if (!changed || apply_) {
    long best = -1;
    json best_cfg;
    for (const auto& v : lambda_list(kLambdaApi + rn + "/versions", "Versions")) {
      std::string ver = jstr(v, "Version");
      if (ver == "$LATEST") continue;
      long n = std::strtol(ver.c_str(), nullptr, 10);
      if (n > best) {
        best = n;
        best_cfg = v;
      }
    }
    // A version's Description is its own (the commit), not the function's: not compared.
    json want_v = want;
    want_v["Description"] = jstr(best_cfg, "Description");
    if (best >= 0 && jstr(best_cfg, "CodeSha256") == unit.archive.sha256_b64 &&
        config_differences(want_v, best_cfg).empty())
      latest_match = std::to_string(best);
  }
  if (!latest_match.empty()) {
    same("version", rn + ":" + latest_match);
    return latest_match;
  }
  std::string published = kNew;
  std::string description = "sluice deploy --stage " + stage_;
  if (!commit_.empty()) description += " (git " + commit_ + ")";
  change(Change::create, "version", rn, description, [&] {
    auto out = r_.call("POST", "lambda", kLambdaApi + rn + "/versions",
                       {{"Description", description}, {"CodeSha256", unit.archive.sha256_b64}});
    published = jstr(out, "Version");
  });
  return published;
}

void Deployer::step_alias(const std::string& fn, const std::string& rn, const std::string& version,
                          const json& weights) {
  aliases_[fn] = {{"function", rn}, {"version", version}, {"weights", weights}};
  put_alias(rn, stage_, version, weights, "sluice stage " + stage_);
}

void Deployer::put_alias(const std::string& rn, const std::string& name, const std::string& version,
                         const json& weights, const std::string& description) {
  auto remote = r_.get("lambda", kLambdaApi + rn + "/aliases/" + name);
  json body = {{"FunctionVersion", version}, {"RoutingConfig", {{"AdditionalVersionWeights", weights}}}};
  std::string detail = "version " + version;
  for (const auto& [v, w] : weights.items()) detail += " (+ " + v + " at " + fixed2(w.get<double>()) + ")";
  if (!remote) {
    change(Change::create, "alias", rn + ":" + name, detail, [&] {
      body["Name"] = name;
      body["Description"] = description;
      if (weights.empty()) body.erase("RoutingConfig");  // an empty one only serves to clear
      r_.call("POST", "lambda", kLambdaApi + rn + "/aliases", body);
    });
    return;
  }
  std::string have = jstr(*remote, "FunctionVersion");
  if (have == version && weights_equal(routing_weights(*remote), weights)) {
    same("alias", rn + ":" + name, detail);
    return;
  }
  change(Change::update, "alias", rn + ":" + name, "version " + have + " -> " + detail.substr(8), [&] {
    r_.call("PUT", "lambda", kLambdaApi + rn + "/aliases/" + name, body);
  });
}

void Deployer::refuse(const std::string& why) const {
  throw std::runtime_error(why + (apply_ ? std::string() : "; nothing was changed"));
}

std::vector<Deployer::Reach> Deployer::reached_qualifiers() const {
  std::vector<Reach> out;
  for (const auto& [an, api] : st_.apis) {
    const stack::StageSpec* ss = stage_spec(api);
    const std::map<std::string, std::string> vars = ss ? ss->variables : std::map<std::string, std::string>{};
    auto add = [&](const std::string& f, const std::string& q, const std::string& by) {
      auto fs = substitute_stage_variables(f, vars), qs = substitute_stage_variables(q, vars);
      if (fs && qs) out.push_back({*fs, *qs, by});  // else step_permission warns
    };
    for (const auto& route : api.routes)
      add(route.target.function, route.target.qualifier, "route " + route.key + " of API " + an);
    for (const auto& [name, a] : api.authorizers) {
      if (a.type == stack::AuthorizerType::jwt || a.function.empty()) continue;
      auto [f, q] = split_target(a.function);
      add(f, q, "authorizer " + name + " of API " + an);
    }
  }
  if (o_.mode == Mode::deploy) {
    for (const auto& [name, e] : st_.event_sources)
      if (!e.qualifier.empty()) out.push_back({e.function, e.qualifier, "event source " + name});
    for (const auto& [fname, f] : st_.functions)
      for (const auto* d : {&f.async.on_success, &f.async.on_failure})
        if (*d && (*d)->arn.empty() && !(*d)->qualifier.empty())
          out.push_back({(*d)->function, (*d)->qualifier, "the async destination of function " + fname});
  }
  return out;
}

bool Deployer::version_available(const std::string& fn, const std::string& rn, const std::string& version) {
  if (version == kNew) return true;  // the one this deploy publishes
  if (r_.get("lambda", kLambdaApi + rn, {{"Qualifier", version}})) return true;
  // In the plan, the version this deploy is going to publish does not exist yet: Lambda numbers
  // it after the newest one.
  auto it = fns_.find(fn);
  if (!apply_ && it != fns_.end() && it->second.version == kNew) {
    long newest = 0;
    for (const auto& v : lambda_list(kLambdaApi + rn + "/versions", "Versions"))
      newest = std::max(newest, std::strtol(jstr(v, "Version").c_str(), nullptr, 10));
    return version == std::to_string(newest + 1);
  }
  return false;
}

void Deployer::step_reached_aliases() {
  // Aliases named after another stage of the stack's APIs are that stage's: its deploys move them.
  std::set<std::string> other_stages;
  for (const auto& [an, api] : st_.apis)
    for (const auto& [sn, ss] : api.stages)
      if (sn != stage_) other_stages.insert(sn);
  auto is_version = [](const std::string& q) {
    return !q.empty() && std::all_of(q.begin(), q.end(), [](unsigned char c) { return std::isdigit(c); });
  };
  std::set<std::pair<std::string, std::string>> done;
  for (const auto& r : reached_qualifiers()) {
    auto fit = st_.functions.find(r.function);
    if (fit == st_.functions.end())
      refuse(r.by + " reaches function " + r.function + " in stage " + stage_ + ", which the stack does not define");
    const std::string q = permission_qualifier(r.qualifier);
    if (q.empty() || q == stage_ || !done.insert({r.function, q}).second) continue;
    const stack::FunctionSpec& f = fit->second;
    const std::string rn = function_name(st_.name, r.function);
    const std::string target = r.function + ":" + q;
    if (is_version(q)) {
      if (!version_available(r.function, rn, q))
        refuse(r.by + " reaches " + target + " in stage " + stage_ + ", but version " + q + " of " + rn +
               " does not exist in AWS (deploy publishes versions as the code changes: name one that exists, or an alias)");
      continue;
    }
    auto spec = f.aliases.find(q);
    if (spec == f.aliases.end() || other_stages.count(q)) {
      // Not this deploy's to make: it must exist already.
      if (r_.get("lambda", kLambdaApi + rn + "/aliases/" + q)) {
        same("alias", rn + ":" + q, "used by " + r.by);
        continue;
      }
      if (spec == f.aliases.end())
        refuse(r.by + " reaches " + target + " in stage " + stage_ + ", but the stack defines no alias " + q + " for " +
               r.function + " and " + rn + " has none in AWS; declare it under functions." + r.function + ".aliases");
      refuse(r.by + " reaches " + target + " in stage " + stage_ + ", but alias " + q + " of " + rn +
             " does not exist yet: it is stage " + q + "'s alias, which `sluice deploy --stage " + q +
             "` creates; deploy that stage first");
    }
    // An alias the stack defines: its version ($LATEST: the version this stage runs, as for the
    // stage's alias) and its weights, as the stack describes them.
    const stack::AliasSpec& a = spec->second;
    const std::string runs = fns_.count(r.function) ? fns_.at(r.function).version : std::string();
    auto resolve = [&](const std::string& v) { return v == "$LATEST" ? runs : v; };
    std::string version = resolve(a.version);
    json weights = json::object();
    if (a.additional) weights[resolve(a.additional->first)] = a.additional->second;
    std::vector<std::string> needed{version};
    for (const auto& [v, w] : weights.items()) needed.push_back(v);
    for (const auto& v : needed) {
      if (v.empty())
        refuse(r.by + " reaches " + target + " in stage " + stage_ + ", whose version is the one stage " + stage_ +
               " runs, but " + (o_.mode == Mode::promote ? "the promoted record names none for " + r.function
                                                         : std::string("none is known")));
      if (!version_available(r.function, rn, v))
        refuse(r.by + " reaches " + target + " in stage " + stage_ + ": functions." + r.function + ".aliases." + q +
               " names version " + v + ", which " + rn + " does not have in AWS (deploy publishes versions as the " +
               "code changes: name one that exists)");
    }
    put_alias(rn, q, version, weights, "sluice alias " + q + " of stack " + st_.name);
    reached_aliases_[r.function].insert(q);
  }
}

void Deployer::step_aliases_from_record(const json& record) {
  for (const auto& [fn, entry] : record["functions"].items()) {
    std::string rn = entry.value("name", function_name(st_.name, fn));
    std::string version = entry["alias"].value("version", "");
    json weights = entry["alias"].value("weights", json::object());
    if (version.empty() || version == kNew)
      throw std::runtime_error("the record names no version for " + fn);
    if (!r_.get("lambda", kLambdaApi + rn, {{"Qualifier", version}}))
      throw std::runtime_error("version " + version + " of " + rn + " no longer exists");
    fns_[fn].remote_name = rn;
    fns_[fn].version = version;
    fns_[fn].exists = true;
    step_alias(fn, rn, version, weights);
  }
}

// ---- permissions -----------------------------------------------------------------------

std::vector<std::string> Deployer::policy_sids(const std::string& rn, const std::string& qual) {
  aws::Pairs q;
  if (!qual.empty()) q.emplace_back("Qualifier", qual);
  std::optional<json> policy;
  try {
    policy = r_.get("lambda", kLambdaApi + rn + "/policy", q);
  } catch (const aws::ServiceError& e) {
    if (e.status != 400) throw;  // no policy yet
  }
  std::vector<std::string> sids;
  if (!policy || !policy->contains("Policy")) return sids;
  auto doc = json::parse(policy->value("Policy", "{}"), nullptr, false);
  if (doc.is_discarded() || !doc.contains("Statement") || !doc["Statement"].is_array()) return sids;
  for (const auto& st : doc["Statement"]) sids.push_back(jstr(st, "Sid"));
  return sids;
}

bool Deployer::has_permission(const std::string& rn, const std::string& qual, const std::string& sid) {
  auto sids = policy_sids(rn, qual);
  return std::find(sids.begin(), sids.end(), sid) != sids.end();
}

void Deployer::add_statement(const std::string& rn, const std::string& qual, const json& statement) {
  aws::Pairs q;
  if (!qual.empty()) q.emplace_back("Qualifier", qual);
  try {
    r_.call("POST", "lambda", kLambdaApi + rn + "/policy", statement, q);
  } catch (const aws::ServiceError& e) {
    if (e.code != "ResourceConflictException") throw;
  }
}

void Deployer::remove_statement(const std::string& rn, const std::string& qual, const std::string& sid) {
  aws::Pairs q;
  if (!qual.empty()) q.emplace_back("Qualifier", qual);
  try {
    r_.call("DELETE", "lambda", kLambdaApi + rn + "/policy/" + sid, nullptr, q);
  } catch (const aws::ServiceError& e) {
    if (!is_not_found(e)) throw;
  }
}

std::vector<json> Deployer::lambda_list(const std::string& path, const char* field) {
  std::vector<json> items;
  std::string marker;
  for (;;) {
    aws::Pairs q = {{"MaxItems", "50"}};
    if (!marker.empty()) q.emplace_back("Marker", marker);
    auto page = r_.get("lambda", path, q);
    if (!page) break;
    for (const auto& item : page->value(field, json::array())) items.push_back(item);
    marker = jstr(*page, "NextMarker");
    if (marker.empty()) break;
  }
  return items;
}

void Deployer::step_permission(const std::string& function_expr, const std::string& qualifier_expr,
                               const std::string& api_id, const std::map<std::string, std::string>& variables,
                               const std::string& source_arn, const std::string& sid_suffix) {
  auto fn = substitute_stage_variables(function_expr, variables);
  auto qual = substitute_stage_variables(qualifier_expr, variables);
  if (!fn || !qual) {
    p_.line("  warning: " + function_expr + (qualifier_expr.empty() ? "" : ":" + qualifier_expr) +
            " uses a stage variable stage " + stage_ + " does not define; no permission added");
    return;
  }
  // $LATEST has no policy of its own: the function's (unqualified) policy covers it.
  qual = permission_qualifier(*qual);
  std::string rn = function_name(st_.name, *fn);
  std::string sid = statement_id("sluice-" + (api_id == kNew ? std::string("new") : api_id) + "-" + sid_suffix +
                                 (qual->empty() ? "" : "-" + *qual));
  std::string label = rn + (qual->empty() ? "" : ":" + *qual);
  bool present = api_id != kNew && has_permission(rn, *qual, sid);
  if (present) {
    same("permission", label, "apigateway");
    return;
  }
  change(Change::create, "permission", label, "lambda:InvokeFunction for apigateway.amazonaws.com", [&] {
    add_statement(rn, *qual, {{"StatementId", sid},
                              {"Action", "lambda:InvokeFunction"},
                              {"Principal", "apigateway.amazonaws.com"},
                              {"SourceArn", source_arn}});
  });
}

// The statement step_permission added for Lambda authorizer AUTHORIZER while it invoked `target`
// (FUNCTION[:QUALIFIER] as its URI names it; "sluice-API-auth-NAME", "-QUALIFIER" appended for a
// qualified function), resolved under each stage's variables, where the function's policy has it.
// `now` is what the authorizer invokes now ("" when none): a function and qualifier it still
// resolves to under some stage keeps its statement, which has the same id.
std::vector<std::array<std::string, 3>> Deployer::authorizer_grants(const stack::ApiSpec& api,
                                                                    const std::string& api_id,
                                                                    const std::string& authorizer,
                                                                    const std::string& target, const std::string& now) {
  std::vector<std::array<std::string, 3>> out;
  if (target.empty()) return out;  // a JWT authorizer: no function
  std::vector<std::map<std::string, std::string>> stage_variables;
  for (const auto& [sn, ss] : api.stages) stage_variables.push_back(ss.variables);
  if (!stage_spec(api)) stage_variables.emplace_back();
  auto resolved = [&](const std::string& t) {  // {function, permission qualifier}, once each
    std::set<std::pair<std::string, std::string>> found;
    if (t.empty()) return found;
    for (const auto& variables : stage_variables)
      if (auto r = substitute_stage_variables(t, variables)) {
        const auto [rn, qual] = split_target(*r);
        found.insert({rn, permission_qualifier(qual)});
      }
    return found;
  };
  const auto kept = resolved(now);
  for (const auto& [rn, qual] : resolved(target)) {
    if (kept.count({rn, qual})) continue;
    const std::string sid = statement_id("sluice-" + api_id + "-auth-" + authorizer + (qual.empty() ? "" : "-" + qual));
    if (has_permission(rn, qual, sid)) out.push_back({rn, qual, sid});
  }
  return out;
}

void Deployer::remove_gone_authorizers(const stack::ApiSpec& api, const std::string& label, const std::string& base,
                                       const std::map<std::string, json>& remote, const char* id_field) {
  for (const auto& [an, a] : remote)
    if (!api.authorizers.count(an))
      change(Change::remove, "authorizer", label + " " + an, "no longer in the stack",
             [&, aid = jstr(a, id_field)] { r_.call("DELETE", "apigateway", base + "/authorizers/" + aid); });
}

std::map<std::string, std::string> Deployer::rest_stages_elsewhere(const std::string& base, const std::string& tag) {
  std::map<std::string, std::string> out;
  for (const auto& s : r_.call("GET", "apigateway", base + "/stages").value("item", json::array())) {
    const std::string sn = jstr(s, "stageName");
    if (sn.empty() || sn == stage_) continue;
    std::string served;
    if (auto dep = r_.get("apigateway", base + "/deployments/" + jstr(s, "deploymentId"))) served = jstr(*dep, "description");
    if (served != tag) out[sn] = served;
  }
  return out;
}

// Runs once what the authorizers invoke now may be invoked and (REST) the stage serves the
// deployment that invokes it, so the old one is not refused meanwhile. The stage's record is read
// too: it is written last, so after a run killed between an authorizer's update (or deletion) and
// this removal it still names what the authorizer invoked before. A REST stage serves the
// deployment it was given, authorizers included, until it is deployed again (API Gateway:
// "Updates to REST APIs that require redeployment"), so what another stage's deployment still
// invokes keeps its statement until that stage moves on.
json Deployer::retire_authorizer_permissions(const stack::ApiSpec& api, const std::string& api_id,
                                             const std::string& label, const std::map<std::string, json>& remote,
                                             const std::map<std::string, std::string>& now,
                                             const std::string& rest_base, const std::string& tag) {
  json kept = json::object();
  if (api_id == kNew) return kept;
  // Statement ids name the API: a record of an API since replaced says nothing about this one.
  auto api_record = [&](const json& rec) {
    const json& a = object_field(object_field(rec, "apis"), api.name.c_str());
    return jstr(a, "id") == api_id ? a : json();
  };
  std::map<std::string, std::set<std::string>> before;  // name -> what it may have invoked
  auto note_record = [&](const json& a) {
    for (const auto& [an, t] : object_field(a, "authorizer_functions").items())
      if (t.is_string()) before[an].insert(t.get<std::string>());
    for (const auto& [an, ts] : object_field(a, "retired_authorizer_functions").items())
      if (ts.is_array())
        for (const auto& t : ts)
          if (t.is_string()) before[an].insert(t.get<std::string>());
  };
  note_record(api_record(previous_current_));
  for (const auto& [other, rec] : other_stage_records()) note_record(api_record(rec));
  for (const auto& [an, a] : remote) before[an].insert(invoked_target(jstr(a, "authorizerUri")));

  std::optional<std::map<std::string, std::string>> elsewhere;
  // Why another REST stage's deployment may still invoke `old` through authorizer `an`, or "".
  auto still_invoked_by = [&](const std::string& an, const std::string& old) -> std::string {
    if (rest_base.empty()) return "";  // HTTP APIs: every stage is auto-deployed, all at once
    if (!elsewhere) elsewhere = rest_stages_elsewhere(rest_base, tag);
    for (const auto& [sn, served] : *elsewhere) {
      auto it = other_stage_records().find(sn);
      const json a = it == other_stage_records().end() ? json() : api_record(it->second);
      if (served.empty() || jstr(a, "deployment") != served)
        return "stage " + sn + " serves a deployment that sluice has no record of, which may invoke it (a deploy of " +
               sn + " with sluice removes it)";
      if (jstr(object_field(a, "authorizer_functions"), an.c_str()) == old)
        return "stage " + sn + " still serves a deployment that invokes it (a deploy of " + sn + " removes it)";
    }
    return "";
  };
  for (const auto& [an, olds] : before) {
    const bool in_stack = api.authorizers.count(an) > 0;
    auto it = now.find(an);
    const std::string target = in_stack && it != now.end() ? it->second : "";
    for (const auto& old : olds) {
      if (old == target) continue;
      const auto grants = authorizer_grants(api, api_id, an, old, target);
      if (grants.empty()) continue;
      if (const std::string why_kept = still_invoked_by(an, old); !why_kept.empty()) {
        kept[an].push_back(old);
        if (!apply_)
          p_.line("  note: authorizer " + an + " of " + label + " keeps its permission on " + old + ": " + why_kept);
        continue;
      }
      const std::string why =
          !in_stack ? "is gone" : target.empty() ? "no longer invokes a function" : "now invokes " + target;
      for (const auto& [rn, qual, sid] : grants)
        change(Change::remove, "permission", rn + (qual.empty() ? "" : ":" + qual),
               sid + ": authorizer " + an + " of " + label + " " + why,
               [this, rn = rn, qual = qual, sid = sid] { remove_statement(rn, qual, sid); });
    }
  }
  return kept;
}

const stack::StageSpec* Deployer::stage_spec(const stack::ApiSpec& api) const {
  auto it = api.stages.find(stage_);
  return it == api.stages.end() ? nullptr : &it->second;
}

// ---- REST APIs -------------------------------------------------------------------------

struct WantMethod {
  std::string path, method, auth_type = "NONE", authorizer, uri;
  bool api_key = false;
  const stack::RouteSpec* route = nullptr;
};

void Deployer::step_rest_api(const stack::ApiSpec& api) {
  const std::string name = st_.name + "-" + api.name;
  const stack::StageSpec* sspec = stage_spec(api);
  std::map<std::string, std::string> variables = sspec ? sspec->variables : std::map<std::string, std::string>{};
  if (!sspec) p_.line("  note: API " + api.name + " declares no stage " + stage_ + "; it gets one without variables");

  // Desired methods.
  std::vector<WantMethod> want;
  for (const auto& route : api.routes) {
    if (route.path.empty()) continue;
    WantMethod m;
    m.route = &route;
    m.path = route.path;
    m.method = route.method;
    m.api_key = route.api_key_required;
    m.authorizer = route.authorizer;
    std::string fn_arn = function_arn(region_, account_, function_name(st_.name, route.target.function),
                                      permission_qualifier(route.target.qualifier));
    m.uri = invocation_uri(region_, fn_arn);
    want.push_back(m);
  }
  std::set<std::string> paths = {"/"};
  for (const auto& m : want) {
    std::string acc;
    for (const auto& part : split(m.path.substr(1), '/')) {
      if (part.empty()) continue;
      acc += "/" + part;
      paths.insert(acc);
    }
  }
  // The definition's fingerprint names the deployment, so a stage is redeployed exactly
  // when the definition it serves differs (even if a previous run died before deploying). It
  // is made of what is sent for each authorizer, method and integration (ids aside), below.
  std::string fingerprint;

  // The API itself.
  std::string id;
  json remote_api;
  auto list = r_.call("GET", "apigateway", "/restapis", nullptr, {{"limit", "500"}});
  for (const auto& item : list.value("item", json::array()))
    if (jstr(item, "name") == name) {
      id = jstr(item, "id");
      remote_api = item;
    }
  if (id.empty()) {
    id = kNew;
    change(Change::create, "REST API", name, "", [&] {
      json body = {{"name", name},
                   {"description", "sluice stack " + st_.name + ", API " + api.name},
                   {"endpointConfiguration", {{"types", {"REGIONAL"}}}}};
      if (!api.binary_media_types.empty()) body["binaryMediaTypes"] = api.binary_media_types;
      body["apiKeySource"] = api.api_key_source;
      auto created = r_.call("POST", "apigateway", "/restapis", body);
      id = jstr(created, "id");
      // moto 5 ignores binaryMediaTypes on create: add them when they did not stick.
      if (!api.binary_media_types.empty() && created.value("binaryMediaTypes", json::array()).empty()) {
        json ops = json::array();
        for (const auto& t : api.binary_media_types) {
          std::string esc = t;
          for (std::size_t p = 0; (p = esc.find('/', p)) != std::string::npos; p += 2) esc.replace(p, 1, "~1");
          ops.push_back({{"op", "add"}, {"path", "/binaryMediaTypes/" + esc}, {"value", t}});
        }
        r_.call("PATCH", "apigateway", "/restapis/" + id, {{"patchOperations", ops}});
      }
    });
  } else {
    // Binary media types: one add / remove per type (the path holds it, '/' as "~1"; moto
    // reads the value, so both are sent).
    std::set<std::string> have, want_types(api.binary_media_types.begin(), api.binary_media_types.end());
    if (remote_api.contains("binaryMediaTypes") && remote_api["binaryMediaTypes"].is_array())
      for (const auto& t : remote_api["binaryMediaTypes"])
        if (t.is_string()) have.insert(t.get<std::string>());
    auto escaped = [](std::string t) {
      for (std::size_t p = 0; (p = t.find('/', p)) != std::string::npos; p += 2) t.replace(p, 1, "~1");
      return t;
    };
    json ops = json::array();
    for (const auto& t : want_types)
      if (!have.count(t)) ops.push_back({{"op", "add"}, {"path", "/binaryMediaTypes/" + escaped(t)}, {"value", t}});
    for (const auto& t : have)
      if (!want_types.count(t)) ops.push_back({{"op", "remove"}, {"path", "/binaryMediaTypes/" + escaped(t)}, {"value", t}});
    std::vector<std::string> what;
    if (!ops.empty()) what.push_back("binary media types");
    // Where keyed methods take their API key from (HEADER when never set).
    std::string remote_source = remote_api.value("apiKeySource", std::string("HEADER"));
    if (remote_source.empty()) remote_source = "HEADER";
    if (remote_source != api.api_key_source) {
      ops.push_back({{"op", "replace"}, {"path", "/apiKeySource"}, {"value", api.api_key_source}});
      what.push_back("API key source " + remote_source + " -> " + api.api_key_source);
    }
    if (ops.empty())
      same("REST API", name, id);
    else
      change(Change::update, "REST API", name, join(what, ", "), [&] {
        r_.call("PATCH", "apigateway", "/restapis/" + id, {{"patchOperations", ops}});
      });
  }
  const bool fresh = id == kNew;
  const std::string base = "/restapis/" + id;

  // Resources, by path.
  std::map<std::string, std::string> res_id;
  std::map<std::string, std::set<std::string>> res_methods;
  if (!fresh) {
    auto res = r_.call("GET", "apigateway", base + "/resources", nullptr, {{"limit", "500"}, {"embed", "methods"}});
    for (const auto& item : res.value("item", json::array())) {
      res_id[jstr(item, "path")] = jstr(item, "id");
      if (item.contains("resourceMethods") && item["resourceMethods"].is_object())
        for (const auto& [mname, _] : item["resourceMethods"].items()) res_methods[jstr(item, "path")].insert(mname);
    }
  }
  for (const auto& path : paths) {  // std::set orders parents before children
    if (res_id.count(path)) continue;
    if (path == "/") {
      res_id[path] = kNew;
      continue;
    }
    auto slash = path.rfind('/');
    std::string parent = slash == 0 ? "/" : path.substr(0, slash);
    res_id[path] = kNew;
    change(Change::create, "resource", name + " " + path, "", [&] {
      json body = {{"pathPart", path.substr(slash + 1)}};
      res_id[path] = jstr(r_.call("POST", "apigateway", base + "/resources/" + res_id.at(parent), body), "id");
    });
  }

  // Authorizers (Lambda TOKEN / REQUEST).
  std::map<std::string, std::string> auth_id;
  std::map<std::string, json> remote_auth;  // also those the stack no longer has: removed below
  std::map<std::string, std::string> auth_target;  // name -> the FUNCTION[:QUALIFIER] it invokes
  {
    if (!fresh)
      for (const auto& a : r_.call("GET", "apigateway", base + "/authorizers").value("item", json::array()))
        remote_auth[jstr(a, "name")] = a;
    for (const auto& [an, a] : api.authorizers) {
      if (a.type == stack::AuthorizerType::jwt) {
        p_.line("  warning: REST API " + api.name + ": JWT authorizer " + an + " is an HTTP API feature; skipped");
        continue;
      }
      const auto [fn, qual] = split_target(a.function);
      json body = {{"name", an},
                   {"type", a.type == stack::AuthorizerType::token ? "TOKEN" : "REQUEST"},
                   {"authorizerUri", invocation_uri(region_, function_arn(region_, account_, function_name(st_.name, fn),
                                                                         permission_qualifier(qual)))},
                   {"identitySource", a.identity_sources.empty() && a.type == stack::AuthorizerType::token
                                          ? std::string("method.request.header.Authorization")
                                          : join(a.identity_sources, ", ")},
                   {"authorizerResultTtlInSeconds", a.ttl_s}};
      if (!a.identity_validation_expression.empty()) body["identityValidationExpression"] = a.identity_validation_expression;
      fingerprint += "authorizer " + body.dump() + "\n";
      auth_target[an] = invoked_target(body["authorizerUri"].get<std::string>());
      auto it = remote_auth.find(an);
      if (it == remote_auth.end()) {
        auth_id[an] = kNew;
        change(Change::create, "authorizer", name + " " + an, body["type"], [&] {
          auto created = r_.call("POST", "apigateway", base + "/authorizers", body);
          auth_id[an] = jstr(created, "id");
          // moto 5 drops identityValidationExpression on create: set it when it did not stick.
          if (body.contains("identityValidationExpression") && jstr(created, "identityValidationExpression").empty()) {
            json ops = json::array({{{"op", "replace"}, {"path", "/identityValidationExpression"},
                                     {"value", body["identityValidationExpression"]}}});
            r_.call("PATCH", "apigateway", base + "/authorizers/" + auth_id[an], {{"patchOperations", ops}});
          }
        });
      } else {
        auth_id[an] = jstr(it->second, "id");
        json ops = json::array();
        for (const char* k : {"type", "authorizerUri", "identitySource", "identityValidationExpression"})
          if (body.contains(k) && jstr(it->second, k) != body[k].get<std::string>())
            ops.push_back({{"op", "replace"}, {"path", std::string("/") + k}, {"value", body[k]}});
        if (jint(it->second, "authorizerResultTtlInSeconds", 300) != a.ttl_s)
          ops.push_back({{"op", "replace"}, {"path", "/authorizerResultTtlInSeconds"}, {"value", std::to_string(a.ttl_s)}});
        if (ops.empty())
          same("authorizer", name + " " + an);
        else
          change(Change::update, "authorizer", name + " " + an, "", [&] {
            r_.call("PATCH", "apigateway", base + "/authorizers/" + auth_id[an], {{"patchOperations", ops}});
          });
      }
    }
  }

  // Methods and their integrations.
  std::set<std::pair<std::string, std::string>> wanted_methods;
  for (auto& m : want) {
    wanted_methods.insert({m.path, m.method});
    std::string aid;
    if (!m.authorizer.empty()) {
      auto it = auth_id.find(m.authorizer);
      if (it != auth_id.end()) {
        aid = it->second;
        m.auth_type = "CUSTOM";
      }
    }
    std::optional<json> remote;
    if (res_id.at(m.path) != kNew) remote = r_.get("apigateway", base + "/resources/" + res_id.at(m.path) + "/methods/" + m.method);
    const std::string label = name + " " + m.method + " " + m.path;
    auto put_method = [&] {
      json body = {{"authorizationType", m.auth_type}, {"apiKeyRequired", m.api_key}};
      if (!aid.empty()) body["authorizerId"] = auth_id.at(m.authorizer);
      r_.call("PUT", "apigateway", base + "/resources/" + res_id.at(m.path) + "/methods/" + m.method, body);
    };
    json integration = {{"type", "AWS_PROXY"}, {"httpMethod", "POST"}, {"uri", m.uri}};
    if (m.route->timeout_ms) integration["timeoutInMillis"] = *m.route->timeout_ms;
    auto put_integration = [&] {
      r_.call("PUT", "apigateway", base + "/resources/" + res_id.at(m.path) + "/methods/" + m.method + "/integration",
              integration);
    };
    fingerprint += "method " + json({{"path", m.path}, {"httpMethod", m.method}, {"authorizationType", m.auth_type},
                                     {"authorizer", aid.empty() ? std::string() : m.authorizer},
                                     {"apiKeyRequired", m.api_key}, {"integration", integration}})
                                   .dump() +
                   "\n";
    if (!remote) {
      change(Change::create, "method", label, m.uri.substr(m.uri.find("function:") + 9), [&] {
        put_method();
        put_integration();
      });
      continue;
    }
    bool method_differs = jstr(*remote, "authorizationType") != m.auth_type ||
                          remote->value("apiKeyRequired", false) != m.api_key ||
                          (m.auth_type == "CUSTOM" && jstr(*remote, "authorizerId") != aid);
    json integ = remote->value("methodIntegration", json::object());
    bool integration_differs = jstr(integ, "type") != "AWS_PROXY" || jstr(integ, "uri") != m.uri ||
                               jnumber(integ, "timeoutInMillis", 29000) != m.route->timeout_ms.value_or(29000);
    if (method_differs) {
      change(Change::update, "method", label, "authorization or API key", [&] {
        // A method is replaced whole: delete, then put it and its integration again.
        r_.call("DELETE", "apigateway", base + "/resources/" + res_id.at(m.path) + "/methods/" + m.method);
        put_method();
        put_integration();
      });
    } else if (integration_differs) {
      change(Change::update, "integration", label, m.uri.substr(m.uri.find("function:") + 9), put_integration);
    } else {
      same("method", label);
    }
  }
  // What the stack no longer has.
  std::set<std::string> removed_paths;
  for (const auto& [path, methods] : res_methods)
    for (const auto& mname : methods)
      if (!wanted_methods.count({path, mname}) && paths.count(path))
        change(Change::remove, "method", name + " " + mname + " " + path, "", [&, path = path, mname = mname] {
          r_.call("DELETE", "apigateway", base + "/resources/" + res_id.at(path) + "/methods/" + mname);
        });
  for (const auto& [path, rid] : res_id) {
    if (paths.count(path) || rid == kNew) continue;
    bool under_removed = false;
    for (const auto& r : removed_paths)
      if (starts_with(path, r + "/")) under_removed = true;
    if (under_removed) continue;
    removed_paths.insert(path);
    change(Change::remove, "resource", name + " " + path, "", [&, rid = rid] {
      r_.call("DELETE", "apigateway", base + "/resources/" + rid);
    });
  }
  // Authorizers the stack no longer has, once no method uses them (API Gateway refuses before).
  remove_gone_authorizers(api, name, base, remote_auth, "id");

  // The deployment and the stage.
  {
    std::set<std::string> types(api.binary_media_types.begin(), api.binary_media_types.end());
    fingerprint += "binaryMediaTypes " + json(types).dump() + "\n";
    if (api.api_key_source != "HEADER") fingerprint += "apiKeySource " + api.api_key_source + "\n";
  }
  const std::string deployment_tag = "sluice " + hex(sha256(fingerprint)).substr(0, 16);
  std::optional<json> stage;
  if (!fresh) stage = r_.get("apigateway", base + "/stages/" + stage_);
  bool need_deployment = !stage;
  if (stage) {
    auto dep = r_.get("apigateway", base + "/deployments/" + jstr(*stage, "deploymentId"));
    need_deployment = !dep || jstr(*dep, "description") != deployment_tag;
  }
  std::string deployment_id = stage ? jstr(*stage, "deploymentId") : kNew;
  if (need_deployment) {
    change(Change::create, "deployment", name, deployment_tag, [&] {
      deployment_id = jstr(r_.call("POST", "apigateway", base + "/deployments", {{"description", deployment_tag}}), "id");
    });
  }
  // Method settings the stack asks for: "*/*" for the stage default, "~1path/METHOD" per route.
  std::map<std::string, stack::Throttle> want_throttle;
  if (sspec && sspec->throttle) want_throttle["*/*"] = *sspec->throttle;
  if (sspec)
    for (const auto& [rk, t] : sspec->route_throttles) {
      auto sp = rk.find(' ');
      if (sp == std::string::npos) continue;
      std::string p = rk.substr(sp + 1), enc;
      for (char c : p) enc += c == '/' ? std::string("~1") : std::string(1, c);
      want_throttle[enc + "/" + rk.substr(0, sp)] = t;
    }
  auto throttle_ops = [&](const json& have_settings) {
    json ops = json::array();
    for (const auto& [key, t] : want_throttle) {
      json have = json::object();
      for (auto it = have_settings.begin(); it != have_settings.end(); ++it)
        if (normal_setting_key(it.key()) == normal_setting_key(key)) have = it.value();
      if (std::abs(have.value("throttlingRateLimit", -1.0) - t.rate) > 1e-9)
        ops.push_back({{"op", "replace"}, {"path", "/" + key + "/throttling/rateLimit"}, {"value", fixed2(t.rate)}});
      if (have.value("throttlingBurstLimit", -1) != t.burst)
        ops.push_back({{"op", "replace"}, {"path", "/" + key + "/throttling/burstLimit"}, {"value", std::to_string(t.burst)}});
    }
    return ops;
  };
  if (!stage) {
    change(Change::create, "stage", name + " " + stage_, "", [&] {
      json body = {{"stageName", stage_}, {"deploymentId", deployment_id}, {"variables", variables}};
      r_.call("POST", "apigateway", base + "/stages", body);
      auto ops = throttle_ops(json::object());
      if (!ops.empty()) r_.call("PATCH", "apigateway", base + "/stages/" + stage_, {{"patchOperations", ops}});
    });
  } else {
    json ops = json::array();
    if (need_deployment) ops.push_back({{"op", "replace"}, {"path", "/deploymentId"}, {"value", kNew}});
    json have_vars = stage->value("variables", json::object());
    if (have_vars.is_null()) have_vars = json::object();
    for (const auto& [k, v] : variables)
      if (jstr(have_vars, k.c_str()) != v) ops.push_back({{"op", "replace"}, {"path", "/variables/" + k}, {"value", v}});
    for (const auto& [k, v] : have_vars.items())
      if (!variables.count(k)) ops.push_back({{"op", "remove"}, {"path", "/variables/" + k}});
    json settings = stage->value("methodSettings", json::object());
    if (settings.is_null()) settings = json::object();
    for (auto& op : throttle_ops(settings)) ops.push_back(op);
    if (ops.empty()) {
      same("stage", name + " " + stage_);
    } else {
      std::string detail = need_deployment ? "new deployment" : "";
      change(Change::update, "stage", name + " " + stage_, detail, [&] {
        for (auto& op : ops)
          if (op["path"] == "/deploymentId") op["value"] = deployment_id;
        r_.call("PATCH", "apigateway", base + "/stages/" + stage_, {{"patchOperations", ops}});
      });
    }
  }
  rest_stage_ready_[api.name] = id;

  // Permissions: each alias the stage reaches may be invoked by this API.
  const std::string source_arn = "arn:aws:execute-api:" + region_ + ":" + account_ + ":" + id + "/*/*/*";
  std::set<std::string> seen;
  for (const auto& m : want) {
    const auto& t = m.route->target;
    if (!seen.insert(t.function + ":" + t.qualifier).second) continue;
    step_permission(t.function, t.qualifier, id, variables, source_arn, "api");
  }
  for (const auto& [an, a] : api.authorizers) {
    if (a.type == stack::AuthorizerType::jwt) continue;
    const auto [fn, qual] = split_target(a.function);
    std::string aid = auth_id.count(an) ? auth_id[an] : kNew;
    step_permission(fn, qual, id, variables, "arn:aws:execute-api:" + region_ + ":" + account_ + ":" + id + "/authorizers/" + aid,
                    "auth-" + an);
  }
  // Once the stage serves the new deployment and the functions the authorizers invoke now may be
  // invoked: those they invoked before lose their statements, unless another stage still needs them.
  json retired = retire_authorizer_permissions(api, id, name, remote_auth, auth_target, base, deployment_tag);
  apis_[api.name] = {"rest", id, stage_, stage_url(id, region_, stage_, o_.endpoint_url, false)};
  for (const auto& [an, target] : auth_target) apis_[api.name].authorizer_functions[an] = target;
  apis_[api.name].deployment = deployment_tag;
  apis_[api.name].retired_authorizer_functions = std::move(retired);
}

// ---- HTTP APIs (API Gateway v2) ----------------------------------------------------------

void Deployer::step_http_api(const stack::ApiSpec& api) {
  const std::string name = st_.name + "-" + api.name;
  const stack::StageSpec* sspec = stage_spec(api);
  std::map<std::string, std::string> variables = sspec ? sspec->variables : std::map<std::string, std::string>{};

  json cors = api.cors ? cors_config(*api.cors, false) : json(nullptr);
  auto same_cors = [&](const json& have) { return same_cors_config(cors, have); };

  std::string id;
  json remote_api;
  auto list = r_.call("GET", "apigateway", "/v2/apis");
  for (const auto& item : list.value("items", json::array()))
    if (jstr(item, "name") == name) {
      id = jstr(item, "apiId");
      remote_api = item;
    }
  if (id.empty()) {
    id = kNew;
    change(Change::create, "HTTP API", name, "", [&] {
      json body = {{"name", name}, {"protocolType", "HTTP"}, {"description", "sluice stack " + st_.name}};
      if (!cors.is_null()) body["corsConfiguration"] = cors;
      id = jstr(r_.call("POST", "apigateway", "/v2/apis", body), "apiId");
    });
  } else if (!same_cors(remote_api.value("corsConfiguration", json()))) {
    change(Change::update, "HTTP API", name, "CORS", [&] {
      if (cors.is_null())
        r_.call("DELETE", "apigateway", "/v2/apis/" + id + "/cors");
      else
        r_.call("PATCH", "apigateway", "/v2/apis/" + id, {{"corsConfiguration", cors}});
    });
  } else {
    same("HTTP API", name, id);
  }
  const bool fresh = id == kNew;
  const std::string base = "/v2/apis/" + id;

  // Authorizers: Lambda (REQUEST) and JWT.
  std::map<std::string, std::string> auth_id;
  std::map<std::string, json> remote_auth;  // also those the stack no longer has: removed below
  // Looked for when the stack has some, or the stage's record names some (removed ones).
  const bool recorded_auth = !object_field(object_field(object_field(previous_current_, "apis"), api.name.c_str()),
                                           "authorizers")
                                  .empty();
  if (!fresh && (!api.authorizers.empty() || recorded_auth)) {
    try {
      for (const auto& a : r_.call("GET", "apigateway", base + "/authorizers").value("items", json::array()))
        remote_auth[jstr(a, "name")] = a;
    } catch (const aws::ServiceError& e) {
      // moto has no GetAuthorizers for HTTP APIs: find them through the routes that use them.
      if (e.status < 500 && !is_not_found(e)) throw;
      std::set<std::string> ids;
      for (const auto& rt : r_.call("GET", "apigateway", base + "/routes").value("items", json::array()))
        if (!jstr(rt, "authorizerId").empty()) ids.insert(jstr(rt, "authorizerId"));
      // ... and through the ids the stage's record kept (an authorizer no route uses yet).
      if (previous_current_.is_object() && previous_current_.contains("apis") &&
          previous_current_["apis"].contains(api.name))
      {
        json recorded = previous_current_["apis"][api.name].value("authorizers", json::object());
        for (const auto& [n, v] : recorded.items())
          if (v.is_string()) ids.insert(v.get<std::string>());
      }
      for (const auto& aid : ids)
        if (auto a = r_.get("apigateway", base + "/authorizers/" + aid)) remote_auth[jstr(*a, "name")] = *a;
    }
  }
  std::map<std::string, std::string> auth_target;  // name -> the FUNCTION[:QUALIFIER] it invokes ("" JWT)
  for (const auto& [an, a] : api.authorizers) {
    // AWS requires an identity source for JWT authorizers and for cached Lambda ones.
    json sources = a.identity_sources;
    if (a.identity_sources.empty() && (a.type == stack::AuthorizerType::jwt || a.ttl_s > 0))
      sources = json::array({"$request.header.Authorization"});
    json body = {{"name", an}, {"identitySource", sources}};
    if (a.type == stack::AuthorizerType::jwt) {
      if (a.jwt.issuer.empty()) {
        p_.line("  warning: HTTP API " + api.name + ": JWT authorizer " + an + " has no issuer; skipped");
        continue;
      }
      body["authorizerType"] = "JWT";
      body["jwtConfiguration"] = {{"issuer", a.jwt.issuer}, {"audience", a.jwt.audience}};
    } else {
      const auto [fn, qual] = split_target(a.function);
      body["authorizerType"] = "REQUEST";
      body["authorizerUri"] = invocation_uri(
          region_, function_arn(region_, account_, function_name(st_.name, fn), permission_qualifier(qual)));
      body["authorizerPayloadFormatVersion"] = a.payload_format;
      body["authorizerResultTtlInSeconds"] = a.ttl_s;
      if (a.payload_format == "2.0") body["enableSimpleResponses"] = a.simple_responses;
    }
    auth_target[an] = invoked_target(jstr(body, "authorizerUri"));
    auto it = remote_auth.find(an);
    if (it == remote_auth.end()) {
      auth_id[an] = kNew;
      change(Change::create, "authorizer", name + " " + an, body["authorizerType"], [&] {
        auth_id[an] = jstr(r_.call("POST", "apigateway", base + "/authorizers", body), "authorizerId");
      });
      continue;
    }
    auth_id[an] = jstr(it->second, "authorizerId");
    const json& have = it->second;
    std::vector<std::string> diffs;
    if (jstr(have, "authorizerType") != body["authorizerType"].get<std::string>()) diffs.push_back("type");
    if (have.value("identitySource", json::array()) != body["identitySource"]) diffs.push_back("identity source");
    if (jstr(have, "authorizerUri") != jstr(body, "authorizerUri")) diffs.push_back("function");
    if (body.contains("jwtConfiguration") && have.value("jwtConfiguration", json::object()) != body["jwtConfiguration"])
      diffs.push_back("JWT configuration");
    if (a.type != stack::AuthorizerType::jwt) {
      if (jstr(have, "authorizerPayloadFormatVersion") != a.payload_format) diffs.push_back("payload format");
      if (jnumber(have, "authorizerResultTtlInSeconds", 0) != a.ttl_s) diffs.push_back("ttl");
      // Simple responses exist for payload 2.0 only; AWS answers false (or nothing) otherwise.
      bool simple = have.contains("enableSimpleResponses") && have["enableSimpleResponses"].is_boolean() &&
                    have["enableSimpleResponses"].get<bool>();
      if (simple != (a.payload_format == "2.0" && a.simple_responses)) diffs.push_back("simple responses");
      if (!body.contains("enableSimpleResponses")) body["enableSimpleResponses"] = false;
    }
    if (diffs.empty()) {
      same("authorizer", name + " " + an);
      continue;
    }
    change(Change::update, "authorizer", name + " " + an, join(diffs, ", "), [&] {
      r_.call("PATCH", "apigateway", base + "/authorizers/" + auth_id[an], body);
    });
  }

  // Integrations: one per distinct target and payload format.
  std::map<std::string, std::string> integ_id;  // uri|format -> id
  std::map<std::string, std::string> remote_integ;
  std::vector<json> all_integ;  // every integration the API has: those no route uses go below
  if (!fresh)
    for (const auto& i : r_.call("GET", "apigateway", base + "/integrations").value("items", json::array())) {
      remote_integ[jstr(i, "integrationUri") + "|" + jstr(i, "payloadFormatVersion")] = jstr(i, "integrationId");
      all_integ.push_back(i);
    }
  auto integration_for = [&](const stack::RouteSpec& route) {
    std::string uri = function_arn(region_, account_, function_name(st_.name, route.target.function),
                                   permission_qualifier(route.target.qualifier));
    std::string format = route.payload_format.empty() ? "2.0" : route.payload_format;
    std::string key = uri + "|" + format;
    if (integ_id.count(key)) return key;
    auto it = remote_integ.find(key);
    if (it != remote_integ.end()) {
      integ_id[key] = it->second;
      same("integration", name + " " + route.target.function);
      return key;
    }
    integ_id[key] = kNew;
    change(Change::create, "integration", name + " " + uri.substr(uri.find("function:") + 9), "payload " + format, [&] {
      json body = {{"integrationType", "AWS_PROXY"},
                   {"integrationUri", uri},
                   {"integrationMethod", "POST"},
                   {"payloadFormatVersion", format}};
      if (route.timeout_ms) body["timeoutInMillis"] = *route.timeout_ms;
      integ_id[key] = jstr(r_.call("POST", "apigateway", base + "/integrations", body), "integrationId");
    });
    return key;
  };

  // Routes.
  std::map<std::string, json> remote_routes;
  if (!fresh)
    for (const auto& rt : r_.call("GET", "apigateway", base + "/routes").value("items", json::array()))
      remote_routes[jstr(rt, "routeKey")] = rt;
  std::set<std::string> wanted_routes;
  for (const auto& route : api.routes) {
    std::string key = integration_for(route);
    std::string route_key = route.key;
    wanted_routes.insert(route_key);
    std::string auth_type = "NONE", aid;
    if (!route.authorizer.empty() && auth_id.count(route.authorizer)) {
      aid = auth_id[route.authorizer];
      const auto& a = api.authorizers.at(route.authorizer);
      auth_type = a.type == stack::AuthorizerType::jwt ? "JWT" : "CUSTOM";
    }
    auto body_for = [&] {
      json body = {{"routeKey", route_key}, {"target", "integrations/" + integ_id[key]}, {"authorizationType", auth_type}};
      if (!aid.empty()) body["authorizerId"] = auth_id[route.authorizer];
      if (!route.authorization_scopes.empty()) body["authorizationScopes"] = route.authorization_scopes;
      return body;
    };
    auto it = remote_routes.find(route_key);
    if (it == remote_routes.end()) {
      change(Change::create, "route", name + " " + route_key, "", [&] {
        r_.call("POST", "apigateway", base + "/routes", body_for());
      });
      continue;
    }
    const json& have = it->second;
    bool differs = jstr(have, "target") != "integrations/" + integ_id[key] ||
                   (jstr(have, "authorizationType").empty() ? "NONE" : jstr(have, "authorizationType")) != auth_type ||
                   (!aid.empty() && jstr(have, "authorizerId") != aid);
    if (!differs) {
      same("route", name + " " + route_key);
      continue;
    }
    change(Change::update, "route", name + " " + route_key, "", [&, rid = jstr(have, "routeId")] {
      r_.call("PATCH", "apigateway", base + "/routes/" + rid, body_for());
    });
  }
  for (const auto& [rk, rt] : remote_routes)
    if (!wanted_routes.count(rk))
      change(Change::remove, "route", name + " " + rk, "", [&, rid = jstr(rt, "routeId")] {
        r_.call("DELETE", "apigateway", base + "/routes/" + rid);
      });
  // Integrations no route targets any more, and authorizers the stack no longer has: once the
  // routes above have let go of them (API Gateway refuses to delete them before).
  std::set<std::string> used_integ;
  for (const auto& [key, iid] : integ_id) used_integ.insert(iid);
  for (const auto& i : all_integ) {
    const std::string iid = jstr(i, "integrationId"), uri = jstr(i, "integrationUri");
    if (used_integ.count(iid)) continue;
    auto fn = uri.find("function:");
    change(Change::remove, "integration", name + " " + (fn == std::string::npos ? uri : uri.substr(fn + 9)),
           "payload " + jstr(i, "payloadFormatVersion") + ", no route uses it", [&, iid = iid] {
             r_.call("DELETE", "apigateway", base + "/integrations/" + iid);
           });
  }
  remove_gone_authorizers(api, name, base, remote_auth, "authorizerId");

  // The stage: auto-deployed, with its variables and default throttle.
  std::optional<json> stage;
  if (!fresh) stage = r_.get("apigateway", base + "/stages/" + stage_);
  json want_stage = {{"stageName", stage_}, {"autoDeploy", true}, {"stageVariables", variables}};
  if (sspec && sspec->throttle)
    want_stage["defaultRouteSettings"] = {{"throttlingRateLimit", sspec->throttle->rate},
                                         {"throttlingBurstLimit", sspec->throttle->burst}};
  if (!stage) {
    change(Change::create, "stage", name + " " + stage_, "auto-deploy", [&] {
      r_.call("POST", "apigateway", base + "/stages", want_stage);
    });
  } else {
    json have_vars = stage->value("stageVariables", json::object());
    if (have_vars.is_null()) have_vars = json::object();
    bool differs = have_vars != json(variables) || !stage->value("autoDeploy", false);
    if (want_stage.contains("defaultRouteSettings")) {
      json d = stage->value("defaultRouteSettings", json::object());
      if (d.is_null() || std::abs(d.value("throttlingRateLimit", -1.0) - sspec->throttle->rate) > 1e-9 ||
          d.value("throttlingBurstLimit", -1) != sspec->throttle->burst)
        differs = true;
    }
    if (!differs) {
      same("stage", name + " " + stage_);
    } else {
      change(Change::update, "stage", name + " " + stage_, "", [&] {
        json body = want_stage;
        body.erase("stageName");
        r_.call("PATCH", "apigateway", base + "/stages/" + stage_, body);
      });
    }
  }

  const std::string source_arn = "arn:aws:execute-api:" + region_ + ":" + account_ + ":" + id + "/*";
  std::set<std::string> seen;
  for (const auto& route : api.routes) {
    const auto& t = route.target;
    if (!seen.insert(t.function + ":" + t.qualifier).second) continue;
    step_permission(t.function, t.qualifier, id, variables, source_arn, "api");
  }
  for (const auto& [an, a] : api.authorizers) {
    if (a.type == stack::AuthorizerType::jwt) continue;
    const auto [fn, qual] = split_target(a.function);
    step_permission(fn, qual, id, variables, source_arn, "auth-" + an);
  }
  retire_authorizer_permissions(api, id, name, remote_auth, auth_target);
  apis_[api.name] = {"http", id, stage_, stage_url(id, region_, stage_, o_.endpoint_url, true)};
  for (const auto& [an, aid] : auth_id) apis_[api.name].authorizers[an] = aid;
  for (const auto& [an, target] : auth_target)
    if (!target.empty()) apis_[api.name].authorizer_functions[an] = target;
}

// ---- API keys and usage plans ------------------------------------------------------------

namespace {

// A usage plan's per-route throttles for its stage ENV of an API, keyed as AWS keys an API
// stage's throttle map: "/{resourcePath}/{httpMethod}" ("/movies/{id}/GET"; "//GET" for the root).
json plan_route_throttles(const stack::UsagePlanSpec& plan, const std::string& api, const std::string& stage) {
  json out = json::object();
  const std::string prefix = api + "/" + stage + "/";
  for (const auto& [ref, t] : plan.route_throttles) {
    if (!starts_with(ref, prefix)) continue;
    const std::string route = ref.substr(prefix.size());  // "GET /movies/{id}"
    auto sp = route.find(' ');
    if (sp == std::string::npos) continue;
    out[route.substr(sp + 1) + "/" + route.substr(0, sp)] = {{"burstLimit", t.burst}, {"rateLimit", t.rate}};
  }
  return out;
}

// The UpdateUsagePlan operations that turn an API stage's throttle map `have` into `want`:
// "/apiStages/API:STAGE/throttle/{resourcePath}/{httpMethod}/rateLimit" (and burstLimit) for a
// new or changed method, a remove of ".../throttle/{resourcePath}/{httpMethod}" for one gone.
// `methods` counts the methods changed.
json route_throttle_ops(const std::string& api_stage, const json& have, const json& want, std::size_t& methods) {
  json ops = json::array();
  const std::string at = "/apiStages/" + api_stage + "/throttle/";
  for (const auto& [key, w] : want.items()) {
    json h = have.contains(key) && have[key].is_object() ? have[key] : json::object();
    const std::size_t before = ops.size();
    if (std::abs(h.value("rateLimit", -1.0) - w["rateLimit"].get<double>()) > 1e-9)
      ops.push_back({{"op", "replace"}, {"path", at + key + "/rateLimit"}, {"value", fixed2(w["rateLimit"].get<double>())}});
    if (h.value("burstLimit", -1) != w["burstLimit"].get<int>())
      ops.push_back({{"op", "replace"}, {"path", at + key + "/burstLimit"}, {"value", std::to_string(w["burstLimit"].get<int>())}});
    if (ops.size() != before) ++methods;
  }
  for (const auto& [key, h] : have.items())
    if (!want.contains(key)) {
      ops.push_back({{"op", "remove"}, {"path", at + key}});
      ++methods;
    }
  return ops;
}

}  // namespace

void Deployer::step_keys_and_plans() {
  // Only plans bound to this stage of an API deployed here matter to this deploy.
  std::map<std::string, std::string> key_id;
  std::set<std::string> keys_needed;
  for (const auto& [pn, plan] : st_.usage_plans)
    for (const auto& [api, stage] : plan.stages)
      if (stage == stage_ && rest_stage_ready_.count(api))
        for (const auto& k : plan.keys) keys_needed.insert(k);

  for (const auto& kn : keys_needed) {
    const auto& key = st_.api_keys.at(kn);
    const std::string name = st_.name + "-" + kn;
    std::optional<json> found;
    auto list = r_.call("GET", "apigateway", "/apikeys", nullptr,
                        {{"includeValues", "true"}, {"limit", "500"}, {"name", name}});
    for (const auto& k : list.value("item", json::array()))
      if (jstr(k, "name") == name) found = k;
    auto create = [&] {
      json body = {{"name", name}, {"enabled", key.enabled}, {"description", "sluice stack " + st_.name}};
      if (!key.value.empty()) body["value"] = key.value;  // else API Gateway generates one
      key_id[kn] = jstr(r_.call("POST", "apigateway", "/apikeys", body), "id");
    };
    if (!found) {
      key_id[kn] = kNew;
      change(Change::create, "API key", name, "", create);
    } else if (!key.value.empty() && jstr(*found, "value") != key.value) {
      key_id[kn] = kNew;
      change(Change::update, "API key", name, "new value: replaced", [&, old = jstr(*found, "id")] {
        r_.call("DELETE", "apigateway", "/apikeys/" + old);
        create();
      });
    } else if (found->value("enabled", true) != key.enabled) {
      key_id[kn] = jstr(*found, "id");
      change(Change::update, "API key", name, key.enabled ? "enable" : "disable", [&] {
        json ops = json::array({{{"op", "replace"}, {"path", "/enabled"}, {"value", key.enabled ? "true" : "false"}}});
        r_.call("PATCH", "apigateway", "/apikeys/" + key_id[kn], {{"patchOperations", ops}});
      });
    } else {
      key_id[kn] = jstr(*found, "id");
      same("API key", name);
    }
  }

  json plans_list = json::object();
  bool listed = false;
  for (const auto& [pn, plan] : st_.usage_plans) {
    std::vector<std::string> apis_here;
    std::map<std::string, json> route_throttles;  // API id -> its throttle map, as the plan's apiStages has it
    for (const auto& [api, stage] : plan.stages)
      if (stage == stage_ && rest_stage_ready_.count(api)) {
        apis_here.push_back(rest_stage_ready_[api]);
        route_throttles[rest_stage_ready_[api]] = plan_route_throttles(plan, api, stage_);
      }
    if (apis_here.empty()) continue;
    if (!listed) {
      plans_list = r_.call("GET", "apigateway", "/usageplans", nullptr, {{"limit", "500"}});
      listed = true;
    }
    const std::string name = st_.name + "-" + pn;
    std::optional<json> found;
    for (const auto& p : plans_list.value("item", json::array()))
      if (jstr(p, "name") == name) found = p;
    json throttle = nullptr, quota = nullptr;
    if (plan.throttle) throttle = {{"rateLimit", plan.throttle->rate}, {"burstLimit", plan.throttle->burst}};
    if (plan.quota) {
      const char* period = plan.quota->period == stack::QuotaPeriod::day    ? "DAY"
                           : plan.quota->period == stack::QuotaPeriod::week ? "WEEK"
                                                                            : "MONTH";
      quota = {{"limit", plan.quota->limit}, {"period", period}, {"offset", plan.quota->offset}};
    }
    std::string plan_id;
    if (!found) {
      plan_id = kNew;
      change(Change::create, "usage plan", name, "", [&] {
        json stages = json::array();
        for (const auto& a : apis_here) {
          if (a == kNew) continue;
          json entry = {{"apiId", a}, {"stage", stage_}};
          if (!route_throttles[a].empty()) entry["throttle"] = route_throttles[a];
          stages.push_back(entry);
        }
        json body = {{"name", name}, {"apiStages", stages}};
        if (!throttle.is_null()) body["throttle"] = throttle;
        if (!quota.is_null()) body["quota"] = quota;
        plan_id = jstr(r_.call("POST", "apigateway", "/usageplans", body), "id");
      });
    } else {
      plan_id = jstr(*found, "id");
      json ops = json::array();
      std::set<std::string> have_stages;
      std::map<std::string, json> have_route_throttles;  // "apiId:stage" -> its throttle map
      for (const auto& s : found->value("apiStages", json::array())) {
        const std::string st = jstr(s, "apiId") + ":" + jstr(s, "stage");
        have_stages.insert(st);
        if (s.contains("throttle") && s["throttle"].is_object()) have_route_throttles[st] = s["throttle"];
      }
      std::size_t route_ops = 0, routes_changed = 0;
      for (const auto& a : apis_here) {
        if (a == kNew) continue;
        if (!have_stages.count(a + ":" + stage_))
          ops.push_back({{"op", "add"}, {"path", "/apiStages"}, {"value", a + ":" + stage_}});
        json have = have_route_throttles.count(a + ":" + stage_) ? have_route_throttles[a + ":" + stage_] : json::object();
        json route_ops_here = route_throttle_ops(a + ":" + stage_, have, route_throttles[a], routes_changed);
        for (auto& op : route_ops_here) ops.push_back(op);
        route_ops += route_ops_here.size();
      }
      // This stage's API stages the plan no longer lists (the other stages' are theirs to settle).
      const std::set<std::string> wanted_here = [&] {
        std::set<std::string> w;
        for (const auto& a : apis_here) w.insert(a + ":" + stage_);
        return w;
      }();
      for (const auto& st : have_stages)
        if (ends_with(st, ":" + stage_) && !wanted_here.count(st))
          ops.push_back({{"op", "remove"}, {"path", "/apiStages"}, {"value", st}});
      json ht = found->value("throttle", json::object());
      if (ht.is_null()) ht = json::object();
      // A throttle or quota the stack no longer sets goes (AWS: no limit).
      if (throttle.is_null() && !ht.empty()) ops.push_back({{"op", "remove"}, {"path", "/throttle"}});
      if (!throttle.is_null()) {
        if (std::abs(ht.value("rateLimit", -1.0) - plan.throttle->rate) > 1e-9)
          ops.push_back({{"op", "replace"}, {"path", "/throttle/rateLimit"}, {"value", fixed2(plan.throttle->rate)}});
        if (ht.value("burstLimit", -1) != plan.throttle->burst)
          ops.push_back({{"op", "replace"}, {"path", "/throttle/burstLimit"}, {"value", std::to_string(plan.throttle->burst)}});
      }
      json hq = found->value("quota", json::object());
      if (hq.is_null()) hq = json::object();
      if (quota.is_null() && !hq.empty()) ops.push_back({{"op", "remove"}, {"path", "/quota"}});
      if (!quota.is_null()) {
        if (jnumber(hq, "offset", 0) != plan.quota->offset)
          ops.push_back({{"op", "replace"}, {"path", "/quota/offset"}, {"value", std::to_string(plan.quota->offset)}});
        if (jnumber(hq, "limit", -1) != plan.quota->limit)
          ops.push_back({{"op", "replace"}, {"path", "/quota/limit"}, {"value", std::to_string(plan.quota->limit)}});
        if (jstr(hq, "period") != quota["period"].get<std::string>())
          ops.push_back({{"op", "replace"}, {"path", "/quota/period"}, {"value", quota["period"]}});
      }
      if (ops.empty())
        same("usage plan", name);
      else
        change(Change::update, "usage plan", name,
               route_ops == ops.size() ? std::to_string(routes_changed) + " route throttle(s)"
                                       : std::to_string(ops.size()) + " change(s)",
               [&] { r_.call("PATCH", "apigateway", "/usageplans/" + plan_id, {{"patchOperations", ops}}); });
    }
    std::set<std::string> have_keys;
    std::map<std::string, std::string> key_names;  // id -> name, of the keys the plan has
    if (plan_id != kNew)
      for (const auto& k : r_.call("GET", "apigateway", "/usageplans/" + plan_id + "/keys", nullptr, {{"limit", "500"}})
                               .value("item", json::array())) {
        have_keys.insert(jstr(k, "id"));
        key_names[jstr(k, "id")] = jstr(k, "name");
      }
    // Keys the plan hands out and the stack no longer lists for it (or replaced ones).
    std::set<std::string> wanted_keys;
    for (const auto& kn : plan.keys)
      if (key_id.count(kn)) wanted_keys.insert(key_id[kn]);
    for (const auto& [kid, kname] : key_names) {
      if (wanted_keys.count(kid)) continue;
      change(Change::remove, "usage plan key", name + " " + (kname.empty() ? kid : kname), "no longer in the plan",
             [&, kid = kid] {
               try {
                 r_.call("DELETE", "apigateway", "/usageplans/" + plan_id + "/keys/" + kid);
               } catch (const aws::ServiceError& e) {
                 if (!is_not_found(e)) throw;  // a replaced key took its association with it
               }
             });
    }
    for (const auto& kn : plan.keys) {
      if (key_id.count(kn) && key_id[kn] != kNew && have_keys.count(key_id[kn])) {
        same("usage plan key", name + " " + kn);
        continue;
      }
      change(Change::create, "usage plan key", name + " " + kn, "", [&] {
        r_.call("POST", "apigateway", "/usageplans/" + plan_id + "/keys", {{"keyId", key_id[kn]}, {"keyType", "API_KEY"}});
      });
    }
    // For the record: what removing them from the stack later has to find.
    plans_[name] = plan_id;
    for (const auto& kn : plan.keys) keys_[st_.name + "-" + kn] = key_id[kn];
  }
}

// ---- schedules (EventBridge scheduled rules) ---------------------------------------------

// Rules are per stage: STACK-STAGE-SCHEDULE on the default bus, with one target (Id
// sluice.STACK.STAGE) naming the function's alias STAGE (or the version / $LATEST the schedule
// pins), and a lambda:AddPermission for events.amazonaws.com scoped to the rule's ARN.
// Rules of this stack and stage that the stack no longer has are deleted: a leftover rule
// would keep invoking the function.

namespace {
// Input texts compare as JSON (moto and AWS may keep other spacing); absent equals absent.
bool same_input(const json& target, const std::optional<std::string>& want) {
  std::string have = jstr(target, "Input");
  if (have.empty() || !want) return have.empty() && !want;
  auto a = json::parse(have, nullptr, false), b = json::parse(*want, nullptr, false);
  if (a.is_discarded() || b.is_discarded()) return have == *want;
  return a == b;
}
}  // namespace

void Deployer::step_schedules() {
  const std::string target_id = schedule_target_id(st_.name, stage_);
  if (!st_.schedules.empty() && !valid_rule_chars(stage_))
    throw std::runtime_error("stage " + stage_ + " cannot name EventBridge rules (letters, digits, '.', '-', '_' only)");
  std::set<std::string> wanted;
  for (const auto& [name, s] : st_.schedules) {
    wanted.insert(rule_name(st_.name, stage_, name));
    step_schedule(s, target_id);
  }
  // Rules of this stack and stage that the stack no longer names: those carrying this stage's
  // target, and those the current record names (a run killed between RemoveTargets and
  // DeleteRule left one without targets).
  std::map<std::string, std::string> recorded;  // rule -> the target ARN recorded
  for (const auto& [n, e] : object_field(previous_current_, "schedules").items())
    if (e.is_object()) recorded[e.value("rule", std::string())] = e.value("target", std::string());
  std::string token;
  std::vector<std::string> candidates;
  for (;;) {
    json q = {{"NamePrefix", rule_prefix(st_.name, stage_)}};
    if (!token.empty()) q["NextToken"] = token;
    json out;
    try {
      out = events("ListRules", q);
    } catch (const aws::ServiceError& e) {
      // A stack that never had schedules does not need EventBridge permissions.
      if (st_.schedules.empty() && recorded.empty() && (e.status == 403 || e.code == "AccessDeniedException")) {
        same("schedule rules", rule_prefix(st_.name, stage_) + "*", "not listed: " + e.code);
        return;
      }
      throw;
    }
    if (out.contains("Rules") && out["Rules"].is_array())
      for (const auto& r : out["Rules"]) {
        std::string n = jstr(r, "Name");
        if (n.rfind(rule_prefix(st_.name, stage_), 0) == 0 && !wanted.count(n)) candidates.push_back(n);
      }
    token = jstr(out, "NextToken");
    if (token.empty()) break;
  }
  for (const auto& rule : candidates) {
    json targets;
    try {
      targets = events("ListTargetsByRule", {{"Rule", rule}}).value("Targets", json::array());
    } catch (const aws::ServiceError& e) {
      if (is_not_found(e)) continue;
      throw;
    }
    bool ours = recorded.count(rule) > 0;
    for (const auto& t : targets)
      if (jstr(t, "Id") == target_id) ours = true;
    if (ours) remove_schedule_rule(rule, targets, target_id, recorded.count(rule) ? recorded[rule] : "");
  }
}

void Deployer::step_schedule(const stack::ScheduleSpec& s, const std::string& target_id) {
  const std::string rule = rule_name(st_.name, stage_, s.name);
  // The rule's ARN as EventBridge reports it (another partition than aws, too); before it exists,
  // the form AWS gives rules of the default bus.
  std::string rule_arn = "arn:aws:events:" + region_ + ":" + account_ + ":rule/" + rule;
  const std::string rn = function_name(st_.name, s.function);
  const std::string qual = schedule_qualifier(s.qualifier, stage_);
  const std::string target_arn = function_arn(region_, account_, rn, qual);
  const std::string state = s.enabled ? "ENABLED" : "DISABLED";

  // A pinned version must exist: deploy publishes versions, it does not invent numbers.
  // Checked when applying, after the functions' step (this deploy may publish it).
  if (apply_ && !qual.empty() && qual != stage_) {
    if (!r_.get("lambda", kLambdaApi + rn, {{"Qualifier", qual}}))
      throw std::runtime_error("schedule " + s.name + " targets version " + qual + " of " + rn +
                               ", which does not exist; name an existing version, or leave the qualifier out to "
                               "target the alias " + stage_);
  }

  std::optional<json> have;
  try {
    have = events("DescribeRule", {{"Name", rule}});
  } catch (const aws::ServiceError& e) {
    if (!is_not_found(e)) throw;
  }
  if (have && !jstr(*have, "Arn").empty()) rule_arn = jstr(*have, "Arn");
  schedules_[s.name] = {{"rule", rule}, {"arn", rule_arn}, {"expression", s.expression.text}, {"state", state},
                        {"target", target_arn}};
  if (s.input) schedules_[s.name]["input"] = *s.input;
  json put = {{"Name", rule}, {"ScheduleExpression", s.expression.text}, {"State", state},
              {"Description", s.description}};
  const std::string what = s.expression.text + (s.enabled ? "" : ", disabled");
  if (!have) {
    change(Change::create, "schedule rule", rule, what, [&] {
      auto out = events("PutRule", put);
      if (!jstr(out, "RuleArn").empty()) rule_arn = jstr(out, "RuleArn");
      schedules_[s.name]["arn"] = rule_arn;
    });
  } else {
    std::vector<std::string> diffs;
    if (jstr(*have, "ScheduleExpression") != s.expression.text)
      diffs.push_back(jstr(*have, "ScheduleExpression") + " -> " + s.expression.text);
    if (jstr(*have, "State") != state) diffs.push_back(jstr(*have, "State") + " -> " + state);
    if (jstr(*have, "Description") != s.description) diffs.push_back("description");
    if (!jstr(*have, "EventPattern").empty()) diffs.push_back("event pattern removed");
    if (diffs.empty()) same("schedule rule", rule, what);
    else change(Change::update, "schedule rule", rule, join(diffs, ", "), [&] { events("PutRule", put); });
  }

  json target = {{"Id", target_id}, {"Arn", target_arn}};
  if (s.input) target["Input"] = *s.input;
  std::optional<json> have_target;
  if (have) {
    auto out = events("ListTargetsByRule", {{"Rule", rule}});
    for (const auto& t : out.value("Targets", json::array()))
      if (jstr(t, "Id") == target_id) have_target = t;
  }
  const std::string label = rn + (qual.empty() ? "" : ":" + qual);
  if (!have_target) {
    change(Change::create, "schedule target", rule, "invokes " + label, [&] {
      auto out = events("PutTargets", {{"Rule", rule}, {"Targets", json::array({target})}});
      if (jint(out, "FailedEntryCount") > 0)
        throw std::runtime_error("EventBridge refused the target of rule " + rule + ": " +
                                 out.value("FailedEntries", json::array()).dump());
    });
  } else if (jstr(*have_target, "Arn") != target_arn || !same_input(*have_target, s.input)) {
    std::string detail = jstr(*have_target, "Arn") != target_arn ? "invokes " + label : "input";
    change(Change::update, "schedule target", rule, detail, [&] {
      auto out = events("PutTargets", {{"Rule", rule}, {"Targets", json::array({target})}});
      if (jint(out, "FailedEntryCount") > 0)
        throw std::runtime_error("EventBridge refused the target of rule " + rule + ": " +
                                 out.value("FailedEntries", json::array()).dump());
    });
  } else {
    same("schedule target", rule, label);
  }
  step_schedule_permission(rn, qual, rule, rule_arn);
}

void Deployer::step_schedule_permission(const std::string& rn, const std::string& qual, const std::string& rule,
                                        const std::string& rule_arn) {
  const std::string sid = statement_id("sluice-events-" + rule);
  const std::string label = rn + (qual.empty() ? "" : ":" + qual);
  bool present = has_permission(rn, qual, sid);
  if (present) {
    same("permission", label, "events " + rule);
    return;
  }
  change(Change::create, "permission", label, "lambda:InvokeFunction for events.amazonaws.com from rule " + rule, [&] {
    add_statement(rn, qual, {{"StatementId", sid},
                             {"Action", "lambda:InvokeFunction"},
                             {"Principal", "events.amazonaws.com"},
                             {"SourceArn", rule_arn}});
  });
}

void Deployer::remove_schedule_rule(const std::string& rule, const json& targets, const std::string& target_id,
                                    const std::string& recorded_target) {
  std::string fires;
  json ids = json::array();
  for (const auto& t : targets) {
    ids.push_back(jstr(t, "Id"));
    if (jstr(t, "Id") == target_id) fires = jstr(t, "Arn");
  }
  const bool firing = !fires.empty();
  if (fires.empty()) fires = recorded_target;
  change(Change::remove, "schedule rule", rule,
         firing ? "no longer in the stack; it would keep invoking " + fires : std::string("no longer in the stack"),
         [&] {
           // Targets first (DeleteRule refuses a rule that has some), then the permission the
           // rule used (on the function and qualifier its target named), the rule last: a run
           // killed in between leaves a rule without targets that the record still names, and
           // the next deploy deletes it.
           if (!ids.empty()) events("RemoveTargets", {{"Rule", rule}, {"Ids", ids}});
           const std::string marker = ":function:";
           if (auto at = fires.find(marker); at != std::string::npos) {
             std::string rest = fires.substr(at + marker.size());
             std::string fn = rest, qual;
             if (auto c = rest.find(':'); c != std::string::npos) {
               fn = rest.substr(0, c);
               qual = rest.substr(c + 1);
             }
             remove_statement(fn, qual, statement_id("sluice-events-" + rule));
           }
           events("DeleteRule", {{"Name", rule}});
         });
}

// ---- what the stack no longer has --------------------------------------------------------

// What this stage's current record names and this run no longer deploys for the stage:
// functions and APIs the stack dropped (on a promote: functions the promoted record does not
// have), usage plans and keys no longer bound to the stage. They are shared by the stages:
// one is deleted only when no other stage's current record names it; until then this stage
// lets go of its own part (the function's alias named after the stage, the API's stage, the
// plan's stages). Each is looked up first, so a run killed half-way and run again finds what
// is already gone and moves on.
void Deployer::step_removed() {
  if (!previous_current_.is_object()) return;
  std::vector<std::pair<std::string, json>> gone_fns, gone_apis;
  auto wanted_fn = [&](const std::string& fn) {
    if (o_.mode == Mode::promote) return object_field(source_record_, "functions").contains(fn);
    return st_.functions.count(fn) > 0;
  };
  for (const auto& [fn, e] : object_field(previous_current_, "functions").items())
    if (!wanted_fn(fn) && e.is_object()) gone_fns.emplace_back(fn, e);
  for (const auto& [an, e] : object_field(previous_current_, "apis").items())
    if (!st_.apis.count(an) && e.is_object()) gone_apis.emplace_back(an, e);
  auto dropped = [&](const char* field, const json& now) {
    for (const auto& [name, id] : object_field(previous_current_, field).items())
      if (!now.contains(name)) return true;
    return false;
  };
  bool gone_plans = dropped("usage_plans", plans_) || dropped("api_keys", keys_);
  if (gone_fns.empty() && gone_apis.empty() && !gone_plans) return;

  // Who else uses them: the other stages' current records.
  std::map<std::string, std::set<std::string>> fn_users, api_users;  // remote name / API id -> stages
  std::map<std::string, std::set<std::string>> plan_users, key_users;  // name -> stages
  for (const auto& [other, rec] : other_stage_records()) {
    for (const auto& [fn, e] : object_field(rec, "functions").items())
      if (e.is_object()) fn_users[e.value("name", std::string())].insert(other);
    for (const auto& [an, e] : object_field(rec, "apis").items())
      if (e.is_object()) api_users[e.value("id", std::string())].insert(other);
    for (const auto& [name, id] : object_field(rec, "usage_plans").items()) plan_users[name].insert(other);
    for (const auto& [name, id] : object_field(rec, "api_keys").items()) key_users[name].insert(other);
  }

  // Usage plans first (API Gateway refuses to delete a stage a plan still names), then the
  // APIs (they invoke the functions), then the functions.
  if (gone_plans) step_removed_plans(plan_users, key_users);

  for (const auto& [an, e] : gone_apis) {
    const std::string id = e.value("id", std::string());
    if (id.empty()) continue;
    const bool rest = e.value("type", std::string()) == "rest";
    const std::string base = rest ? "/restapis/" + id : "/v2/apis/" + id;
    const std::string stage = e.value("stage", stage_);
    const std::string label = an + " (" + id + ")";
    if (!r_.get("apigateway", base)) {
      same("API", label, "already gone");
      continue;
    }
    const auto& users = api_users[id];
    if (users.empty()) {
      // Its invoke permissions first: a run killed after the API's deletion would leave them.
      remove_api_permissions(id, label);
      change(Change::remove, "API", label, "no stage uses it any more", [&, id = id, base = base, rest = rest] {
        if (rest) detach_from_usage_plans(id, "");
        r_.call("DELETE", "apigateway", base);
      });
    } else if (r_.get("apigateway", base + "/stages/" + stage)) {
      change(Change::remove, "API stage", label + " " + stage, "still used by " + listing(users),
             [&, id = id, base = base, rest = rest, stage = stage] {
               if (rest) detach_from_usage_plans(id, stage);
               r_.call("DELETE", "apigateway", base + "/stages/" + stage);
             });
    } else {
      same("API stage", label + " " + stage, "already gone");
    }
  }

  for (const auto& [fn, e] : gone_fns) {
    const std::string rn = e.value("name", std::string());
    if (rn.empty()) continue;
    if (!r_.get("lambda", kLambdaApi + rn)) {
      same("function", rn, "already gone");
      continue;
    }
    const auto& users = fn_users[rn];
    if (users.empty()) {
      change(Change::remove, "function", rn, "with its versions and aliases; no stage uses it any more",
             [&, rn = rn] { r_.call("DELETE", "lambda", kLambdaApi + rn); });
    } else {
      if (r_.get("lambda", kLambdaApi + rn + "/aliases/" + stage_))
        change(Change::remove, "alias", rn + ":" + stage_, "the function stays: still used by " + listing(users),
               [&, rn = rn] { r_.call("DELETE", "lambda", kLambdaApi + rn + "/aliases/" + stage_); });
      else
        same("alias", rn + ":" + stage_, "already gone");
      // The stage alias's config goes with it; those this stage wrote on other aliases do not.
      if (o_.mode == Mode::deploy)
        remove_recorded_invoke_configs(fn, rn, {stage_}, fn + " is no longer in the stack of stage " + stage_);
    }
  }
}

const std::map<std::string, json>& Deployer::other_stage_records() {
  if (other_records_) return *other_records_;
  other_records_.emplace();
  if (!bucket_exists_) return *other_records_;
  const std::string tail = "/current.json";
  for (const auto& key : r_.list_keys(bucket_, "state/")) {
    if (key.size() <= 6 + tail.size() || key.compare(key.size() - tail.size(), tail.size(), tail) != 0) continue;
    std::string other = key.substr(6, key.size() - 6 - tail.size());
    if (other == stage_ || other.find('/') != std::string::npos) continue;
    auto body = r_.get_object(bucket_, key);
    (*other_records_)[other] = body ? json::parse(*body, nullptr, false) : json();
  }
  return *other_records_;
}

// The statements step_permission added for an API that is about to be deleted (ids
// sluice-<API id>-...), on every function the stage's record or the stack names and on each
// of its aliases: they would outlive the API, and a function's policy is limited to 20 KB.
void Deployer::remove_api_permissions(const std::string& api_id, const std::string& label) {
  std::set<std::string> names;
  for (const auto& [fn, e] : object_field(previous_current_, "functions").items())
    if (e.is_object() && !e.value("name", std::string()).empty()) names.insert(e.value("name", std::string()));
  for (const auto& [fn, spec] : st_.functions) names.insert(function_name(st_.name, fn));
  const std::string prefix = statement_id("sluice-" + api_id + "-");
  for (const auto& rn : names) {
    if (!r_.get("lambda", kLambdaApi + rn)) continue;
    std::vector<std::string> qualifiers{""};
    for (const auto& a : lambda_list(kLambdaApi + rn + "/aliases", "Aliases")) qualifiers.push_back(jstr(a, "Name"));
    for (const auto& qual : qualifiers)
      for (const auto& sid : policy_sids(rn, qual)) {
        if (sid.compare(0, prefix.size(), prefix) != 0) continue;
        change(Change::remove, "permission", (qual.empty() ? rn : rn + ":" + qual) + " " + sid,
               "for API " + label + ", which goes",
               [&, rn = rn, qual = qual, sid = sid] { remove_statement(rn, qual, sid); });
      }
  }
}

// Usage plans and keys this stage's record names and this run did not deploy for the stage.
// A plan another stage's record still names loses this stage's API stages; otherwise it goes
// (stages out, keys out, then the plan). A key no other stage's record names is deleted.
void Deployer::step_removed_plans(std::map<std::string, std::set<std::string>>& plan_users,
                                  std::map<std::string, std::set<std::string>>& key_users) {
  const json& prev_plans = object_field(previous_current_, "usage_plans");
  const json& prev_keys = object_field(previous_current_, "api_keys");
  for (const auto& [name, idv] : prev_plans.items()) {
    if (plans_.contains(name) || !idv.is_string()) continue;
    const std::string plan_id = idv.get<std::string>();
    auto plan = r_.get("apigateway", "/usageplans/" + plan_id);
    if (!plan) {
      same("usage plan", name, "already gone");
      continue;
    }
    const auto& users = plan_users[name];
    json ops = json::array();  // every stage when the plan goes, else this stage's
    for (const auto& st : plan->value("apiStages", json::array()))
      if (users.empty() || jstr(st, "stage") == stage_)
        ops.push_back({{"op", "remove"}, {"path", "/apiStages"}, {"value", jstr(st, "apiId") + ":" + jstr(st, "stage")}});
    if (!users.empty()) {
      if (ops.empty()) {
        same("usage plan", name, "stage " + stage_ + " already left it");
        continue;
      }
      change(Change::update, "usage plan", name, "stage " + stage_ + " leaves it; still used by " + listing(users),
             [&, plan_id = plan_id, ops = ops] {
               r_.call("PATCH", "apigateway", "/usageplans/" + plan_id, {{"patchOperations", ops}});
             });
      continue;
    }
    change(Change::remove, "usage plan", name, "no stage uses it any more", [&, plan_id = plan_id, ops = ops] {
      if (!ops.empty()) r_.call("PATCH", "apigateway", "/usageplans/" + plan_id, {{"patchOperations", ops}});
      for (const auto& k : r_.call("GET", "apigateway", "/usageplans/" + plan_id + "/keys", nullptr, {{"limit", "500"}})
                               .value("item", json::array()))
        r_.call("DELETE", "apigateway", "/usageplans/" + plan_id + "/keys/" + jstr(k, "id"));
      r_.call("DELETE", "apigateway", "/usageplans/" + plan_id);
    });
  }
  for (const auto& [name, idv] : prev_keys.items()) {
    if (keys_.contains(name) || !idv.is_string()) continue;
    if (!key_users[name].empty()) continue;  // the other stages' plans still hand it out
    const std::string key_id = idv.get<std::string>();
    if (!r_.get("apigateway", "/apikeys/" + key_id)) {
      same("API key", name, "already gone");
      continue;
    }
    change(Change::remove, "API key", name, "no stage uses it any more",
           [&, key_id = key_id] { r_.call("DELETE", "apigateway", "/apikeys/" + key_id); });
  }
}

// API Gateway refuses to delete a stage (or an API) that a usage plan still names: take it out
// of every plan first ("" = every stage of the API).
void Deployer::detach_from_usage_plans(const std::string& api_id, const std::string& stage) {
  auto plans = r_.call("GET", "apigateway", "/usageplans", nullptr, {{"limit", "500"}});
  for (const auto& plan : plans.value("item", json::array())) {
    json ops = json::array();
    for (const auto& s : plan.value("apiStages", json::array()))
      if (jstr(s, "apiId") == api_id && (stage.empty() || jstr(s, "stage") == stage))
        ops.push_back({{"op", "remove"}, {"path", "/apiStages"}, {"value", api_id + ":" + jstr(s, "stage")}});
    if (!ops.empty()) r_.call("PATCH", "apigateway", "/usageplans/" + jstr(plan, "id"), {{"patchOperations", ops}});
  }
}

// ---- state -----------------------------------------------------------------------------

json Deployer::build_record() const {
  json fns = json::object();
  for (const auto& [fn, a] : aliases_) {
    json entry = {{"name", a["function"]}, {"alias", {{"name", stage_}, {"version", a["version"]}, {"weights", a["weights"]}}}};
    auto it = fns_.find(fn);
    if (it != fns_.end() && !it->second.unit.empty() && units_.count(it->second.unit))
      entry["code_sha256"] = units_.at(it->second.unit).archive.sha256_hex;
    else if (source_record_.is_object() && source_record_.contains("functions") && source_record_["functions"].contains(fn))
      entry["code_sha256"] = source_record_["functions"][fn].value("code_sha256", "");
    if (it != fns_.end() && !it->second.url.empty()) entry["url"] = it->second.url;
    fns[fn] = entry;
  }
  json apis = json::object();
  for (const auto& [name, a] : apis_) {
    apis[name] = {{"type", a.type}, {"id", a.id}, {"stage", a.stage}, {"url", a.url}};
    if (!a.authorizers.empty()) apis[name]["authorizers"] = a.authorizers;
    if (!a.authorizer_functions.empty()) apis[name]["authorizer_functions"] = a.authorizer_functions;
    if (!a.deployment.empty()) apis[name]["deployment"] = a.deployment;
    if (!a.retired_authorizer_functions.empty())
      apis[name]["retired_authorizer_functions"] = a.retired_authorizer_functions;
  }
  json rec = {{"stack", st_.name}, {"stage", stage_}, {"functions", fns}, {"apis", apis}};
  // Only when there are some, so records of stacks without schedules stay as they were.
  if (o_.mode == Mode::rollback) {
    // Rollback moves aliases only: the rules stay as the current record says.
    if (previous_current_.is_object() && previous_current_.contains("schedules"))
      rec["schedules"] = previous_current_["schedules"];
  } else if (!schedules_.empty()) {
    rec["schedules"] = schedules_;
  }
  // Likewise the event-invoke configs deploy wrote; promote and rollback write none, so the
  // current record's stay.
  if (o_.mode != Mode::deploy) {
    if (previous_current_.is_object() && previous_current_.contains("event_invoke_configs"))
      rec["event_invoke_configs"] = previous_current_["event_invoke_configs"];
  } else if (!invoke_configs_.empty()) {
    rec["event_invoke_configs"] = invoke_configs_;
  }
  // Likewise usage plans and keys: only when there are some.
  if (o_.mode == Mode::rollback) {
    for (const char* k : {"usage_plans", "api_keys"})
      if (previous_current_.is_object() && previous_current_.contains(k)) rec[k] = previous_current_[k];
  } else {
    if (!plans_.empty()) rec["usage_plans"] = plans_;
    if (!keys_.empty()) rec["api_keys"] = keys_;
  }
  if (o_.mode == Mode::rollback || o_.mode == Mode::promote) {
    // Rollback and promote leave the APIs as they are; keep what the record said.
    if (o_.mode == Mode::rollback && source_record_.contains("apis")) rec["apis"] = source_record_["apis"];
  }
  return rec;
}

bool same_deployment(const json& a, const json& b) {
  return a.is_object() && b.is_object() && a.value("functions", json()) == b.value("functions", json()) &&
         a.value("apis", json()) == b.value("apis", json()) && a.value("schedules", json()) == b.value("schedules", json()) &&
         a.value("usage_plans", json()) == b.value("usage_plans", json()) &&
         a.value("api_keys", json()) == b.value("api_keys", json()) &&
         a.value("event_invoke_configs", json()) == b.value("event_invoke_configs", json());
}

void Deployer::step_record() {
  json rec = build_record();
  bool unchanged = o_.mode != Mode::rollback && same_deployment(rec, previous_current_);
  if (unchanged) {
    same("record", state_current_key(stage_));
    return;
  }
  change(Change::create, "record", state_current_key(stage_), "with history", [&] {
    rec = build_record();
    rec["time"] = iso8601_ms();
    rec["git_commit"] = commit_;
    rec["by"] = user_at_host();
    rec["kind"] = o_.mode == Mode::deploy ? "deploy" : o_.mode == Mode::promote ? "promote" : "rollback";
    if (o_.mode == Mode::promote) rec["promoted_from"] = o_.promote_from;
    if (o_.mode == Mode::rollback && source_record_.contains("time")) rec["rolled_back_to"] = source_record_["time"];
    std::string text = rec.dump(2);
    r_.put_object(bucket_, state_history_key(stage_, compact_timestamp()), text, "application/json");
    r_.put_object(bucket_, state_current_key(stage_), text, "application/json");
  });
}

void Deployer::acquire_lock() {
  const std::string key = state_lock_key(stage_);
  if (o_.force_unlock) {
    auto holder = r_.get_object(bucket_, key);
    if (holder) {
      p_.line("  removing the lock of stage " + stage_ + " (--force-unlock), held by " + lock_holder(*holder));
      r_.delete_object(bucket_, key);
    }
  }
  json body = {{"holder", user_at_host() + " pid " + std::to_string(::getpid())}, {"since", iso8601_ms()}};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o_.lock_timeout_s);
  bool announced = false;
  for (;;) {
    if (r_.put_object(bucket_, key, body.dump(), "application/json", true)) {
      locked_ = true;
      return;
    }
    auto found = r_.get_object_and_etag(bucket_, key);
    std::optional<std::string> holder;
    if (found) holder = found->first;
    std::string who = holder ? lock_holder(*holder) : "another deploy";
    if (holder && holder_is_gone(*holder)) {
      // Left by a deploy of this machine that was killed: nobody will ever release it. Deleted
      // only while it is still that lock (If-Match): when two deploys find it, one takes it
      // over and the other then waits for that one, instead of deleting its fresh lock.
      bool taken = true;
      if (found->second.empty()) r_.delete_object(bucket_, key);
      else taken = r_.delete_object_if_match(bucket_, key, found->second);
      if (taken)
        p_.line("the lock of stage " + stage_ + " was left by a deploy that is gone (" + who + "); taking it over");
      continue;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      throw LockError("stage " + stage_ + " is locked by " + who + "; waited " + std::to_string(o_.lock_timeout_s) +
                      " s. If that deploy is gone (killed, crashed), run again with --force-unlock.");
    if (!announced) {
      p_.line("waiting for the lock of stage " + stage_ + ", held by " + who + " (up to " +
              std::to_string(o_.lock_timeout_s) + " s)");
      announced = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

void Deployer::release_lock() {
  if (!locked_) return;
  locked_ = false;
  r_.delete_object(bucket_, state_lock_key(stage_));
}

// A lock written on this host by a process that no longer exists.
bool holder_is_gone(const std::string& lock_body) {
  auto j = json::parse(lock_body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  std::string holder = j.value("holder", std::string());  // "user@host pid N"
  auto at = holder.find('@'), sp = holder.find(" pid ");
  if (at == std::string::npos || sp == std::string::npos || sp < at) return false;
  std::string host = holder.substr(at + 1, sp - at - 1);
  char here[256] = {0};
  ::gethostname(here, sizeof here - 1);
  if (host != here) return false;
  long pid = std::strtol(holder.c_str() + sp + 5, nullptr, 10);
  if (pid <= 0 || pid == ::getpid()) return false;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

// ---- the whole ---------------------------------------------------------------------------

void Deployer::pass(bool apply) {
  apply_ = apply;
  items_.clear();
  aliases_.clear();
  apis_.clear();
  schedules_ = json::object();
  plans_ = json::object();
  keys_ = json::object();
  rest_stage_ready_.clear();
  reached_aliases_.clear();
  invoke_configs_ = json::object();
  other_records_.reset();  // the apply pass reads them again, under the lock
  // Applying creates the bucket before taking the lock; its item is the plan's, so that the
  // summary counts what the plan did.
  if (!apply) step_bucket();
  else items_.push_back({bucket_created_ ? Change::create : Change::unchanged, "bucket", bucket_, ""});
  if (bucket_exists_) {
    auto cur = r_.get_object(bucket_, state_current_key(stage_));
    previous_current_ = cur ? json::parse(*cur, nullptr, false) : json();
  }
  if (o_.mode == Mode::deploy) {
    step_role();
    step_uploads();
    step_layers();
  }
  step_functions();
  if (o_.mode == Mode::deploy) {
    step_destinations();
    step_event_sources();
  }
  if (o_.mode != Mode::rollback) {
    for (const auto& [name, api] : st_.apis) {
      if (api.type == stack::ApiType::rest) step_rest_api(api);
      else step_http_api(api);
    }
    step_keys_and_plans();
    step_schedules();
    step_removed();
  } else if (source_record_.contains("apis")) {
    for (const auto& [name, a] : source_record_["apis"].items()) {
      apis_[name] = {a.value("type", ""), a.value("id", ""), a.value("stage", ""), a.value("url", ""),
                     a.value("authorizers", json::object())};
      // Rollback leaves the APIs as they are: what their authorizers invoke stays as recorded.
      const json& now = object_field(object_field(previous_current_, "apis"), name.c_str());
      if (jstr(now, "id") == apis_[name].id) {
        apis_[name].authorizer_functions = object_field(now, "authorizer_functions");
        apis_[name].deployment = jstr(now, "deployment");
        apis_[name].retired_authorizer_functions = object_field(now, "retired_authorizer_functions");
      }
    }
  }
  step_record();
}

void Deployer::print_plan() const {
  int n[4] = {0, 0, 0, 0};
  for (const auto& it : items_) ++n[static_cast<int>(it.change)];
  p_.line("plan for stage " + stage_ + " (" + std::to_string(n[0]) + " to create, " + std::to_string(n[1]) +
          " to update, " + std::to_string(n[2]) + " to remove, " + std::to_string(n[3]) + " unchanged):");
  for (const auto& it : items_) {
    if (it.change == Change::unchanged) continue;
    const char* sym = it.change == Change::create ? "+" : it.change == Change::update ? "~" : "-";
    p_.line(std::string("  ") + sym + " " + verb(it.change) + " " + it.kind + " " + it.name +
            (it.detail.empty() ? "" : " (" + it.detail + ")"));
  }
}

void Deployer::print_summary() const {
  std::map<std::string, int> counts;
  for (const auto& it : items_) ++counts[verb(it.change)];
  p_.line("stage " + stage_ + ": " + std::to_string(counts["create"]) + " created, " +
          std::to_string(counts["update"]) + " updated, " + std::to_string(counts["remove"]) + " removed, " +
          std::to_string(counts["unchanged"]) + " unchanged");
  for (const auto& [fn, a] : aliases_) {
    std::string line = "  " + a["function"].get<std::string>() + ":" + stage_ + " -> version " +
                       a["version"].get<std::string>();
    for (const auto& [v, w] : a["weights"].items()) line += " (+ " + v + " at " + fixed2(w.get<double>()) + ")";
    p_.line(line);
  }
  for (const auto& [name, a] : apis_) p_.line("  API " + name + " (" + a.type + "): " + a.url);
  for (const auto& [name, f] : fns_)
    if (!f.url.empty()) p_.line("  function URL of " + name + ": " + f.url);
  for (const auto& [name, sc] : schedules_.items())
    p_.line("  schedule " + name + ": rule " + sc.value("rule", "") + " " + sc.value("expression", "") +
            (sc.value("state", "") == "DISABLED" ? " (disabled)" : "") + " -> " + sc.value("target", ""));
}

bool Deployer::confirm() const {
  if (o_.yes || !::isatty(0) || !::isatty(2)) return true;
  std::fprintf(stderr, "apply these changes to stage %s? [y/N] ", stage_.c_str());
  std::fflush(stderr);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes";
}

int Deployer::run() {
  std::string what = o_.mode == Mode::deploy    ? "deploying stack " + st_.name + " to"
                     : o_.mode == Mode::promote ? "promoting stack " + st_.name + " from stage " + o_.promote_from + " to"
                                                : "rolling back stack " + st_.name + " on";
  p_.line(what + " stage " + stage_ + " in " + region_ +
          (o_.endpoint_url ? " at " + *o_.endpoint_url : std::string()));
  identify();
  p_.line("account " + account_ + " (credentials from " + r_.client().credentials().source + ")");
  if (!commit_.empty()) p_.line("git commit " + commit_);
  prepare_code();

  // Promote and rollback apply a record: read it first.
  if (o_.mode != Mode::deploy) {
    if (!r_.bucket_exists(bucket_)) throw std::runtime_error("nothing has been deployed from this stack yet (no bucket " + bucket_ + ")");
    if (o_.mode == Mode::promote) {
      auto rec = r_.get_object(bucket_, state_current_key(o_.promote_from));
      if (!rec) throw std::runtime_error("stage " + o_.promote_from + " has no deploy record to promote (" +
                                         state_current_key(o_.promote_from) + " is missing)");
      source_record_ = json::parse(*rec);
    } else {
      auto keys = r_.list_keys(bucket_, "state/" + stage_ + "/history/");
      std::sort(keys.begin(), keys.end());
      if (keys.size() < 2)
        throw std::runtime_error("stage " + stage_ + " has " + std::to_string(keys.size()) +
                                 " deploy record(s); rollback needs a previous one");
      auto rec = r_.get_object(bucket_, keys[keys.size() - 2]);
      if (!rec) throw std::runtime_error("the previous record " + keys[keys.size() - 2] + " vanished");
      source_record_ = json::parse(*rec);
      p_.line("rolling back to the record of " + source_record_.value("time", std::string("?")) + " (" +
              keys[keys.size() - 2] + ")");
    }
  }

  p_.line("reading what exists ...");
  pass(false);
  print_plan();
  bool any = std::any_of(items_.begin(), items_.end(), [](const Item& i) { return i.change != Change::unchanged; });
  if (o_.dry_run) {
    p_.line("dry run: nothing was changed");
    return 0;
  }
  if (!any) {
    p_.line("nothing to change");
    print_summary();
    return 0;
  }
  if (!confirm()) {
    p_.line("not applied");
    return 1;
  }
  if (!bucket_exists_) {
    p_.line("  create bucket " + bucket_);
    r_.create_bucket(bucket_, region_);
    bucket_exists_ = bucket_created_ = true;
  }
  acquire_lock();
  try {
    p_.line("applying ...");
    pass(true);  // re-reads everything under the lock: another deploy may have run meanwhile
    release_lock();
  } catch (...) {
    try {
      release_lock();
    } catch (...) {
    }
    throw;
  }
  print_summary();
  return 0;
}

}  // namespace

std::string stage_name_error(const std::string& stage) {
  if (valid_alias_name(stage)) return "";
  std::string shown = stage.size() > 60 ? stage.substr(0, 60) + "..." : stage;
  return "\"" + shown + "\" cannot be deployed: each stage becomes an alias of every function, and a Lambda alias " +
         "name is 1 to 128 letters, digits, '-' or '_', and not only digits" +
         (stage.size() > 128 ? " (this one has " + std::to_string(stage.size()) + " characters)" : std::string());
}

int run(const stack::Stack& stack, const Options& options) {
  if (auto problem = stage_name_error(options.stage); !problem.empty()) throw std::invalid_argument("stage " + problem);
  if (options.mode == Mode::promote)
    if (auto problem = stage_name_error(options.promote_from); !problem.empty())
      throw std::invalid_argument("--promote-from " + problem);
  aws::ClientOptions co;
  co.region = options.region.empty() ? stack.region : options.region;
  co.endpoint_url = options.endpoint_url;
  co.profile = options.profile;
  co.role_arn = options.assume_role_arn;
  co.max_attempts = options.max_attempts;
  co.on_retry = [](const std::string& line) { std::fprintf(stderr, "  %s\n", line.c_str()); };
  aws::Client client(co);
  Deployer d(stack, options, client);
  try {
    return d.run();
  } catch (const aws::ServiceError& e) {
    if (e.is_auth_error()) throw aws::CredentialsError(aws::rejected_credentials_sentence(e, client.credentials()));
    if (!d.failing_step().empty()) throw std::runtime_error(d.failing_step() + " failed: " + describe_error(e));
    throw;
  } catch (const aws::CredentialsError&) {
    throw;
  } catch (const LockError&) {
    throw;
  } catch (const std::exception& e) {
    // Which change failed (the one announced last): the service's answer alone does not say.
    if (!d.failing_step().empty()) throw std::runtime_error(d.failing_step() + " failed: " + describe_error(e));
    throw;
  }
}

std::string describe_error(const std::exception& e) {
  if (auto* se = dynamic_cast<const aws::ServiceError*>(&e)) {
    if (se->is_auth_error() || (se->status == 403 && se->code.empty()))
      return "AWS rejected the credentials (" + (se->code.empty() ? "HTTP 403" : se->code) + ": " + se->message +
             "); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN or --profile.";
    // An answer without an error code (a proxy's or a web server's page) by its status line.
    if (se->code == std::to_string(se->status))
      return se->service + " answered HTTP " + se->code + (se->message.empty() ? "" : " " + se->message);
    return se->service + " answered " + std::to_string(se->status) + " " + se->code + ": " + se->message;
  }
  return e.what();
}

}  // namespace sluice::deploy
