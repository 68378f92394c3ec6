// Lambda authorizers: identity sources, the events the authorizer function
// receives, what its answer means, IAM policy evaluation and the result cache
// (reference §4.8). JWT verification lives in jwt.cpp.
//
// Shapes follow the API Gateway developer guide (api-gateway-lambda-authorizer-input,
// api-gateway-lambda-authorizer-output, http-api-lambda-authorizer) and events
// captured from real APIs (aws-powertools parser test events apigw-rest/authorizer-*.json,
// apigw-http/authorizer-request.json): REST REQUEST events carry {} for empty
// maps, HTTP 2.0 events leave absent parts out.
#include "ids.hpp"
#include "sluice/gateway/authorizers.hpp"
#include "sluice/gateway/payloads.hpp"

#include "sluice/common/util.hpp"

#include <boost/regex.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <regex>
#include <unordered_map>

namespace sluice::gateway {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// ---- ARNs and IAM policies ---------------------------------------------------

std::string method_arn(const std::string& region, const std::string& account, const std::string& api_id,
                       const std::string& stage, const std::string& method, const std::string& path) {
  std::string_view p = path;
  if (!p.empty() && p.front() == '/') p.remove_prefix(1);
  std::string out;
  out.reserve(40 + region.size() + account.size() + api_id.size() + stage.size() + method.size() + p.size());
  out.append("arn:aws:execute-api:").append(region).append(":").append(account).append(":").append(api_id);
  out.append("/").append(stage).append("/").append(method).append("/").append(p);
  return out;
}

namespace {

char fold(char c, bool icase) {
  return icase && c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// IAM-style glob over the whole string: '*' any run (also across ':' and '/'),
// '?' one character. Iterative with one backtrack point, so linear-ish and
// never recursive.
bool glob_match(std::string_view pattern, std::string_view text, bool icase) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && (pattern[p] == '?' || fold(pattern[p], icase) == fold(text[t], icase))) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// A string or a list of strings; nullopt when the value has another shape.
std::optional<std::vector<std::string_view>> string_or_list(const json& v) {
  std::vector<std::string_view> out;
  if (v.is_string()) {
    out.push_back(v.get_ref<const std::string&>());
    return out;
  }
  if (!v.is_array()) return std::nullopt;
  for (const auto& x : v) {
    if (!x.is_string()) return std::nullopt;
    out.push_back(x.get_ref<const std::string&>());
  }
  return out;
}

constexpr std::string_view invoke_action = "execute-api:Invoke";

// nullopt: the document is not a policy API Gateway could parse (the caller
// decides whether that is an implicit deny or a configuration error).
std::optional<PolicyEffect> evaluate(const json& doc, const std::string& arn) {
  if (!doc.is_object()) return std::nullopt;
  if (auto v = doc.find("Version"); v != doc.end()) {
    if (!v->is_string()) return std::nullopt;
    const auto& s = v->get_ref<const std::string&>();
    if (s != "2012-10-17" && s != "2008-10-17") return std::nullopt;
  }
  auto st = doc.find("Statement");
  if (st == doc.end()) return std::nullopt;
  std::vector<const json*> statements;
  if (st->is_object()) {
    statements.push_back(&*st);
  } else if (st->is_array()) {
    for (const auto& s : *st) {
      if (!s.is_object()) return std::nullopt;
      statements.push_back(&s);
    }
  } else {
    return std::nullopt;
  }

  bool allow = false, deny = false;
  for (const json* s : statements) {
    auto effect = s->find("Effect");
    if (effect == s->end() || !effect->is_string()) return std::nullopt;
    const auto& e = effect->get_ref<const std::string&>();
    if (e != "Allow" && e != "Deny") return std::nullopt;

    auto action = s->find("Action"), not_action = s->find("NotAction");
    auto resource = s->find("Resource"), not_resource = s->find("NotResource");
    if ((action == s->end()) == (not_action == s->end())) return std::nullopt;
    if ((resource == s->end()) == (not_resource == s->end())) return std::nullopt;
    auto actions = string_or_list(action != s->end() ? *action : *not_action);
    auto resources = string_or_list(resource != s->end() ? *resource : *not_resource);
    if (!actions || !resources) return std::nullopt;

    // Conditions need request facts this evaluation does not have: such a
    // statement is left out rather than guessed.
    if (s->contains("Condition")) continue;

    // Action names are case-insensitive in IAM; ARNs are not.
    bool action_hit = std::any_of(actions->begin(), actions->end(),
                                  [](std::string_view a) { return glob_match(a, invoke_action, true); });
    bool resource_hit = std::any_of(resources->begin(), resources->end(),
                                    [&](std::string_view r) { return glob_match(r, arn, false); });
    if (not_action != s->end()) action_hit = !action_hit;
    if (not_resource != s->end()) resource_hit = !resource_hit;
    if (!action_hit || !resource_hit) continue;
    (e == "Deny" ? deny : allow) = true;
  }
  if (deny) return PolicyEffect::deny;
  if (allow) return PolicyEffect::allow;
  return PolicyEffect::none;
}

}  // namespace

PolicyEffect evaluate_policy(const nlohmann::json& policy_document, const std::string& method_arn) {
  // A document API Gateway could not parse grants nothing.
  return evaluate(policy_document, method_arn).value_or(PolicyEffect::none);
}

// ---- request facts -----------------------------------------------------------

namespace {

const Request& request_of(const AuthInput& in) {
  static const Request empty{};
  return in.request ? *in.request : empty;
}

bool is_http(const stack::AuthorizerSpec& auth, const AuthInput& in) {
  if (in.api) return in.api->type == stack::ApiType::http;
  if (auth.type == stack::AuthorizerType::jwt) return true;
  for (const auto& s : auth.identity_sources)
    if (!s.empty() && s.front() == '$') return true;
  return false;
}

// The first label of the Host, as the proxy events (payloads.cpp) write it.
std::string domain_prefix(const std::string& domain) { return domain.substr(0, domain.find('.')); }

// Stable six-character ids for what AWS names with random ids (resourceId,
// deploymentId), derived from the same seeds as the proxy events in
// payloads.cpp so that one resource shows one id in both events.
std::string stable_id(std::string_view seed) { return resource_style_id(seed); }

std::string stage_path(const AuthInput& in) {
  const Request& req = request_of(in);
  if (in.stage.empty() || in.stage == "$default") return req.path;
  return "/" + in.stage + req.path;
}

std::string raw_path(const AuthInput& in) {
  const Request& req = request_of(in);
  return req.raw_path.empty() ? stage_path(in) : req.raw_path;
}

// Values of $context.X (HTTP) / context.X (REST) identity sources; nullopt for
// a variable this emulation does not provide (treated as missing).
std::optional<std::string> context_variable(std::string_view name, const AuthInput& in) {
  const Request& req = request_of(in);
  if (name == "httpMethod" || name == "http.method") return req.method;
  if (name == "path" || name == "http.path") return stage_path(in);
  if (name == "resourcePath") return in.match ? std::optional<std::string>(in.match->resource_path) : std::nullopt;
  if (name == "routeKey") return in.match ? std::optional<std::string>(in.match->route_key) : std::nullopt;
  if (name == "stage") return in.stage;
  if (name == "apiId") return in.api ? std::optional<std::string>(in.api->api_id) : std::nullopt;
  if (name == "accountId") return in.account_id;
  if (name == "requestId") return in.request_id;
  if (name == "domainName") return in.domain_name;
  if (name == "domainPrefix") return domain_prefix(in.domain_name);
  if (name == "protocol" || name == "http.protocol") return req.protocol;
  if (name == "identity.sourceIp" || name == "http.sourceIp") return req.source_ip;
  if (name == "identity.userAgent" || name == "http.userAgent") return req.header("User-Agent").value_or("");
  if (name == "requestTime") return clf_time(in.time);
  if (name == "requestTimeEpoch") return std::to_string(epoch_ms(in.time));
  return std::nullopt;
}

std::optional<std::string> stage_variable(std::string_view name, const AuthInput& in) {
  if (!in.stage_variables) return std::nullopt;
  auto it = in.stage_variables->find(std::string(name));
  if (it == in.stage_variables->end()) return std::nullopt;
  return it->second;
}

// Query values for one name (case-sensitive, as API Gateway treats query names).
std::vector<std::string> query_values(const Request& req, std::string_view name) {
  std::vector<std::string> out;
  for (auto& [k, v] : parse_query(req.raw_query))
    if (k == name) out.push_back(std::move(v));
  return out;
}

// One identity source's value; nullopt when the source is unknown or absent.
// REST keeps the last value of a repeated header or query parameter (its
// single-value maps do); HTTP APIs join repeated values with commas.
std::optional<std::string> source_value(const std::string& source, const AuthInput& in, bool http) {
  const Request& req = request_of(in);
  auto after = [&](std::string_view prefix) -> std::optional<std::string_view> {
    if (!starts_with(source, prefix)) return std::nullopt;
    return std::string_view(source).substr(prefix.size());
  };
  if (auto n = after(http ? "$request.header." : "method.request.header.")) {
    if (!http) return req.header(*n);
    auto values = req.header_values(*n);
    if (values.empty()) return std::nullopt;
    return join(values, ",");
  }
  if (auto n = after(http ? "$request.querystring." : "method.request.querystring.")) {
    auto values = query_values(req, *n);
    if (values.empty()) return std::nullopt;
    return http ? join(values, ",") : values.back();
  }
  if (auto n = after(http ? "$stageVariables." : "stageVariables.")) return stage_variable(*n, in);
  if (auto n = after(http ? "$context." : "context.")) return context_variable(*n, in);
  return std::nullopt;
}

// Every source's value, or nullopt as soon as one is missing or empty.
std::optional<std::vector<std::string>> source_values(const stack::AuthorizerSpec& auth, const AuthInput& in,
                                                      bool http) {
  std::vector<std::string> out;
  for (const auto& s : auth.identity_sources) {
    auto v = source_value(s, in, http);
    if (!v || v->empty()) return std::nullopt;
    out.push_back(std::move(*v));
  }
  return out;
}

const std::string& token_source(const stack::AuthorizerSpec& auth) {
  static const std::string rest_default = "method.request.header.Authorization";
  return auth.identity_sources.empty() ? rest_default : auth.identity_sources.front();
}

// ---- identityValidationExpression ------------------------------------------
//
// Boost.Regex rather than std::regex: libstdc++'s matcher recurses once per
// input character and overflows the stack on tokens of a few kilobytes (a
// request-controlled crash), while Boost's keeps its state on the heap and
// throws when a match gets too deep or too complex. Compiled expressions are
// kept, one per distinct pattern.

struct CompiledExpression {
  std::unique_ptr<boost::regex> boost_re;
  std::unique_ptr<std::regex> std_re;  // only when Boost refused a pattern std::regex took
};

std::shared_ptr<const CompiledExpression> compiled(const std::string& pattern) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::shared_ptr<const CompiledExpression>> cache;
  std::lock_guard lock(mu);
  if (auto it = cache.find(pattern); it != cache.end()) return it->second;
  auto c = std::make_shared<CompiledExpression>();
  try {
    c->boost_re = std::make_unique<boost::regex>(pattern, boost::regex::ECMAScript);
  } catch (const std::exception&) {
    try {
      c->std_re = std::make_unique<std::regex>(pattern, std::regex::ECMAScript);
    } catch (const std::exception&) {
    }
  }
  if (cache.size() > 256) cache.clear();  // patterns come from configuration; this never grows in practice
  cache.emplace(pattern, c);
  return c;
}

// API Gateway limits the request line and headers to 10,240 bytes, so no
// genuine token is longer.
constexpr std::size_t max_token_size = 10240;
// The std::regex fallback recurses per character: keep its input short.
constexpr std::size_t max_std_regex_input = 1024;

bool matches_validation(const std::string& pattern, const std::string& token) {
  if (token.size() > max_token_size) return false;
  auto c = compiled(pattern);
  try {
    if (c->boost_re) return boost::regex_match(token, *c->boost_re, boost::match_default | boost::match_single_line);
    if (c->std_re && token.size() <= max_std_regex_input) return std::regex_match(token, *c->std_re);
  } catch (const std::exception&) {
    // too complex or too deep to decide: not a valid token
  }
  return false;
}

}  // namespace

