// The stack file's schema: reads the document tree into the model, reporting
// every problem with its path, line, what was found and what is allowed.
#include "sluice/stack/loader.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <variant>

#include <nlohmann/json.hpp>

#include "checker.hpp"
#include "code_checks.hpp"
#include "document.hpp"
#include "sluice/common/hash.hpp"
#include "sluice/common/util.hpp"

namespace sluice::stack {

using detail::Checker;
using detail::Fields;
using detail::list_words;
using detail::Node;
using detail::squoted;
using detail::View;

// ---- small public helpers ----------------------------------------------------

const std::vector<std::string>& reserved_environment_names() {
  static const std::vector<std::string> names{
      "_HANDLER",
      "_X_AMZN_TRACE_ID",
      "AWS_DEFAULT_REGION",
      "AWS_REGION",
      "AWS_EXECUTION_ENV",
      "AWS_LAMBDA_FUNCTION_NAME",
      "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
      "AWS_LAMBDA_FUNCTION_VERSION",
      "AWS_LAMBDA_INITIALIZATION_TYPE",
      "AWS_LAMBDA_LOG_GROUP_NAME",
      "AWS_LAMBDA_LOG_STREAM_NAME",
      "AWS_ACCESS_KEY",
      "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN",
      "AWS_LAMBDA_RUNTIME_API",
      "LAMBDA_TASK_ROOT",
      "LAMBDA_RUNTIME_DIR",
  };
  return names;
}

namespace {

const std::vector<std::string>& supported_runtimes() {
  static const std::vector<std::string> ids{
      "python3.9",  "python3.10", "python3.11", "python3.12", "python3.13", "python3.14",   "nodejs18.x",
      "nodejs20.x", "nodejs22.x", "nodejs24.x", "provided",   "provided.al2", "provided.al2023",
  };
  return ids;
}

}  // namespace

std::optional<RuntimeId> parse_runtime(const std::string& id) {
  const auto& ids = supported_runtimes();
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) return std::nullopt;
  RuntimeId r;
  r.id = id;
  if (starts_with(id, "python")) {
    r.family = RuntimeFamily::python;
    r.major = 3;
    r.minor = std::stoi(id.substr(std::string("python3.").size()));
  } else if (starts_with(id, "nodejs")) {
    r.family = RuntimeFamily::node;
    r.major = std::stoi(id.substr(std::string("nodejs").size()));
  } else {
    r.family = RuntimeFamily::provided;
  }
  return r;
}

std::string stable_id(const std::string& seed, std::size_t length) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  out.reserve(length);
  for (std::uint32_t block = 0; out.size() < length; ++block) {
    std::string digest = sha256(seed + "#" + std::to_string(block));
    for (unsigned char c : digest) {
      if (c >= 252) continue;  // 252 = 7 * 36: keeps every character equally likely
      out.push_back(alphabet[c % 36]);
      if (out.size() == length) break;
    }
  }
  return out;
}

namespace {

// ---- character classes (no std::regex on user text: it recurses per character) --

bool chars_in(const std::string& s, bool (*ok)(unsigned char)) {
  for (unsigned char c : s)
    if (!ok(c)) return false;
  return true;
}
bool name_char(unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; }
bool word_char(unsigned char c) { return std::isalnum(c) || c == '_'; }
bool digit_char(unsigned char c) { return std::isdigit(c); }

bool valid_name(const std::string& s, std::size_t max) { return !s.empty() && s.size() <= max && chars_in(s, name_char); }

bool valid_env_name(const std::string& s) {
  return !s.empty() && std::isalpha(static_cast<unsigned char>(s[0])) && std::isalnum(static_cast<unsigned char>(s[0])) &&
         chars_in(s, word_char);
}

bool valid_stack_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::isalpha(static_cast<unsigned char>(s[0])) &&
         chars_in(s, [](unsigned char c) { return std::isalnum(c) != 0 || c == '-'; });
}

bool lower_alpha(unsigned char c) { return c >= 'a' && c <= 'z'; }

// [a-z]{2}(-gov)?-[a-z]+-\d, as the Lambda ARN pattern has it.
bool valid_region(const std::string& s) {
  auto parts = split(s, '-');
  if (parts.size() == 4 && parts[1] == "gov") parts.erase(parts.begin() + 1);
  return parts.size() == 3 && parts[0].size() == 2 && chars_in(parts[0], lower_alpha) && !parts[1].empty() &&
         chars_in(parts[1], lower_alpha) && parts[2].size() == 1 && std::isdigit(static_cast<unsigned char>(parts[2][0]));
}

bool positive_version(const std::string& s) {
  return !s.empty() && s.size() <= 9 && chars_in(s, digit_char) && s[0] != '0';
}

bool stage_value_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("-._~:/?#&=,").find(static_cast<char>(c)) != std::string_view::npos;
}

bool header_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("!#$%&'*+.^_`|~-").find(static_cast<char>(c)) != std::string_view::npos;
}

bool path_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("-._~:@!$&'()*,;=%").find(static_cast<char>(c)) != std::string_view::npos;
}

bool media_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("!#$&^_.+-*").find(static_cast<char>(c)) != std::string_view::npos;
}

// "<msg>; did you mean 'x'? Label: a, b" -- or "<msg>; label: a, b", or "<msg>; <when_empty>".
std::string with_choices(std::string msg, const std::string& word, const std::vector<std::string>& candidates,
                         std::string label, const std::string& when_empty = "") {
  std::string near = nearest(word, candidates);
  if (!near.empty()) msg += "; did you mean " + squoted(near) + "?";
  if (candidates.empty()) {
    if (!when_empty.empty()) msg += "; " + when_empty;
    return msg;
  }
  if (!near.empty() && !label.empty()) label[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(label[0])));
  return msg + (near.empty() ? "; " : " ") + label + ": " + list_words(candidates);
}

template <class Map>
std::vector<std::string> keys_of(const Map& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

std::vector<std::string> keys_of_set(const std::set<std::string>& s) { return {s.begin(), s.end()}; }

const std::vector<std::string> route_methods{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"};

// ---- route keys --------------------------------------------------------------

struct RouteKey {
  std::string method;  // "" for $default
  std::string path;    // normalised; "" for $default
  std::string key;     // "GET /movies/{id}" or "$default"
  std::string shape;   // "GET /movies/{}" : parameter names do not make two routes different
  std::vector<std::string> segments;
};

// Parses "METHOD /path" or "$default"; returns an error message on failure.
std::variant<RouteKey, std::string> parse_route_key(const std::string& text, std::optional<ApiType> type) {
  RouteKey rk;
  if (text == "$default") {
    if (type == ApiType::rest)
      return std::string("the $default route exists only in HTTP APIs; a REST API catches everything with "
                         "\"ANY /{proxy+}\"");
    rk.key = rk.shape = "$default";
    return rk;
  }
  auto sp = text.find(' ');
  if (sp == std::string::npos)
    return "route " + sluice::quoted(text) + " must be \"METHOD /path\" (e.g. \"GET /movies/{id}\")" +
           (type == ApiType::rest ? std::string() : std::string(" or \"$default\""));
  std::string method = text.substr(0, sp);
  std::string path(trim(std::string_view(text).substr(sp + 1)));
  if (std::find(route_methods.begin(), route_methods.end(), method) == route_methods.end()) {
    std::string msg = "route " + sluice::quoted(text) + " has an unknown method " + squoted(method);
    std::string near = nearest(method, route_methods);
    if (!near.empty()) msg += "; did you mean " + squoted(near) + "?";
    msg += (near.empty() ? "; methods: " : " Methods: ") + list_words(route_methods);
    return msg;
  }
  if (path.empty() || path[0] != '/')
    return "route " + sluice::quoted(text) + ": the path must start with '/' (e.g. \"" + method + " /movies\")";
  std::vector<std::string> segs = split(std::string_view(path).substr(1), '/');
  if (!segs.empty() && segs.back().empty()) segs.pop_back();  // a trailing slash is ignored, as on AWS
  std::set<std::string> params;
  std::vector<std::string> shape;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const std::string& s = segs[i];
    if (s.empty()) return "route " + sluice::quoted(text) + ": the path has an empty segment ('//')";
    if (s.front() == '{') {
      if (s.back() != '}' || s.size() < 3)
        return "route " + sluice::quoted(text) + ": path parameter " + sluice::quoted(s) + " must be a whole segment like {id}";
      std::string name = s.substr(1, s.size() - 2);
      bool greedy = !name.empty() && name.back() == '+';
      if (greedy) name.pop_back();
      if (name.empty() || !chars_in(name, word_char))
        return "route " + sluice::quoted(text) + ": path parameter names are letters, digits and '_', found " + sluice::quoted(s);
      if (greedy && i + 1 != segs.size())
        return "route " + sluice::quoted(text) + ": the greedy parameter {" + name + "+} must be the last segment";
      if (!params.insert(name).second)
        return "route " + sluice::quoted(text) + ": the path parameter " + squoted(name) + " appears twice";
      shape.push_back(greedy ? "{+}" : "{}");
      continue;
    }
    if (!chars_in(s, path_char))
      return "route " + sluice::quoted(text) + ": segment " + sluice::quoted(s) +
             " has characters a path may not hold (a parameter must be a whole segment like {id})";
    shape.push_back(s);
  }
  rk.method = method;
  rk.segments = segs;
  rk.path = "/" + join(segs, "/");
  rk.key = method + " " + rk.path;
  rk.shape = method + " /" + join(shape, "/");
  return rk;
}

// ---- route targets -----------------------------------------------------------

struct ParsedTarget {
  RouteTarget target;
  std::vector<std::string> variables;  // stage variables referenced
  bool function_static = true;
  bool qualifier_static = true;
};

std::variant<ParsedTarget, std::string> parse_target(const std::string& text) {
  ParsedTarget pt;
  if (text.empty()) return std::string("the target is empty; expected FUNCTION or FUNCTION:QUALIFIER");
  // Mark which characters are literal and which belong to ${stageVariables.x}.
  std::string function, qualifier;
  bool in_qualifier = false;
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, 2, "${") == 0) {
      auto close = text.find('}', i);
      const std::string prefix = "${stageVariables.";
      if (close == std::string::npos || text.compare(i, prefix.size(), prefix) != 0)
        return "malformed stage variable reference in " + sluice::quoted(text) + "; write ${stageVariables.NAME}";
      std::string name = text.substr(i + prefix.size(), close - i - prefix.size());
      if (name.empty() || !chars_in(name, word_char))
        return "stage variable name " + sluice::quoted(name) + " in " + sluice::quoted(text) + " must be letters, digits or '_'";
      pt.variables.push_back(name);
      (in_qualifier ? pt.qualifier_static : pt.function_static) = false;
      (in_qualifier ? qualifier : function) += text.substr(i, close - i + 1);
      i = close + 1;
      continue;
    }
    char c = text[i];
    if (c == ':') {
      if (in_qualifier)
        return "target " + sluice::quoted(text) + " has more than one ':'; expected FUNCTION or FUNCTION:QUALIFIER";
      in_qualifier = true;
      ++i;
      continue;
    }
    bool ok = in_qualifier ? (name_char(static_cast<unsigned char>(c)) || c == '$') : name_char(static_cast<unsigned char>(c));
    if (!ok)
      return "target " + sluice::quoted(text) + " has the character " + sluice::quoted(std::string(1, c)) +
             "; function names are letters, digits, '-' and '_' (FUNCTION[:QUALIFIER], either may use "
             "${stageVariables.NAME})";
    (in_qualifier ? qualifier : function).push_back(c);
    ++i;
  }
  if (function.empty()) return "target " + sluice::quoted(text) + " names no function";
  if (in_qualifier && qualifier.empty())
    return "target " + sluice::quoted(text) + " ends with ':'; give a qualifier ($LATEST, a version number or an alias)";
  if (pt.function_static && function.size() > 64)
    return "function name in target " + sluice::quoted(text) + " is longer than 64 characters";
  pt.target.function = function;
  pt.target.qualifier = qualifier;
  return pt;
}

