// sluice/gateway/payloads.hpp: the events functions receive and the mapping of
// what they return, checked against what AWS recorded (LocalStack's AWS-validated
// snapshots in shared/vectors/aws-recorded, embedded below) and real events.
#include "sluice/gateway/payloads.hpp"

#include "sluice/common/util.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <random>
#include <regex>
#include <set>

using namespace sluice;
using namespace sluice::gateway;
using json = nlohmann::json;

namespace {

// test_apigateway_lambda.snapshot.json, test_lambda_aws_proxy_integration,
// "invocation-payload-without-trailing-slash" (recorded 02-08-2024).
constexpr const char* recorded_get = R"({"body":null,"headers":{"Accept":"*/*","Accept-Encoding":"gzip, deflate","Authorization":"random-value","CloudFront-Forwarded-Proto":"https","CloudFront-Is-Desktop-Viewer":"true","CloudFront-Is-Mobile-Viewer":"false","CloudFront-Is-SmartTV-Viewer":"false","CloudFront-Is-Tablet-Viewer":"false","CloudFront-Viewer-ASN":"<cloudfront-asn:1>","CloudFront-Viewer-Country":"<cloudfront-country:1>","Host":"<host:1>","User-Agent":"python-requests/testing","Via":"<via:1>","X-Amz-Cf-Id":"<cf-id:1>","X-Amzn-Trace-Id":"<trace-id:1>","X-Forwarded-For":"<X-Forwarded-For>","X-Forwarded-Port":"<X-Forwarded-Port>","X-Forwarded-Proto":"<X-Forwarded-Proto>","tEsT-HEADeR":"aValUE"},"httpMethod":"GET","isBase64Encoded":false,"multiValueHeaders":{"Accept":["*/*"],"Accept-Encoding":["gzip, deflate"],"Authorization":["random-value"],"CloudFront-Forwarded-Proto":["https"],"CloudFront-Is-Desktop-Viewer":["true"],"CloudFront-Is-Mobile-Viewer":["false"],"CloudFront-Is-SmartTV-Viewer":["false"],"CloudFront-Is-Tablet-Viewer":["false"],"CloudFront-Viewer-ASN":["<cloudfront-asn:1>"],"CloudFront-Viewer-Country":["<cloudfront-country:1>"],"Host":["<host:1>"],"User-Agent":["python-requests/testing"],"Via":["<via:1>"],"X-Amz-Cf-Id":["<cf-id:1>"],"X-Amzn-Trace-Id":["<trace-id:1>"],"X-Forwarded-For":"<X-Forwarded-For>","X-Forwarded-Port":"<X-Forwarded-Port>","X-Forwarded-Proto":"<X-Forwarded-Proto>","tEsT-HEADeR":["aValUE"]},"multiValueQueryStringParameters":null,"path":"/proxy-value","pathParameters":{"proxy":"proxy-value"},"queryStringParameters":null,"requestContext":{"accountId":"111111111111","apiId":"<api-id>","deploymentId":"<deployment-id:1>","domainName":"<host:1>","domainPrefix":"<api-id>","extendedRequestId":"<extended-request-id:1>","httpMethod":"GET","identity":{"accessKey":null,"accountId":null,"caller":null,"cognitoAuthenticationProvider":null,"cognitoAuthenticationType":null,"cognitoIdentityId":null,"cognitoIdentityPoolId":null,"principalOrgId":null,"sourceIp":"<source-ip:1>","user":null,"userAgent":"python-requests/testing","userArn":null},"path":"/stage/proxy-value","protocol":"HTTP/1.1","requestId":"<uuid:1>","requestTime":"<request-time>","requestTimeEpoch":"<request-time-epoch>","resourceId":"<resource-id:1>","resourcePath":"/{proxy+}","stage":"stage"},"resource":"/{proxy+}","stageVariables":null})";

// Same test, "invocation-payload-with-params-encoding-multi": POST with a JSON
// body, "aUThorization", repeated query keys. The echo function parsed the body.
constexpr const char* recorded_post = R"({"body":{"message":"hello world"},"headers":{"Accept":"*/*","Accept-Encoding":"gzip, deflate","Authorization":"Bearer token123;API key456","CloudFront-Forwarded-Proto":"https","CloudFront-Is-Desktop-Viewer":"true","CloudFront-Is-Mobile-Viewer":"false","CloudFront-Is-SmartTV-Viewer":"false","CloudFront-Is-Tablet-Viewer":"false","CloudFront-Viewer-ASN":"<cloudfront-asn:1>","CloudFront-Viewer-Country":"<cloudfront-country:1>","Content-Type":"application/json;charset=utf-8","Host":"<host:1>","User-Agent":"python-requests/testing","Via":"<via:10>","X-Amz-Cf-Id":"<cf-id:10>","X-Amzn-Trace-Id":"<trace-id:10>","X-Forwarded-For":"<X-Forwarded-For>","X-Forwarded-Port":"<X-Forwarded-Port>","X-Forwarded-Proto":"<X-Forwarded-Proto>"},"httpMethod":"POST","isBase64Encoded":false,"multiValueHeaders":{"Accept":["*/*"],"Accept-Encoding":["gzip, deflate"],"Authorization":["Bearer token123;API key456"],"CloudFront-Forwarded-Proto":["https"],"CloudFront-Is-Desktop-Viewer":["true"],"CloudFront-Is-Mobile-Viewer":["false"],"CloudFront-Is-SmartTV-Viewer":["false"],"CloudFront-Is-Tablet-Viewer":["false"],"CloudFront-Viewer-ASN":["<cloudfront-asn:1>"],"CloudFront-Viewer-Country":["<cloudfront-country:1>"],"Content-Type":["application/json;charset=utf-8"],"Host":["<host:1>"],"User-Agent":["python-requests/testing"],"Via":["<via:10>"],"X-Amz-Cf-Id":["<cf-id:10>"],"X-Amzn-Trace-Id":["<trace-id:10>"],"X-Forwarded-For":"<X-Forwarded-For>","X-Forwarded-Port":"<X-Forwarded-Port>","X-Forwarded-Proto":"<X-Forwarded-Proto>"},"multiValueQueryStringParameters":{"category":["electronics","books"],"price":["10","20","30"]},"path":"/proxy-value","pathParameters":{"proxy":"proxy-value"},"queryStringParameters":{"category":"books","price":"30"},"requestContext":{"accountId":"111111111111","apiId":"<api-id>","deploymentId":"<deployment-id:1>","domainName":"<host:1>","domainPrefix":"<api-id>","extendedRequestId":"<extended-request-id:10>","httpMethod":"POST","identity":{"accessKey":null,"accountId":null,"caller":null,"cognitoAuthenticationProvider":null,"cognitoAuthenticationType":null,"cognitoIdentityId":null,"cognitoIdentityPoolId":null,"principalOrgId":null,"sourceIp":"<source-ip:1>","user":null,"userAgent":"python-requests/testing","userArn":null},"path":"/stage/proxy-value","protocol":"HTTP/1.1","requestId":"<uuid:10>","requestTime":"<request-time>","requestTimeEpoch":"<request-time-epoch>","resourceId":"<resource-id:1>","resourcePath":"/{proxy+}","stage":"stage"},"resource":"/{proxy+}","stageVariables":null})";

bool placeholder(const json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  return s.size() >= 2 && s.front() == '<' && s.back() == '>';
}

// Headers CloudFront adds in front of edge-optimized APIs; sluice is a regional endpoint.
bool edge_only(const std::string& name) { return starts_with(name, "CloudFront-") || name == "Via" || name == "X-Amz-Cf-Id"; }

json without_edge_headers(json rec) {
  for (const char* k : {"headers", "multiValueHeaders"}) {
    json kept = json::object();
    for (auto& [name, v] : rec[k].items())
      if (!edge_only(name)) kept[name] = v;
    rec[k] = kept;
  }
  return rec;
}

// Same keys everywhere, same values except AWS's redacted placeholders (present, not null).
void expect_like_recorded(const json& rec, const json& ours, const std::string& where) {
  INFO("at " << where);
  if (placeholder(rec)) {
    CHECK_FALSE(ours.is_null());
    return;
  }
  if (rec.is_object()) {
    REQUIRE(ours.is_object());
    std::set<std::string> rk, ok;
    for (auto& [k, v] : rec.items()) rk.insert(k);
    for (auto& [k, v] : ours.items()) ok.insert(k);
    CHECK(rk == ok);
    for (auto& [k, v] : rec.items())
      if (ours.contains(k)) expect_like_recorded(v, ours.at(k), where + "." + k);
    return;
  }
  if (rec.is_array()) {
    REQUIRE(ours.is_array());
    REQUIRE(ours.size() == rec.size());
    for (std::size_t i = 0; i < rec.size(); ++i) expect_like_recorded(rec[i], ours[i], where + "[" + std::to_string(i) + "]");
    return;
  }
  CHECK(ours == rec);
}

const auto fixed_time = wall_clock::time_point(std::chrono::milliseconds(1583349317135));

struct Fixture {
  stack::ApiSpec api;
  Request req;
  RouteMatch match;
  std::map<std::string, std::string> stage_vars;
  EventInput in;