std::optional<std::string> identity(const stack::AuthorizerSpec& auth, const AuthInput& in) {
  const bool http = is_http(auth, in);
  switch (auth.type) {
    case stack::AuthorizerType::token: {
      auto v = source_value(token_source(auth), in, false);
      if (!v || v->empty()) return std::nullopt;
      if (!auth.identity_validation_expression.empty() && !matches_validation(auth.identity_validation_expression, *v))
        return std::nullopt;
      return v;
    }
    case stack::AuthorizerType::jwt: {
      if (auth.identity_sources.empty()) {
        auto v = request_of(in).header("Authorization");
        if (!v || v->empty()) return std::nullopt;
        return v;
      }
      auto values = source_values(auth, in, true);
      if (!values) return std::nullopt;
      return join(*values, ",");
    }
    case stack::AuthorizerType::request:
      break;
  }
  // No identity sources: nothing to check, nothing to key a cache on.
  if (auth.identity_sources.empty()) return std::string();
  auto values = source_values(auth, in, http);
  if (!values) return std::nullopt;
  // One cache entry per set of values: as a JSON list, so that values holding the separator
  // cannot make two sets look alike ("a,b" + "c" against "a" + "b,c").
  return nlohmann::json(*values).dump();
}

// ---- the events authorizer functions receive ---------------------------------

