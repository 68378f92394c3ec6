// Lambda authorizers: method ARNs, IAM policy evaluation, identity sources,
// the events authorizer functions receive, what their answers mean, caching.
#include <catch2/catch.hpp>

#include "sluice/gateway/authorizers.hpp"
#include "sluice/gateway/payloads.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

using namespace sluice;
using namespace sluice::gateway;
using json = nlohmann::json;

namespace {

const std::string arn_root = "arn:aws:execute-api:eu-west-3:123456789012:abc123defg/prod/GET/";
const std::string arn_movie = "arn:aws:execute-api:eu-west-3:123456789012:abc123defg/prod/GET/movies/12";

json policy(const std::string& effect, const json& resource, const json& action = "execute-api:Invoke") {
  return json{{"Version", "2012-10-17"},
              {"Statement", json::array({{{"Effect", effect}, {"Action", action}, {"Resource", resource}}})}};
}

std::string output(const json& policy_document, const json& context = nullptr) {
  json out{{"principalId", "user-1"}, {"policyDocument", policy_document}};
  if (!context.is_null()) out["context"] = context;
  return out.dump();
}

stack::ApiSpec rest_api() {
  stack::ApiSpec api;
  api.name = "store";
  api.type = stack::ApiType::rest;
  api.api_id = "abc123defg";
  return api;
}

stack::ApiSpec http_api() {
  stack::ApiSpec api = rest_api();
  api.type = stack::ApiType::http;
  return api;
}

stack::AuthorizerSpec token_auth(std::string expression = "") {
  stack::AuthorizerSpec a;
  a.name = "tok";
  a.type = stack::AuthorizerType::token;
  a.function = "auth-fn";
  a.identity_sources = {"method.request.header.Authorization"};
  a.identity_validation_expression = std::move(expression);
  a.payload_format = "1.0";
  return a;
}

stack::AuthorizerSpec rest_request_auth(std::vector<std::string> sources) {
  stack::AuthorizerSpec a;
  a.name = "req";
  a.type = stack::AuthorizerType::request;
  a.function = "auth-fn";
  a.identity_sources = std::move(sources);
  a.payload_format = "1.0";
  return a;
}

stack::AuthorizerSpec http_auth(std::vector<std::string> sources, std::string format = "2.0", bool simple = false) {
  stack::AuthorizerSpec a;
  a.name = "lam";
  a.type = stack::AuthorizerType::request;
  a.function = "auth-fn";
  a.identity_sources = std::move(sources);
  a.payload_format = std::move(format);
  a.simple_responses = simple;
  return a;
}

// One request to GET /movies/12 on stage "prod", with everything an
// identity source can point at.
struct Fixture {
  Request req;
  RouteMatch match;
  stack::ApiSpec api = rest_api();
  std::map<std::string, std::string> stage_vars{{"environment", "sandbox"}, {"empty", ""}};
  AuthInput in;

  explicit Fixture(stack::ApiType type = stack::ApiType::rest) {
    api.type = type;
    req.method = "GET";
    req.path = "/movies/12";
    req.raw_path = "/prod/movies/12";
    req.raw_query = "token=q1&multi=1&multi=2&empty=";
    req.headers = {{"Host", "127.0.0.1:3000"},
                   {"Authorization", "Bearer abc.def"},
                   {"User-Agent", "curl/8.0"},
                   {"X-Multi", "one"},
                   {"x-multi", "two"},
                   {"Cookie", "c1=a; c2=b"},
                   {"X-Empty", ""}};
    req.source_ip = "127.0.0.1";
    match.route = nullptr;
    match.path_parameters = {{"id", "12"}};
    match.resource_path = "/movies/{id}";
    match.route_key = "GET /movies/{id}";
    in.request = &req;
    in.match = &match;
    in.api = &api;
    in.stage = "prod";
    in.stage_variables = &stage_vars;
    in.method_arn = arn_movie;
    in.request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef";
    in.account_id = "123456789012";
    in.region = "eu-west-3";
    in.domain_name = "127.0.0.1:3000";
    in.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1583349317135));
  }
};

}  // namespace

// ---- method ARNs ---------------------------------------------------------------

TEST_CASE("method_arn drops the path's leading slash; the root is an empty path", "[authorizers]") {
  CHECK(method_arn("eu-west-3", "123456789012", "abc123defg", "prod", "GET", "/") == arn_root);
  CHECK(method_arn("eu-west-3", "123456789012", "abc123defg", "prod", "GET", "/movies/12") == arn_movie);
  CHECK(method_arn("us-east-1", "1", "api", "$default", "POST", "/a/b/") ==
        "arn:aws:execute-api:us-east-1:1:api/$default/POST/a/b/");
  CHECK(method_arn("us-east-1", "1", "api", "s", "GET", "") == "arn:aws:execute-api:us-east-1:1:api/s/GET/");
}