  explicit Fixture(stack::ApiType type = stack::ApiType::rest) {
    api.name = "store";
    api.type = type;
    api.api_id = "a1b2c3d4e5";
    req.method = "GET";
    req.source_ip = "127.0.0.1";
    in.request = &req;
    in.api = &api;
    in.match = &match;
    in.stage = "stage";
    in.request_id = "8476a536-e9f4-41e8-9739-2dfe598c3fcd";
    in.extended_request_id = "Xe3kFHw5oAMEbPQ=";
    in.account_id = "111111111111";
    in.region = "us-east-1";
    in.time = fixed_time;
    in.domain_name = "127.0.0.1:3000";
    in.domain_prefix = "127";
    in.trace_id = "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e";
  }
  void route(const std::string& key) {
    stack::RouteSpec r;
    r.key = key;
    auto sp = key.find(' ');
    r.method = key.substr(0, sp);
    r.path = key.substr(sp + 1);
    api.routes.push_back(r);
  }
  // Routes req.path the way the server will.
  void resolve() {
    Router router(api);
    match = router.match(req.method, req.path);
  }
  json rest() { return json::parse(rest_event(in)); }
  json v1() { return json::parse(http_v1_event(in)); }
  json v2() { return json::parse(http_v2_event(in)); }
};

Fixture recorded_request(const std::string& raw_path, const std::string& decoded_path) {
  Fixture f;
  f.route("ANY /{proxy+}");
  f.route("GET /hardcoded");
  f.req.raw_path = raw_path;
  f.req.path = decoded_path;
  f.req.headers = {{"Host", "127.0.0.1:3000"},
                   {"User-Agent", "python-requests/testing"},
                   {"Accept-Encoding", "gzip, deflate"},
                   {"Accept", "*/*"},
                   {"Connection", "keep-alive"},
                   {"tEsT-HEADeR", "aValUE"},
                   {"authorization", "random-value"}};
  f.resolve();
  return f;
}

// All values of a response header joined as an HTTP client shows them.
std::string joined(const Response& r, std::string_view name) {
  std::string out;
  for (const auto& h : r.headers)
    if (iequals(h.name, name)) out += (out.empty() ? "" : ", ") + h.value;
  return out;
}
int count(const Response& r, std::string_view name) {
  int n = 0;
  for (const auto& h : r.headers) n += iequals(h.name, name) ? 1 : 0;
  return n;
}

Request accepting(const char* accept) {
  Request r;
  r.method = "POST";
  if (accept) r.headers.push_back({"Accept", accept});
  return r;
}

const std::string png_b64 =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mP8/wIAAgkBAyMAlYwAAAAASUVORK5CYII=";

}  // namespace

// ---- REST events -----------------------------------------------------------

TEST_CASE("REST event reproduces the recorded GET event key by key", "[payloads][rest][aws-recorded]") {
  auto f = recorded_request("/stage/proxy-value", "/proxy-value");
  REQUIRE(f.match.route);
  json ours = f.rest();
  expect_like_recorded(without_edge_headers(json::parse(recorded_get)), ours, "event");

  // The values the recording redacted, as sluice fills them.
  CHECK(ours["headers"]["Host"] == "127.0.0.1:3000");
  CHECK(ours["headers"]["X-Forwarded-For"] == "127.0.0.1");
  CHECK(ours["headers"]["X-Forwarded-Port"] == "3000");
  CHECK(ours["headers"]["X-Forwarded-Proto"] == "http");
  CHECK(ours["headers"]["X-Amzn-Trace-Id"] == f.in.trace_id);
  CHECK(ours["multiValueHeaders"]["X-Forwarded-For"] == json::array({"127.0.0.1"}));
  CHECK(ours["multiValueHeaders"]["X-Forwarded-Port"] == json::array({"3000"}));
  CHECK(ours["multiValueHeaders"]["X-Forwarded-Proto"] == json::array({"http"}));
  CHECK(ours["multiValueHeaders"]["X-Amzn-Trace-Id"] == json::array({f.in.trace_id}));
  const auto& rc = ours["requestContext"];
  CHECK(rc["apiId"] == "a1b2c3d4e5");
  CHECK(rc["domainName"] == "127.0.0.1:3000");
  CHECK(rc["domainPrefix"] == "127");
  CHECK(rc["extendedRequestId"] == "Xe3kFHw5oAMEbPQ=");
  CHECK(rc["requestId"] == f.in.request_id);
  CHECK(rc["requestTime"] == "04/Mar/2020:19:15:17 +0000");
  CHECK(rc["requestTimeEpoch"] == 1583349317135);
  CHECK(rc["identity"]["sourceIp"] == "127.0.0.1");
  REQUIRE(rc["deploymentId"].is_string());
  REQUIRE(rc["resourceId"].is_string());
  CHECK(std::regex_match(rc["deploymentId"].get<std::string>(), std::regex("[a-z0-9]{6}")));
  CHECK(std::regex_match(rc["resourceId"].get<std::string>(), std::regex("[a-z0-9]{6}")));
  // Stable fakes: same API, stage and resource => same ids.
  json again = f.rest();
  CHECK(again["requestContext"]["deploymentId"] == rc["deploymentId"]);
  CHECK(again["requestContext"]["resourceId"] == rc["resourceId"]);
}

TEST_CASE("REST event reproduces the recorded POST with body and repeated query keys", "[payloads][rest][aws-recorded]") {
  auto f = recorded_request("/stage/proxy-value", "/proxy-value");
  f.req.method = "POST";
  f.req.headers = {{"Host", "127.0.0.1:3000"},
                   {"User-Agent", "python-requests/testing"},
                   {"Accept-Encoding", "gzip, deflate"},
                   {"Accept", "*/*"},
                   {"Connection", "keep-alive"},
                   {"Content-Type", "application/json;charset=utf-8"},
                   {"aUThorization", "Bearer token123;API key456"},
                   {"Content-Length", "26"}};
  f.req.raw_query = "category=electronics&category=books&price=10&price=20&price=30";
  f.req.body = R"({"message": "hello world"})";
  f.resolve();
  json ours = f.rest();
  json rec = without_edge_headers(json::parse(recorded_post));
  // The recorded function echoed the parsed body; compare it parsed.
  REQUIRE(ours["body"].is_string());
  CHECK(json::parse(ours["body"].get<std::string>()) == rec["body"]);
  rec["body"] = ours["body"];
  expect_like_recorded(rec, ours, "event");
  CHECK_FALSE(ours["headers"].contains("Content-Length"));
  CHECK_FALSE(ours["headers"].contains("Connection"));
}

TEST_CASE("REST event paths as recorded: trailing, double and prepended slashes", "[payloads][rest][aws-recorded]") {
  struct Row {
    const char* raw;
    const char* decoded;
    const char* path;
    const char* rc_path;
    const char* proxy;  // nullptr: pathParameters null
    const char* resource;
  } rows[] = {
      {"/stage/proxy-value/", "/proxy-value/", "/proxy-value/", "/stage/proxy-value/", "proxy-value", "/{proxy+}"},
      {"/stage/proxy-value//double-slash", "/proxy-value//double-slash", "/proxy-value//double-slash",
       "/stage/proxy-value//double-slash", "proxy-value//double-slash", "/{proxy+}"},
      {"//stage/proxy-value", "/proxy-value", "/proxy-value", "/stage/proxy-value", "proxy-value", "/{proxy+}"},
      {"/stage//proxy-value", "//proxy-value", "/proxy-value", "/stage//proxy-value", "proxy-value", "/{proxy+}"},
      {"/stage//hardcoded", "//hardcoded", "/hardcoded", "/stage//hardcoded", nullptr, "/hardcoded"},
      // Percent-encoding stays in path and pathParameters (invocation-payload-with-path-encoded-email).
      {"/stage/proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com",
       "/proxy-value/api/user/test+alias@gmail.com/plus/test+alias@gmail.com",
       "/proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com",
       "/stage/proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com",
       "proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com", "/{proxy+}"},
  };
  for (const auto& row : rows) {
    INFO(row.raw);
    auto f = recorded_request(row.raw, row.decoded);
    REQUIRE(f.match.route);
    json ev = f.rest();
    CHECK(ev["path"] == row.path);
    CHECK(ev["requestContext"]["path"] == row.rc_path);
    CHECK(ev["resource"] == row.resource);
    CHECK(ev["requestContext"]["resourcePath"] == row.resource);
    if (row.proxy) CHECK(ev["pathParameters"] == json{{"proxy", row.proxy}});
    else CHECK(ev["pathParameters"].is_null());
  }
}