namespace {

// REST-style single- and multi-value header maps, names as the client sent
// them (repeated names, in any casing, collected under the first spelling).
void rest_headers(const Request& req, ojson& single, ojson& multi) {
  single = ojson::object();
  multi = ojson::object();
  std::vector<std::string> names;
  for (const auto& h : req.headers) {
    std::string* key = nullptr;
    for (auto& n : names)
      if (iequals(n, h.name)) key = &n;
    if (!key) {
      names.push_back(h.name);
      key = &names.back();
      multi[*key] = ojson::array();
    }
    single[*key] = h.value;
    multi[*key].push_back(h.value);
  }
}

void rest_query(const Request& req, ojson& single, ojson& multi) {
  single = ojson::object();
  multi = ojson::object();
  for (auto& [k, v] : parse_query(req.raw_query)) {
    single[k] = v;
    if (!multi.contains(k)) multi[k] = ojson::array();
    multi[k].push_back(v);
  }
}

ojson string_map(const std::map<std::string, std::string>* m) {
  ojson out = ojson::object();
  if (m)
    for (const auto& [k, v] : *m) out[k] = v;
  return out;
}

ojson path_parameters(const AuthInput& in) {
  ojson out = ojson::object();
  if (in.match)
    for (const auto& [k, v] : in.match->path_parameters) out[k] = v;
  return out;
}

ojson nullable(const std::optional<std::string>& v) { return v ? ojson(*v) : ojson(nullptr); }

// requestContext of a REST REQUEST authorizer event (the subset the captured
// events carry: no authorizer, no body-related fields).
ojson rest_request_context(const AuthInput& in, bool http_v1) {
  const Request& req = request_of(in);
  const std::string api_id = in.api ? in.api->api_id : "";
  const std::string resource_path = in.match ? in.match->resource_path : "";
  ojson identity = ojson::object();
  identity["cognitoIdentityPoolId"] = nullptr;
  identity["accountId"] = nullptr;
  identity["cognitoIdentityId"] = nullptr;
  identity["caller"] = nullptr;
  identity["sourceIp"] = req.source_ip;
  identity["principalOrgId"] = nullptr;
  identity["accessKey"] = nullptr;
  identity["cognitoAuthenticationType"] = nullptr;
  identity["cognitoAuthenticationProvider"] = nullptr;
  identity["userArn"] = nullptr;
  identity["userAgent"] = nullable(req.header("User-Agent"));
  identity["user"] = nullptr;

  ojson rc = ojson::object();
  // HTTP APIs name the resource by its route key ("ANY /request").
  if (http_v1)
    rc["resourceId"] = in.match && !in.match->route_key.empty() ? in.match->route_key : "$default";
  else
    rc["resourceId"] = stable_id(api_id + "/resource/" + resource_path);
  rc["resourcePath"] = http_v1 && resource_path.empty() ? "$default" : resource_path;
  rc["httpMethod"] = req.method;
  rc["extendedRequestId"] = http_v1 || in.extended_request_id.empty() ? in.request_id : in.extended_request_id;
  rc["requestTime"] = clf_time(in.time);
  rc["path"] = stage_path(in);
  rc["accountId"] = in.account_id;
  rc["protocol"] = req.protocol;
  rc["stage"] = in.stage;
  rc["domainPrefix"] = domain_prefix(in.domain_name);
  rc["requestTimeEpoch"] = epoch_ms(in.time);
  rc["requestId"] = in.request_id;
  rc["identity"] = std::move(identity);
  rc["domainName"] = in.domain_name;
  if (!http_v1) rc["deploymentId"] = stable_id(api_id + "/deployment/" + in.stage);
  rc["apiId"] = api_id;
  return rc;
}

// The REST REQUEST event body, shared by REST APIs and HTTP payload 1.0.
void fill_request_v1(ojson& ev, const AuthInput& in, bool http_v1) {
  const Request& req = request_of(in);
  std::string resource = in.match ? in.match->resource_path : "";
  if (http_v1 && resource.empty()) resource = "$default";
  ev["resource"] = resource;
  ev["path"] = req.path;
  ev["httpMethod"] = req.method;
  ojson headers, multi_headers, query, multi_query;
  rest_headers(req, headers, multi_headers);
  // What the gateway adds in front of the authorizer too (AWS's REQUEST input example; captured
  // events), replacing what the client sent under those names.
  auto added = [&](const std::string& name, const std::string& value) {
    for (auto it = headers.begin(); it != headers.end(); ++it)
      if (iequals(it.key(), name)) {
        std::string key = it.key();
        headers.erase(key);
        multi_headers.erase(key);
        break;
      }
    headers[name] = value;
    multi_headers[name] = ojson::array({value});
  };
  added("X-Forwarded-For", forwarded_for(req));
  added("X-Forwarded-Port", forwarded_port(req));
  added("X-Forwarded-Proto", "http");
  if (!in.trace_id.empty()) added("X-Amzn-Trace-Id", in.trace_id);
  rest_query(req, query, multi_query);
  ev["headers"] = std::move(headers);
  ev["multiValueHeaders"] = std::move(multi_headers);
  ev["queryStringParameters"] = std::move(query);
  ev["multiValueQueryStringParameters"] = std::move(multi_query);
  ev["pathParameters"] = path_parameters(in);
  ev["stageVariables"] = string_map(in.stage_variables);
  ev["requestContext"] = rest_request_context(in, http_v1);
}

std::string http_v2_event(const stack::AuthorizerSpec& auth, const AuthInput& in) {
  const Request& req = request_of(in);
  ojson ev = ojson::object();
  ev["version"] = "2.0";
  ev["type"] = "REQUEST";
  ev["routeArn"] = in.method_arn;
  if (!auth.identity_sources.empty()) {
    // Only sources that are present appear (the gateway answers 401 before
    // invoking when one is missing, so in practice this is all of them).
    ojson sources = ojson::array();
    for (const auto& s : auth.identity_sources)
      if (auto v = source_value(s, in, true); v && !v->empty()) sources.push_back(*v);
    ev["identitySource"] = std::move(sources);
  }
  ev["routeKey"] = in.match && !in.match->route_key.empty() ? in.match->route_key : "$default";
  ev["rawPath"] = raw_path(in);
  ev["rawQueryString"] = req.raw_query;

  // Header names lower-cased, repeated values comma-joined; cookies apart.
  ojson headers = ojson::object();
  ojson cookies = ojson::array();
  for (const auto& h : req.headers) {
    std::string name = to_lower(h.name);
    if (name == "cookie") {
      for (const auto& c : split(h.value, ';')) {
        auto t = trim(c);
        if (!t.empty()) cookies.push_back(std::string(t));
      }
      continue;
    }
    if (name == "x-forwarded-for" || name == "x-forwarded-port" || name == "x-forwarded-proto" ||
        (name == "x-amzn-trace-id" && !in.trace_id.empty()))
      continue;  // the gateway's own, below
    if (headers.contains(name))
      headers[name] = headers[name].get<std::string>() + "," + h.value;
    else
      headers[name] = h.value;
  }
  headers["x-forwarded-for"] = forwarded_for(req);
  headers["x-forwarded-port"] = forwarded_port(req);
  headers["x-forwarded-proto"] = "http";
  if (!in.trace_id.empty()) headers["x-amzn-trace-id"] = in.trace_id;
  if (!cookies.empty()) ev["cookies"] = std::move(cookies);
  ev["headers"] = std::move(headers);

  ojson query = ojson::object();
  for (auto& [k, v] : parse_query(req.raw_query)) {
    if (query.contains(k))
      query[k] = query[k].get<std::string>() + "," + v;
    else
      query[k] = v;
  }
  if (!query.empty()) ev["queryStringParameters"] = std::move(query);

  ojson http = ojson::object();
  http["method"] = req.method;
  http["path"] = raw_path(in);
  http["protocol"] = req.protocol;
  http["sourceIp"] = req.source_ip;
  http["userAgent"] = req.header("User-Agent").value_or("");
  ojson rc = ojson::object();
  rc["accountId"] = in.account_id;
  rc["apiId"] = in.api ? in.api->api_id : "";
  rc["domainName"] = in.domain_name;
  rc["domainPrefix"] = domain_prefix(in.domain_name);
  rc["http"] = std::move(http);
  rc["requestId"] = in.request_id;
  rc["routeKey"] = ev["routeKey"];
  rc["stage"] = in.stage;
  rc["time"] = clf_time(in.time);
  rc["timeEpoch"] = epoch_ms(in.time);
  ev["requestContext"] = std::move(rc);

  if (auto p = path_parameters(in); !p.empty()) ev["pathParameters"] = std::move(p);
  if (in.stage_variables && !in.stage_variables->empty()) ev["stageVariables"] = string_map(in.stage_variables);
  return ev.dump();
}

}  // namespace

