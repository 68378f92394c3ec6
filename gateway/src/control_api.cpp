#include "control_api.hpp"

#include "sluice/common/hash.hpp"
#include "sluice/common/util.hpp"
#include "sluice/lambda/function_ref.hpp"
#include "sluice/lambda/service.hpp"
#include "sluice/lambda/versions.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>

namespace sluice::gateway {

using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

ControlAnswer error(unsigned status, std::string code, std::string message) {
  ControlAnswer a;
  a.status = status;
  a.error_code = std::move(code);
  a.error_message = std::move(message);
  return a;
}

ControlAnswer ok(const ojson& body) {
  ControlAnswer a;
  a.body = body.dump();
  return a;
}

// Bytes of the code as deployed locally (AWS's CodeSize is the zip's; this is the files'), and
// the newest modification time among them.
struct TreeFacts {
  long long size = 0;
  fs::file_time_type newest = fs::file_time_type::min();  // (libstdc++'s file clock counts from 2174)
};
TreeFacts tree_facts(const fs::path& dir) {
  TreeFacts facts;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end; it != end;
       it.increment(ec)) {
    if (ec) break;
    auto rel = it->path().lexically_relative(dir);
    if (lambda::ignored_path(rel)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec)) {
      facts.size += static_cast<long long>(it->file_size(ec));
      facts.newest = std::max(facts.newest, it->last_write_time(ec));
    }
  }
  return facts;
}

// A whole non-negative decimal number (the list operations' MaxItems and Marker).
bool parse_int(const std::string& s, long long& out) {
  if (s.empty() || s.size() > 9) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

// LastModified as Lambda writes it: 2019-09-26T20:28:40.438+0000.
std::string last_modified(const std::string& iso_z) {
  if (!iso_z.empty() && iso_z.back() == 'Z') return iso_z.substr(0, iso_z.size() - 1) + "+0000";
  return iso_z;
}

// $LATEST was last modified when its code or the stack file last changed (AWS: when the
// function was last updated), not at the time of the request.
std::string latest_modified(fs::file_time_type code_newest, const stack::Stack& st) {
  std::error_code ec;
  auto newest = code_newest;
  if (!st.source.empty()) {
    auto t = fs::last_write_time(st.source, ec);
    if (!ec) newest = std::max(newest, t);
  }
  if (newest == fs::file_time_type::min()) return last_modified(iso8601_ms());
  auto wall = std::chrono::time_point_cast<wall_clock::duration>(std::chrono::file_clock::to_sys(newest));
  return last_modified(iso8601_ms(wall));
}

// A stable revision id for what a configuration holds (AWS: a UUID that changes on updates).
std::string revision_id(const std::string& seed) {
  std::string h = hex(sha256(seed));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20, 12);
}