TEST_CASE("REST event query strings decode '+' and %XX as recorded", "[payloads][rest][aws-recorded]") {
  // invocation-payload-with-params-encoding (the client dropped "#..." itself).
  auto f = recorded_request("/stage/proxy-value/api", "/proxy-value/api");
  f.req.raw_query =
      "dateTimeOffset=2023-06-12T18:05:10.123456+00:00&email=test%2Balias@gmail.com&plus=test+alias@gmail.com"
      "&url=https://www.google.com/&whitespace=foo%20bar&zhash=abort/";
  json ev = f.rest();
  json expected = {{"dateTimeOffset", "2023-06-12T18:05:10.123456 00:00"},
                   {"email", "test+alias@gmail.com"},
                   {"plus", "test alias@gmail.com"},
                   {"url", "https://www.google.com/"},
                   {"whitespace", "foo bar"},
                   {"zhash", "abort/"}};
  CHECK(ev["queryStringParameters"] == expected);
  for (auto& [k, v] : expected.items()) CHECK(ev["multiValueQueryStringParameters"][k] == json::array({v}));
  CHECK(ev["pathParameters"] == json{{"proxy", "proxy-value/api"}});

  f.req.raw_query = "flag&a=1&a=&&=x&b=%zz";
  ev = f.rest();
  CHECK(ev["queryStringParameters"] == json{{"flag", ""}, {"a", ""}, {"b", "%zz"}});
  CHECK(ev["multiValueQueryStringParameters"]["a"] == json::array({"1", ""}));
}

// A POST whose every part needs escaping in JSON: quotes, backslashes, control characters,
// invalid UTF-8 (in a header and in the query), a repeated header, cookies.
void escaping_request(Fixture& f, const std::string& raw_path) {
  f.route("POST /movies/{id}");
  f.req.method = "POST";
  f.req.path = "/movies/\"q\"";
  f.req.raw_path = raw_path;
  f.req.raw_query = "b=%22&a=%5C&a=%E2%9C%93&z=%FF";
  f.req.headers = {{"User-Agent", "t\xc3\xa9st \"q\" \\ back"}, {"X-Ctl", "a\tb\x7f"}, {"x-ctl", "\x01"},
                   {"X-Bad", std::string("\xff\xfe ok", 5)}, {"Cookie", "k=\"v\"; u=\xe2\x9c\x93"},
                   {"Content-Type", "text/plain"}};
  f.req.body = "line1\nline2\r\n\x01\"end\"";
  f.resolve();
}

// Events are written member by member (no DOM): their text must be nlohmann's dump of the
// same JSON (sorted members, escapes, invalid UTF-8 replaced by U+FFFD).
json parse_canonical(const std::string& text) {
  CHECK(text == json::parse(text).dump(-1, ' ', false, json::error_handler_t::replace));
  return json::parse(text);
}

TEST_CASE("REST event: text that needs escaping, written as nlohmann writes it", "[payloads][rest]") {
  Fixture f;
  escaping_request(f, "/stage/movies/%22q%22");
  f.in.api_key = "k\"ey";
  f.in.api_key_id = "kid";
  json ctx = {{"principalId", "u"}, {"n", 1}};
  f.in.authorizer = &ctx;
  json ev = parse_canonical(rest_event(f.in));
  CHECK(ev["headers"]["X-Ctl"] == "\x01");
  CHECK(ev["multiValueHeaders"]["X-Ctl"] == json::array({"a\tb\x7f", "\x01"}));
  CHECK(ev["headers"]["X-Bad"] == "\xef\xbf\xbd\xef\xbf\xbd ok");
  CHECK(ev["headers"]["Cookie"] == "k=\"v\"; u=\xe2\x9c\x93");
  CHECK(ev["queryStringParameters"] == json{{"a", "\xe2\x9c\x93"}, {"b", "\""}, {"z", "\xef\xbf\xbd"}});
  CHECK(ev["multiValueQueryStringParameters"]["a"] == json::array({"\\", "\xe2\x9c\x93"}));
  CHECK(ev["pathParameters"] == json{{"id", "%22q%22"}});  // REST leaves them encoded
  CHECK(ev["body"] == "line1\nline2\r\n\x01\"end\"");
  CHECK(ev["stageVariables"].is_null());
  CHECK(ev["requestContext"]["authorizer"] == ctx);
  CHECK(ev["requestContext"]["identity"]["apiKey"] == "k\"ey");
  CHECK(ev["requestContext"]["identity"]["userAgent"] == "t\xc3\xa9st \"q\" \\ back");
}

TEST_CASE("REST event headers: last value single, all values multi, client casing", "[payloads][rest]") {
  Fixture f;
  f.route("GET /movies/{id}");
  f.req.path = "/movies/12";
  f.req.raw_path = "/stage/movies/12";
  f.req.headers = {{"Host", "localhost"},   {"X-Multi", "one"},      {"x-multi", "two"},
                   {"X-Multi", "three"},    {"user-agent", "curl/8"}, {"X-Forwarded-For", "10.0.0.1"},
                   {"X-Forwarded-Proto", "https"}, {"Keep-Alive", "timeout=5"}, {"Cookie", "a=1; b=2"}};
  f.resolve();
  json ev = f.rest();
  CHECK(ev["headers"]["X-Multi"] == "three");
  CHECK(ev["multiValueHeaders"]["X-Multi"] == json::array({"one", "two", "three"}));
  CHECK_FALSE(ev["headers"].contains("x-multi"));
  CHECK(ev["headers"]["User-Agent"] == "curl/8");
  CHECK(ev["headers"]["Cookie"] == "a=1; b=2");
  CHECK(ev["headers"]["X-Forwarded-For"] == "10.0.0.1, 127.0.0.1");
  CHECK(ev["headers"]["X-Forwarded-Proto"] == "http");
  CHECK(ev["headers"]["X-Forwarded-Port"] == "80");
  CHECK_FALSE(ev["headers"].contains("Keep-Alive"));
  CHECK(ev["requestContext"]["identity"]["userAgent"] == "curl/8");
  CHECK(ev["pathParameters"] == json{{"id", "12"}});
  CHECK(ev["resource"] == "/movies/{id}");
  CHECK(ev["path"] == "/movies/12");

  // IPv6 Host, and no User-Agent at all.
  f.req.headers = {{"Host", "[::1]:8443"}};
  ev = f.rest();
  CHECK(ev["headers"]["X-Forwarded-Port"] == "8443");
  CHECK(ev["requestContext"]["identity"]["userAgent"].is_null());
}

TEST_CASE("REST event: stage variables, API key identity, authorizer, binary body", "[payloads][rest]") {
  Fixture f;
  f.route("POST /upload");
  f.req.method = "POST";
  f.req.path = "/upload";
  f.req.raw_path = "/stage/upload";
  f.req.body = std::string("\x89PNG\r\n\x1a\n\0\xff", 10);
  f.req.headers = {{"Content-Type", "image/png"}};
  f.resolve();
  f.stage_vars = {{"environment", "sandbox"}, {"alias", "live"}};
  f.in.stage_variables = &f.stage_vars;
  f.in.api_key = "abcdefghijklmnopqrstuvwxyz";
  f.in.api_key_id = "k1k2k3k4k5";
  json auth = {{"principalId", "user-1"}, {"role", "admin"}, {"integrationLatency", 12}};
  f.in.authorizer = &auth;
  f.in.base64_body = rest_body_is_binary(f.req, {"image/*"});
  REQUIRE(f.in.base64_body);
  json ev = f.rest();
  CHECK(ev["stageVariables"] == json{{"environment", "sandbox"}, {"alias", "live"}});
  CHECK(ev["requestContext"]["identity"]["apiKey"] == "abcdefghijklmnopqrstuvwxyz");
  CHECK(ev["requestContext"]["identity"]["apiKeyId"] == "k1k2k3k4k5");
  CHECK(ev["requestContext"]["authorizer"] == auth);
  CHECK(ev["isBase64Encoded"] == true);
  CHECK(ev["body"] == base64_encode(f.req.body));
  CHECK(ev["pathParameters"].is_null());

  // Without a key or authorizer those keys are absent, as in the recorded event.
  f.in.api_key.clear();
  f.in.authorizer = nullptr;
  f.in.base64_body = false;
  f.req.body = "plain text";
  ev = f.rest();
  CHECK_FALSE(ev["requestContext"]["identity"].contains("apiKey"));
  CHECK_FALSE(ev["requestContext"].contains("authorizer"));
  CHECK(ev["body"] == "plain text");
  CHECK(ev["isBase64Encoded"] == false);
}