std::string authorizer_event(const stack::AuthorizerSpec& auth, const AuthInput& in) {
  const bool http = is_http(auth, in);
  ojson ev = ojson::object();
  switch (auth.type) {
    case stack::AuthorizerType::token: {
      ev["type"] = "TOKEN";
      ev["authorizationToken"] = source_value(token_source(auth), in, false).value_or("");
      ev["methodArn"] = in.method_arn;
      return ev.dump();
    }
    case stack::AuthorizerType::jwt:
      // No function runs for a JWT authorizer.
      return "{}";
    case stack::AuthorizerType::request:
      break;
  }
  if (http && auth.payload_format != "1.0") return http_v2_event(auth, in);
  if (http) {
    ev["version"] = "1.0";
    ev["type"] = "REQUEST";
    ev["methodArn"] = in.method_arn;
    if (!auth.identity_sources.empty()) {
      std::vector<std::string> values;
      for (const auto& s : auth.identity_sources)
        if (auto v = source_value(s, in, true); v && !v->empty()) values.push_back(std::move(*v));
      std::string joined = join(values, ",");
      ev["identitySource"] = joined;
      ev["authorizationToken"] = joined;
    }
    fill_request_v1(ev, in, true);
    return ev.dump();
  }
  ev["type"] = "REQUEST";
  ev["methodArn"] = in.method_arn;
  fill_request_v1(ev, in, false);
  return ev.dump();
}

