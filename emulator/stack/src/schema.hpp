// The stack file's schema, shared by the files that read each section: the
// text rules (names, characters), route keys and targets, and the Loader that
// turns the document tree into the model while collecting problems.
#pragma once

#include <cctype>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "checker.hpp"
#include "document.hpp"
#include "sluice/common/util.hpp"
#include "sluice/stack/loader.hpp"

namespace sluice::stack::detail {

const std::vector<std::string>& supported_runtimes();

// ---- character classes (no std::regex on user text: it recurses per character) --

inline bool chars_in(const std::string& s, bool (*ok)(unsigned char)) {
  for (unsigned char c : s)
    if (!ok(c)) return false;
  return true;
}
inline bool name_char(unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; }
inline bool word_char(unsigned char c) { return std::isalnum(c) || c == '_'; }
inline bool digit_char(unsigned char c) { return std::isdigit(c); }

inline bool valid_name(const std::string& s, std::size_t max) {
  return !s.empty() && s.size() <= max && chars_in(s, name_char);
}

inline bool valid_env_name(const std::string& s) {
  return !s.empty() && std::isalpha(static_cast<unsigned char>(s[0])) &&
         std::isalnum(static_cast<unsigned char>(s[0])) && chars_in(s, word_char);
}

inline bool valid_stack_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::isalpha(static_cast<unsigned char>(s[0])) &&
         chars_in(s, [](unsigned char c) { return std::isalnum(c) != 0 || c == '-'; });
}

inline bool lower_alpha(unsigned char c) { return c >= 'a' && c <= 'z'; }

// [a-z]{2}(-gov)?-[a-z]+-\d, as the Lambda ARN pattern has it.
inline bool valid_region(const std::string& s) {
  auto parts = split(s, '-');
  if (parts.size() == 4 && parts[1] == "gov") parts.erase(parts.begin() + 1);
  return parts.size() == 3 && parts[0].size() == 2 && chars_in(parts[0], lower_alpha) && !parts[1].empty() &&
         chars_in(parts[1], lower_alpha) && parts[2].size() == 1 &&
         std::isdigit(static_cast<unsigned char>(parts[2][0]));
}

inline bool positive_version(const std::string& s) {
  return !s.empty() && s.size() <= 9 && chars_in(s, digit_char) && s[0] != '0';
}

inline bool stage_value_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("-._~:/?#&=,").find(static_cast<char>(c)) != std::string_view::npos;
}

inline bool header_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("!#$%&'*+.^_`|~-").find(static_cast<char>(c)) != std::string_view::npos;
}

inline bool path_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("-._~:@!$&'()*,;=%").find(static_cast<char>(c)) != std::string_view::npos;
}

inline bool media_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("!#$&^_.+-*").find(static_cast<char>(c)) != std::string_view::npos;
}