TEST_CASE("REST request bodies are base64 only for binary media types", "[payloads][rest][binary]") {
  auto with = [](const char* ct, std::string body = "x") {
    Request r;
    r.body = std::move(body);
    if (ct) r.headers.push_back({"Content-Type", ct});
    return r;
  };
  const std::vector<std::string> types = {"image/png", "application/*", "*/test"};
  CHECK(rest_body_is_binary(with("image/png"), types));
  CHECK(rest_body_is_binary(with("IMAGE/PNG; charset=x"), types));
  CHECK(rest_body_is_binary(with("application/json"), types));  // serverless-application-model#3794
  CHECK(rest_body_is_binary(with("application/octet-stream"), types));
  CHECK_FALSE(rest_body_is_binary(with("image/jpeg"), types));
  CHECK_FALSE(rest_body_is_binary(with("random/test"), types));  // left wildcards never match
  CHECK_FALSE(rest_body_is_binary(with("text/plain"), types));
  CHECK_FALSE(rest_body_is_binary(with(nullptr), types));
  CHECK_FALSE(rest_body_is_binary(with("image/png", ""), types));
  CHECK_FALSE(rest_body_is_binary(with("image/png"), {}));
  CHECK(rest_body_is_binary(with("text/plain"), {"*/*"}));
  CHECK_FALSE(rest_body_is_binary(with("garbage"), {"*/*"}));
}

// ---- HTTP API events -------------------------------------------------------

TEST_CASE("HTTP 2.0 event has exactly the keys of a real AWS event", "[payloads][http][v2]") {
  // A published capture: POST /handler/pero on "ANY /handler/{proxy+}", $default stage, curl.
  Fixture f(stack::ApiType::http);
  f.route("ANY /handler/{proxy+}");
  f.req.method = "POST";
  f.req.path = "/handler/pero";
  f.req.raw_path = "/handler/pero";
  f.req.headers = {{"host", "127.0.0.1:3000"}, {"user-agent", "curl/7.77.0"}, {"accept", "*/*"}, {"content-length", "0"}};
  f.in.stage = "$default";
  f.in.request_id = "NILjoi6FFiAEJ6A=";
  f.resolve();
  json ev = f.v2();
  std::set<std::string> keys;
  for (auto& [k, v] : ev.items()) keys.insert(k);
  CHECK(keys == std::set<std::string>{"headers", "isBase64Encoded", "pathParameters", "rawPath", "rawQueryString",
                                      "requestContext", "routeKey", "version"});
  CHECK(ev["version"] == "2.0");
  CHECK(ev["routeKey"] == "ANY /handler/{proxy+}");
  CHECK(ev["rawPath"] == "/handler/pero");
  CHECK(ev["rawQueryString"] == "");
  CHECK(ev["pathParameters"] == json{{"proxy", "pero"}});
  CHECK(ev["isBase64Encoded"] == false);
  CHECK(ev["headers"] == json{{"accept", "*/*"},
                              {"content-length", "0"},
                              {"host", "127.0.0.1:3000"},
                              {"user-agent", "curl/7.77.0"},
                              {"x-amzn-trace-id", f.in.trace_id},
                              {"x-forwarded-for", "127.0.0.1"},
                              {"x-forwarded-port", "3000"},
                              {"x-forwarded-proto", "http"}});
  const auto& rc = ev["requestContext"];
  std::set<std::string> rck;
  for (auto& [k, v] : rc.items()) rck.insert(k);
  CHECK(rck == std::set<std::string>{"accountId", "apiId", "domainName", "domainPrefix", "http", "requestId",
                                     "routeKey", "stage", "time", "timeEpoch"});
  CHECK(rc["http"] == json{{"method", "POST"},
                           {"path", "/handler/pero"},
                           {"protocol", "HTTP/1.1"},
                           {"sourceIp", "127.0.0.1"},
                           {"userAgent", "curl/7.77.0"}});
  CHECK(rc["requestId"] == "NILjoi6FFiAEJ6A=");
  CHECK(rc["routeKey"] == "ANY /handler/{proxy+}");
  CHECK(rc["stage"] == "$default");
  CHECK(rc["time"] == "04/Mar/2020:19:15:17 +0000");
  CHECK(rc["timeEpoch"] == 1583349317135);
  CHECK(rc["accountId"] == "111111111111");
  CHECK(rc["apiId"] == "a1b2c3d4e5");
}

TEST_CASE("HTTP 2.0 event: cookies, joined repeats, query, stage, body", "[payloads][http][v2]") {
  Fixture f(stack::ApiType::http);
  f.route("GET /pets/{id}");
  f.req.method = "GET";
  f.req.path = "/pets/a b";  // decoded
  f.req.raw_path = "/prod/pets/a%20b";
  f.req.raw_query = "p1=v1&p1=v2&p2=v&e=a%20b+c";
  f.req.headers = {{"Host", "localhost:9000"}, {"X-Dup", "1"},  {"x-dup", "2"}, {"Cookie", "c1=a; c2=b"},
                   {"cookie", "c3=c;c4=d"},    {"Connection", "close"}};
  f.in.stage = "prod";
  f.resolve();
  f.stage_vars = {{"k", "v"}};
  f.in.stage_variables = &f.stage_vars;
  json jwt = {{"jwt", {{"claims", {{"sub", "u"}}}, {"scopes", json::array({"read"})}}}};
  f.in.authorizer = &jwt;
  json ev = f.v2();
  CHECK(ev["routeKey"] == "GET /pets/{id}");
  CHECK(ev["rawPath"] == "/prod/pets/a b");
  CHECK(ev["requestContext"]["http"]["path"] == "/prod/pets/a b");
  CHECK(ev["rawQueryString"] == "p1=v1&p1=v2&p2=v&e=a%20b+c");
  // '+' reads as a space, as in live AWS captures (hotsock/voker testdata/apigwv2-request.json).
  CHECK(ev["queryStringParameters"] == json{{"p1", "v1,v2"}, {"p2", "v"}, {"e", "a b c"}});
  CHECK(ev["cookies"] == json::array({"c1=a", "c2=b", "c3=c", "c4=d"}));
  CHECK_FALSE(ev["headers"].contains("cookie"));
  CHECK_FALSE(ev["headers"].contains("connection"));
  CHECK(ev["headers"]["x-dup"] == "1,2");
  CHECK(ev["pathParameters"] == json{{"id", "a b"}});
  CHECK(ev["stageVariables"] == json{{"k", "v"}});
  CHECK(ev["requestContext"]["authorizer"] == jwt);
  CHECK(ev["requestContext"]["stage"] == "prod");
  CHECK(ev["requestContext"]["http"]["userAgent"] == "");
  CHECK_FALSE(ev.contains("body"));

  f.req.method = "POST";
  f.req.body = std::string("\x01\x02\xff", 3);
  f.req.headers = {{"Content-Type", "application/octet-stream"}};
  f.in.base64_body = http_body_is_binary(f.req);
  ev = f.v2();
  CHECK(ev["body"] == "AQL/");
  CHECK(ev["isBase64Encoded"] == true);
  CHECK_FALSE(ev.contains("cookies"));
}