// ---- what the authorizer function answered -----------------------------------

namespace {

AuthDecision fail(std::string problem) {
  AuthDecision d;
  d.kind = AuthDecision::failure;
  d.problem = std::move(problem);
  return d;
}

AuthDecision from_effect(PolicyEffect e, json context) {
  AuthDecision d;
  d.kind = e == PolicyEffect::allow  ? AuthDecision::allow
           : e == PolicyEffect::deny ? AuthDecision::denied_explicit
                                     : AuthDecision::denied;
  d.context = std::move(context);
  return d;
}

// REST context values as $context.authorizer.<key> shows them: strings as is,
// booleans "true"/"false", numbers in their JSON spelling.
std::optional<std::string> stringify_context_value(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return v.dump();
  return std::nullopt;
}

AuthDecision interpret_rest(const json& out, const std::string& arn) {
  if (!out.is_object()) return fail("the authorizer response is not a JSON object");
  auto principal = out.find("principalId");
  if (principal == out.end() || principal->is_null()) return fail("the authorizer response has no principalId");
  std::string principal_id;
  if (principal->is_string())
    principal_id = principal->get<std::string>();
  else if (principal->is_number())
    principal_id = principal->dump();
  else
    return fail("principalId must be a string");
  auto doc = out.find("policyDocument");
  if (doc == out.end() || doc->is_null()) return fail("the authorizer response has no policyDocument");
  auto effect = evaluate(*doc, arn);
  if (!effect) return fail("the policyDocument is not a valid IAM policy (Statement entries need Effect Allow|Deny, "
                           "Action and Resource as a string or a list of strings)");

  json ctx = json::object();
  if (auto c = out.find("context"); c != out.end() && !c->is_null()) {
    if (!c->is_object()) return fail("context must be a JSON object");
    for (const auto& [k, v] : c->items()) {
      if (v.is_null()) continue;
      auto s = stringify_context_value(v);
      if (!s) return fail("context value for \"" + k + "\" is an object or array; only strings, numbers and "
                          "booleans are allowed");
      ctx[k] = std::move(*s);
    }
  }
  ctx["principalId"] = principal_id;

  AuthDecision d = from_effect(*effect, std::move(ctx));
  if (auto k = out.find("usageIdentifierKey"); k != out.end() && k->is_string()) d.usage_identifier_key = k->get<std::string>();
  return d;
}

// HTTP APIs hand the context to the integration with its JSON types intact.
std::optional<json> http_context(const json& out) {
  auto c = out.find("context");
  if (c == out.end() || c->is_null()) return json{{"lambda", nullptr}};
  if (!c->is_object()) return std::nullopt;
  return json{{"lambda", *c}};
}

AuthDecision interpret_http(const stack::AuthorizerSpec& auth, const json& out, const std::string& arn) {
  if (!out.is_object()) return fail("the authorizer response is not a JSON object");
  auto ctx = http_context(out);
  if (!ctx) return fail("context must be a JSON object");
  if (auth.payload_format == "2.0" && auth.simple_responses) {
    auto a = out.find("isAuthorized");
    if (a == out.end() || !a->is_boolean()) return fail("the authorizer response needs a boolean isAuthorized");
    AuthDecision d;
    d.kind = a->get<bool>() ? AuthDecision::allow : AuthDecision::denied;
    d.context = std::move(*ctx);
    return d;
  }
  auto doc = out.find("policyDocument");
  if (doc == out.end() || doc->is_null()) return fail("the authorizer response has no policyDocument");
  if (auto p = out.find("principalId"); p != out.end() && !p->is_null() && !p->is_string() && !p->is_number())
    return fail("principalId must be a string");
  auto effect = evaluate(*doc, arn);
  if (!effect) return fail("the policyDocument is not a valid IAM policy (Statement entries need Effect Allow|Deny, "
                           "Action and Resource as a string or a list of strings)");
  return from_effect(*effect, std::move(*ctx));
}

}  // namespace