ojson configuration(const lambda::VersionConfig& c, const stack::Stack& st, lambda::LambdaService& service,
                    bool qualified) {
  const std::string arn = lambda::function_arn(st.region, st.account_id, c.function, qualified ? c.version : "");
  std::string sha = c.code_sha256;
  if (sha.empty()) sha = base64_encode(sha256(hash_tree(c.code_dir, lambda::ignored_path)));
  ojson j;
  j["FunctionName"] = c.function;
  j["FunctionArn"] = arn;
  j["Runtime"] = c.runtime.id;
  j["Role"] = "arn:aws:iam::" + st.account_id + ":role/sluice-" + st.name + "-lambda";
  j["Handler"] = c.handler.empty() ? "bootstrap" : c.handler;
  auto facts = tree_facts(c.code_dir);
  j["CodeSize"] = facts.size;
  j["Description"] = c.description;
  j["Timeout"] = c.timeout_s;
  j["MemorySize"] = c.memory_mb;
  j["LastModified"] = c.published_at.empty() ? latest_modified(facts.newest, st) : last_modified(c.published_at);
  j["CodeSha256"] = sha;
  j["Version"] = c.version;
  ojson vars = ojson::object();
  for (const auto& [k, v] : c.environment) vars[k] = v;
  j["Environment"] = {{"Variables", vars}};
  if (auto f = st.functions.find(c.function); f != st.functions.end() && f->second.async.dead_letter)
    j["DeadLetterConfig"] = {{"TargetArn", f->second.async.dead_letter->arn}};
  j["TracingConfig"] = {{"Mode", "PassThrough"}};
  // The same for a version however it is named ("fn" and "fn:$LATEST" are one function).
  j["RevisionId"] = revision_id(lambda::function_arn(st.region, st.account_id, c.function, c.version) + sha +
                                std::to_string(c.memory_mb) + std::to_string(c.timeout_s) + c.handler);
  j["State"] = "Active";
  j["LastUpdateStatus"] = "Successful";
  j["PackageType"] = "Zip";
  j["Architectures"] = {"x86_64"};
  j["EphemeralStorage"] = {{"Size", c.ephemeral_mb}};
  j["SnapStart"] = {{"ApplyOn", "None"}, {"OptimizationStatus", "Off"}};
  if (auto rv = service.runtime_version_arn(c.function); !rv.empty() && c.runtime.family != stack::RuntimeFamily::provided)
    j["RuntimeVersionConfig"] = {{"RuntimeVersionArn", rv}};
  ojson logging{{"LogFormat", c.logging ? c.logging->format : std::string("Text")}};
  if (c.logging && c.logging->format == "JSON") {
    logging["ApplicationLogLevel"] = c.logging->application_level();
    logging["SystemLogLevel"] = c.logging->system_level();
  }
  logging["LogGroup"] = "/aws/lambda/" + c.function;
  j["LoggingConfig"] = std::move(logging);
  return j;
}

ojson alias_json(const stack::AliasSpec& a, const std::string& function, const stack::Stack& st) {
  ojson j;
  j["AliasArn"] = lambda::function_arn(st.region, st.account_id, function, a.name);
  j["Name"] = a.name;
  j["FunctionVersion"] = a.version;
  j["Description"] = "";
  if (a.additional) j["RoutingConfig"] = {{"AdditionalVersionWeights", {{a.additional->first, a.additional->second}}}};
  j["RevisionId"] = revision_id(function + ":" + a.name + ":" + a.version +
                                (a.additional ? a.additional->first + std::to_string(a.additional->second) : ""));
  return j;
}

}  // namespace

std::string function_configuration(const lambda::VersionConfig& config, lambda::LambdaService& service, bool qualified) {
  return configuration(config, service.stack(), service, qualified).dump();
}

