// API Gateway events, built by the gateway's own event builders from a
// synthetic request, so a generated event is exactly what `sluice serve` would
// send for that request; only what differs on AWS (https, port 443, the
// execute-api host) is filled in as AWS has it.
#include "kinds.hpp"
#include "sluice/common/util.hpp"
#include "sluice/gateway/authorizers.hpp"
#include "sluice/gateway/payloads.hpp"
#include "sluice/gateway/routing.hpp"

#include <algorithm>

namespace sluice::events::detail {

namespace {

const std::vector<std::string> http_methods{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};

struct Synthetic {
  stack::ApiSpec api;
  gateway::Request request;
  std::string stage;
  std::map<std::string, std::string> stage_variables;
  std::string request_id;
  std::string domain;
  std::chrono::system_clock::time_point time = std::chrono::system_clock::now();
};

std::string api_id_of(const Settings& s) {
  std::string id = s.get("api_id", "");
  if (id.empty()) return to_lower(random_alnum(10));
  if (id.size() > 64 || !std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isalnum(c); }))
    s.bad("api_id", "expected letters and digits, such as 1234567890 or a1b2c3d4e5");
  return id;
}

std::string method_of(const Settings& s, const std::string& fallback) {
  std::string m = s.get("method", fallback);
  for (auto& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (std::find(http_methods.begin(), http_methods.end(), m) == http_methods.end())
    s.bad("method", "expected one of " + join(http_methods, ", "));
  return m;
}

std::string path_of(const Settings& s, const std::string& key, const std::string& fallback) {
  std::string p = s.get(key, fallback);
  if (p.empty() || p.front() != '/') s.bad(key, "expected a path starting with '/', e.g. /movies/12");
  if (p.find('?') != std::string::npos)
    s.bad(key, "the query string goes in --set query.NAME=VALUE, not in the path");
  return p;
}

// A request as a client would send it to the execute-api endpoint.
Synthetic synthesize(const Settings& s, stack::ApiType type, const std::string& default_stage,
                     const std::string& default_method) {
  Synthetic x;
  x.api.type = type;
  x.api.name = "generated";
  x.api.api_id = api_id_of(s);
  x.stage = s.get("stage", default_stage);
  if (x.stage.empty()) s.bad("stage", "expected a stage name such as prod");
  for (const auto& [k, v] : s.values)
    if (starts_with(k, "stage_variable.")) x.stage_variables[k.substr(15)] = v;
  x.request_id = s.get("request_id", new_uuid());
  x.domain = x.api.api_id + ".execute-api." + s.region() + ".amazonaws.com";

  gateway::Request& r = x.request;
  r.method = method_of(s, default_method);
  std::string path = path_of(s, "path", "/hello");
  r.path = url_decode(path);
  r.raw_path = (x.stage == "$default" ? std::string() : "/" + x.stage) + path;
  std::string q;
  for (const auto& [k, v] : s.query) q += (q.empty() ? "" : "&") + url_encode(k) + "=" + url_encode(v);
  r.raw_query = q;
  r.source_ip = s.get("source_ip", "198.51.100.7");
  r.local_port = 443;
  r.body = s.get("body", "");
  auto user_has = [&](std::string_view name) {
    return std::any_of(s.headers.begin(), s.headers.end(), [&](const auto& h) { return iequals(h.first, name); });
  };
  if (!user_has("Host")) r.headers.push_back({"Host", x.domain});
  if (!user_has("User-Agent")) r.headers.push_back({"User-Agent", "curl/8.5.0"});
  if (!user_has("Accept")) r.headers.push_back({"Accept", "*/*"});
  if (!r.body.empty() && !user_has("Content-Type")) r.headers.push_back({"Content-Type", "application/json"});
  if (!r.body.empty() && !user_has("Content-Length"))
    r.headers.push_back({"Content-Length", std::to_string(r.body.size())});
  for (const auto& [k, v] : s.headers) r.headers.push_back({k, v});
  return x;
}

gateway::RouteMatch route(const Settings& s, Synthetic& x, const std::string& route_key_text) {
  stack::RouteSpec spec;
  spec.target.function = "generated";
  if (route_key_text == "$default") {
    spec.key = "$default";
  } else {
    auto sp = route_key_text.find(' ');
    spec.method = route_key_text.substr(0, sp);
    spec.path = route_key_text.substr(sp + 1);
    spec.key = route_key_text;
  }
  x.api.routes.push_back(spec);
  gateway::Router router(x.api);
  auto m = router.match(x.request.method, x.request.path);
  if (!m.route) {
    std::string key = s.has("resource") ? "resource" : s.has("route") ? "route" : "path";
    s.bad(key, "the path " + sluice::quoted(x.request.path) + " does not match the resource " +
                   sluice::quoted(spec.path.empty() ? spec.key : spec.path) + "; set both path and " +
                   (x.api.type == stack::ApiType::rest ? "resource" : "route") + " (e.g. path=/movies/12 and " +
                   (x.api.type == stack::ApiType::rest ? "resource" : "route") + "=/movies/{id})");
  }
  return m;
}

// AWS is reached over https on 443; sluice's own listener is plain http.
void as_on_aws(ojson& ev) {
  for (const char* key : {"headers", "multiValueHeaders"}) {
    if (!ev.contains(key) || !ev[key].is_object()) continue;
    for (auto& [name, value] : ev[key].items()) {
      if (!iequals(name, "X-Forwarded-Proto")) continue;
      if (value.is_array()) value = ojson::array({"https"});
      else value = "https";
    }
  }
}

void check_resource(const Settings& s, const std::string& key, const std::string& p) {
  if (p.empty() || p.front() != '/')
    s.bad(key, "expected a resource path starting with '/', e.g. /movies/{id} or /{proxy+}");
}

gateway::EventInput event_input(const Synthetic& x, const gateway::RouteMatch& m, const Settings& s) {
  gateway::EventInput in;
  in.request = &x.request;
  in.api = &x.api;
  in.match = &m;
  in.stage = x.stage;
  in.stage_variables = &x.stage_variables;
  in.request_id = x.request_id;
  in.extended_request_id = new_apigw_id();
  in.account_id = s.account();
  in.region = s.region();
  in.time = x.time;
  in.domain_name = x.domain;
  in.domain_prefix = x.api.api_id;
  in.trace_id = new_trace_id();
  in.base64_body = s.boolean("base64", false);
  return in;
}

}  // namespace