// "<msg>; did you mean 'x'? Label: a, b" -- or "<msg>; label: a, b", or "<msg>; <when_empty>".
inline std::string with_choices(std::string msg, const std::string& word, const std::vector<std::string>& candidates,
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

inline std::vector<std::string> keys_of_set(const std::set<std::string>& s) { return {s.begin(), s.end()}; }

inline const std::vector<std::string> route_methods{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"};

// ---- route keys and targets ---------------------------------------------------

struct RouteKey {
  std::string method;  // "" for $default
  std::string path;    // normalised; "" for $default
  std::string key;     // "GET /movies/{id}" or "$default"
  std::string shape;   // "GET /movies/{}" : parameter names do not make two routes different
  std::vector<std::string> segments;
};

// Parses "METHOD /path" or "$default"; returns an error message on failure.
std::variant<RouteKey, std::string> parse_route_key(const std::string& text, std::optional<ApiType> type);

struct ParsedTarget {
  RouteTarget target;
  std::vector<std::string> variables;  // stage variables referenced
  bool function_static = true;
  bool qualifier_static = true;
};

// FUNCTION[:QUALIFIER], either part may hold ${stageVariables.NAME}; an error message on failure.
std::variant<ParsedTarget, std::string> parse_target(const std::string& text);
// Replaces ${stageVariables.NAME} with the stage's values (missing ones with nothing).
std::string substitute(const std::string& text, const std::map<std::string, std::string>& vars);

// The tree as JSON (inline JWKS): plain scalars become numbers, booleans and null.
nlohmann::json to_json(const Node* n);

// ---- the loader ----------------------------------------------------------------

struct ApiInfo {
  std::optional<ApiType> type;
  std::set<std::string> route_keys;                        // normalised
  std::map<std::string, AuthorizerType> authorizer_types;  // valid ones
  std::set<std::string> authorizer_names;                  // every declared one
  std::set<std::string> stage_names;                       // every declared one (plus $default when implied)
};

// What read_function learns for the code checks that run last.
struct CodeCheck {
  bool ok = true;  // nothing the checks depend on is broken
  bool have_dir = false;
  std::optional<std::string> handler;
  View handler_at, code_at;  // where to report handler and bootstrap problems
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
  void read_runtime_and_handler(const Fields& f, FunctionSpec& fn, CodeCheck& code);
  void read_code_location(const Fields& f, FunctionSpec& fn, CodeCheck& code);
  void read_function_settings(const Fields& f, FunctionSpec& fn);
  std::optional<LoggingSpec> read_logging(const View& v);
  bool read_layers(const View& v, FunctionSpec& fn);
  void check_code(const FunctionSpec& fn, const CodeCheck& code);
  void read_environment(const View& v, std::map<std::string, std::string>& out);
  void read_aliases(const View& v, FunctionSpec& f);
  std::optional<FunctionUrlSpec> read_function_url(const View& v, const FunctionSpec& fn);
  bool read_function_target(const View& x, bool separate_qualifier, std::string& function, std::string& qualifier);
  void read_event_sources(const View& v);
  void read_event_source(const std::string& name, const View& v);
  bool read_event_filters(const View& v, std::vector<std::string>& out);
  std::optional<DestinationSpec> read_destination(const View& v, const std::string& self, const std::string& kind);
  void read_apis(const View& v);
  void read_api(const std::string& name, const View& v);
  void read_binary_media_types(const View& v, ApiSpec& api);
  // function_url: a function URL's CORS (Lambda's rules), else an HTTP API's.
  std::optional<CorsSpec> cors(const View& v, bool function_url = false);
  void read_authorizers(const View& v, ApiSpec& api, ApiInfo& info);
  void read_authorizer(const std::string& name, const View& v, ApiSpec& api, ApiInfo& info);
  std::optional<AuthorizerType> authorizer_type(const Fields& f, const ApiInfo& info);
  void read_lambda_authorizer(const Fields& f, AuthorizerSpec& a, const ApiInfo& info);
  void read_identity_sources(const Fields& f, AuthorizerSpec& a, const ApiInfo& info);
  void read_jwt(const Fields& f, JwtConfig& jwt);
  void read_jwks_file(const View& v, JwtConfig& jwt);
  void read_inline_jwks(const View& v, JwtConfig& jwt);
  void read_stages(const Fields& api_fields, ApiSpec& api, ApiInfo& info,
                   std::vector<std::pair<std::string, View>>& deferred);
  void read_routes(const View& v, ApiSpec& api, ApiInfo& info);
  void read_route(const std::string& key, const View& v, ApiSpec& api, ApiInfo& info,
                  std::map<std::string, std::string>& shapes, std::map<std::string, int>& lines);
  void check_target(const View& at, const ParsedTarget& pt, const ApiSpec& api);
  void read_api_keys(const View& v);
  void read_usage_plans(const View& v);
  void read_plan_stages(const View& v, UsagePlanSpec& plan);
  std::optional<QuotaSpec> quota(const View& v);
  void read_plan_keys(const View& v, UsagePlanSpec& plan);
  void read_plan_route_throttles(const View& v, UsagePlanSpec& plan);
  void read_schedules(const View& v);
  void read_schedule(const std::string& name, const View& v);
  void cross_checks();

  // values
  std::optional<RuntimeId> runtime(const View& v);
  std::optional<fs::path> directory(const View& v, std::string_view what);
  // A requirements file: a string naming an existing regular file (absolute once resolved).
  std::optional<fs::path> requirements_file(const View& v);
  void read_requirements(const Fields& f, FunctionSpec& fn);
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
  std::set<std::string> function_names_;                      // every declared one
  std::map<std::string, std::set<std::string>> alias_names_;  // function -> declared aliases
  std::map<std::string, ApiInfo> api_info_;
  std::map<std::string, int> api_lines_;
  std::set<std::string> key_names_;
  std::map<std::string, View> route_views_;                                    // "api/routeKey" -> where it was written
  std::map<std::pair<std::string, std::string>, std::string> key_stage_plan_;  // (key, "api/stage") -> plan
};

}  // namespace sluice::stack::detail