// ---- IAM policy evaluation -------------------------------------------------------

TEST_CASE("evaluate_policy: Allow, Deny and nothing matching", "[authorizers]") {
  CHECK(evaluate_policy(policy("Allow", arn_movie), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Deny", arn_movie), arn_movie) == PolicyEffect::deny);
  CHECK(evaluate_policy(policy("Allow", arn_root), arn_movie) == PolicyEffect::none);
  // An empty statement list grants nothing.
  CHECK(evaluate_policy(json{{"Version", "2012-10-17"}, {"Statement", json::array()}}, arn_movie) == PolicyEffect::none);
}

TEST_CASE("evaluate_policy: an explicit Deny beats any Allow", "[authorizers]") {
  json doc = policy("Allow", "*");
  doc["Statement"].push_back({{"Effect", "Deny"}, {"Action", "execute-api:Invoke"}, {"Resource", arn_movie}});
  CHECK(evaluate_policy(doc, arn_movie) == PolicyEffect::deny);
  CHECK(evaluate_policy(doc, arn_root) == PolicyEffect::allow);
}

TEST_CASE("evaluate_policy: Statement as a single object, Resource and Action as lists", "[authorizers]") {
  json doc{{"Statement",
            {{"Effect", "Allow"},
             {"Action", {"execute-api:ManageConnections", "execute-api:Invoke"}},
             {"Resource", {arn_root, arn_movie}}}}};
  CHECK(evaluate_policy(doc, arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(doc, arn_root) == PolicyEffect::allow);
  CHECK(evaluate_policy(doc, "arn:aws:execute-api:eu-west-3:123456789012:abc123defg/prod/POST/movies") ==
        PolicyEffect::none);
}

TEST_CASE("evaluate_policy: actions match case-insensitively, with wildcards", "[authorizers]") {
  CHECK(evaluate_policy(policy("Allow", arn_movie, "execute-api:invoke"), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Allow", arn_movie, "EXECUTE-API:INVOKE"), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Allow", arn_movie, "execute-api:*"), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Allow", arn_movie, "*"), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Allow", arn_movie, "execute-api:Inv?ke"), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Allow", arn_movie, "execute-api:ManageConnections"), arn_movie) == PolicyEffect::none);
  CHECK(evaluate_policy(policy("Allow", arn_movie, "lambda:InvokeFunction"), arn_movie) == PolicyEffect::none);
  CHECK(evaluate_policy(policy("Deny", arn_movie, json::array({"s3:*", "execute-api:*"})), arn_movie) ==
        PolicyEffect::deny);
}

TEST_CASE("evaluate_policy: resource wildcards match the whole ARN, case-sensitively", "[authorizers]") {
  const std::string base = "arn:aws:execute-api:eu-west-3:123456789012:abc123defg/";
  CHECK(evaluate_policy(policy("Allow", "*"), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Allow", "arn:aws:execute-api:*"), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Allow", base + "*/GET/*"), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Allow", base + "prod/*"), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Allow", base + "prod/*/movies/*"), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Allow", base + "prod/GET/movies/1?"), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Allow", base + "prod/GET/movies/?"), arn_movie) == PolicyEffect::none);
  CHECK(evaluate_policy(policy("Allow", base + "*/POST/*"), arn_movie) == PolicyEffect::none);
  CHECK(evaluate_policy(policy("Allow", base + "prod/get/movies/12"), arn_movie) == PolicyEffect::none);
  CHECK(evaluate_policy(policy("Allow", base + "prod/GET/movies"), arn_movie) == PolicyEffect::none);
  CHECK(evaluate_policy(policy("Allow", base + "dev/*"), arn_movie) == PolicyEffect::none);
  // A cached policy for the root denies a sub-path (reference §4.8).
  CHECK(evaluate_policy(policy("Allow", arn_root), arn_movie) == PolicyEffect::none);
  CHECK(evaluate_policy(policy("Allow", "***"), arn_movie) == PolicyEffect::allow);
  CHECK(evaluate_policy(policy("Allow", ""), arn_movie) == PolicyEffect::none);
}

TEST_CASE("evaluate_policy: NotAction and NotResource", "[authorizers]") {
  json doc{{"Statement", {{"Effect", "Allow"}, {"NotAction", "s3:*"}, {"Resource", "*"}}}};
  CHECK(evaluate_policy(doc, arn_movie) == PolicyEffect::allow);
  doc = {{"Statement", {{"Effect", "Allow"}, {"NotAction", "execute-api:*"}, {"Resource", "*"}}}};
  CHECK(evaluate_policy(doc, arn_movie) == PolicyEffect::none);
  doc = {{"Statement",
          json::array({{{"Effect", "Allow"}, {"Action", "execute-api:Invoke"}, {"Resource", "*"}},
                       {{"Effect", "Deny"}, {"Action", "execute-api:Invoke"}, {"NotResource", arn_root}}})}};
  CHECK(evaluate_policy(doc, arn_movie) == PolicyEffect::deny);
  CHECK(evaluate_policy(doc, arn_root) == PolicyEffect::allow);
}

TEST_CASE("evaluate_policy: statements with a Condition are left out", "[authorizers]") {
  json doc = policy("Allow", "*");
  doc["Statement"][0]["Condition"] = {{"IpAddress", {{"aws:SourceIp", "10.0.0.0/8"}}}};
  CHECK(evaluate_policy(doc, arn_movie) == PolicyEffect::none);
}

TEST_CASE("evaluate_policy: malformed documents grant nothing and never throw", "[authorizers]") {
  const json bad[] = {
      nullptr,
      "a string",
      json::array(),
      json::object(),
      {{"Version", "2012-10-17"}},
      {{"Statement", "Allow"}},
      {{"Statement", json::array({1, 2})}},
      {{"Version", "2099-01-01"}, {"Statement", policy("Allow", "*")["Statement"]}},
      {{"Version", 2012}, {"Statement", policy("Allow", "*")["Statement"]}},
      policy("allow", "*"),  // Effect is case-sensitive in IAM
      policy("Permit", "*"),
      policy("Allow", 42),
      policy("Allow", json::array({"*", 1})),
      policy("Allow", "*", json::object()),
      {{"Statement", {{"Effect", "Allow"}, {"Resource", "*"}}}},  // no Action
      {{"Statement", {{"Effect", "Allow"}, {"Action", "*"}}}},    // no Resource
      {{"Statement", {{"Effect", "Allow"}, {"Action", "*"}, {"NotAction", "s3:*"}, {"Resource", "*"}}}},
      {{"Statement", {{"Action", "*"}, {"Resource", "*"}}}},  // no Effect
  };
  for (const auto& doc : bad) {
    INFO(doc.dump());
    PolicyEffect e = PolicyEffect::allow;
    REQUIRE_NOTHROW(e = evaluate_policy(doc, arn_movie));
    CHECK(e == PolicyEffect::none);
  }
}

// ---- identity sources --------------------------------------------------------------

TEST_CASE("identity: TOKEN reads one header, missing or empty means no identity", "[authorizers]") {
  Fixture f;
  auto auth = token_auth();
  CHECK(identity(auth, f.in) == std::optional<std::string>("Bearer abc.def"));

  auth.identity_sources = {"method.request.header.authorization"};  // header names are case-insensitive
  CHECK(identity(auth, f.in) == std::optional<std::string>("Bearer abc.def"));

  auth.identity_sources.clear();  // the default source is the Authorization header
  CHECK(identity(auth, f.in) == std::optional<std::string>("Bearer abc.def"));

  auth.identity_sources = {"method.request.header.X-Token"};
  CHECK_FALSE(identity(auth, f.in).has_value());
  auth.identity_sources = {"method.request.header.X-Empty"};
  CHECK_FALSE(identity(auth, f.in).has_value());

  Fixture no_header;
  no_header.req.headers.clear();
  CHECK_FALSE(identity(token_auth(), no_header.in).has_value());
}

TEST_CASE("identity: TOKEN identityValidationExpression must match the whole token", "[authorizers]") {
  Fixture f;
  CHECK(identity(token_auth("^Bearer [-0-9a-zA-Z\\._]*$"), f.in).has_value());
  CHECK(identity(token_auth("Bearer [a-z.]+"), f.in).has_value());
  CHECK_FALSE(identity(token_auth("Bearer"), f.in).has_value());  // a prefix is not enough
  CHECK_FALSE(identity(token_auth("abc"), f.in).has_value());      // nor a substring
  CHECK_FALSE(identity(token_auth("^x-[a-z]+"), f.in).has_value());
  f.req.headers[1].value = "x-abc";
  CHECK(identity(token_auth("^x-[a-z]+"), f.in) == std::optional<std::string>("x-abc"));
}

TEST_CASE("identity: validation of huge or pathological tokens neither crashes nor hangs", "[authorizers]") {
  Fixture f;
  // std::regex would recurse once per character here and overflow the stack.
  f.req.headers[1].value = "Bearer " + std::string(9000, 'a');
  CHECK(identity(token_auth("^Bearer ((a|b)|c)*$"), f.in).has_value());
  CHECK(identity(token_auth("Bearer .*"), f.in).has_value());
  // Longer than any request API Gateway accepts: refused without matching.
  f.req.headers[1].value = "Bearer " + std::string(200000, 'a');
  CHECK_FALSE(identity(token_auth("Bearer .*"), f.in).has_value());
  // Catastrophic backtracking is cut off and counts as a mismatch.
  f.req.headers[1].value = std::string(64, 'a');
  CHECK_FALSE(identity(token_auth("(a+)+b"), f.in).has_value());
  // An expression the loader would have refused: no identity, no throw.
  CHECK_FALSE(identity(token_auth("(unclosed"), f.in).has_value());
}

// The cache key of a set of identity values: the values as a JSON list.
std::optional<std::string> key_of(const std::vector<std::string>& values) { return nlohmann::json(values).dump(); }

TEST_CASE("identity: REST REQUEST needs every source, and keys on all their values", "[authorizers]") {
  Fixture f;
  auto auth = rest_request_auth({"method.request.header.Authorization", "method.request.querystring.token",
                                 "stageVariables.environment", "context.httpMethod"});
  CHECK(identity(auth, f.in) == key_of({"Bearer abc.def", "q1", "sandbox", "GET"}));

  // REST single-value maps keep the last value of a repeated name.
  CHECK(identity(rest_request_auth({"method.request.querystring.multi"}), f.in) == key_of({"2"}));
  CHECK(identity(rest_request_auth({"method.request.header.x-multi"}), f.in) == key_of({"two"}));
  CHECK(identity(rest_request_auth({"context.identity.sourceIp", "context.stage", "context.resourcePath"}), f.in) ==
        key_of({"127.0.0.1", "prod", "/movies/{id}"}));
  // Values holding a comma do not make two sets of values alike (one cache entry each).
  auto pair = rest_request_auth({"method.request.header.X-A", "method.request.header.X-B"});
  f.req.headers.push_back({"X-A", "p,q"});
  f.req.headers.push_back({"X-B", "r"});
  auto first = identity(pair, f.in);
  f.req.headers[f.req.headers.size() - 2].value = "p";
  f.req.headers.back().value = "q,r";
  CHECK(first != identity(pair, f.in));
  f.req.headers.resize(f.req.headers.size() - 2);

  for (const char* missing : {"method.request.header.Missing", "method.request.header.X-Empty",
                              "method.request.querystring.Token",  // query names are case-sensitive
                              "method.request.querystring.empty", "stageVariables.missing", "stageVariables.empty",
                              "context.noSuchVariable"}) {
    INFO(missing);
    auto a = rest_request_auth({"method.request.header.Authorization", missing});
    CHECK_FALSE(identity(a, f.in).has_value());
  }
  // No stage variables at all.
  f.in.stage_variables = nullptr;
  CHECK_FALSE(identity(rest_request_auth({"stageVariables.environment"}), f.in).has_value());
}

TEST_CASE("identity: HTTP API sources; without any there is nothing to check", "[authorizers]") {
  Fixture f(stack::ApiType::http);
  CHECK(identity(http_auth({"$request.header.authorization"}), f.in) == key_of({"Bearer abc.def"}));
  // Repeated headers and query values are joined, as HTTP APIs do.
  CHECK(identity(http_auth({"$request.header.X-MULTI"}), f.in) == key_of({"one,two"}));
  CHECK(identity(http_auth({"$request.querystring.multi"}), f.in) == key_of({"1,2"}));
  CHECK(identity(http_auth({"$request.header.Authorization", "$context.routeKey", "$stageVariables.environment"}),
                 f.in) == key_of({"Bearer abc.def", "GET /movies/{id}", "sandbox"}));
  CHECK_FALSE(identity(http_auth({"$request.header.Missing"}), f.in).has_value());
  CHECK_FALSE(identity(http_auth({"$request.querystring.empty"}), f.in).has_value());
  CHECK_FALSE(identity(http_auth({"$stageVariables.empty"}), f.in).has_value());
  // No identity sources: no 401, no caching: the identity is empty, not absent.
  CHECK(identity(http_auth({}), f.in) == std::optional<std::string>(""));
}

TEST_CASE("identity: JWT authorizers key on the token header", "[authorizers]") {
  Fixture f(stack::ApiType::http);
  stack::AuthorizerSpec a;
  a.type = stack::AuthorizerType::jwt;
  a.identity_sources = {"$request.header.Authorization"};
  CHECK(identity(a, f.in) == std::optional<std::string>("Bearer abc.def"));
  a.identity_sources = {"$request.querystring.token"};
  CHECK(identity(a, f.in) == std::optional<std::string>("q1"));
  a.identity_sources = {"$request.header.X-Token"};
  CHECK_FALSE(identity(a, f.in).has_value());
}

// ---- events ----------------------------------------------------------------------

TEST_CASE("authorizer_event: REST TOKEN", "[authorizers]") {
  Fixture f;
  json ev = json::parse(authorizer_event(token_auth(), f.in));
  CHECK(ev == json{{"type", "TOKEN"}, {"authorizationToken", "Bearer abc.def"}, {"methodArn", arn_movie}});
}

TEST_CASE("authorizer_event: REST REQUEST", "[authorizers]") {
  Fixture f;
  json ev = json::parse(authorizer_event(rest_request_auth({"method.request.header.Authorization"}), f.in));
  CHECK(ev["type"] == "REQUEST");
  CHECK(ev["methodArn"] == arn_movie);
  CHECK(ev["resource"] == "/movies/{id}");
  CHECK(ev["path"] == "/movies/12");
  CHECK(ev["httpMethod"] == "GET");
  CHECK_FALSE(ev.contains("version"));
  CHECK_FALSE(ev.contains("body"));
  CHECK(ev["headers"]["Authorization"] == "Bearer abc.def");
  CHECK(ev["headers"]["X-Multi"] == "two");  // last value, first spelling
  CHECK(ev["multiValueHeaders"]["X-Multi"] == json::array({"one", "two"}));
  CHECK(ev["headers"]["Cookie"] == "c1=a; c2=b");
  CHECK(ev["queryStringParameters"] == json{{"token", "q1"}, {"multi", "2"}, {"empty", ""}});
  CHECK(ev["multiValueQueryStringParameters"]["multi"] == json::array({"1", "2"}));
  CHECK(ev["pathParameters"] == json{{"id", "12"}});
  CHECK(ev["stageVariables"] == json{{"environment", "sandbox"}, {"empty", ""}});

  const json& rc = ev["requestContext"];
  CHECK(rc["resourcePath"] == "/movies/{id}");
  CHECK(rc["httpMethod"] == "GET");
  CHECK(rc["path"] == "/prod/movies/12");
  CHECK(rc["accountId"] == "123456789012");
  CHECK(rc["apiId"] == "abc123defg");
  CHECK(rc["stage"] == "prod");
  CHECK(rc["protocol"] == "HTTP/1.1");
  CHECK(rc["requestId"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef");
  CHECK(rc["requestTime"] == "04/Mar/2020:19:15:17 +0000");
  CHECK(rc["requestTimeEpoch"] == 1583349317135);
  CHECK(rc["domainName"] == "127.0.0.1:3000");
  CHECK(rc["domainPrefix"] == "127");
  CHECK(rc["identity"]["sourceIp"] == "127.0.0.1");
  CHECK(rc["identity"]["userAgent"] == "curl/8.0");
  CHECK(rc["identity"]["user"].is_null());
  CHECK(rc["resourceId"].get<std::string>().size() == 6);
  CHECK(rc["deploymentId"].get<std::string>().size() == 6);
  CHECK(rc["extendedRequestId"].is_string());
  CHECK_FALSE(rc.contains("authorizer"));

  // Empty maps are {} in authorizer events (captured REST events), not null.
  Fixture bare;
  bare.req.raw_query.clear();
  bare.match.path_parameters.clear();
  bare.in.stage_variables = nullptr;
  json e2 = json::parse(authorizer_event(rest_request_auth({}), bare.in));
  CHECK(e2["queryStringParameters"] == json::object());
  CHECK(e2["multiValueQueryStringParameters"] == json::object());
  CHECK(e2["pathParameters"] == json::object());
  CHECK(e2["stageVariables"] == json::object());
}

TEST_CASE("authorizer_event: REST REQUEST ids agree with the proxy event of the same request", "[authorizers]") {
  Fixture f;
  json auth_ev = json::parse(authorizer_event(rest_request_auth({}), f.in));
  EventInput ein;
  ein.request = &f.req;
  ein.api = &f.api;
  ein.match = &f.match;
  ein.stage = f.in.stage;
  ein.stage_variables = f.in.stage_variables;
  ein.request_id = f.in.request_id;
  ein.account_id = f.in.account_id;
  ein.region = f.in.region;
  ein.time = f.in.time;
  ein.domain_name = f.in.domain_name;
  json proxy = json::parse(rest_event(ein));
  for (const char* key : {"resourceId", "deploymentId", "resourcePath", "path", "domainPrefix", "apiId", "stage"}) {
    INFO(key);
    CHECK(auth_ev["requestContext"][key] == proxy["requestContext"][key]);
  }
}

TEST_CASE("authorizer_event: HTTP API payload 2.0", "[authorizers]") {
  Fixture f(stack::ApiType::http);
  f.in.method_arn = "arn:aws:execute-api:eu-west-3:123456789012:abc123defg/prod/GET/movies/12";
  json ev = json::parse(
      authorizer_event(http_auth({"$request.header.Authorization", "$request.querystring.multi"}), f.in));
  CHECK(ev["version"] == "2.0");
  CHECK(ev["type"] == "REQUEST");
  CHECK(ev["routeArn"] == f.in.method_arn);
  CHECK(ev["identitySource"] == json::array({"Bearer abc.def", "1,2"}));
  CHECK(ev["routeKey"] == "GET /movies/{id}");
  CHECK(ev["rawPath"] == "/prod/movies/12");
  CHECK(ev["rawQueryString"] == "token=q1&multi=1&multi=2&empty=");
  CHECK(ev["cookies"] == json::array({"c1=a", "c2=b"}));
  CHECK(ev["headers"]["authorization"] == "Bearer abc.def");
  CHECK(ev["headers"]["x-multi"] == "one,two");
  CHECK_FALSE(ev["headers"].contains("cookie"));
  CHECK_FALSE(ev["headers"].contains("Authorization"));
  CHECK(ev["queryStringParameters"] == json{{"token", "q1"}, {"multi", "1,2"}, {"empty", ""}});
  CHECK(ev["pathParameters"] == json{{"id", "12"}});
  CHECK(ev["stageVariables"] == json{{"environment", "sandbox"}, {"empty", ""}});
  const json& rc = ev["requestContext"];
  CHECK(rc["accountId"] == "123456789012");
  CHECK(rc["apiId"] == "abc123defg");
  CHECK(rc["http"] == json{{"method", "GET"},
                           {"path", "/prod/movies/12"},
                           {"protocol", "HTTP/1.1"},
                           {"sourceIp", "127.0.0.1"},
                           {"userAgent", "curl/8.0"}});
  CHECK(rc["routeKey"] == "GET /movies/{id}");
  CHECK(rc["stage"] == "prod");
  CHECK(rc["time"] == "04/Mar/2020:19:15:17 +0000");
  CHECK(rc["timeEpoch"] == 1583349317135);
  CHECK_FALSE(ev.contains("body"));

  // Absent parts are left out (captured HTTP API authorizer event).
  Fixture bare(stack::ApiType::http);
  bare.req.raw_query.clear();
  bare.req.headers = {{"Host", "localhost"}};
  bare.match.path_parameters.clear();
  bare.in.stage_variables = nullptr;
  json e2 = json::parse(authorizer_event(http_auth({}), bare.in));
  CHECK(e2["rawQueryString"] == "");
  for (const char* absent : {"cookies", "queryStringParameters", "pathParameters", "stageVariables", "identitySource"}) {
    INFO(absent);
    CHECK_FALSE(e2.contains(absent));
  }
}

TEST_CASE("authorizer_event: HTTP API payload 1.0", "[authorizers]") {
  Fixture f(stack::ApiType::http);
  json ev = json::parse(
      authorizer_event(http_auth({"$request.header.Authorization", "$request.querystring.token"}, "1.0"), f.in));
  CHECK(ev["version"] == "1.0");
  CHECK(ev["type"] == "REQUEST");
  CHECK(ev["methodArn"] == arn_movie);
  CHECK(ev["identitySource"] == "Bearer abc.def,q1");
  CHECK(ev["authorizationToken"] == "Bearer abc.def,q1");
  CHECK(ev["resource"] == "/movies/{id}");
  CHECK(ev["path"] == "/movies/12");
  CHECK(ev["httpMethod"] == "GET");
  CHECK(ev["headers"]["Authorization"] == "Bearer abc.def");
  CHECK(ev["multiValueQueryStringParameters"]["multi"] == json::array({"1", "2"}));
  CHECK(ev["requestContext"]["resourceId"] == "GET /movies/{id}");
  CHECK(ev["requestContext"]["stage"] == "prod");
}

TEST_CASE("authorizer_event and identity tolerate an AuthInput without request or match", "[authorizers]") {
  AuthInput in;
  for (const auto& auth : {token_auth(), rest_request_auth({"method.request.header.A"}), http_auth({})}) {
    REQUIRE_NOTHROW(identity(auth, in));
    std::string ev;
    REQUIRE_NOTHROW(ev = authorizer_event(auth, in));
    CHECK(json::accept(ev));
  }
}

// ---- authorizer answers ----------------------------------------------------------

TEST_CASE("interpret: REST Allow puts principalId and stringified context in the authorizer object", "[authorizers]") {
  auto api = rest_api();
  auto auth = token_auth();
  json ctx{{"user", "alice"}, {"n", 1}, {"ratio", 1.5}, {"big", 12345678901234LL}, {"ok", true}, {"no", false}, {"nil", nullptr}};
  json out{{"principalId", "user-1"}, {"policyDocument", policy("Allow", arn_movie)}, {"context", ctx},
           {"usageIdentifierKey", "0123456789abcdefghij"}};
  auto d = interpret_authorizer_output(api, auth, out.dump(), false, arn_movie);
  REQUIRE(d.kind == AuthDecision::allow);
  CHECK(d.context == json{{"principalId", "user-1"}, {"user", "alice"}, {"n", "1"}, {"ratio", "1.5"},
                          {"big", "12345678901234"}, {"ok", "true"}, {"no", "false"}});
  CHECK(d.usage_identifier_key == "0123456789abcdefghij");
}

TEST_CASE("interpret: REST Deny, implicit deny and a policy for another path", "[authorizers]") {
  auto api = rest_api();
  auto auth = token_auth();
  CHECK(interpret_authorizer_output(api, auth, output(policy("Deny", arn_movie)), false, arn_movie).kind ==
        AuthDecision::denied_explicit);
  CHECK(interpret_authorizer_output(api, auth, output(policy("Allow", arn_root)), false, arn_movie).kind ==
        AuthDecision::denied);
  CHECK(interpret_authorizer_output(api, auth, output(policy("Allow", arn_root)), false, arn_root).kind ==
        AuthDecision::allow);
}

TEST_CASE("interpret: an error \"Unauthorized\" is 401, any other failure is 500", "[authorizers]") {
  auto api = rest_api();
  auto auth = token_auth();
  auto unauthorized = interpret_authorizer_output(
      api, auth, R"({"errorMessage":"Unauthorized","errorType":"Error","stackTrace":[]})", true, arn_movie);
  CHECK(unauthorized.kind == AuthDecision::unauthorized);
  for (const char* payload : {R"({"errorMessage":"unauthorized","errorType":"Error"})",
                              R"({"errorMessage":"Unauthorized ","errorType":"Error"})",
                              R"({"errorMessage":"Forbidden","errorType":"Error"})",
                              R"({"errorType":"Sandbox.Timedout"})", "Unauthorized", ""}) {
    INFO(payload);
    auto d = interpret_authorizer_output(api, auth, payload, true, arn_movie);
    CHECK(d.kind == AuthDecision::failure);
    CHECK_FALSE(d.problem.empty());
  }
  // The same for HTTP APIs.
  auto http = http_api();
  CHECK(interpret_authorizer_output(http, http_auth({}, "2.0", true), R"({"errorMessage":"Unauthorized"})", true,
                                    arn_movie)
            .kind == AuthDecision::unauthorized);
}

TEST_CASE("interpret: REST answers that are not a valid authorizer response are failures", "[authorizers]") {
  auto api = rest_api();
  auto auth = rest_request_auth({});
  json good{{"principalId", "u"}, {"policyDocument", policy("Allow", "*")}};
  auto without = [&](const char* key) {
    json j = good;
    j.erase(key);
    return j.dump();
  };
  auto with = [&](const char* key, const json& v) {
    json j = good;
    j[key] = v;
    return j.dump();
  };
  const std::string bad[] = {
      "not json", "", "[]", "\"Allow\"", "null", without("principalId"), without("policyDocument"),
      with("principalId", nullptr), with("principalId", json::object()), with("policyDocument", "Allow"),
      with("policyDocument", policy("allow", "*")), with("context", json{{"nested", {{"a", 1}}}}),
      with("context", json{{"list", {1, 2}}}), with("context", "a string"),
      R"({"principalId":"u","policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]})",  // truncated
  };
  for (const auto& payload : bad) {
    INFO(payload);
    AuthDecision d;
    REQUIRE_NOTHROW(d = interpret_authorizer_output(api, auth, payload, false, arn_movie));
    CHECK(d.kind == AuthDecision::failure);
    CHECK_FALSE(d.problem.empty());
  }
  CHECK(interpret_authorizer_output(api, auth, good.dump(), false, arn_movie).kind == AuthDecision::allow);
  // A numeric principalId is taken as its text.
  auto d = interpret_authorizer_output(api, auth, with("principalId", 42), false, arn_movie);
  CHECK(d.kind == AuthDecision::allow);
  CHECK(d.context["principalId"] == "42");
}

TEST_CASE("interpret: HTTP simple responses", "[authorizers]") {
  auto api = http_api();
  auto auth = http_auth({"$request.header.Authorization"}, "2.0", true);
  json ctx{{"stringKey", "value"}, {"numberKey", 1}, {"booleanKey", true},
           {"arrayKey", {"value1", "value2"}}, {"mapKey", {{"value1", "value2"}}}};
  auto d = interpret_authorizer_output(api, auth, json{{"isAuthorized", true}, {"context", ctx}}.dump(), false,
                                       arn_movie);
  REQUIRE(d.kind == AuthDecision::allow);
  CHECK(d.context == json{{"lambda", ctx}});  // JSON types kept

  d = interpret_authorizer_output(api, auth, R"({"isAuthorized":false,"context":{"why":"no"}})", false, arn_movie);
  CHECK(d.kind == AuthDecision::denied);

  d = interpret_authorizer_output(api, auth, R"({"isAuthorized":true})", false, arn_movie);
  CHECK(d.kind == AuthDecision::allow);
  CHECK(d.context == json{{"lambda", nullptr}});

  for (const char* payload : {R"({"isAuthorized":"true"})", R"({"isAuthorized":1})", R"({})", R"([true])",
                              R"({"isAuthorized":true,"context":[1]})", "true", "garbage"}) {
    INFO(payload);
    CHECK(interpret_authorizer_output(api, auth, payload, false, arn_movie).kind == AuthDecision::failure);
  }
}

TEST_CASE("interpret: HTTP IAM policy responses (payload 1.0, or 2.0 without simple responses)", "[authorizers]") {
  auto api = http_api();
  for (const char* format : {"1.0", "2.0"}) {
    INFO(format);
    auto auth = http_auth({"$request.header.Authorization"}, format, false);
    json ctx{{"tenant", {{"id", 7}}}, {"n", 1}};
    auto d = interpret_authorizer_output(api, auth, output(policy("Allow", arn_movie), ctx), false, arn_movie);
    REQUIRE(d.kind == AuthDecision::allow);
    CHECK(d.context == json{{"lambda", ctx}});
    CHECK(interpret_authorizer_output(api, auth, output(policy("Deny", "*")), false, arn_movie).kind ==
          AuthDecision::denied_explicit);
    CHECK(interpret_authorizer_output(api, auth, output(policy("Allow", arn_root)), false, arn_movie).kind ==
          AuthDecision::denied);
    // isAuthorized means nothing without simple responses.
    CHECK(interpret_authorizer_output(api, auth, R"({"isAuthorized":true})", false, arn_movie).kind ==
          AuthDecision::failure);
  }
}

// ---- cache --------------------------------------------------------------------------

TEST_CASE("AuthorizerCache: per authorizer and identity, for ttl seconds", "[authorizers]") {
  using namespace std::chrono_literals;
  AuthorizerCache cache;
  const auto t0 = std::chrono::steady_clock::time_point(1000s);
  cache.put("tok", "alice", {"allow-alice", false}, 300, t0);
  cache.put("tok", "bob", {R"({"errorMessage":"Unauthorized"})", true}, 300, t0);

  auto hit = cache.get("tok", "alice", t0 + 299s);
  REQUIRE(hit);
  CHECK(hit->payload == "allow-alice");
  CHECK_FALSE(hit->function_error);
  auto bob = cache.get("tok", "bob", t0 + 10s);
  REQUIRE(bob);
  CHECK(bob->function_error);

  CHECK_FALSE(cache.get("tok", "alice", t0 + 300s));  // expired exactly at ttl
  CHECK_FALSE(cache.get("other", "alice", t0));       // another authorizer
  CHECK_FALSE(cache.get("tok", "carol", t0));

  cache.put("tok", "alice", {"again", false}, 60, t0 + 400s);  // re-stored after expiry
  CHECK(cache.get("tok", "alice", t0 + 459s)->payload == "again");
  CHECK_FALSE(cache.get("tok", "alice", t0 + 460s));

  cache.put("tok", "dave", {"never", false}, 0, t0);  // ttl 0 disables caching
  CHECK_FALSE(cache.get("tok", "dave", t0));

  cache.clear();
  CHECK_FALSE(cache.get("tok", "bob", t0));
}

TEST_CASE("AuthorizerCache: a cached policy is re-evaluated against each request's ARN", "[authorizers]") {
  using namespace std::chrono_literals;
  auto api = rest_api();
  auto auth = token_auth();
  AuthorizerCache cache;
  const auto t0 = std::chrono::steady_clock::time_point(5s);
  cache.put(auth.name, "Bearer abc", {output(policy("Allow", arn_root)), false}, auth.ttl_s, t0);
  auto e = cache.get(auth.name, "Bearer abc", t0 + 1s);
  REQUIRE(e);
  CHECK(interpret_authorizer_output(api, auth, e->payload, e->function_error, arn_root).kind == AuthDecision::allow);
  CHECK(interpret_authorizer_output(api, auth, e->payload, e->function_error, arn_movie).kind == AuthDecision::denied);
}

TEST_CASE("AuthorizerCache: many distinct identities do not grow it without bound", "[authorizers]") {
  using namespace std::chrono_literals;
  AuthorizerCache cache;
  const auto t0 = std::chrono::steady_clock::time_point(1s);
  for (int i = 0; i < 40000; ++i) cache.put("tok", "id-" + std::to_string(i), {"p", false}, 3600, t0);
  // The most recent entry is always there.
  CHECK(cache.get("tok", "id-39999", t0));
}