ojson apigateway_rest(const Settings& s) {
  Synthetic x = synthesize(s, stack::ApiType::rest, "prod", "GET");
  std::string resource = s.get("resource", s.has("path") ? x.request.path : "/{proxy+}");
  check_resource(s, "resource", resource);
  if (!s.has("path") && !s.has("resource")) {
    x.request.path = "/hello";
    x.request.raw_path = "/" + x.stage + "/hello";
  }
  auto m = route(s, x, x.request.method + " " + resource);
  gateway::EventInput in = event_input(x, m, s);
  ojson ev = ojson::parse(gateway::rest_event(in));
  as_on_aws(ev);
  return ev;
}

ojson apigateway_http(const Settings& s) {
  Synthetic x = synthesize(s, stack::ApiType::http, "$default", "GET");
  std::string route_path = s.get("route", x.request.path);
  std::string key = route_path == "$default" ? "$default" : x.request.method + " " + route_path;
  if (route_path != "$default") check_resource(s, "route", route_path);
  auto m = route(s, x, key);
  gateway::EventInput in = event_input(x, m, s);
  ojson ev = ojson::parse(gateway::http_v2_event(in));
  as_on_aws(ev);
  return ev;
}

// What the gateway hands an authorizer for the synthetic request x.
static gateway::AuthInput auth_input(const Settings& s, const Synthetic& x) {
  gateway::AuthInput in;
  in.request = &x.request;
  in.api = &x.api;
  in.stage = x.stage;
  in.stage_variables = &x.stage_variables;
  in.method_arn = gateway::method_arn(s.region(), s.account(), x.api.api_id, x.stage, x.request.method, x.request.path);
  in.request_id = x.request_id;
  in.account_id = s.account();
  in.region = s.region();
  in.domain_name = x.domain;
  in.time = x.time;
  return in;
}