TEST_CASE("HTTP 2.0 event: text that needs escaping, written as nlohmann writes it", "[payloads][http][v2]") {
  Fixture f(stack::ApiType::http);
  escaping_request(f, "/movies/%22q%22");
  f.stage_vars = {{"z", "last"}, {"a", "fir\"st"}};
  f.in.stage_variables = &f.stage_vars;
  json ctx = {{"lambda", {{"b", 2}, {"a", "x\ny"}}}};
  f.in.authorizer = &ctx;
  json ev = parse_canonical(http_v2_event(f.in));
  CHECK(ev["headers"]["user-agent"] == "t\xc3\xa9st \"q\" \\ back");
  CHECK(ev["headers"]["x-ctl"] == "a\tb\x7f,\x01");
  CHECK(ev["headers"]["x-bad"] == "\xef\xbf\xbd\xef\xbf\xbd ok");
  CHECK(ev["cookies"] == json::array({"k=\"v\"", "u=\xe2\x9c\x93"}));
  CHECK(ev["queryStringParameters"] == json{{"a", "\\,\xe2\x9c\x93"}, {"b", "\""}, {"z", "\xef\xbf\xbd"}});
  CHECK(ev["pathParameters"] == json{{"id", "\"q\""}});
  CHECK(ev["body"] == "line1\nline2\r\n\x01\"end\"");
  CHECK(ev["isBase64Encoded"] == false);
  CHECK(ev["stageVariables"] == json{{"a", "fir\"st"}, {"z", "last"}});
  CHECK(ev["requestContext"]["authorizer"] == ctx);
  CHECK(ev["requestContext"]["http"]["userAgent"] == "t\xc3\xa9st \"q\" \\ back");
}

TEST_CASE("HTTP 1.0 event: text that needs escaping, written as nlohmann writes it", "[payloads][http][v1]") {
  Fixture f(stack::ApiType::http);
  escaping_request(f, "/movies/%22q%22");
  f.in.api_key = "key";  // REST only
  json jwt = {{"jwt", {{"claims", {{"sub", "u\"1"}}}, {"scopes", nullptr}}}};
  f.in.authorizer = &jwt;
  json ev = parse_canonical(http_v1_event(f.in));
  CHECK(ev["version"] == "1.0");
  CHECK(ev["headers"]["X-Ctl"] == "\x01");
  CHECK(ev["multiValueHeaders"]["X-Ctl"] == json::array({"a\tb\x7f", "\x01"}));
  CHECK(ev["headers"]["X-Bad"] == "\xef\xbf\xbd\xef\xbf\xbd ok");
  CHECK(ev["queryStringParameters"] == json{{"a", "\xe2\x9c\x93"}, {"b", "\""}, {"z", "\xef\xbf\xbd"}});
  CHECK(ev["multiValueQueryStringParameters"]["a"] == json::array({"\\", "\xe2\x9c\x93"}));
  CHECK(ev["pathParameters"] == json{{"id", "\"q\""}});
  CHECK(ev["body"] == "line1\nline2\r\n\x01\"end\"");
  CHECK(ev["stageVariables"].is_null());
  CHECK(ev["requestContext"]["authorizer"] == jwt["jwt"]);  // flat in payload 1.0
  CHECK(ev["requestContext"]["identity"]["cognitoAmr"].is_null());
  CHECK_FALSE(ev["requestContext"]["identity"].contains("apiKey"));
}

TEST_CASE("HTTP 2.0 event for the $default route", "[payloads][http][v2]") {
  Fixture f(stack::ApiType::http);
  stack::RouteSpec def;
  def.key = "$default";
  f.api.routes.push_back(def);
  f.req.path = "/anything/here";
  f.in.stage = "$default";
  f.resolve();
  REQUIRE(f.match.route);
  json ev = f.v2();
  CHECK(ev["routeKey"] == "$default");
  CHECK(ev["requestContext"]["routeKey"] == "$default");
  CHECK(ev["rawPath"] == "/anything/here");
  CHECK_FALSE(ev.contains("pathParameters"));
  CHECK_FALSE(ev.contains("queryStringParameters"));
  CHECK_FALSE(ev.contains("stageVariables"));
}

TEST_CASE("HTTP 1.0 event has the keys and values of real AWS events", "[payloads][http][v1]") {
  SECTION("$default stage, greedy route, trailing slash (published capture)") {
    Fixture f(stack::ApiType::http);
    f.route("ANY /handler/{proxy+}");
    f.req.method = "POST";
    f.req.path = "/handler/";
    f.req.raw_path = "/handler/";
    f.req.headers = {{"host", "127.0.0.1:3000"}, {"user-agent", "curl/7.77.0"}, {"accept", "*/*"}, {"content-length", "0"}};
    f.in.stage = "$default";
    f.in.request_id = "NIKr1jmIFiAEJmw=";
    f.in.extended_request_id.clear();
    f.resolve();
    json ev = f.v1();
    std::set<std::string> keys;
    for (auto& [k, v] : ev.items()) keys.insert(k);
    CHECK(keys == std::set<std::string>{"body", "headers", "httpMethod", "isBase64Encoded", "multiValueHeaders",
                                        "multiValueQueryStringParameters", "path", "pathParameters",
                                        "queryStringParameters", "requestContext", "resource", "stageVariables",
                                        "version"});
    CHECK(ev["version"] == "1.0");
    CHECK(ev["resource"] == "/handler/{proxy+}");
    CHECK(ev["path"] == "/handler/");
    CHECK(ev["pathParameters"] == json{{"proxy", ""}});
    CHECK(ev["body"].is_null());
    CHECK(ev["queryStringParameters"].is_null());
    CHECK(ev["stageVariables"].is_null());
    std::set<std::string> names;
    for (auto& [k, v] : ev["headers"].items()) names.insert(k);
    CHECK(names == std::set<std::string>{"Content-Length", "Host", "User-Agent", "X-Amzn-Trace-Id", "X-Forwarded-For",
                                         "X-Forwarded-Port", "X-Forwarded-Proto", "accept"});
    CHECK(ev["multiValueHeaders"]["accept"] == json::array({"*/*"}));
    const auto& rc = ev["requestContext"];
    std::set<std::string> rck;
    for (auto& [k, v] : rc.items()) rck.insert(k);
    CHECK(rck == std::set<std::string>{"accountId", "apiId", "domainName", "domainPrefix", "extendedRequestId",
                                       "httpMethod", "identity", "path", "protocol", "requestId", "requestTime",
                                       "requestTimeEpoch", "resourceId", "resourcePath", "stage"});
    CHECK(rc["extendedRequestId"] == "NIKr1jmIFiAEJmw=");
    CHECK(rc["requestId"] == "NIKr1jmIFiAEJmw=");
    CHECK(rc["resourceId"] == "ANY /handler/{proxy+}");
    CHECK(rc["resourcePath"] == "/handler/{proxy+}");
    CHECK(rc["path"] == "/handler/");
    CHECK(rc["stage"] == "$default");
    CHECK(rc["identity"].contains("cognitoAmr"));
    CHECK(rc["identity"]["cognitoAmr"].is_null());
    CHECK(rc["identity"]["userAgent"] == "curl/7.77.0");
  }
  SECTION("named stage and a path parameter (published capture, Postman over HTTP/1.1)") {
    Fixture f(stack::ApiType::http);
    f.route("POST /users/{userId}/inventories");
    f.req.method = "POST";
    f.req.path = "/users/1/inventories";
    f.req.raw_path = "/v1/users/1/inventories";
    f.req.headers = {{"Content-Type", "application/json"},   {"Postman-Token", "8aa35c46"},
                     {"User-Agent", "PostmanRuntime/7.28.4"}, {"Accept", "*/*"},
                     {"Cache-Control", "no-cache"},          {"Host", "127.0.0.1:3000"},
                     {"Accept-Encoding", "gzip, deflate, br"}, {"Connection", "keep-alive"},
                     {"Content-Length", "2"}};
    f.req.body = "{}";
    f.in.stage = "v1";
    f.resolve();
    json ev = f.v1();
    CHECK(ev["path"] == "/v1/users/1/inventories");
    CHECK(ev["requestContext"]["path"] == "/v1/users/1/inventories");
    CHECK(ev["resource"] == "/users/{userId}/inventories");
    CHECK(ev["requestContext"]["resourceId"] == "POST /users/{userId}/inventories");
    CHECK(ev["pathParameters"] == json{{"userId", "1"}});
    CHECK(ev["body"] == "{}");
    std::set<std::string> names;
    for (auto& [k, v] : ev["headers"].items()) names.insert(k);
    CHECK(names == std::set<std::string>{"Content-Length", "Content-Type", "Host", "Postman-Token", "User-Agent",
                                         "X-Amzn-Trace-Id", "X-Forwarded-For", "X-Forwarded-Port",
                                         "X-Forwarded-Proto", "accept", "accept-encoding", "cache-control"});
  }
  SECTION("$default route, repeated values, cookies stay a header, JWT claims flat") {
    Fixture f(stack::ApiType::http);
    stack::RouteSpec def;
    def.key = "$default";
    f.api.routes.push_back(def);
    f.req.path = "/question";
    f.req.raw_query = "a=1&a=2&b=x+y";
    f.req.headers = {{"X-A", "1"}, {"X-A", "2"}, {"Cookie", "s=1"}};
    f.in.stage = "$default";
    f.resolve();
    json jwt = {{"jwt", {{"claims", {{"sub", "u"}}}, {"scopes", nullptr}}}};
    f.in.authorizer = &jwt;
    json ev = f.v1();
    CHECK(ev["resource"] == "$default");
    CHECK(ev["requestContext"]["resourceId"] == "$default");
    CHECK(ev["requestContext"]["resourcePath"] == "$default");
    CHECK(ev["headers"]["X-A"] == "2");
    CHECK(ev["multiValueHeaders"]["X-A"] == json::array({"1", "2"}));
    CHECK(ev["headers"]["Cookie"] == "s=1");
    CHECK(ev["queryStringParameters"] == json{{"a", "2"}, {"b", "x y"}});
    CHECK(ev["multiValueQueryStringParameters"]["a"] == json::array({"1", "2"}));
    CHECK(ev["requestContext"]["authorizer"] == json{{"claims", {{"sub", "u"}}}, {"scopes", nullptr}});
  }
}