std::string substitute(const std::string& text, const std::map<std::string, std::string>& vars) {
  std::string out;
  const std::string prefix = "${stageVariables.";
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, prefix.size(), prefix) == 0) {
      auto close = text.find('}', i);
      std::string name = text.substr(i + prefix.size(), close - i - prefix.size());
      auto it = vars.find(name);
      out += it == vars.end() ? "" : it->second;
      i = close + 1;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

// ---- the tree as JSON (inline JWKS) ------------------------------------------

nlohmann::json to_json(const Node* n) {
  if (!n || n->kind == Node::Kind::null) return nullptr;
  if (n->kind == Node::Kind::scalar) {
    if (!n->plain) return n->text;
    const std::string& t = n->text;
    if (t == "true" || t == "True" || t == "TRUE") return true;
    if (t == "false" || t == "False" || t == "FALSE") return false;
    if (t == "null" || t == "~" || t == "Null" || t == "NULL") return nullptr;
    if (detail::looks_integer(t) && t.size() < 18) return std::stoll(t);
    if (detail::looks_number(t)) {
      double d = std::strtod(t.c_str(), nullptr);
      if (std::isfinite(d)) return d;
    }
    return t;
  }
  if (n->kind == Node::Kind::seq) {
    auto arr = nlohmann::json::array();
    for (const auto& i : n->items) arr.push_back(to_json(i.get()));
    return arr;
  }
  auto obj = nlohmann::json::object();
  for (const auto& e : n->entries) obj[e.key] = to_json(e.value.get());
  return obj;
}

// ---- the loader ----------------------------------------------------------------

struct ApiInfo {
  std::optional<ApiType> type;
  std::set<std::string> route_keys;                  // normalised
  std::map<std::string, AuthorizerType> authorizer_types;  // valid ones
  std::set<std::string> authorizer_names;            // every declared one
  std::set<std::string> stage_names;                 // every declared one (plus $default when implied)
};

class Loader {
 public:
  Loader(std::vector<Problem>& problems, fs::path base_dir) : c_(problems), base_(std::move(base_dir)) {}

  std::optional<Stack> load(const detail::NodeP& root);

 private:
  // sections
  void read_defaults(const View& v);
  void read_packages(const View& v);
  void read_functions(const View& v);
  void read_function(const std::string& name, const View& v);
  void read_environment(const View& v, std::map<std::string, std::string>& out);
  void read_aliases(const View& v, FunctionSpec& f);
  void read_apis(const View& v);
  void read_api(const std::string& name, const View& v);
  void read_authorizers(const View& v, ApiSpec& api, ApiInfo& info);
  void read_authorizer(const std::string& name, const View& v, ApiSpec& api, ApiInfo& info);
  void read_stages(const Fields& api_fields, ApiSpec& api, ApiInfo& info, std::vector<std::pair<std::string, View>>& deferred);
  void read_routes(const View& v, ApiSpec& api, ApiInfo& info);
  void read_route(const std::string& key, const View& v, ApiSpec& api, ApiInfo& info,
                  std::map<std::string, std::string>& shapes, std::map<std::string, int>& lines);
  void check_target(const View& at, const ParsedTarget& pt, const ApiSpec& api);
  void read_api_keys(const View& v);
  void read_usage_plans(const View& v);
  void cross_checks();

  // values
  std::optional<RuntimeId> runtime(const View& v);
  std::optional<fs::path> directory(const View& v, std::string_view what);
  std::optional<Throttle> throttle(const View& v);
  std::optional<std::string> payload_format(const View& v);
  std::optional<std::vector<std::string>> string_list(const View& v, std::string_view expected, bool scalar_ok = false);
  std::optional<std::string> static_qualifier_error(const std::string& function, const std::string& qualifier);
  std::optional<std::string> route_key_ref(const View& at, const std::string& text, const ApiInfo& info);

  fs::path resolve(const std::string& p) const {
    fs::path path(p);
    if (path.is_relative()) path = base_ / path;
    return path.lexically_normal();
  }

  Checker c_;
  fs::path base_;
  Stack stack_;
  bool name_ok_ = false;
  std::set<std::string> package_names_;
  std::set<std::string> function_names_;                     // every declared one
  std::map<std::string, std::set<std::string>> alias_names_;  // function -> declared aliases
  std::map<std::string, ApiInfo> api_info_;
  std::map<std::string, int> api_lines_;
  std::set<std::string> key_names_;
  std::map<std::string, View> route_views_;  // "api/routeKey" -> where it was written
};

std::optional<Stack> Loader::load(const detail::NodeP& root) {
  stack_.base_dir = base_;
  if (!root || root->kind == Node::Kind::null) {
    c_.error("", 0, "the file is empty; a stack file is a mapping with at least 'name:' (and usually "
                    "'functions:' and 'apis:')");
    return std::nullopt;
  }
  View top{root.get(), "", root->line ? root->line : 1};
  auto f = c_.fields(top,
                     {"name", "region", "account_id", "defaults", "packages", "functions", "apis", "api_keys",
                      "usage_plans"},
                     "a mapping at the top level (name:, functions:, apis:, ...)");
  if (!f) return std::nullopt;

  if (auto v = f->get("name")) {
    if (auto s = c_.string(*v, "a stack name")) {
      if (valid_stack_name(*s)) {
        stack_.name = *s;
        name_ok_ = true;
      } else {
        c_.error(*v, "stack name " + sluice::quoted(*s) +
                         " must start with a letter and hold only letters, digits and hyphens, at most 64 characters");
      }
    }
  } else {
    c_.missing(top, "name", "the stack name (letters, digits, hyphens) prefixes every AWS resource on deploy");
  }
  if (auto v = f->get("region")) {
    if (auto s = c_.string(*v, "an AWS region such as us-east-1")) {
      if (valid_region(*s))
        stack_.region = *s;
      else
        c_.error(*v, "expected an AWS region such as \"us-east-1\" or \"eu-west-3\", found " + sluice::quoted(*s));
    }
  }
  if (auto v = f->get("account_id")) {
    // A plain 123456789012 is read as written, so leading zeros survive.
    if (v->scalar() && v->text().size() == 12 && chars_in(v->text(), digit_char))
      stack_.account_id = v->text();
    else
      c_.error(*v, "expected a 12-digit AWS account id such as \"123456789012\", found " + Checker::found(*v));
  }
  if (auto v = f->get("defaults")) read_defaults(*v);
  if (auto v = f->get("packages")) read_packages(*v);
  if (auto v = f->get("functions")) read_functions(*v);
  if (auto v = f->get("apis")) read_apis(*v);
  if (auto v = f->get("api_keys")) read_api_keys(*v);
  if (auto v = f->get("usage_plans")) read_usage_plans(*v);
  if (!c_.stopped()) cross_checks();
  if (c_.errors() > 0) return std::nullopt;
  return std::move(stack_);
}

// ---- defaults, packages, functions ---------------------------------------------

std::optional<RuntimeId> Loader::runtime(const View& v) {
  auto s = c_.string(v, "a runtime such as \"python3.12\"");
  if (!s) return std::nullopt;
  if (auto r = parse_runtime(*s)) return r;
  c_.error(v, with_choices("unsupported runtime " + sluice::quoted(*s), *s, supported_runtimes(),
                          "supported runtimes"));
  return std::nullopt;
}

void Loader::read_defaults(const View& v) {
  auto f = c_.fields(v, {"runtime", "memory", "timeout", "environment", "handler"},
                     "a mapping of function defaults (runtime, memory, timeout, environment, handler)", true);
  if (!f) return;
  Defaults& d = stack_.defaults;
  if (auto x = f->get("runtime")) d.runtime = runtime(*x);
  if (auto x = f->get("memory"))
    if (auto m = c_.integer(*x, 128, 10240)) d.memory_mb = static_cast<int>(*m);
  if (auto x = f->get("timeout"))
    if (auto t = c_.integer(*x, 1, 900)) d.timeout_s = static_cast<int>(*t);
  if (auto x = f->get("handler"))
    if (auto h = c_.string(*x, "a handler such as \"app.handler\"")) d.handler = *h;
  if (auto x = f->get("environment")) {
    read_environment(*x, d.environment);
    std::size_t total = 0;
    for (const auto& [k, val] : d.environment) total += k.size() + val.size();
    if (total > 4096)
      c_.error(*x, "environment variables total " + std::to_string(total) +
                       " bytes (names plus values); AWS allows at most 4096 (4 KB)");
  }
}

void Loader::read_packages(const View& v) {
  auto entries = c_.named(v, "a mapping of package names to {path: DIRECTORY}", true);
  if (!entries) return;
  for (const auto& [name, pv] : *entries) {
    if (c_.stopped()) return;
    package_names_.insert(name);
    if (!valid_name(name, 64)) {
      c_.error(pv, "package name " + sluice::quoted(name) + " must be 1 to 64 letters, digits, '-' or '_'");
      continue;
    }
    auto f = c_.fields(pv, {"path"}, "a mapping {path: DIRECTORY}");
    if (!f) continue;
    auto p = f->get("path");
    if (!p) {
      c_.missing(pv, "path", "the package's directory, relative to the stack file");
      continue;
    }
    if (auto dir = directory(*p, "package directory")) stack_.packages[name] = PackageSpec{name, *dir};
  }
}

std::optional<fs::path> Loader::directory(const View& v, std::string_view what) {
  auto s = c_.string(v, "a directory path");
  if (!s) return std::nullopt;
  if (s->empty()) {
    c_.error(v, std::string(what) + " is empty; write a directory path such as \"src/\"");
    return std::nullopt;
  }
  fs::path p = resolve(*s);
  std::error_code ec;
  auto st = fs::status(p, ec);
  if (ec || !fs::exists(st)) {
    c_.error(v, std::string(what) + " " + sluice::quoted(*s) + " does not exist (looked for " + p.string() + ")");
    return std::nullopt;
  }
  if (!fs::is_directory(st)) {
    c_.error(v, std::string(what) + " " + sluice::quoted(*s) + " is not a directory (" + p.string() + ")");
    return std::nullopt;
  }
  fs::path canon = fs::canonical(p, ec);
  return ec ? p : canon;
}

void Loader::read_environment(const View& v, std::map<std::string, std::string>& out) {
  auto entries = c_.named(v, "a mapping of environment variable names to values", true);
  if (!entries) return;
  const auto& reserved = reserved_environment_names();
  for (const auto& [name, ev] : *entries) {
    if (c_.stopped()) return;
    if (std::find(reserved.begin(), reserved.end(), name) != reserved.end()) {
      c_.error(ev, "environment variable " + name +
                       " is reserved by AWS Lambda and set by the runtime; choose another name (reserved: " +
                       list_words(reserved) + ")");
      continue;
    }
    if (!valid_env_name(name)) {
      c_.error(ev, "environment variable name " + sluice::quoted(name) +
                       " must start with a letter and hold only letters, digits and '_'");
      continue;
    }
    if (ev.null()) {
      c_.error(ev, "expected a value for " + name + ", found nothing (write \"\" for an empty value)");
      continue;
    }
    if (!ev.scalar()) {
      c_.error(ev, "expected a string, number or boolean value for " + name + ", found " + Checker::found(ev));
      continue;
    }
    out[name] = ev.text();  // as written: 1.50 stays "1.50", yes stays "yes"
  }
}

void Loader::read_functions(const View& v) {
  auto entries = c_.named(v, "a mapping of function names to their settings", true);
  if (!entries) return;
  for (const auto& [name, _] : *entries) function_names_.insert(name);
  // Aliases are needed by route checks before the functions themselves are complete.
  for (const auto& [name, fv] : *entries) {
    if (!fv.map()) continue;
    for (const auto& e : fv.n->entries)
      if (e.key == "aliases" && e.value && e.value->kind == Node::Kind::map)
        for (const auto& a : e.value->entries) alias_names_[name].insert(a.key);
  }
  for (const auto& [name, fv] : *entries) {
    if (c_.stopped()) return;
    read_function(name, fv);
  }
}

void Loader::read_function(const std::string& name, const View& v) {
  if (!valid_name(name, 64))
    c_.error(v, "function name " + sluice::quoted(name) + " must be 1 to 64 letters, digits, '-' or '_'");
  auto f = c_.fields(v,
                     {"runtime", "handler", "code", "package", "description", "memory", "timeout", "environment",
                      "concurrency", "layers", "aliases", "async"},
                     "a mapping with the function's settings (runtime, handler, code, ...)");
  if (!f) return;
  FunctionSpec fn;
  fn.name = name;
  bool ok = true;

  std::optional<RuntimeId> rt;
  if (auto x = f->get("runtime")) {
    rt = runtime(*x);
  } else if (stack_.defaults.runtime) {
    rt = stack_.defaults.runtime;
  } else {
    c_.missing(v, "runtime", "set it here or in defaults.runtime (e.g. python3.12, nodejs20.x, provided.al2023)");
  }
  if (rt) fn.runtime = *rt;
  else ok = false;

  View handler_at = v;
  std::optional<std::string> handler;
  if (auto x = f->get("handler")) {
    handler = c_.string(*x, "a handler such as \"app.handler\"");
    handler_at = *x;
    if (!handler) ok = false;
  } else if (stack_.defaults.handler) {
    handler = stack_.defaults.handler;
  }
  if (handler) fn.handler = *handler;
  if (rt && handler) {
    if (auto err = detail::handler_format_error(*handler, rt->family)) {
      c_.error(handler_at, *err);
      ok = false;
      handler.reset();
    }
  } else if (rt && rt->family != RuntimeFamily::provided && !f->has("handler")) {
    c_.missing(v, "handler",
               rt->family == RuntimeFamily::python ? "e.g. \"app.handler\" for def handler() in app.py (or set defaults.handler)"
                                                   : "e.g. \"index.handler\" for exports.handler in index.js (or set defaults.handler)");
    ok = false;
  }

  const View* code = f->get("code");
  const View* package = f->get("package");
  bool have_dir = false;
  View code_at = v;
  if (code && package) {
    c_.error(v, "set either 'code' (the function's own directory) or 'package' (a shared one), not both");
    ok = false;
  } else if (code) {
    code_at = *code;
    if (auto d = directory(*code, "code directory")) {
      fn.code_dir = *d;
      have_dir = true;
    } else {
      ok = false;
    }
  } else if (package) {
    code_at = *package;
    if (auto p = c_.string(*package, "a package name")) {
      auto it = stack_.packages.find(*p);
      if (it != stack_.packages.end()) {
        fn.package = *p;
        fn.code_dir = it->second.path;
        have_dir = true;
      } else if (!package_names_.count(*p)) {
        std::vector<std::string> names = keys_of_set(package_names_);
        c_.error(*package, with_choices("unknown package " + sluice::quoted(*p), *p, names, "packages",
                                        "define it under the top-level 'packages:' first"));
        ok = false;
      } else {
        ok = false;  // the package itself is broken and already reported
      }
    }
  } else {
    c_.missing(v, "code", "give the function's directory with 'code: DIR/' or a shared one with 'package: NAME'");
    ok = false;
  }

  if (auto x = f->get("description"))
    if (auto s = c_.string(*x, "a description")) {
      if (s->size() > 256)
        c_.error(*x, "the description is " + std::to_string(s->size()) + " characters; AWS allows at most 256");
      else
        fn.description = *s;
    }
  fn.memory_mb = stack_.defaults.memory_mb.value_or(128);
  if (auto x = f->get("memory"))
    if (auto m = c_.integer(*x, 128, 10240)) fn.memory_mb = static_cast<int>(*m);
  fn.timeout_s = stack_.defaults.timeout_s.value_or(3);
  if (auto x = f->get("timeout"))
    if (auto t = c_.integer(*x, 1, 900)) fn.timeout_s = static_cast<int>(*t);

  fn.environment = stack_.defaults.environment;
  if (auto x = f->get("environment")) {
    std::map<std::string, std::string> own;
    read_environment(*x, own);
    for (auto& [k, val] : own) fn.environment[k] = val;  // the function wins over defaults
    std::size_t total = 0;
    for (const auto& [k, val] : fn.environment) total += k.size() + val.size();
    if (total > 4096)
      c_.error(*x, "environment variables total " + std::to_string(total) + " bytes (names plus values" +
                       (stack_.defaults.environment.empty() ? "" : ", with defaults.environment") +
                       "); AWS allows at most 4096 (4 KB)");
  }
  if (auto x = f->get("concurrency"))
    if (auto n = c_.integer(*x, 0, 1'000'000)) fn.reserved_concurrency = static_cast<int>(*n);

  if (auto x = f->get("layers")) {
    if (auto items = c_.list(*x, "a list of layer directories")) {
      if (items->size() > 5) {
        c_.error(*x, "a function can use at most 5 layers (as on AWS), found " + std::to_string(items->size()));
        ok = false;
      }
      for (const auto& item : *items) {
        if (auto d = directory(item, "layer directory")) fn.layers.push_back(*d);
        else ok = false;
      }
    } else {
      ok = false;
    }
  }
  if (auto x = f->get("aliases")) read_aliases(*x, fn);
  if (auto x = f->get("async")) {
    if (auto a = c_.fields(*x, {"max_retry_attempts", "max_event_age"},
                           "a mapping {max_retry_attempts: 0..2, max_event_age: 60..21600}", true)) {
      if (auto y = a->get("max_retry_attempts"))
        if (auto n = c_.integer(*y, 0, 2)) fn.async.max_retry_attempts = static_cast<int>(*n);
      if (auto y = a->get("max_event_age"))
        if (auto n = c_.integer(*y, 60, 21600)) fn.async.max_event_age_s = static_cast<int>(*n);
    }
  }

  // The code must be there before anything starts.
  if (ok && have_dir && rt) {
    if (rt->family == RuntimeFamily::provided) {
      if (auto err = detail::bootstrap_error(fn.code_dir, fn.layers, *rt)) c_.error(code_at, *err);
    } else if (handler) {
      std::optional<std::string> err =
          rt->family == RuntimeFamily::python
              ? detail::python_handler_file_error(*handler, fn.code_dir, fn.layers, *rt)
              : detail::node_handler_file_error(*handler, fn.code_dir);
      if (err) c_.error(handler_at, *err);
    }
  }
  stack_.functions[name] = std::move(fn);
}

void Loader::read_aliases(const View& v, FunctionSpec& fn) {
  auto entries = c_.named(v, "a mapping of alias names to a version or {version, weights}", true);
  if (!entries) return;
  for (const auto& [name, av] : *entries) {
    if (c_.stopped()) return;
    if (name.empty() || name.size() > 128 || !chars_in(name, name_char) || chars_in(name, digit_char)) {
      c_.error(av, "alias name " + sluice::quoted(name) +
                       " must be 1 to 128 letters, digits, '-' or '_' and not only digits (that would read as a version)");
      continue;
    }
    AliasSpec alias;
    alias.name = name;
    const View* version_at = &av;
    std::optional<Fields> fields;
    if (av.map()) {
      fields = c_.fields(av, {"version", "weights"}, "a mapping {version, weights}");
      if (!fields) continue;
      version_at = fields->get("version");
      if (!version_at) {
        c_.missing(av, "version", "$LATEST or a version number");
        continue;
      }
    }
    const View& vv = *version_at;
    if (!vv.scalar() || !(vv.text() == "$LATEST" || positive_version(vv.text()))) {
      c_.error(vv, "expected $LATEST or a version number (1, 2, ...), found " + Checker::found(vv));
      continue;
    }
    alias.version = vv.text();
    if (fields) {
      if (auto w = fields->get("weights")) {
        if (auto weights = c_.named(*w, "a mapping {\"VERSION\": WEIGHT} with one additional version", true)) {
          if (weights->size() > 1) {
            c_.error(*w, "an alias routes to at most one additional version (as on AWS), found " +
                             std::to_string(weights->size()));
            continue;
          }
          if (weights->size() == 1) {
            const auto& [extra, wv] = weights->front();
            bool good = true;
            if (alias.version == "$LATEST") {
              c_.error(vv, "an alias with weights must point at a published version, not $LATEST (as on AWS)");
              good = false;
            }
            if (!positive_version(extra)) {
              c_.error(wv, "the additional version must be a published version number (1, 2, ...), found " +
                               sluice::quoted(extra));
              good = false;
            } else if (extra == alias.version) {
              c_.error(wv, "the additional version " + extra + " is the alias's own version; name another one");
              good = false;
            }
            auto weight = c_.number(wv, "a weight between 0 and 1 (exclusive), such as 0.1");
            if (weight && !(*weight > 0.0 && *weight < 1.0)) {
              c_.error(wv, "expected a weight between 0 and 1 (exclusive), such as 0.1, found " + Checker::found(wv));
              good = false;
            }
            if (!weight || !good) continue;
            alias.additional = std::make_pair(extra, *weight);
          }
        }
      }
    }
    fn.aliases[name] = std::move(alias);
  }
}

// ---- APIs ------------------------------------------------------------------------

std::optional<Throttle> Loader::throttle(const View& v) {
  auto f = c_.fields(v, {"rate", "burst"}, "a mapping {rate: REQUESTS_PER_SECOND, burst: N}");
  if (!f) return std::nullopt;
  Throttle t;
  bool ok = true;
  if (auto x = f->get("rate")) {
    auto r = c_.number(*x, "a rate in requests per second greater than 0");
    if (r && *r <= 0) {
      c_.error(*x, "expected a rate in requests per second greater than 0, found " + Checker::found(*x));
      r.reset();
    }
    if (r) t.rate = *r;
    else ok = false;
  } else {
    c_.missing(v, "rate", "steady requests per second");
    ok = false;
  }
  if (auto x = f->get("burst")) {
    if (auto b = c_.integer(*x, 0, INT_MAX)) t.burst = static_cast<int>(*b);
    else ok = false;
  } else {
    c_.missing(v, "burst", "the bucket size (requests allowed at once)");
    ok = false;
  }
  if (!ok) return std::nullopt;
  return t;
}

std::optional<std::string> Loader::payload_format(const View& v) {
  if (v.scalar() && (v.text() == "1.0" || v.text() == "2.0")) return v.text();
  c_.error(v, "expected payload format \"1.0\" or \"2.0\", found " + Checker::found(v));
  return std::nullopt;
}

std::optional<std::vector<std::string>> Loader::string_list(const View& v, std::string_view expected, bool scalar_ok) {
  auto items = c_.list(v, expected, scalar_ok);
  if (!items) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (const auto& i : *items) {
    if (auto s = c_.string(i, "a string")) out.push_back(*s);
    else ok = false;
  }
  if (!ok) return std::nullopt;
  return out;
}

void Loader::read_apis(const View& v) {
  auto entries = c_.named(v, "a mapping of API names to their settings", true);
  if (!entries) return;
  for (const auto& [name, av] : *entries) {
    if (c_.stopped()) return;
    read_api(name, av);
  }
}

void Loader::read_api(const std::string& name, const View& v) {
  ApiInfo& info = api_info_[name];
  api_lines_[name] = v.line;
  if (!valid_name(name, 128)) c_.error(v, "API name " + sluice::quoted(name) + " must be 1 to 128 letters, digits, '-' or '_'");
  auto f = c_.fields(v,
                     {"type", "port", "binary_media_types", "cors", "timeout_ms", "routes", "stages", "authorizers"},
                     "a mapping with the API's settings (type, routes, stages, ...)");
  if (!f) return;
  ApiSpec api;
  api.name = name;
  if (auto x = f->get("type")) {
    if (auto t = c_.choice(*x, {"rest", "http"}, "API type")) {
      info.type = *t == "rest" ? ApiType::rest : ApiType::http;
      api.type = *info.type;
    }
  } else {
    c_.missing(v, "type", "rest (API Gateway REST API, payload 1.0) or http (HTTP API, payload 2.0)");
  }
  const bool rest = info.type == ApiType::rest, http = info.type == ApiType::http;
  const long long max_timeout = http ? 30000 : 29000;
  api.timeout_ms = static_cast<int>(max_timeout);
  if (name_ok_) api.api_id = stable_id(stack_.name + "/" + name);
  else api.api_id = stable_id("/" + name);

  if (auto x = f->get("port"))
    if (auto p = c_.integer(*x, 0, 65535))
      if (*p != 0) api.port = static_cast<int>(*p);  // 0 = pick a free port at serve time
  if (auto x = f->get("timeout_ms"))
    if (auto t = c_.integer(*x, 50, max_timeout)) api.timeout_ms = static_cast<int>(*t);

  if (auto x = f->get("binary_media_types")) {
    if (http) {
      c_.error(*x, "binary_media_types applies to REST APIs only; HTTP APIs base64-encode binary bodies by themselves");
    } else if (auto list = string_list(*x, "a list of media types such as image/png")) {
      for (std::size_t i = 0; i < list->size(); ++i) {
        const std::string& m = (*list)[i];
        auto slash = m.find('/');
        bool good = slash != std::string::npos && slash > 0 && slash + 1 < m.size() &&
                    chars_in(m.substr(0, slash), media_char) && chars_in(m.substr(slash + 1), media_char);
        if (good) api.binary_media_types.push_back(m);
        else c_.error(c_.item(*x, i), "expected a media type such as \"image/png\" or \"*/*\", found " + sluice::quoted(m));
      }
    }
  }

  if (auto x = f->get("cors")) {
    if (rest) {
      c_.error(*x, "cors applies to HTTP APIs only; in a REST API with proxy integrations the function returns the "
                   "Access-Control-* headers itself (and OPTIONS needs its own route)");
    } else if (auto cf = c_.fields(*x,
                                   {"allow_origins", "allow_methods", "allow_headers", "expose_headers", "max_age",
                                    "allow_credentials"},
                                   "a mapping of CORS settings", true)) {
      CorsSpec cors;
      if (auto y = cf->get("allow_origins"))
        if (auto l = string_list(*y, "a list of origins such as https://example.com or \"*\"", true)) {
          for (std::size_t i = 0; i < l->size(); ++i) {
            const std::string& o = (*l)[i];
            if (o == "*" || o.find("://") != std::string::npos) cors.allow_origins.push_back(o);
            else c_.error(y->seq() ? c_.item(*y, i) : *y, "expected an origin such as \"https://example.com\" or \"*\", found " + sluice::quoted(o));
          }
        }
      if (auto y = cf->get("allow_methods"))
        if (auto l = string_list(*y, "a list of HTTP methods", true)) {
          std::vector<std::string> allowed{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*"};
          for (std::size_t i = 0; i < l->size(); ++i) {
            const std::string& m = (*l)[i];
            if (std::find(allowed.begin(), allowed.end(), m) != allowed.end()) cors.allow_methods.push_back(m);
            else c_.error(y->seq() ? c_.item(*y, i) : *y, with_choices("unknown method " + sluice::quoted(m), m, allowed, "allowed"));
          }
        }
      if (auto y = cf->get("allow_headers"))
        if (auto l = string_list(*y, "a list of header names", true)) cors.allow_headers = *l;
      if (auto y = cf->get("expose_headers"))
        if (auto l = string_list(*y, "a list of header names", true)) cors.expose_headers = *l;
      if (auto y = cf->get("max_age"))
        if (auto n = c_.integer(*y, 0, 86400)) cors.max_age = static_cast<int>(*n);
      if (auto y = cf->get("allow_credentials"))
        if (auto b = c_.boolean(*y)) cors.allow_credentials = *b;
      if (cors.allow_credentials &&
          std::find(cors.allow_origins.begin(), cors.allow_origins.end(), "*") != cors.allow_origins.end())
        c_.error(*x, "allow_credentials: true cannot be combined with allow_origins \"*\" (API Gateway and browsers "
                     "refuse it); list the origins instead");
      api.cors = std::move(cors);
    }
  }

  if (auto x = f->get("authorizers")) read_authorizers(*x, api, info);
  std::vector<std::pair<std::string, View>> deferred_route_throttles;
  read_stages(*f, api, info, deferred_route_throttles);
  if (auto x = f->get("routes")) {
    read_routes(*x, api, info);
  } else {
    c_.warning(v, "the API has no routes; every request will get " +
                      std::string(rest ? "403 Missing Authentication Token" : "404 Not Found"));
  }
  for (const auto& [stage, rv] : deferred_route_throttles) {
    auto entries = c_.named(rv, "a mapping of \"METHOD /path\" route keys to {rate, burst}", true);
    if (!entries) continue;
    for (const auto& [key, tv] : *entries) {
      auto normal = route_key_ref(tv, key, info);
      auto t = throttle(tv);
      if (normal && t) api.stages[stage].route_throttles[*normal] = *t;
    }
  }
  stack_.apis[name] = std::move(api);
}

// Checks that `text` names a route of the API; returns its normalised key.
std::optional<std::string> Loader::route_key_ref(const View& at, const std::string& text, const ApiInfo& info) {
  auto parsed = parse_route_key(text, info.type);
  if (auto err = std::get_if<std::string>(&parsed)) {
    c_.error(at, *err);
    return std::nullopt;
  }
  const RouteKey& rk = std::get<RouteKey>(parsed);
  if (!info.route_keys.count(rk.key)) {
    std::vector<std::string> keys = keys_of_set(info.route_keys);
    c_.error(at, with_choices("no route " + sluice::quoted(rk.key) + " in this API", rk.key, keys, "its routes",
                              "it has no routes"));
    return std::nullopt;
  }
  return rk.key;
}

void Loader::read_authorizers(const View& v, ApiSpec& api, ApiInfo& info) {
  auto entries = c_.named(v, "a mapping of authorizer names to their settings", true);
  if (!entries) return;
  for (const auto& [name, av] : *entries) info.authorizer_names.insert(name);
  for (const auto& [name, av] : *entries) {
    if (c_.stopped()) return;
    read_authorizer(name, av, api, info);
  }
}

void Loader::read_authorizer(const std::string& name, const View& v, ApiSpec& api, ApiInfo& info) {
  if (!valid_name(name, 128) || name == "none") {
    c_.error(v, "authorizer name " + sluice::quoted(name) +
                    " must be 1 to 128 letters, digits, '-' or '_' (and not \"none\", which routes use to mean no "
                    "authorizer)");
    return;
  }
  auto f = c_.fields(v,
                     {"type", "function", "identity_source", "identity_validation_expression", "ttl",
                      "payload_format", "simple_responses", "issuer", "audience", "jwks_file", "jwks"},
                     "a mapping with the authorizer's settings (type, function, ...)");
  if (!f) return;
  const bool rest = info.type == ApiType::rest, http = info.type == ApiType::http;
  AuthorizerSpec a;
  a.name = name;
  std::optional<AuthorizerType> type;
  if (auto x = f->get("type")) {
    std::vector<std::string> allowed = rest   ? std::vector<std::string>{"token", "request"}
                                       : http ? std::vector<std::string>{"request", "jwt"}
                                              : std::vector<std::string>{"token", "request", "jwt"};
    if (x->scalar() && std::find(allowed.begin(), allowed.end(), x->text()) != allowed.end()) {
      const std::string& t = x->text();
      type = t == "token" ? AuthorizerType::token : t == "request" ? AuthorizerType::request : AuthorizerType::jwt;
    } else if (x->scalar() && (x->text() == "jwt" || x->text() == "token")) {
      c_.error(*x, "authorizer type " + sluice::quoted(x->text()) + " is not available in " +
                       (rest ? "a REST API" : "an HTTP API") + "; " + (rest ? "REST" : "HTTP") +
                       " APIs allow: " + list_words(allowed));
    } else {
      c_.choice(*x, allowed, std::string(rest ? "REST" : http ? "HTTP" : "") + " authorizer type");
    }
  } else {
    c_.missing(v, "type", rest ? "token or request" : http ? "request or jwt" : "token, request or jwt");
  }
  if (!type) return;
  a.type = *type;
  info.authorizer_types[name] = *type;

  // Which keys each kind takes; the rest are reported as not applying.
  std::vector<std::string> takes;
  std::string kind;
  switch (*type) {
    case AuthorizerType::token:
      takes = {"type", "function", "identity_source", "identity_validation_expression", "ttl"};
      kind = "a token authorizer";
      break;
    case AuthorizerType::request:
      takes = {"type", "function", "identity_source", "ttl"};
      if (http) takes.insert(takes.end(), {"payload_format", "simple_responses"});
      kind = std::string(rest ? "a REST" : "an HTTP") + " request authorizer";
      break;
    case AuthorizerType::jwt:
      takes = {"type", "identity_source", "issuer", "audience", "jwks_file", "jwks"};
      kind = "a jwt authorizer";
      break;
  }
  bool applicable_ok = true;
  for (const auto& [key, kv] : f->by_key) {
    if (std::find(takes.begin(), takes.end(), key) == takes.end()) {
      c_.error(kv, "'" + key + "' does not apply to " + kind + " (it takes: " + list_words(takes) + ")");
      applicable_ok = false;
    }
  }
  (void)applicable_ok;

  if (*type != AuthorizerType::jwt) {
    if (auto x = f->get("function")) {
      if (auto fn = c_.string(*x, "a function name")) {
        if (function_names_.count(*fn)) {
          a.function = *fn;
        } else {
          std::vector<std::string> names = keys_of_set(function_names_);
          c_.error(*x, with_choices("unknown function " + sluice::quoted(*fn), *fn, names, "functions",
                                    "no functions are defined"));
        }
      }
    } else {
      c_.missing(v, "function", "the Lambda function that decides");
    }
    if (auto x = f->get("ttl"))
      if (auto t = c_.integer(*x, 0, 3600)) a.ttl_s = static_cast<int>(*t);
  }

  // Identity sources.
  if (auto x = f->get("identity_source")) {
    if (auto sources = string_list(*x, "an identity source or a list of them", true)) {
      for (std::size_t i = 0; i < sources->size(); ++i) {
        const std::string& s = (*sources)[i];
        View at = x->seq() ? c_.item(*x, i) : *x;
        auto rest_of = [&](std::string_view prefix) -> std::optional<std::string> {
          if (starts_with(s, prefix)) return s.substr(prefix.size());
          return std::nullopt;
        };
        bool good = false;
        bool header = false;
        if (rest) {
          if (auto h = rest_of("method.request.header.")) good = header = !h->empty() && chars_in(*h, header_char);
          else if (auto q = rest_of("method.request.querystring.")) good = !q->empty() && chars_in(*q, header_char);
          else if (auto sv = rest_of("stageVariables.")) good = !sv->empty() && chars_in(*sv, word_char);
          else if (auto cx = rest_of("context.")) good = !cx->empty() && chars_in(*cx, [](unsigned char c) { return word_char(c) || c == '.'; });
          if (!good)
            c_.error(at, "expected a REST identity source such as method.request.header.Authorization, "
                         "method.request.querystring.token, stageVariables.NAME or context.NAME, found " + sluice::quoted(s));
        } else {
          if (auto h = rest_of("$request.header.")) good = header = !h->empty() && chars_in(*h, header_char);
          else if (auto q = rest_of("$request.querystring.")) good = !q->empty() && chars_in(*q, header_char);
          else if (auto sv = rest_of("$stageVariables.")) good = !sv->empty() && chars_in(*sv, word_char);
          else if (auto cx = rest_of("$context.")) good = !cx->empty() && chars_in(*cx, [](unsigned char c) { return word_char(c) || c == '.'; });
          if (!good)
            c_.error(at, "expected an HTTP API identity source such as $request.header.Authorization, "
                         "$request.querystring.token, $stageVariables.NAME or $context.NAME, found " + sluice::quoted(s));
        }
        if (!good) continue;
        if (*type == AuthorizerType::token && !header) {
          c_.error(at, "a token authorizer reads its token from one header (method.request.header.NAME), found " + sluice::quoted(s));
          continue;
        }
        if (*type == AuthorizerType::jwt && !(starts_with(s, "$request.header.") || starts_with(s, "$request.querystring."))) {
          c_.error(at, "a jwt authorizer reads the token from a header or query string ($request.header.Authorization), found " + sluice::quoted(s));
          continue;
        }
        a.identity_sources.push_back(s);
      }
      if ((*type == AuthorizerType::token || *type == AuthorizerType::jwt) && sources->size() != 1)
        c_.error(*x, std::string(*type == AuthorizerType::token ? "a token" : "a jwt") +
                         " authorizer takes exactly one identity source, found " + std::to_string(sources->size()));
    }
  } else if (*type == AuthorizerType::token) {
    a.identity_sources = {"method.request.header.Authorization"};
  } else if (*type == AuthorizerType::jwt) {
    a.identity_sources = {"$request.header.Authorization"};
  }
  if (*type == AuthorizerType::request && a.ttl_s > 0 && a.identity_sources.empty() && !f->has("identity_source"))
    c_.error(v, "a request authorizer with caching (ttl " + std::to_string(a.ttl_s) +
                    (f->has("ttl") ? "" : " by default") +
                    ") needs at least one identity_source to build the cache key; add one (e.g. " +
                    (rest ? "method.request.header.Authorization" : "$request.header.Authorization") +
                    ") or set ttl: 0");

  if (auto x = f->get("identity_validation_expression"); x && *type == AuthorizerType::token) {
    if (auto s = c_.string(*x, "a regular expression")) {
      int depth = 0, max_depth = 0;
      for (char ch : *s) {
        if (ch == '(') max_depth = std::max(max_depth, ++depth);
        if (ch == ')') --depth;
      }
      if (s->size() > 1024 || max_depth > 50) {
        c_.error(*x, "identity_validation_expression is too large (at most 1024 characters, 50 nested groups)");
      } else {
        try {
          std::regex re(*s, std::regex::ECMAScript);
          a.identity_validation_expression = *s;
        } catch (const std::regex_error& e) {
          c_.error(*x, "identity_validation_expression " + sluice::quoted(*s) + " is not a valid regular expression (" +
                           e.what() + ")");
        }
      }
    }
  }

  a.payload_format = rest ? "1.0" : "2.0";
  if (*type == AuthorizerType::request && http) {
    if (auto x = f->get("payload_format"))
      if (auto p = payload_format(*x)) a.payload_format = *p;
    if (auto x = f->get("simple_responses"))
      if (auto b = c_.boolean(*x)) {
        a.simple_responses = *b;
        if (*b && a.payload_format != "2.0")
          c_.error(*x, "simple_responses needs payload_format \"2.0\" (payload 1.0 authorizers return an IAM policy)");
      }
  }

  if (*type == AuthorizerType::jwt) {
    if (auto x = f->get("issuer")) {
      if (auto s = c_.string(*x, "the issuer URL (the token's iss claim)")) {
        if (s->empty()) c_.error(*x, "the issuer is empty; give the token's iss value, e.g. https://auth.example.com/");
        else a.jwt.issuer = *s;
      }
    } else {
      c_.missing(v, "issuer", "the expected iss claim, e.g. https://cognito-idp.REGION.amazonaws.com/POOL_ID");
    }
    if (auto x = f->get("audience")) {
      if (auto l = string_list(*x, "a list of audiences (aud claim values)", true)) {
        if (l->empty()) c_.error(*x, "audience is empty; list at least one accepted aud value");
        a.jwt.audience = *l;
      }
    } else {
      c_.missing(v, "audience", "a list of accepted aud values (client ids)");
    }
    const View* file = f->get("jwks_file");
    const View* inline_keys = f->get("jwks");
    if (file && inline_keys) {
      c_.error(v, "set either 'jwks_file' or 'jwks', not both");
    } else if (!file && !inline_keys) {
      c_.error(v, "a jwt authorizer needs the signing keys: 'jwks_file' (a JWKS JSON file) or 'jwks' (inline "
                  "{keys: [...]})");
    } else if (file) {
      if (auto s = c_.string(*file, "a JWKS file path")) {
        fs::path p = resolve(*s);
        std::error_code ec;
        if (!fs::is_regular_file(p, ec)) {
          c_.error(*file, "jwks_file " + sluice::quoted(*s) + " does not exist or is not a file (looked for " + p.string() + ")");
        } else {
          std::ifstream in(p, std::ios::binary);
          std::stringstream ss;
          ss << in.rdbuf();
          auto doc = detail::parse_json(ss.str());
          const Node* root = doc.root.get();
          bool good = root && root->kind == Node::Kind::map;
          bool has_keys = false;
          if (good)
            for (const auto& e : root->entries)
              if (e.key == "keys" && e.value && e.value->kind == Node::Kind::seq) has_keys = true;
          if (!good || !has_keys) {
            c_.error(*file, "jwks_file " + p.string() + " is not a JWKS (a JSON object with a \"keys\" list)" +
                                (doc.problems.empty() ? "" : ": " + doc.problems.front().message));
          } else {
            fs::path canon = fs::canonical(p, ec);
            a.jwt.jwks_file = ec ? p : canon;
          }
        }
      }
    } else {
      auto kf = c_.fields(*inline_keys, {"keys"}, "a JWKS mapping {keys: [...]}");
      if (kf) {
        if (auto k = kf->get("keys")) {
          if (auto items = c_.list(*k, "a list of JSON Web Keys")) {
            bool good = true;
            for (const auto& item : *items)
              if (!item.map()) {
                c_.error(item, "expected a JSON Web Key (a mapping with kty, kid, ...), found " + Checker::found(item));
                good = false;
              }
            if (good) a.jwt.jwks_inline = to_json(inline_keys->n).dump();
          }
        } else {
          c_.missing(*inline_keys, "keys", "the list of JSON Web Keys");
        }
      }
    }
  }
  api.authorizers[name] = std::move(a);
}

void Loader::read_stages(const Fields& api_fields, ApiSpec& api, ApiInfo& info,
                         std::vector<std::pair<std::string, View>>& deferred) {
  const bool rest = info.type == ApiType::rest, http = info.type == ApiType::http;
  const View* sv = api_fields.get("stages");
  if (!sv) {
    if (http) {
      api.stages["$default"] = StageSpec{"$default", {}, std::nullopt, {}};
      info.stage_names.insert("$default");
    } else if (rest) {
      c_.error(api_fields.self, "a REST API needs at least one stage, e.g. stages: {dev: {variables: {env: dev}}}; "
                                "its URL is /STAGE/path");
    }
    return;
  }
  auto entries = c_.named(*sv, "a mapping of stage names to their settings", true);
  if (!entries) return;
  if (entries->empty()) {
    c_.error(*sv, rest ? "a REST API needs at least one stage, e.g. stages: {dev: {}}"
                       : "no stages are listed; omit 'stages' to get the $default stage, or name at least one");
    return;
  }
  for (const auto& [name, st] : *entries) {
    if (c_.stopped()) return;
    info.stage_names.insert(name);
    if (name == "$default") {
      if (rest) {
        c_.error(st, "the $default stage exists only in HTTP APIs; name REST stages with letters, digits, '-' or '_'");
        continue;
      }
    } else if (!valid_name(name, 128)) {
      c_.error(st, "stage name " + sluice::quoted(name) + " must be 1 to 128 letters, digits, '-' or '_'" +
                       (http ? " (or \"$default\")" : ""));
      continue;
    }
    auto f = c_.fields(st, {"variables", "throttle", "route_throttles"},
                       "a mapping with the stage's settings (variables, throttle, route_throttles)", true);
    if (!f) continue;
    StageSpec stage;
    stage.name = name;
    if (auto x = f->get("variables")) {
      if (auto vars = c_.named(*x, "a mapping of stage variable names to values", true)) {
        for (const auto& [vn, vv] : *vars) {
          if (vn.empty() || !chars_in(vn, word_char)) {
            c_.error(vv, "stage variable name " + sluice::quoted(vn) + " must be letters, digits or '_'");
            continue;
          }
          if (!vv.scalar()) {
            c_.error(vv, "expected a stage variable value (a string), found " + Checker::found(vv));
            continue;
          }
          const std::string& val = vv.text();
          if (val.size() > 512) {
            c_.error(vv, "stage variable values are at most 512 characters; this one has " + std::to_string(val.size()));
            continue;
          }
          if (!chars_in(val, stage_value_char)) {
            c_.error(vv, "stage variable value " + sluice::quoted(val) +
                             " may hold only letters, digits and - . _ ~ : / ? # & = , (as on AWS)");
            continue;
          }
          stage.variables[vn] = val;
        }
      }
    }
    if (auto x = f->get("throttle")) stage.throttle = throttle(*x);
    if (auto x = f->get("route_throttles")) deferred.emplace_back(name, *x);
    api.stages[name] = std::move(stage);
  }
}

void Loader::read_routes(const View& v, ApiSpec& api, ApiInfo& info) {
  auto entries = c_.named(v, "a mapping of \"METHOD /path\" route keys to targets", true);
  if (!entries) return;
  if (entries->empty())
    c_.warning(v, "the API has no routes; every request will get " +
                      std::string(info.type == ApiType::rest ? "403 Missing Authentication Token" : "404 Not Found"));
  std::map<std::string, std::string> shapes;  // shape -> first key
  std::map<std::string, int> lines;           // normalised key -> line
  for (const auto& [key, rv] : *entries) {
    if (c_.stopped()) return;
    read_route(key, rv, api, info, shapes, lines);
  }
  // REST resources: one variable child per path level (as on AWS: "A sibling ({id}) of this
  // resource already has a variable path part -- only one is allowed").
  if (info.type == ApiType::rest) {
    std::map<std::string, std::pair<std::string, std::string>> variable_child;  // parent -> (segment, route)
    for (const auto& r : api.routes) {
      std::string parent;
      for (const auto& seg : split(std::string_view(r.path).substr(1), '/')) {
        if (seg.empty()) break;
        if (seg.front() == '{') {
          auto [it, inserted] = variable_child.emplace(parent, std::make_pair(seg, r.key));
          if (!inserted && it->second.first != seg) {
            auto at = route_views_.find(api.name + "/" + r.key);
            if (at != route_views_.end())
              c_.error(at->second, "path part " + seg + " conflicts with " + it->second.first + " of route " +
                                       sluice::quoted(it->second.second) +
                                       ": a REST resource has at most one variable child (use the same parameter "
                                       "name at the same place)");
          }
        }
        parent += "/" + seg;
      }
    }
  }
}

void Loader::read_route(const std::string& key, const View& v, ApiSpec& api, ApiInfo& info,
                        std::map<std::string, std::string>& shapes, std::map<std::string, int>& lines) {
  const bool rest = info.type == ApiType::rest, http = info.type == ApiType::http;
  auto parsed = parse_route_key(key, info.type);
  if (auto err = std::get_if<std::string>(&parsed)) {
    c_.error(v, *err);
    return;
  }
  const RouteKey& rk = std::get<RouteKey>(parsed);
  if (auto it = lines.find(rk.key); it != lines.end()) {
    c_.error(v, "route " + sluice::quoted(key) + " is the same route as the one on line " + std::to_string(it->second) +
                    " (a trailing slash does not make a different route)");
    return;
  }
  if (auto it = shapes.find(rk.shape); it != shapes.end()) {
    c_.error(v, "route " + sluice::quoted(key) + " conflicts with route " + sluice::quoted(it->second) +
                    ": they match the same requests (parameter names do not make routes different)");
    return;
  }
  lines[rk.key] = v.line;
  shapes[rk.shape] = key;
  info.route_keys.insert(rk.key);
  route_views_[api.name + "/" + rk.key] = v;

  RouteSpec route;
  route.key = rk.key;
  route.method = rk.method;
  route.path = rk.path;
  route.payload_format = http ? "2.0" : "1.0";

  View target_at = v;
  std::optional<std::string> target_text;
  if (v.scalar()) {
    target_text = v.text();
  } else if (v.map()) {
    auto f = c_.fields(v,
                       {"function", "api_key_required", "authorizer", "authorization_scopes", "payload_format",
                        "timeout_ms", "throttle"},
                       "a target (FUNCTION[:QUALIFIER]) or a mapping {function, ...}");
    if (!f) return;
    if (auto x = f->get("function")) {
      target_at = *x;
      target_text = c_.string(*x, "a target FUNCTION[:QUALIFIER]");
    } else {
      c_.missing(v, "function", "the target FUNCTION[:QUALIFIER]");
    }
    if (auto x = f->get("api_key_required")) {
      if (http) c_.error(*x, "api_key_required applies to REST APIs only; HTTP APIs have no API keys");
      else if (auto b = c_.boolean(*x)) route.api_key_required = *b;
    }
    if (auto x = f->get("authorizer")) {
      if (auto s = c_.string(*x, "an authorizer name or \"none\"")) {
        if (*s != "none") {
          if (info.authorizer_names.count(*s)) {
            route.authorizer = *s;
          } else {
            std::vector<std::string> names = keys_of_set(info.authorizer_names);
            c_.error(*x, with_choices("unknown authorizer " + sluice::quoted(*s), *s, names,
                                      "this API's authorizers (or \"none\")",
                                      "this API defines no authorizers (\"none\" means no authorizer)"));
          }
        }
      }
    }
    if (auto x = f->get("authorization_scopes")) {
      if (auto scopes = string_list(*x, "a list of OAuth scopes", true)) {
        auto t = info.authorizer_types.find(route.authorizer);
        if (route.authorizer.empty())
          c_.error(*x, "authorization_scopes needs a jwt authorizer on the route ('authorizer: NAME')");
        else if (t != info.authorizer_types.end() && t->second != AuthorizerType::jwt)
          c_.error(*x, "authorization_scopes applies to jwt authorizers only; " + sluice::quoted(route.authorizer) +
                           " is a " + (t->second == AuthorizerType::token ? "token" : "request") + " authorizer");
        else
          route.authorization_scopes = *scopes;
      }
    }
    if (auto x = f->get("payload_format")) {
      if (rest) c_.error(*x, "payload_format applies to HTTP APIs only; REST APIs always send payload 1.0");
      else if (auto p = payload_format(*x)) route.payload_format = *p;
    }
    if (auto x = f->get("timeout_ms"))
      if (auto t = c_.integer(*x, 50, http ? 30000 : 29000)) route.timeout_ms = static_cast<int>(*t);
    if (auto x = f->get("throttle")) route.throttle = throttle(*x);
  } else {
    c_.error(v, "expected a target (FUNCTION[:QUALIFIER]) or a mapping {function, ...}, found " + Checker::found(v));
    return;
  }
  if (!target_text) {
    api.routes.push_back(std::move(route));
    return;
  }
  auto pt = parse_target(*target_text);
  if (auto err = std::get_if<std::string>(&pt)) {
    c_.error(target_at, *err);
  } else {
    const ParsedTarget& t = std::get<ParsedTarget>(pt);
    route.target = t.target;
    check_target(target_at, t, api);
  }
  api.routes.push_back(std::move(route));
}

std::optional<std::string> Loader::static_qualifier_error(const std::string& function, const std::string& qualifier) {
  if (qualifier.empty() || qualifier == "$LATEST" || positive_version(qualifier)) return std::nullopt;
  auto it = alias_names_.find(function);
  if (it != alias_names_.end() && it->second.count(qualifier)) return std::nullopt;
  std::vector<std::string> aliases = it == alias_names_.end() ? std::vector<std::string>{} : keys_of_set(it->second);
  return with_choices("qualifier " + sluice::quoted(qualifier) + " is not $LATEST, a version number or an alias of " +
                          squoted(function),
                      qualifier, aliases, "its aliases", "it has no aliases");
}

void Loader::check_target(const View& at, const ParsedTarget& pt, const ApiSpec& api) {
  const RouteTarget& t = pt.target;
  if (pt.function_static) {
    if (!function_names_.count(t.function)) {
      std::vector<std::string> names = keys_of_set(function_names_);
      c_.error(at, with_choices("unknown function " + sluice::quoted(t.function), t.function, names, "functions",
                                "no functions are defined"));
      return;
    }
    if (pt.qualifier_static)
      if (auto err = static_qualifier_error(t.function, t.qualifier)) {
        c_.error(at, *err);
        return;
      }
  }
  if (pt.variables.empty()) return;
  // Stage variables: each stage must define them, and what they resolve to should exist.
  std::string text = t.function + (t.qualifier.empty() ? "" : ":" + t.qualifier);
  for (const auto& [sname, stage] : api.stages) {
    std::vector<std::string> missing;
    for (const auto& var : pt.variables)
      if (!stage.variables.count(var) && std::find(missing.begin(), missing.end(), var) == missing.end())
        missing.push_back(var);
    if (!missing.empty()) {
      c_.warning(at, "stage " + squoted(sname) + " does not define the stage variable" +
                         (missing.size() > 1 ? "s " : " ") + list_words(missing) + " used by target " + sluice::quoted(text) +
                         "; requests through that stage will fail");
      continue;
    }
    std::string fn = substitute(t.function, stage.variables);
    std::string q = substitute(t.qualifier, stage.variables);
    std::string resolved = fn + (q.empty() ? "" : ":" + q);
    if (!function_names_.count(fn)) {
      c_.warning(at, "through stage " + squoted(sname) + " target " + sluice::quoted(text) + " resolves to " + sluice::quoted(resolved) +
                         ", but there is no function " + sluice::quoted(fn) + "; requests through that stage will fail");
      continue;
    }
    if (auto err = static_qualifier_error(fn, q))
      c_.warning(at, "through stage " + squoted(sname) + " target " + sluice::quoted(text) + " resolves to " +
                         sluice::quoted(resolved) + ", but " + *err);
  }
}

// ---- API keys and usage plans ------------------------------------------------------

void Loader::read_api_keys(const View& v) {
  auto entries = c_.named(v, "a mapping of API key names to {value, enabled}", true);
  if (!entries) return;
  std::map<std::string, std::string> values;  // value -> key name
  for (const auto& [name, kv] : *entries) {
    if (c_.stopped()) return;
    key_names_.insert(name);
    if (!valid_name(name, 128)) {
      c_.error(kv, "API key name " + sluice::quoted(name) + " must be 1 to 128 letters, digits, '-' or '_'");
      continue;
    }
    auto f = c_.fields(kv, {"value", "enabled"}, "a mapping {value, enabled}", true);
    if (!f) continue;
    ApiKeySpec key;
    key.name = name;
    key.id = stable_id(stack_.name + "/api-keys/" + name);
    key.value = stable_id(stack_.name + "/api-keys/" + name + "/value", 40);
    if (auto x = f->get("value")) {
      if (auto s = c_.string(*x, "an API key value of 20 to 128 characters")) {
        bool printable = chars_in(*s, [](unsigned char c) { return c > 0x20 && c < 0x7f; });
        if (s->size() < 20 || s->size() > 128 || !printable) {
          c_.error(*x, "an API key value must be 20 to 128 printable ASCII characters without spaces (as on AWS), "
                       "found " + std::to_string(s->size()) + " characters" + (printable ? "" : " with spaces or "
                       "non-ASCII ones") + "; omit 'value' to get a generated one");
        } else {
          key.value = *s;
        }
      }
    }
    if (auto x = f->get("enabled"))
      if (auto b = c_.boolean(*x)) key.enabled = *b;
    if (auto [it, inserted] = values.emplace(key.value, name); !inserted)
      c_.error(f->get("value") ? *f->get("value") : kv,
               "API key values must be unique; this is the value of API key " + squoted(it->second));
    stack_.api_keys[name] = std::move(key);
  }
}

void Loader::read_usage_plans(const View& v) {
  auto entries = c_.named(v, "a mapping of usage plan names to their settings", true);
  if (!entries) return;
  std::map<std::pair<std::string, std::string>, std::string> key_stage_plan;  // (key, "api/stage") -> plan
  for (const auto& [name, pv] : *entries) {
    if (c_.stopped()) return;
    if (!valid_name(name, 128)) {
      c_.error(pv, "usage plan name " + sluice::quoted(name) + " must be 1 to 128 letters, digits, '-' or '_'");
      continue;
    }
    auto f = c_.fields(pv, {"stages", "throttle", "quota", "keys", "route_throttles"},
                       "a mapping with the usage plan's settings (stages, keys, throttle, quota, route_throttles)");
    if (!f) continue;
    UsagePlanSpec plan;
    plan.name = name;
    std::set<std::string> stage_refs;
    if (auto x = f->get("stages")) {
      if (auto items = c_.list(*x, "a list of \"API/STAGE\" references")) {
        for (const auto& item : *items) {
          auto s = c_.string(item, "an \"API/STAGE\" reference");
          if (!s) continue;
          auto slash = s->find('/');
          if (slash == std::string::npos) {
            c_.error(item, "expected \"API/STAGE\" (e.g. \"store/prod\"), found " + sluice::quoted(*s));
            continue;
          }
          std::string api = s->substr(0, slash), stage = s->substr(slash + 1);
          auto info = api_info_.find(api);
          if (info == api_info_.end()) {
            std::vector<std::string> names = keys_of(api_info_);
            c_.error(item, with_choices("unknown API " + sluice::quoted(api), api, names, "APIs", "no APIs are defined"));
            continue;
          }
          if (info->second.type == ApiType::http) {
            c_.error(item, "usage plans apply to REST APIs only; " + squoted(api) + " is an HTTP API");
            continue;
          }
          if (!info->second.stage_names.count(stage)) {
            std::vector<std::string> names = keys_of_set(info->second.stage_names);
            c_.error(item, with_choices("API " + squoted(api) + " has no stage " + sluice::quoted(stage), stage, names,
                                        "its stages"));
            continue;
          }
          if (!stage_refs.insert(*s).second) {
            c_.error(item, "stage " + sluice::quoted(*s) + " is listed twice");
            continue;
          }
          plan.stages.emplace_back(api, stage);
        }
      }
    }
    if (auto x = f->get("throttle")) plan.throttle = throttle(*x);
    if (auto x = f->get("quota")) {
      if (auto q = c_.fields(*x, {"limit", "period", "offset"}, "a mapping {limit, period: DAY|WEEK|MONTH, offset}")) {
        QuotaSpec quota;
        bool ok = true;
        if (auto y = q->get("limit")) {
          if (auto n = c_.integer(*y, 1, INT_MAX)) quota.limit = static_cast<int>(*n);
          else ok = false;
        } else {
          c_.missing(*x, "limit", "the number of requests allowed per period");
          ok = false;
        }
        bool period_known = false;
        if (auto y = q->get("period")) {
          if (auto p = c_.choice(*y, {"DAY", "WEEK", "MONTH"}, "quota period")) {
            quota.period = *p == "DAY" ? QuotaPeriod::day : *p == "WEEK" ? QuotaPeriod::week : QuotaPeriod::month;
            period_known = true;
          } else {
            ok = false;
          }
        } else {
          c_.missing(*x, "period", "DAY, WEEK or MONTH");
          ok = false;
        }
        if (auto y = q->get("offset")) {
          // As on AWS: DAY takes no offset, WEEK 0..6 (days), MONTH 0..27 (days).
          long long hi = !period_known ? 27 : quota.period == QuotaPeriod::day ? 0 : quota.period == QuotaPeriod::week ? 6 : 27;
          if (auto n = c_.integer(*y, 0, 27); n && *n > hi) {
            c_.error(*y, std::string(quota.period == QuotaPeriod::day ? "a DAY quota takes no offset (0)"
                                                                      : "a WEEK quota's offset is 0 to 6 days") +
                             "; WEEK allows 0 to 6, MONTH 0 to 27; found " + std::to_string(*n));
            ok = false;
          } else if (n) {
            quota.offset = static_cast<int>(*n);
          } else {
            ok = false;
          }
        }
        if (ok) plan.quota = quota;
      }
    }
    if (auto x = f->get("keys")) {
      if (auto items = c_.list(*x, "a list of API key names")) {
        std::set<std::string> seen;
        for (const auto& item : *items) {
          auto s = c_.string(item, "an API key name");
          if (!s) continue;
          if (!key_names_.count(*s)) {
            std::vector<std::string> names = keys_of_set(key_names_);
            c_.error(item, with_choices("unknown API key " + sluice::quoted(*s), *s, names, "API keys",
                                        "define it under the top-level 'api_keys:'"));
            continue;
          }
          if (!seen.insert(*s).second) {
            c_.error(item, "API key " + sluice::quoted(*s) + " is listed twice");
            continue;
          }
          // As on AWS, a key belongs to at most one usage plan per API stage.
          bool clash = false;
          for (const auto& [api, stage] : plan.stages) {
            auto [it, inserted] = key_stage_plan.emplace(std::make_pair(*s, api + "/" + stage), name);
            if (!inserted && !clash) {
              c_.error(item, "API key " + sluice::quoted(*s) + " is already in usage plan " + squoted(it->second) +
                                 " for stage " + sluice::quoted(api + "/" + stage) +
                                 "; a key may belong to only one usage plan per API stage");
              clash = true;
            }
          }
          plan.keys.push_back(*s);
        }
      }
    }
    if (auto x = f->get("route_throttles")) {
      if (auto rt = c_.named(*x, "a mapping of \"API/STAGE/METHOD /path\" to {rate, burst}", true)) {
        for (const auto& [ref, tv] : *rt) {
          auto first = ref.find('/');
          auto second = first == std::string::npos ? std::string::npos : ref.find('/', first + 1);
          auto t = throttle(tv);
          if (second == std::string::npos) {
            c_.error(tv, "expected \"API/STAGE/METHOD /path\" (e.g. \"store/prod/GET /movies\"), found " + sluice::quoted(ref));
            continue;
          }
          std::string api = ref.substr(0, first), stage = ref.substr(first + 1, second - first - 1);
          std::string route = ref.substr(second + 1);
          if (!stage_refs.count(api + "/" + stage)) {
            c_.error(tv, "stage " + sluice::quoted(api + "/" + stage) + " is not among this usage plan's stages" +
                             (stage_refs.empty() ? "" : " (" + list_words(keys_of_set(stage_refs)) + ")"));
            continue;
          }
          auto normal = route_key_ref(tv, route, api_info_[api]);
          if (normal && t) plan.route_throttles[api + "/" + stage + "/" + *normal] = *t;
        }
      }
    }
    stack_.usage_plans[name] = std::move(plan);
  }
}

// ---- checks across sections --------------------------------------------------------

void Loader::cross_checks() {
  std::map<int, std::string> ports;
  std::vector<std::string> in_file_order = keys_of(stack_.apis);
  std::stable_sort(in_file_order.begin(), in_file_order.end(),
                   [&](const std::string& a, const std::string& b) { return api_lines_[a] < api_lines_[b]; });
  for (const auto& name : in_file_order) {
    const ApiSpec& api = stack_.apis[name];
    if (!api.port) continue;
    auto [it, inserted] = ports.emplace(*api.port, name);
    if (!inserted)
      c_.error(detail::join_path(detail::join_path("apis", name), "port"), api_lines_[name],
               "port " + std::to_string(*api.port) + " is already used by API " + squoted(it->second));
  }
  // A route that requires a key behind a stage no usage plan covers answers 403 to everyone.
  std::set<std::pair<std::string, std::string>> planned;
  for (const auto& [pname, plan] : stack_.usage_plans)
    if (!plan.keys.empty())
      for (const auto& s : plan.stages) planned.insert(s);
  for (const auto& [name, api] : stack_.apis) {
    if (api.type != ApiType::rest) continue;
    for (const auto& route : api.routes) {
      if (!route.api_key_required) continue;
      std::vector<std::string> uncovered;
      for (const auto& [sname, stage] : api.stages)
        if (!planned.count({name, sname})) uncovered.push_back(sname);
      if (uncovered.empty()) continue;
      auto at = route_views_.find(name + "/" + route.key);
      if (at == route_views_.end()) continue;
      c_.warning(at->second, "the route requires an API key, but no usage plan with keys covers stage" +
                                 std::string(uncovered.size() > 1 ? "s " : " ") + list_words(uncovered) +
                                 "; every request there will get 403 Forbidden");
    }
  }
}

std::string read_whole(const fs::path& file, std::string& error) {
  std::error_code ec;
  auto st = fs::status(file, ec);
  if (ec || !fs::exists(st)) {
    error = "cannot read the stack file: it does not exist";
    return {};
  }
  if (fs::is_directory(st)) {
    error = "cannot read the stack file: it is a directory (expected a file such as sluice.yaml)";
    return {};
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = "cannot read the stack file: permission denied or unreadable";
    return {};
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    error = "cannot read the stack file: read error";
    return {};
  }
  return ss.str();
}

fs::path absolute_canonical(const fs::path& p) {
  std::error_code ec;
  fs::path abs = fs::absolute(p, ec);
  if (ec) abs = p;
  fs::path canon = fs::weakly_canonical(abs, ec);
  return ec ? abs.lexically_normal() : canon;
}

}  // namespace

LoadResult load_text(const std::string& text, const fs::path& source_name, const fs::path& base_dir) {
  LoadResult result;
  try {
    fs::path base = absolute_canonical(base_dir.empty() ? fs::path(".") : base_dir);
    auto doc = detail::parse_document(text);
    result.problems = std::move(doc.problems);
    bool tree_errors = false;
    for (const auto& p : result.problems) tree_errors = tree_errors || !p.warning;
    if (!doc.root && tree_errors) return result;
    Loader loader(result.problems, base);
    auto stack = loader.load(doc.root);
    if (stack && !tree_errors) {
      std::string src = source_name.string();
      if (src.empty()) stack->source = base / "<text>";
      else if (src.front() == '<' || source_name.is_absolute()) stack->source = source_name;
      else stack->source = absolute_canonical(base / source_name);
      result.stack = std::move(stack);
    }
  } catch (const std::exception& e) {
    result.stack.reset();
    Problem p;
    p.message = std::string("internal error while reading the stack: ") + e.what();
    result.problems.push_back(std::move(p));
  } catch (...) {
    result.stack.reset();
    Problem p;
    p.message = "internal error while reading the stack";
    result.problems.push_back(std::move(p));
  }
  return result;
}

LoadResult load_file(const fs::path& file) {
  try {
    std::string error;
    std::string text = read_whole(file, error);
    if (!error.empty()) {
      LoadResult r;
      Problem p;
      p.message = error;
      r.problems.push_back(std::move(p));
      return r;
    }
    fs::path abs = absolute_canonical(file);
    auto result = load_text(text, abs, abs.parent_path());
    if (result.stack) result.stack->source = abs;
    return result;
  } catch (...) {
    LoadResult r;
    Problem p;
    p.message = "internal error while reading the stack file";
    r.problems.push_back(std::move(p));
    return r;
  }
}

std::string format_report(const LoadResult& result, const fs::path& file) {
  std::vector<const Problem*> sorted;
  for (const auto& p : result.problems) sorted.push_back(&p);
  // File order reads best; problems without a line (the file as a whole) come first.
  std::stable_sort(sorted.begin(), sorted.end(), [](const Problem* a, const Problem* b) { return a->line < b->line; });
  std::string out;
  std::size_t errors = 0, warnings = 0;
  for (const Problem* p : sorted) {
    (p->warning ? warnings : errors)++;
    out += file.string();
    if (p->line > 0) out += ":" + std::to_string(p->line);
    out += p->warning ? ": warning: " : ": error: ";
    if (!p->path.empty()) out += p->path + ": ";
    out += p->message;
    out += "\n";
  }
  out += std::to_string(errors) + (errors == 1 ? " error, " : " errors, ") + std::to_string(warnings) +
         (warnings == 1 ? " warning" : " warnings") + "\n";
  return out;
}

}  // namespace sluice::stack