AuthDecision interpret_authorizer_output(const stack::ApiSpec& api, const stack::AuthorizerSpec& auth,
                                         const std::string& payload, bool function_error,
                                         const std::string& method_arn) {
  json out = json::parse(payload, nullptr, false);
  if (function_error) {
    // Only an error whose message is exactly "Unauthorized" means 401.
    if (out.is_object()) {
      auto m = out.find("errorMessage");
      if (m != out.end() && m->is_string() && m->get_ref<const std::string&>() == "Unauthorized") {
        AuthDecision d;
        d.kind = AuthDecision::unauthorized;
        return d;
      }
    }
    return fail("the authorizer function failed: " + payload.substr(0, 512));
  }
  if (out.is_discarded()) return fail("the authorizer response is not valid JSON");
  if (api.type == stack::ApiType::http) return interpret_http(auth, out, method_arn);
  return interpret_rest(out, method_arn);
}

// ---- cache -------------------------------------------------------------------

std::optional<AuthorizerCache::Entry> AuthorizerCache::get(const std::string& authorizer, const std::string& identity,
                                                           std::chrono::steady_clock::time_point now) const {
  auto it = entries_.find({authorizer, identity});
  if (it == entries_.end() || now >= it->second.expires) return std::nullopt;
  return it->second.entry;
}

void AuthorizerCache::put(const std::string& authorizer, const std::string& identity, Entry entry, int ttl_s,
                          std::chrono::steady_clock::time_point now) {
  if (ttl_s <= 0) return;
  // Identities are client-chosen: drop what has expired before growing further
  // (every 1024 insertions past 4096 entries, so a put stays cheap).
  if (entries_.size() >= 4096 && entries_.size() % 1024 == 0) {
    std::erase_if(entries_, [&](const auto& kv) { return now >= kv.second.expires; });
    // Still full of live entries: forget them (a miss only costs an invocation).
    if (entries_.size() >= 16384) entries_.clear();
  }
  entries_[{authorizer, identity}] = Stored{std::move(entry), now + std::chrono::seconds(ttl_s)};
}

void AuthorizerCache::clear() { entries_.clear(); }

}  // namespace sluice::gateway