std::optional<ControlAnswer> control_plane_get(std::string_view target, lambda::LambdaService& service) {
  std::string_view path = target, query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  std::map<std::string, std::string> params;
  for (const auto& kv : split(query, '&')) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) params[url_decode(kv.substr(0, eq), true)] = url_decode(kv.substr(eq + 1), true);
  }
  auto param = [&](const char* key) {
    auto it = params.find(key);
    return it == params.end() ? std::string() : it->second;
  };
  std::string qualifier = param("Qualifier");
  // List operations: MaxItems (1 to 10,000; at most 50 a page, as Lambda's lists give) and Marker,
  // the NextMarker of the page before (here: where the next page starts).
  std::size_t page = 50, start = 0;
  if (auto m = params.find("MaxItems"); m != params.end()) {
    long long n = 0;
    if (!parse_int(m->second, n) || n < 1 || n > 10000)
      return error(400, "ValidationException",
                   "1 validation error detected: Value '" + m->second +
                       "' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000");
    page = std::min<std::size_t>(50, static_cast<std::size_t>(n));
  }
  if (auto m = params.find("Marker"); m != params.end() && !m->second.empty()) {
    long long n = 0;
    if (!parse_int(m->second, n) || n < 0)
      return error(400, "InvalidParameterValueException", "Invalid marker: " + m->second);
    start = static_cast<std::size_t>(n);
  }
  // One page of a list, under `key`, with NextMarker when more follow.
  auto paged = [&](const char* key, const ojson& all) {
    ojson out;
    ojson items = ojson::array();
    for (std::size_t i = start; i < all.size() && items.size() < page; ++i) items.push_back(all[i]);
    if (start + items.size() < all.size()) out["NextMarker"] = std::to_string(start + items.size());
    out[key] = std::move(items);
    return ok(out);
  };
  // The published versions of a function, each qualified, appended to `list`.
  auto add_versions = [&](ojson& list, const std::string& name) {
    for (const auto& v : service.versions().list(name))
      if (auto c = service.versions().get(name, v)) list.push_back(configuration(*c, service.stack(), service, true));
  };
  auto parts = split(path, '/');  // "", API version, "functions", NAME, ...
  if (!parts.empty() && parts.back().empty()) parts.pop_back();
  if (parts.size() < 3 || !parts[0].empty() || parts[2] != "functions") return std::nullopt;
  const std::string& api = parts[1];
  const stack::Stack& st = service.stack();

  if (parts.size() == 3) {
    if (api != "2015-03-31") return std::nullopt;
    // FunctionVersion=ALL adds every published version after each function's $LATEST.
    std::string which = param("FunctionVersion");
    if (!which.empty() && which != "ALL")
      return error(400, "ValidationException",
                   "1 validation error detected: Value '" + which +
                       "' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]");
    ojson list = ojson::array();
    for (const auto& [name, fn] : st.functions) {
      list.push_back(configuration(lambda::latest_config(fn), st, service, which == "ALL"));
      if (which == "ALL") add_versions(list, name);
    }
    return paged("Functions", list);
  }
  std::string op = parts.size() >= 5 ? parts[4] : "";
  const std::string kind = api + " " + op;
  static const std::set<std::string> known = {"2015-03-31 ", "2015-03-31 configuration", "2015-03-31 versions",
                                              "2015-03-31 aliases", "2019-09-25 event-invoke-config",
                                              "2019-09-30 concurrency"};
  const bool invoke_config_list = op == "event-invoke-config" && parts.size() == 6 && parts[5] == "list";
  if (!known.count(kind) || parts.size() > (op == "aliases" || invoke_config_list ? 6u : 5u)) return std::nullopt;

  auto parsed = lambda::parse_function_ref(url_decode(parts[3]), qualifier);
  if (parsed.error) return error(400, parsed.error->code, parsed.error->message);
  const auto& ref = *parsed.ref;
  // An ARN of another region is refused as Lambda refuses it (as Invoke does here).
  if (!ref.region.empty() && ref.region != st.region)
    return error(404, "ResourceNotFoundException",
                 "Functions from '" + ref.region + "' are not reachable in this region ('" + st.region + "')");
  auto fit = st.functions.find(ref.name);
  if (fit == st.functions.end() || (!ref.account.empty() && ref.account != st.account_id)) {
    const std::string arn = lambda::function_arn(st.region, ref.account.empty() ? st.account_id : ref.account,
                                                 ref.name, ref.qualifier);
    if (op == "event-invoke-config")  // AWS-recorded: the unqualified name reads as $LATEST
      return error(404, "ResourceNotFoundException",
                   invoke_config_list ? "The function doesn't exist."
                                      : "The function " + (ref.qualifier.empty() ? arn + ":$LATEST" : arn) +
                                            " doesn't have an EventInvokeConfig");
    return error(404, "ResourceNotFoundException", "Function not found: " + arn);
  }
  const stack::FunctionSpec& fn = fit->second;

  if (op == "aliases") {
    if (parts.size() == 6) {
      std::string name = url_decode(parts[5]);
      auto a = fn.aliases.find(name);
      if (a == fn.aliases.end())
        return error(404, "ResourceNotFoundException",
                     "Cannot find alias arn: " + lambda::function_arn(st.region, st.account_id, ref.name, name));
      return ok(alias_json(a->second, ref.name, st));
    }
    // FunctionVersion: only the aliases that invoke that version.
    std::string version = param("FunctionVersion");
    ojson list = ojson::array();
    for (const auto& [name, a] : fn.aliases)
      if (version.empty() || a.version == version) list.push_back(alias_json(a, ref.name, st));
    return paged("Aliases", list);
  }
  if (op == "versions") {
    ojson list = ojson::array();
    list.push_back(configuration(lambda::latest_config(fn), st, service, true));
    add_versions(list, ref.name);
    return paged("Versions", list);
  }
  if (op == "concurrency") {
    ojson j = ojson::object();
    if (fn.reserved_concurrency) j["ReservedConcurrentExecutions"] = *fn.reserved_concurrency;
    return ok(j);
  }
  if (op == "event-invoke-config") {
    // The stack's async settings, which apply to every version and alias of the function here;
    // AWS answers 404 when none were ever put (here: all defaults) and for a qualifier that
    // names no version or alias.
    const auto& a = fn.async;
    const bool configured = !(a.max_retry_attempts == 2 && a.max_event_age_s == 21600 && !a.on_success && !a.on_failure);
    const std::string& q = ref.qualifier;
    bool exists = q.empty() || q == "$LATEST" || fn.aliases.count(q) ||
                  (lambda::is_version_number(q) && service.versions().get(ref.name, q));
    std::string arn = lambda::function_arn(st.region, st.account_id, ref.name, q.empty() ? "$LATEST" : q);
    if (!invoke_config_list && (!configured || !exists))
      return error(404, "ResourceNotFoundException", "The function " + arn + " doesn't have an EventInvokeConfig");
    ojson dc{{"OnSuccess", ojson::object()}, {"OnFailure", ojson::object()}};
    auto dest = [&](const stack::DestinationSpec& d) {
      return d.arn.empty() ? lambda::function_arn(st.region, st.account_id, d.function, d.qualifier) : d.arn;
    };
    if (a.on_success) dc["OnSuccess"] = {{"Destination", dest(*a.on_success)}};
    if (a.on_failure) dc["OnFailure"] = {{"Destination", dest(*a.on_failure)}};
    // A timestamp in epoch seconds, as rest-json sends one (strict SDKs refuse a string): when
    // the stack file that says it last changed.
    double modified = 0;
    std::error_code ec;
    if (!st.source.empty())
      if (auto t = fs::last_write_time(st.source, ec); !ec)
        modified = std::chrono::duration<double>(std::chrono::file_clock::to_sys(t).time_since_epoch()).count();
    if (modified == 0) modified = std::chrono::duration<double>(wall_clock::now().time_since_epoch()).count();
    modified = std::floor(modified * 1000) / 1000;
    ojson config{{"LastModified", modified},
                 {"FunctionArn", arn},
                 {"MaximumRetryAttempts", a.max_retry_attempts},
                 {"MaximumEventAgeInSeconds", a.max_event_age_s},
                 {"DestinationConfig", dc}};
    if (!invoke_config_list) return ok(config);
    // ListFunctionEventInvokeConfigs: the function's one configuration, if any.
    ojson list = ojson::array();
    if (configured) list.push_back(std::move(config));
    return paged("FunctionEventInvokeConfigs", list);
  }

  // GetFunction / GetFunctionConfiguration: $LATEST, a published version or an alias's version.
  std::optional<lambda::VersionConfig> cfg;
  std::string q = ref.qualifier;
  if (q.empty() || q == "$LATEST") {
    cfg = lambda::latest_config(fn);
  } else {
    std::string version = q;
    if (!lambda::is_version_number(q)) {
      auto a = fn.aliases.find(q);
      if (a == fn.aliases.end())
        return error(404, "ResourceNotFoundException",
                     "Function not found: " + lambda::function_arn(st.region, st.account_id, ref.name, q));
      version = a->second.version;
    }
    if (version == "$LATEST") cfg = lambda::latest_config(fn);
    else cfg = service.versions().get(ref.name, version);
    if (!cfg)
      return error(404, "ResourceNotFoundException",
                   "Function not found: " + lambda::function_arn(st.region, st.account_id, ref.name, q));
  }
  ojson conf = configuration(*cfg, st, service, !q.empty());
  if (!q.empty() && !lambda::is_version_number(q) && q != "$LATEST")
    conf["FunctionArn"] = lambda::function_arn(st.region, st.account_id, ref.name, q);  // as invoked: the alias
  if (op == "configuration") return ok(conf);
  ojson out{{"Configuration", conf},
            {"Code", {{"RepositoryType", "S3"}, {"Location", "file://" + cfg->code_dir.string()}}}};
  if (fn.reserved_concurrency) out["Concurrency"] = {{"ReservedConcurrentExecutions", *fn.reserved_concurrency}};
  return ok(out);
}

}  // namespace sluice::gateway