TEST_CASE("HTTP API request bodies are base64 unless text-like", "[payloads][http][binary]") {
  auto with = [](const char* ct, std::string body = "x") {
    Request r;
    r.body = std::move(body);
    if (ct) r.headers.push_back({"Content-Type", ct});
    return r;
  };
  for (const char* text : {"text/plain", "text/html; charset=utf-8", "application/json", "Application/JSON",
                           "application/xml", "application/javascript", "application/problem+json",
                           "application/atom+xml"})
    CHECK_FALSE(http_body_is_binary(with(text)));
  for (const char* bin : {"application/octet-stream", "image/png", "application/x-www-form-urlencoded",
                          "multipart/form-data; boundary=x", "application/pdf", "nonsense"})
    CHECK(http_body_is_binary(with(bin)));
  CHECK(http_body_is_binary(with(nullptr)));
  CHECK_FALSE(http_body_is_binary(with("image/png", "")));
}

TEST_CASE("events are valid JSON whatever the request holds", "[payloads]") {
  Fixture f;
  f.route("ANY /{proxy+}");
  f.req.path = "/\xff\xfe";
  f.req.raw_path = "/stage/%FF%FE";
  f.req.raw_query = "\xc3=\xff&%00=%";
  f.req.headers = {{"X-Bad", "\xff\x80\n"}, {"", "empty name"}, {"X-Long", std::string(100000, 'a')}};
  f.req.body = "\xff\xfe not utf-8";
  f.resolve();
  for (auto type : {0, 1, 2}) {
    std::string ev = type == 0 ? rest_event(f.in) : type == 1 ? http_v1_event(f.in) : http_v2_event(f.in);
    CHECK(valid_utf8(ev));
    CHECK_NOTHROW(json::parse(ev));
  }
  EventInput nothing;
  CHECK_NOTHROW(json::parse(rest_event(nothing)));
  CHECK_NOTHROW(json::parse(http_v1_event(nothing)));
  CHECK_NOTHROW(json::parse(http_v2_event(nothing)));
}

// ---- REST responses --------------------------------------------------------

TEST_CASE("REST proxy responses as AWS recorded them", "[payloads][rest][response][aws-recorded]") {
  // test_aws_proxy_response_payload_format_validation (recorded 15-11-2024).
  Request req = accepting("*/*");
  auto map = [&](const std::string& payload) { return rest_response(payload, req, {}); };

  auto m = map(R"({"statusCode": 200})");  // invoke-api-no-body
  REQUIRE(m.ok);
  CHECK(m.response.status == 200);
  CHECK(m.response.body == "");
  CHECK(joined(m.response, "Content-Type") == "application/json");

  m = map(R"({"statusCode": 200, "headers": {"test-header": "value", "header-bool": true}})");
  REQUIRE(m.ok);
  CHECK(joined(m.response, "test-header") == "value");
  CHECK(joined(m.response, "header-bool") == "true");
  CHECK(joined(m.response, "Content-Type") == "application/json");

  m = map(R"({"statusCode": 200, "headers": null})");  // invoke-api-with-headers-null
  REQUIRE(m.ok);
  CHECK(joined(m.response, "Content-Type") == "application/json");

  CHECK_FALSE(map(R"({"statusCode": 200, "wrongValue": "value"})").ok);  // 502

  m = map(R"({"statusCode": 200, "body": "dGVzdC1kYXRh", "isBase64Encoded": true})");
  REQUIRE(m.ok);
  CHECK(m.response.body == "dGVzdC1kYXRh");  // no binary media types: returned as is
  m = map(R"({"statusCode": 200, "body": "dGVzdC1kYXRh"})");
  REQUIRE(m.ok);
  CHECK(m.response.body == "dGVzdC1kYXRh");

  m = map(R"({"statusCode": 200, "multiValueHeaders": {"test-multi": ["value1", "value2"]}})");
  REQUIRE(m.ok);
  CHECK(joined(m.response, "test-multi") == "value1, value2");
  CHECK(count(m.response, "test-multi") == 2);

  m = map(R"({"statusCode": 200, "multiValueHeaders": {"test-multi": ["value-multi"]}, "headers": {"test-multi": "value-solo"}})");
  REQUIRE(m.ok);
  CHECK(joined(m.response, "test-multi") == "value-multi, value-solo");

  m = map(R"({"statusCode": 200, "multiValueHeaders": {"tesT-Multi": ["value-multi"]}, "headers": {"test-multi": "value-solo"}})");
  REQUIRE(m.ok);
  CHECK(joined(m.response, "test-multi") == "value-multi, value-solo");
  for (const auto& h : m.response.headers)
    if (iequals(h.name, "test-multi")) CHECK(h.name == "tesT-Multi");

  CHECK_FALSE(map(R"({"statusCode": 200, "multiValueHeaders": {"test-multi-invalid": "value1"}})").ok);
  CHECK_FALSE(map(R"({"statusCode": "test"})").ok);

  m = map(R"({"statusCode": "201"})");  // invoke-api-status-code-str
  REQUIRE(m.ok);
  CHECK(m.response.status == 201);

  CHECK_FALSE(map(R"("justAString")").ok);

  m = map(R"({"headers": {"test-header": "value"}})");  // invoke-api-only-headers: no statusCode => 200
  REQUIRE(m.ok);
  CHECK(m.response.status == 200);
  CHECK(joined(m.response, "test-header") == "value");
}

TEST_CASE("REST proxy responses: every malformed variant is refused with a reason", "[payloads][rest][response]") {
  Request req;
  const char* bad[] = {
      "",
      "not json",
      "{",
      "null",
      "[]",
      "42",
      "true",
      R"([{"statusCode":200}])",
      R"({"errorMessage":"boom","errorType":"Error","stackTrace":[]})",  // a function error envelope
      R"({"statusCode":200,"extra":null})",
      R"({"statusCode":true})",
      R"({"statusCode":[200]})",
      R"({"statusCode":{}})",
      R"({"statusCode":"20x"})",
      R"({"statusCode":" 200"})",
      R"({"statusCode":"2000"})",
      R"({"statusCode":99})",
      R"({"statusCode":600})",
      R"({"statusCode":-200})",
      R"({"statusCode":200.5})",
      R"({"statusCode":200,"body":{"a":1}})",
      R"({"statusCode":200,"body":["a"]})",
      R"({"statusCode":200,"body":42})",
      R"({"statusCode":200,"body":true})",
      R"({"statusCode":200,"headers":"x"})",
      R"({"statusCode":200,"headers":[]})",
      R"({"statusCode":200,"headers":{"a":{"b":1}}})",
      R"({"statusCode":200,"headers":{"a":["b"]}})",
      R"({"statusCode":200,"multiValueHeaders":[]})",
      R"({"statusCode":200,"multiValueHeaders":{"a":[{"b":1}]}})",
      R"({"statusCode":200,"multiValueHeaders":{"a":[["b"]]}})",
      R"({"statusCode":200,"isBase64Encoded":"yes"})",
      R"({"statusCode":200,"isBase64Encoded":1})",
      R"({"statusCode":200,"headers":{"Bad Name":"x"}})",
      R"({"statusCode":200,"headers":{"":"x"}})",
      R"({"statusCode":200,"headers":{"X":"a\r\nInjected: yes"}})",
      R"({"statusCode":200,"cookies":["a=1"]})",  // a 2.0 field: unknown to REST
  };
  for (const char* payload : bad) {
    INFO(payload);
    auto m = rest_response(payload, req, {});
    CHECK_FALSE(m.ok);
    CHECK_FALSE(m.problem.empty());
  }
  // The problem text names what is wrong.
  CHECK_THAT(rest_response(R"({"statusCode":200,"wrongValue":1})", req, {}).problem,
             Catch::Contains("wrongValue"));
  CHECK_THAT(rest_response(R"({"statusCode":200,"body":{}})", req, {}).problem, Catch::Contains("body"));
  CHECK_THAT(rest_response("oops", req, {}).problem, Catch::Contains("not JSON"));
}