ojson apigateway_authorizer_token(const Settings& s) {
  Synthetic x = synthesize(s, stack::ApiType::rest, "prod", "GET");
  stack::AuthorizerSpec auth;
  auth.name = "generated";
  auth.type = stack::AuthorizerType::token;
  auth.identity_sources = {"method.request.header.Authorization"};
  x.request.headers.push_back({"Authorization", s.get("token", "Bearer allow")});
  gateway::AuthInput in = auth_input(s, x);
  return ojson::parse(gateway::authorizer_event(auth, in));
}

ojson apigateway_authorizer_request(const Settings& s) {
  Synthetic x = synthesize(s, stack::ApiType::rest, "prod", "GET");
  std::string resource = s.get("resource", x.request.path);
  check_resource(s, "resource", resource);
  auto m = route(s, x, x.request.method + " " + resource);
  stack::AuthorizerSpec auth;
  auth.name = "generated";
  auth.type = stack::AuthorizerType::request;
  auth.payload_format = "1.0";
  gateway::AuthInput in = auth_input(s, x);
  in.match = &m;
  ojson ev = ojson::parse(gateway::authorizer_event(auth, in));
  as_on_aws(ev);
  return ev;
}

// A function URL request (payload 2.0 as function URLs send it), built by the same code path
// as `sluice serve`'s URLs: $default route and stage, no path parameters or stage variables,
// accountId "anonymous" for AuthType NONE, an IAM caller for AWS_IAM.
ojson lambda_function_url(const Settings& s) {
  Synthetic x = synthesize(s, stack::ApiType::http, "$default", "GET");
  std::string id = s.get("url_id", "");
  if (id.empty()) id = to_lower(random_alnum(32));
  if (id.size() != 32 || !std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isdigit(c) || std::islower(c); }))
    s.bad("url_id", "expected 32 lower-case letters and digits, as in https://<url_id>.lambda-url.REGION.on.aws");
  std::string auth = s.get("auth", "NONE");
  if (auth != "NONE" && auth != "AWS_IAM") s.bad("auth", "expected NONE or AWS_IAM");
  x.api.api_id = id;
  std::string old_domain = x.domain;
  x.domain = id + ".lambda-url." + s.region() + ".on.aws";
  for (auto& h : x.request.headers)
    if (iequals(h.name, "Host") && h.value == old_domain) h.value = x.domain;
  gateway::RouteMatch none;
  gateway::EventInput in = event_input(x, none, s);
  in.stage = "$default";
  in.stage_variables = nullptr;
  in.domain_prefix = id;
  nlohmann::json iam;
  if (auth == "AWS_IAM") {
    iam = {{"iam",
            {{"accessKey", "AKIAIOSFODNN7EXAMPLE"},
             {"accountId", s.account()},
             {"callerId", "AIDACKCEVSQ6C2EXAMPLE"},
             {"cognitoIdentity", nullptr},
             {"principalOrgId", nullptr},
             {"userArn", "arn:aws:iam::" + s.account() + ":user/example-user"},
             {"userId", "AIDACKCEVSQ6C2EXAMPLE"}}}};
    in.authorizer = &iam;
  } else {
    in.account_id = "anonymous";
  }
  ojson ev = ojson::parse(gateway::http_v2_event(in));
  as_on_aws(ev);
  return ev;
}

}  // namespace sluice::events::detail