TEST_CASE("REST proxy responses: accepted scalar forms", "[payloads][rest][response]") {
  Request req;
  auto m = rest_response(R"({"statusCode":404.0,"headers":{"n":5,"f":1.5,"t":false,"z":null},"body":null,"isBase64Encoded":"false"})",
                         req, {});
  REQUIRE(m.ok);
  CHECK(m.response.status == 404);
  CHECK(joined(m.response, "n") == "5");
  CHECK(joined(m.response, "f") == "1.5");
  CHECK(joined(m.response, "t") == "false");
  CHECK(count(m.response, "z") == 0);
  CHECK(m.response.body.empty());

  m = rest_response(R"({"statusCode":200,"headers":{"content-type":"text/html"},"body":"<p>hi</p>"})", req, {});
  REQUIRE(m.ok);
  CHECK(joined(m.response, "Content-Type") == "text/html");  // no default added
  CHECK(count(m.response, "Content-Type") == 1);

  m = rest_response(R"({"statusCode":200,"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]},"headers":{"Set-Cookie":"a=1"}})",
                    req, {});
  REQUIRE(m.ok);
  CHECK(count(m.response, "Set-Cookie") == 2);  // the same pair in both appears once

  m = rest_response(R"({"statusCode":200,"multiValueHeaders":{"X":null,"Y":[null,"y"]}})", req, {});
  REQUIRE(m.ok);
  CHECK(joined(m.response, "Y") == "y");
}

TEST_CASE("REST binary responses follow the first Accept type only (AWS-validated)", "[payloads][rest][binary]") {
  // LocalStack test_aws_proxy_binary_response, validated against AWS.
  const std::string png = *base64_decode(png_b64);
  auto payload = [&](const char* content_type, bool b64) {
    json p = {{"statusCode", 200}, {"body", png_b64}, {"isBase64Encoded", b64}, {"headers", {{"Cache-Control", "no-cache"}}}};
    if (content_type) p["headers"]["Content-Type"] = content_type;
    return p.dump();
  };
  auto body_for = [&](const std::vector<std::string>& types, const char* accept, const char* ct, bool b64 = true) {
    auto m = rest_response(payload(ct, b64), accepting(accept), types);
    REQUIRE(m.ok);
    return m.response.body;
  };
  // No binaryMediaTypes: never decoded.
  CHECK(body_for({}, "image/png", "image/png") == png_b64);

  const std::vector<std::string> stage2 = {"image/png", "*/test"};
  CHECK(body_for(stage2, "image/png", "image/png") == png);
  CHECK(body_for(stage2, "image/jpg", "image/png") == png_b64);
  CHECK(body_for(stage2, "image/*", "image/png") == png_b64);
  CHECK(body_for(stage2, "*/test", "image/png") == png_b64);
  CHECK(body_for(stage2, "random/test", "image/png") == png_b64);
  CHECK(body_for(stage2, "*/*", "image/png") == png_b64);
  CHECK(body_for(stage2, "image/webp,image/png,*/*;q=0.8", "image/png") == png_b64);
  CHECK(body_for(stage2, "image/png,image/*,*/*;q=0.8", "image/png") == png);
  CHECK(body_for(stage2, "image/png", "image/png", false) == png_b64);

  const std::vector<std::string> stage3 = {"image/png", "application/*", "image/jpg"};
  CHECK(body_for(stage3, "application/whatever", "application/test") == png);
  CHECK(body_for(stage3, "application/test", "application/test") == png);
  CHECK(body_for(stage3, "application/*", "application/test") == png);
  CHECK(body_for(stage3, "image/jpg", "image/png") == png);
  CHECK(body_for(stage3, "image/png", "application/whatever") == png);
  CHECK(body_for(stage3, "image/png", nullptr) == png);
  CHECK(body_for(stage3, "application", nullptr) == png_b64);
  CHECK(body_for(stage3, nullptr, nullptr) == png_b64);

  // "*/*" configured makes everything binary.
  CHECK(body_for({"*/*"}, "text/html", "text/html") == png);

  // Bad base64 with all conditions met: AWS answers 500 (not 502).
  auto m = rest_response(R"({"statusCode":200,"body":"\u00e8\u00e9+\u00e0)(","isBase64Encoded":true})",
                         accepting("image/png"), stage3);
  CHECK(m.response.status == 500);
  CHECK(m.response.body == R"({"message": "Internal server error"})");
  CHECK_FALSE(m.problem.empty());
}

TEST_CASE("REST accepts the base64Encoded alias", "[payloads][rest][response]") {
  // SAM local_apigw_service: REST reads "base64Encoded" before "isBase64Encoded" (from trials).
  auto m = rest_response(R"({"statusCode":200,"body":"aGk=","base64Encoded":true,"isBase64Encoded":false})",
                         accepting("image/png"), {"image/png"});
  REQUIRE(m.ok);
  CHECK(m.response.body == "hi");
}

// ---- HTTP API responses ----------------------------------------------------

TEST_CASE("HTTP 2.0: JSON without statusCode is a 200 JSON body", "[payloads][http][v2][response]") {
  // AG:http-api-develop-integrations-lambda, "Lambda function response for format 2.0".
  struct Row {
    const char* out;
  } rows[] = {{R"("hello")"}, {"42"}, {R"({"a":1})"}, {R"({ "message": "Hello from Lambda!" })"}, {"[1,2]"},
              {"true"},       {"null"}, {R"({"body":"x","headers":{"a":"b"}})"}, {R"({"statusCode":null,"x":1})"}};
  for (const auto& row : rows) {
    INFO(row.out);
    auto m = http_v2_response(row.out);
    REQUIRE(m.ok);
    CHECK(m.response.status == 200);
    CHECK(m.response.body == row.out);  // strings stay JSON-quoted
    CHECK(joined(m.response, "content-type") == "application/json");
    CHECK(count(m.response, "content-type") == 1);
  }
}

TEST_CASE("HTTP 2.0: structured responses, cookies and base64", "[payloads][http][v2][response]") {
  auto m = http_v2_response(
      R"({"statusCode":201,"headers":{"X-Str":"s","X-Num":2,"X-Bool":false,"X-List":["a","b"],"X-Null":null},
          "cookies":["c1=a; Path=/","c2=b"],"body":"created","isBase64Encoded":false,"multiValueHeaders":{"Y":["z"]},"other":1})");
  REQUIRE(m.ok);
  CHECK(m.response.status == 201);
  CHECK(joined(m.response, "X-Str") == "s");
  CHECK(joined(m.response, "X-Num") == "2");
  CHECK(joined(m.response, "X-Bool") == "false");
  CHECK(joined(m.response, "X-List") == "a,b");
  CHECK(count(m.response, "X-Null") == 0);
  CHECK(count(m.response, "Y") == 0);  // no multiValueHeaders in 2.0
  CHECK(count(m.response, "Set-Cookie") == 2);
  CHECK(joined(m.response, "Set-Cookie") == "c1=a; Path=/, c2=b");
  CHECK(m.response.body == "created");
  CHECK(joined(m.response, "content-type") == "application/json");

  m = http_v2_response(R"({"statusCode":200,"body":"AQL/","isBase64Encoded":true,"headers":{"Content-Type":"image/png"}})");
  REQUIRE(m.ok);
  CHECK(m.response.body == std::string("\x01\x02\xff", 3));  // decoded regardless of media types
  CHECK(joined(m.response, "content-type") == "image/png");

  m = http_v2_response(R"({"statusCode":"204"})");
  REQUIRE(m.ok);
  CHECK(m.response.status == 204);
  CHECK(m.response.body.empty());
}

TEST_CASE("HTTP 2.0: invalid outputs are refused", "[payloads][http][v2][response]") {
  for (const char* bad : {"", "nope", "{", R"({"statusCode":"abc"})", R"({"statusCode":true})", R"({"statusCode":1000})",
                          R"({"statusCode":200,"headers":"x"})", R"({"statusCode":200,"headers":{"a":{"b":1}}})",
                          R"({"statusCode":200,"headers":{"a b":"c"}})", R"({"statusCode":200,"body":{"a":1}})",
                          R"({"statusCode":200,"body":"%%%","isBase64Encoded":true})",
                          R"({"statusCode":200,"isBase64Encoded":"maybe"})",
                          R"({"statusCode":200,"cookies":["a=1\r\nX: y"]})"}) {
    INFO(bad);
    auto m = http_v2_response(bad);
    CHECK_FALSE(m.ok);
    CHECK_FALSE(m.problem.empty());
  }
}

TEST_CASE("HTTP 1.0 responses: REST shape, lenient keys, decoded regardless of types", "[payloads][http][v1][response]") {
  auto m = http_v1_response(
      R"({"statusCode":200,"headers":{"a":"1"},"multiValueHeaders":{"b":["2","3"]},"body":"aGk=","isBase64Encoded":true,"extra":1})");
  REQUIRE(m.ok);
  CHECK(joined(m.response, "a") == "1");
  CHECK(joined(m.response, "b") == "2, 3");
  CHECK(m.response.body == "hi");
  CHECK(joined(m.response, "Content-Type") == "application/json");

  CHECK_FALSE(http_v1_response(R"({"headers":{}})").ok);  // statusCode required (SAM, from trials)
  CHECK_FALSE(http_v1_response(R"("hello")").ok);
  CHECK_FALSE(http_v1_response(R"({"statusCode":200,"body":"@@","isBase64Encoded":true})").ok);
  CHECK_FALSE(http_v1_response(R"({"statusCode":200,"body":{}})").ok);
  CHECK_FALSE(http_v1_response("garbage").ok);
}

TEST_CASE("response mapping never crashes on hostile payloads", "[payloads][response]") {
  std::vector<std::string> payloads = {std::string(200000, '['), std::string(200000, '{'),
                                       "[" + std::string(100000, '1') + "]", std::string("\0\0\0", 3),
                                       "{\"statusCode\":1e999}", "{\"statusCode\":18446744073709551616}",
                                       "{\"statusCode\":200,\"body\":\"" + std::string(1 << 20, 'x') + "\"}"};
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "{\"a\":";
  deep += "1";
  for (int i = 0; i < 100000; ++i) deep += "}";
  payloads.push_back(deep);
  std::mt19937 gen(7);
  const std::string alphabet = "{}[]\":,0123456789.eE+-truefalsnl statusCodeheadersbody\\u\x01\xff";
  for (int i = 0; i < 2000; ++i) {
    std::string p;
    int n = gen() % 64;
    for (int k = 0; k < n; ++k) p.push_back(alphabet[gen() % alphabet.size()]);
    payloads.push_back(p);
  }
  Request req = accepting("*/*");
  for (const auto& p : payloads) {
    (void)rest_response(p, req, {"*/*"});
    (void)http_v1_response(p);
    (void)http_v2_response(p);
  }
  auto big = rest_response(payloads.back(), req, {});
  (void)big;
  CHECK(rest_response(payloads[6], req, {}).response.body.size() == (1u << 20));
}

// ---- gateway errors --------------------------------------------------------

TEST_CASE("REST gateway errors: statuses, bodies and x-amzn-ErrorType", "[payloads][errors][rest]") {
  struct Row {
    GatewayError e;
    unsigned status;
    const char* body;
    const char* type;
  } rows[] = {
      {GatewayError::missing_authentication_token, 403, R"({"message":"Missing Authentication Token"})",
       "MissingAuthenticationTokenException"},
      {GatewayError::not_found, 403, R"({"message":"Missing Authentication Token"})",
       "MissingAuthenticationTokenException"},
      {GatewayError::forbidden, 403, R"({"message":"Forbidden"})", "ForbiddenException"},
      {GatewayError::unauthorized, 401, R"({"message":"Unauthorized"})", "UnauthorizedException"},
      {GatewayError::access_denied, 403, R"({"Message":"User is not authorized to access this resource"})",
       "AccessDeniedException"},
      {GatewayError::access_denied_explicit, 403,
       R"({"Message":"User is not authorized to access this resource with an explicit deny"})",
       "AccessDeniedException"},
      {GatewayError::authorizer_failure, 500, R"({"message": null})", "AuthorizerConfigurationException"},
      {GatewayError::integration_failure, 502, R"({"message": "Internal server error"})",
       "InternalServerErrorException"},
      {GatewayError::configuration_error, 500, R"({"message": "Internal server error"})",
       "InternalServerErrorException"},
      {GatewayError::integration_timeout, 504, R"({"message": "Endpoint request timed out"})",
       "InternalServerErrorException"},
      {GatewayError::throttled, 429, R"({"message":"Too Many Requests"})", "TooManyRequestsException"},
      {GatewayError::quota_exceeded, 429, R"({"message":"Limit Exceeded"})", "LimitExceededException"},
      {GatewayError::request_too_large, 413, R"({"message": "Request Too Long"})", "BadRequestException"},
  };
  for (const auto& row : rows) {
    INFO(row.body);
    auto r = gateway_error(stack::ApiType::rest, row.e);
    CHECK(r.status == row.status);
    CHECK(r.body == row.body);
    CHECK(r.get("x-amzn-ErrorType") == std::optional<std::string>(row.type));
    CHECK(r.get("Content-Type") == std::optional<std::string>("application/json"));
    CHECK_NOTHROW(json::parse(r.body));
    for (const auto& h : r.headers)
      if (iequals(h.name, "x-amzn-errortype")) CHECK(h.name == "x-amzn-ErrorType");
  }
  // The recorded bodies (test_routing_not_found, test_api_key_required_for_methods,
  // proxy validation) parse to what AWS returned.
  CHECK(json::parse(gateway_error(stack::ApiType::rest, GatewayError::missing_authentication_token).body) ==
        json{{"message", "Missing Authentication Token"}});
  CHECK(json::parse(gateway_error(stack::ApiType::rest, GatewayError::integration_failure).body) ==
        json{{"message", "Internal server error"}});
}

TEST_CASE("HTTP API gateway errors: their own bodies, no x-amzn-ErrorType", "[payloads][errors][http]") {
  struct Row {
    GatewayError e;
    unsigned status;
    const char* body;
  } rows[] = {
      {GatewayError::not_found, 404, R"({"message":"Not Found"})"},
      {GatewayError::missing_authentication_token, 404, R"({"message":"Not Found"})"},
      {GatewayError::forbidden, 403, R"({"message":"Forbidden"})"},
      {GatewayError::unauthorized, 401, R"({"message":"Unauthorized"})"},
      {GatewayError::access_denied, 403, R"({"message":"Forbidden"})"},
      {GatewayError::access_denied_explicit, 403, R"({"message":"Forbidden"})"},
      {GatewayError::authorizer_failure, 500, R"({"message":"Internal Server Error"})"},
      {GatewayError::integration_failure, 500, R"({"message":"Internal Server Error"})"},
      {GatewayError::configuration_error, 500, R"({"message":"Internal Server Error"})"},
      {GatewayError::integration_timeout, 503, R"({"message":"Service Unavailable"})"},
      {GatewayError::throttled, 429, R"({"message":"Too Many Requests"})"},
      {GatewayError::quota_exceeded, 429, R"({"message":"Too Many Requests"})"},
      {GatewayError::request_too_large, 413, R"({"message":"Request Entity Too Large"})"},
  };
  for (const auto& row : rows) {
    INFO(row.body);
    auto r = gateway_error(stack::ApiType::http, row.e);
    CHECK(r.status == row.status);
    CHECK(r.body == row.body);
    CHECK_FALSE(r.get("x-amzn-ErrorType"));
    CHECK(r.get("content-type") == std::optional<std::string>("application/json"));
  }
}
