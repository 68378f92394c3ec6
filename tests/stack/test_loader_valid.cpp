// Valid stacks: every feature lands in the right place in the model.
#include <nlohmann/json.hpp>

#include "stack_test_support.hpp"

using namespace stack_test;

namespace {

const RouteSpec& route(const ApiSpec& api, const std::string& key) {
  for (const auto& r : api.routes)
    if (r.key == key) return r;
  FAIL("no route " << key);
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("valid-full.yaml maps every feature into the model", "[stack][valid]") {
  auto result = load_fixture("valid-full.yaml");
  Stack s = must_load(result);
  CHECK(result.problems.empty());
  const fs::path dir = fixtures();

  SECTION("top level") {
    CHECK(s.name == "full-stack");
    CHECK(s.region == "eu-west-3");
    CHECK(s.account_id == "012345678901");  // a plain number, kept as written
    CHECK(s.source == dir / "valid-full.yaml");
    CHECK(s.base_dir == dir);
  }

  SECTION("defaults") {
    REQUIRE(s.defaults.runtime);
    CHECK(s.defaults.runtime->id == "python3.12");
    CHECK(s.defaults.memory_mb == 256);
    CHECK(s.defaults.timeout_s == 10);
    CHECK(s.defaults.handler == "app.handler");
    CHECK(s.defaults.environment ==
          std::map<std::string, std::string>{{"LOG_LEVEL", "info"}, {"SHARED", "from-defaults"}});
  }

  SECTION("packages") {
    REQUIRE(s.packages.count("shared"));
    CHECK(s.packages.at("shared").name == "shared");
    CHECK(s.packages.at("shared").path == dir / "code/python-app");
    CHECK(s.packages.at("shared").requirements == dir / "code/requirements.txt");
  }

  SECTION("a function with defaults applied and its own settings") {
    const auto& f = s.functions.at("py-direct");
    CHECK(f.name == "py-direct");
    CHECK(f.runtime.id == "python3.12");
    CHECK(f.runtime.family == RuntimeFamily::python);
    CHECK(f.runtime.major == 3);
    CHECK(f.runtime.minor == 12);
    CHECK(f.handler == "app.handler");
    CHECK(f.code_dir == dir / "code/python-app");  // trailing slash gone, canonical
    CHECK(f.code_dir.is_absolute());
    CHECK(f.package.empty());
    CHECK(f.description == "Plain python function");
    CHECK(f.memory_mb == 256);
    CHECK(f.timeout_s == 10);
    CHECK(f.environment == std::map<std::string, std::string>{{"LOG_LEVEL", "info"},
                                                              {"SHARED", "from-function"},
                                                              {"RATIO", "1.50"},
                                                              {"ENABLED", "yes"},
                                                              {"COUNT", "10"}});
    CHECK(f.reserved_concurrency == 5);
    CHECK(f.layers.empty());
    CHECK(f.async.max_retry_attempts == 0);
    CHECK(f.async.max_event_age_s == 120);
    REQUIRE((f.async.on_success && f.async.on_failure && f.async.dead_letter));
    CHECK((f.async.on_success->function == "node-fn" && f.async.on_success->service == "lambda"));
    CHECK(f.async.on_failure->arn == "arn:aws:sqs:eu-west-3:123456789012:py-direct-failed");
    CHECK(f.async.dead_letter->service == "sns");
    REQUIRE(f.logging);
    CHECK(*f.logging == LoggingSpec{"JSON", "DEBUG", "WARN"});
    REQUIRE(f.url);
    CHECK((f.url->auth_type == "AWS_IAM" && f.url->invoke_mode == "RESPONSE_STREAM" && f.url->qualifier == "live"));
    REQUIRE(f.url->cors);
    CHECK(f.url->cors->allow_origins == std::vector<std::string>{"*"});
    REQUIRE(f.aliases.size() == 3);
    CHECK(f.aliases.at("live").name == "live");
    CHECK(f.aliases.at("live").version == "2");
    CHECK_FALSE(f.aliases.at("live").additional);
    CHECK(f.aliases.at("beta").version == "$LATEST");
    CHECK(f.aliases.at("canary").version == "3");
    REQUIRE(f.aliases.at("canary").additional);
    CHECK(f.aliases.at("canary").additional->first == "4");
    CHECK(f.aliases.at("canary").additional->second == Approx(0.25));
  }

  SECTION("a function on a package with layers") {
    const auto& f = s.functions.at("py-package");
    CHECK(f.package == "shared");
    CHECK(f.code_dir == dir / "code/python-app");
    CHECK(f.runtime.id == "python3.13");
    CHECK(f.runtime.minor == 13);
    CHECK(f.handler == "pkg.handlers.list_items");
    CHECK(f.memory_mb == 1024);
    CHECK(f.timeout_s == 30);
    CHECK(f.layers == std::vector<fs::path>{dir / "layers/py-shared"});
    CHECK(f.requirements == dir / "code/requirements.txt");  // the package's
    CHECK_FALSE(s.functions.at("py-direct").requirements);
    CHECK_FALSE(f.reserved_concurrency);
    CHECK(f.async.max_retry_attempts == 2);
    CHECK(f.async.max_event_age_s == 21600);
    CHECK_FALSE(f.logging);  // not set: AWS's default (Text)
    CHECK(s.functions.at("py-layer-handler").handler == "shared_lib.handler");
    CHECK(s.functions.at("py-slash-handler").handler == "pkg/handlers.list_items");
  }

  SECTION("node and custom runtimes") {
    const auto& n = s.functions.at("node-fn");
    CHECK(n.runtime.family == RuntimeFamily::node);
    CHECK(n.runtime.major == 20);
    CHECK(n.runtime.minor == 0);
    CHECK(n.code_dir == dir / "code/node-app");
    CHECK(s.functions.at("node-esm").handler == "src/esm.handlers.main");
    CHECK(s.functions.at("node-esm").runtime.major == 22);
    CHECK(s.functions.at("node-authz").runtime.major == 24);
    const auto& c = s.functions.at("custom");
    CHECK(c.runtime.family == RuntimeFamily::provided);
    CHECK(c.runtime.id == "provided.al2023");
    CHECK(c.memory_mb == 512);
    CHECK(c.handler == "app.handler");  // defaults.handler applies to every function
    const auto& cl = s.functions.at("custom-layer");
    CHECK(cl.runtime.id == "provided.al2");
    CHECK(cl.layers == std::vector<fs::path>{dir / "layers/custom-runtime"});
  }

  SECTION("a REST API") {
    const auto& a = s.apis.at("store");
    CHECK(a.name == "store");
    CHECK(a.type == ApiType::rest);
    CHECK(a.port == 8701);
    CHECK(a.timeout_ms == 10000);
    CHECK(a.api_id == stable_id("full-stack/store"));
    CHECK(a.binary_media_types == std::vector<std::string>{"image/png", "application/octet-stream"});
    CHECK_FALSE(a.cors);
    REQUIRE(a.routes.size() == 6);

    const auto& list = route(a, "GET /items");
    CHECK(list.method == "GET");
    CHECK(list.path == "/items");
    CHECK(list.target.function == "py-direct");
    CHECK(list.target.qualifier == "${stageVariables.alias}");
    CHECK(list.payload_format == "1.0");
    CHECK_FALSE(list.api_key_required);
    CHECK(list.authorizer.empty());
    CHECK_FALSE(list.timeout_ms);
    CHECK_FALSE(list.throttle);

    const auto& item = route(a, "GET /items/{id}");
    CHECK(item.target.function == "py-direct");
    CHECK(item.target.qualifier == "live");
    CHECK(item.api_key_required);
    CHECK(item.authorizer == "token-auth");
    CHECK(item.timeout_ms == 5000);
    REQUIRE(item.throttle);
    CHECK(item.throttle->rate == Approx(10));
    CHECK(item.throttle->burst == 20);

    const auto& tags = route(a, "POST /items/{id}/tags");  // written with a trailing slash
    CHECK(tags.path == "/items/{id}/tags");
    CHECK(tags.target.qualifier == "canary");
    CHECK(tags.authorizer == "req-auth");
    CHECK(route(a, "DELETE /items/{id}").authorizer.empty());  // "none"
    CHECK(route(a, "DELETE /items/{id}").target.qualifier == "7");
    CHECK(route(a, "ANY /{proxy+}").target.function == "custom");
    CHECK(route(a, "ANY /{proxy+}").target.qualifier.empty());
    CHECK(route(a, "ANY /{proxy+}").method == "ANY");
    CHECK(route(a, "GET /").path == "/");
    CHECK(route(a, "GET /").target.qualifier == "$LATEST");

    REQUIRE(a.stages.size() == 2);
    const auto& dev = a.stages.at("dev");
    CHECK(dev.name == "dev");
    CHECK(dev.variables == std::map<std::string, std::string>{{"alias", "beta"}, {"env", "dev"}});
    REQUIRE(dev.throttle);
    CHECK(dev.throttle->rate == Approx(100.5));
    CHECK(dev.throttle->burst == 200);
    REQUIRE(dev.route_throttles.size() == 2);
    CHECK(dev.route_throttles.at("GET /items").rate == Approx(5));
    CHECK(dev.route_throttles.at("POST /items/{id}/tags").burst == 1);
    const auto& prod = a.stages.at("prod");
    CHECK_FALSE(prod.throttle);
    CHECK(prod.variables.at("url") == "https://example.com/a?b=c&d=e#f,g~h");

    const auto& tok = a.authorizers.at("token-auth");
    CHECK(tok.name == "token-auth");
    CHECK(tok.type == AuthorizerType::token);
    CHECK(tok.function == "authz");
    CHECK(tok.identity_sources == std::vector<std::string>{"method.request.header.Authorization"});
    CHECK(tok.identity_validation_expression == "^(allow|deny)$");
    CHECK(tok.ttl_s == 60);
    CHECK(tok.payload_format == "1.0");
    const auto& req = a.authorizers.at("req-auth");
    CHECK(req.type == AuthorizerType::request);
    CHECK(req.ttl_s == 0);
    CHECK(req.identity_sources == std::vector<std::string>{"method.request.header.X-Tenant",
                                                           "method.request.querystring.tenant", "stageVariables.env",
                                                           "context.identity.sourceIp"});
  }

  SECTION("an HTTP API") {
    const auto& a = s.apis.at("web");
    CHECK(a.type == ApiType::http);
    CHECK_FALSE(a.port);
    CHECK(a.timeout_ms == 30000);
    CHECK(a.api_id == stable_id("full-stack/web"));
    CHECK(a.binary_media_types.empty());
    REQUIRE(a.cors);
    CHECK(a.cors->allow_origins == std::vector<std::string>{"https://app.example.com", "http://localhost:3000"});
    CHECK(a.cors->allow_methods == std::vector<std::string>{"GET", "POST"});
    CHECK(a.cors->allow_headers == std::vector<std::string>{"content-type", "authorization"});
    CHECK(a.cors->expose_headers == std::vector<std::string>{"x-request-id"});
    CHECK(a.cors->max_age == 600);
    CHECK(a.cors->allow_credentials);

    CHECK(route(a, "GET /me").payload_format == "2.0");
    CHECK(route(a, "GET /me").authorization_scopes == std::vector<std::string>{"profile", "email"});
    CHECK(route(a, "POST /orders").payload_format == "1.0");
    const auto& def = route(a, "$default");
    CHECK(def.method.empty());
    CHECK(def.path.empty());
    CHECK(def.target.function == "node-fn");
    CHECK(def.payload_format == "2.0");

    REQUIRE(a.stages.size() == 2);
    CHECK(a.stages.count("$default"));
    CHECK(a.stages.at("beta").variables.at("flag") == "on");
    CHECK(a.stages.at("beta").throttle->burst == 4);

    const auto& jwt = a.authorizers.at("jwt-auth");
    CHECK(jwt.type == AuthorizerType::jwt);
    CHECK(jwt.function.empty());
    CHECK(jwt.identity_sources == std::vector<std::string>{"$request.header.Authorization"});
    CHECK(jwt.jwt.issuer == "https://auth.example.com/");
    CHECK(jwt.jwt.audience == std::vector<std::string>{"web-client", "mobile-client"});
    REQUIRE(jwt.jwt.jwks_file);
    CHECK(*jwt.jwt.jwks_file == dir / "jwt/jwks.json");
    CHECK(jwt.jwt.jwks_inline.empty());
    const auto& lam = a.authorizers.at("lambda-auth");
    CHECK(lam.type == AuthorizerType::request);
    CHECK(lam.function == "node-authz");
    CHECK(lam.identity_sources == std::vector<std::string>{"$request.header.Authorization"});
    CHECK(lam.payload_format == "2.0");
    CHECK(lam.simple_responses);
    CHECK(lam.ttl_s == 30);
    const auto& v1 = a.authorizers.at("v1-auth");
    CHECK(v1.payload_format == "1.0");
    CHECK_FALSE(v1.simple_responses);
    CHECK(v1.identity_sources.empty());
  }

  SECTION("an HTTP API without stages gets $default; inline JWKS is kept as JSON") {
    const auto& a = s.apis.at("public");
    REQUIRE(a.stages.size() == 1);
    CHECK(a.stages.at("$default").name == "$default");
    CHECK(a.stages.at("$default").variables.empty());
    const auto& j = a.authorizers.at("inline-jwt");
    CHECK(j.jwt.audience == std::vector<std::string>{"api"});  // a single string reads as a list
    CHECK(j.identity_sources == std::vector<std::string>{"$request.querystring.token"});
    CHECK_FALSE(j.jwt.jwks_file);
    auto jwks = nlohmann::json::parse(j.jwt.jwks_inline);
    REQUIRE(jwks["keys"].is_array());
    CHECK(jwks["keys"][0]["kty"] == "oct");
    CHECK(jwks["keys"][0]["k"] == "c2VjcmV0");
  }

  SECTION("API keys") {
    const auto& partner = s.api_keys.at("partner");
    CHECK(partner.name == "partner");
    CHECK(partner.value == "partner-key-0123456789abcdef");
    CHECK(partner.enabled);
    CHECK(partner.id.size() == 10);
    const auto& internal = s.api_keys.at("internal");
    CHECK(internal.value.size() == 40);
    CHECK(internal.value == stable_id("full-stack/api-keys/internal/value", 40));
    CHECK(internal.id == stable_id("full-stack/api-keys/internal"));
    CHECK(internal.enabled);
    CHECK_FALSE(s.api_keys.at("retired").enabled);
  }

  SECTION("usage plans") {
    const auto& gold = s.usage_plans.at("gold");
    CHECK(gold.name == "gold");
    CHECK(gold.stages == std::vector<std::pair<std::string, std::string>>{{"store", "dev"}, {"store", "prod"}});
    REQUIRE(gold.throttle);
    CHECK(gold.throttle->rate == Approx(50));
    CHECK(gold.throttle->burst == 100);
    REQUIRE(gold.quota);
    CHECK(gold.quota->limit == 10000);
    CHECK(gold.quota->period == QuotaPeriod::week);
    CHECK(gold.quota->offset == 1);
    CHECK(gold.keys == std::vector<std::string>{"partner", "internal"});
    REQUIRE(gold.route_throttles.size() == 1);
    CHECK(gold.route_throttles.at("store/prod/GET /items/{id}").burst == 6);
    const auto& legacy = s.usage_plans.at("legacy");
    CHECK_FALSE(legacy.throttle);
    CHECK(legacy.quota->period == QuotaPeriod::day);
    CHECK(legacy.quota->offset == 0);
  }

  SECTION("event sources") {
    REQUIRE(s.event_sources.size() == 2);
    const auto& e = s.event_sources.at("orders-in");
    CHECK((e.function == "py-direct" && e.qualifier == "live"));
    CHECK((e.batch_size == 50 && e.batching_window_s == 2 && e.report_batch_item_failures && e.enabled));
    // filters: a mapping and a JSON string, both kept as compact JSON text (FilterCriteria's Pattern)
    CHECK(e.max_concurrency == 4);
    REQUIRE(e.filters.size() == 2);
    CHECK(e.filters[0] == R"({"body":{"kind":["order"],"total":[{"numeric":[">",0]}]}})");
    CHECK(e.filters[1] == R"({"body":[{"prefix":"PING "}]})");
    CHECK(s.event_sources.at("paused").filters.empty());
    const auto& paused = s.event_sources.at("paused");
    CHECK((paused.batch_size == 10 && !paused.enabled && paused.queue_arn.ends_with("later.fifo")));
  }
  SECTION("schedules") {
    REQUIRE(s.schedules.size() == 3);
    const auto& r = s.schedules.at("refresh-cache");
    CHECK(r.function == "py-direct");
    CHECK(r.qualifier == "live");
    CHECK(r.expression.kind == ScheduleExpression::Kind::rate);
    CHECK(r.expression.rate == std::chrono::minutes(5));
    CHECK(r.input == std::optional<std::string>(R"({"refresh":true})"));
    CHECK(r.enabled);
    const auto& w = s.schedules.at("weekday-report");
    CHECK(w.qualifier == "beta");
    CHECK(w.expression.kind == ScheduleExpression::Kind::cron);
    CHECK(w.description == "every quarter hour of the working day (UTC)");
    CHECK_FALSE(w.input);
    CHECK_FALSE(s.schedules.at("month-end").enabled);
    CHECK(s.schedules.at("month-end").expression.cron.last_day);
  }
}

TEST_CASE("valid-full.json gives the same model as valid-full.yaml", "[stack][valid][json]") {
  Stack yaml = must_load(load_fixture("valid-full.yaml"));
  Stack json = must_load(load_fixture("valid-full.json"));
  CHECK(json.source == fixtures() / "valid-full.json");
  CHECK(describe(json) == describe(yaml));
}

TEST_CASE("design-example.yaml (the DESIGN.md example) loads cleanly", "[stack][valid]") {
  auto result = load_fixture("design-example.yaml");
  Stack s = must_load(result);
  CHECK(result.problems.empty());
  CHECK(s.name == "watchlist");
  CHECK(s.region == "eu-west-3");
  CHECK(s.account_id == "123456789012");
  const auto& list = s.functions.at("movies-list");
  CHECK(list.package == "core");
  CHECK(list.code_dir == fixtures() / "design-example/src");
  CHECK(list.runtime.id == "python3.12");
  CHECK(list.memory_mb == 128);
  CHECK(list.timeout_s == 3);
  CHECK(list.reserved_concurrency == 10);
  CHECK(list.environment.at("TABLE_NAME") == "movies");
  CHECK(list.aliases.at("sandbox").version == "$LATEST");
  CHECK(list.aliases.at("production").version == "3");
  CHECK(list.aliases.at("production").additional->first == "4");
  CHECK(list.aliases.at("production").additional->second == Approx(0.1));
  CHECK(s.functions.at("movies-parser").runtime.family == RuntimeFamily::provided);
  CHECK(s.functions.at("movies-parser").code_dir == fixtures() / "design-example/parser");
  const auto& store = s.apis.at("store");
  CHECK(store.type == ApiType::rest);
  CHECK(store.timeout_ms == 29000);
  CHECK(store.stages.size() == 2);
  CHECK(store.stages.at("production").variables.at("environment") == "production");
  CHECK(store.api_id.size() == 10);
  CHECK(s.api_keys.at("ci").value.size() == 40);
}

TEST_CASE("valid-minimal.yaml: built-in defaults", "[stack][valid]") {
  Stack s = must_load(load_fixture("valid-minimal.yaml"));
  CHECK(s.region == "us-east-1");
  CHECK(s.account_id == "123456789012");
  const auto& f = s.functions.at("hello");
  CHECK(f.memory_mb == 128);
  CHECK(f.timeout_s == 3);
  CHECK(f.environment.empty());
  CHECK(f.async.max_retry_attempts == 2);
  CHECK(f.async.max_event_age_s == 21600);
  const auto& api = s.apis.at("api");
  CHECK(api.timeout_ms == 30000);
  CHECK_FALSE(api.port);
  CHECK(api.stages.size() == 1);
  CHECK(api.stages.count("$default"));
  CHECK(api.routes.at(0).payload_format == "2.0");
}

TEST_CASE("defaults apply to functions that lack them; the function wins", "[stack][valid][defaults]") {
  Stack s = must_load(load(R"(
name: defaults-test
defaults:
  runtime: nodejs18.x
  memory: 512
  timeout: 20
  handler: index.handler
  environment: {A: from-defaults, B: from-defaults}
  logging: {format: JSON}
functions:
  plain: {code: code/node-app}
  own:
    runtime: python3.9
    handler: app.handler
    code: code/python-app
    memory: 128
    timeout: 1
    environment: {B: from-function, C: "3"}
    logging: {format: Text}
)"));
  CHECK(s.functions.at("plain").logging == LoggingSpec{"JSON", "", ""});
  CHECK(s.functions.at("own").logging == LoggingSpec{"Text", "", ""});
  const auto& plain = s.functions.at("plain");
  CHECK(plain.runtime.id == "nodejs18.x");
  CHECK(plain.memory_mb == 512);
  CHECK(plain.timeout_s == 20);
  CHECK(plain.handler == "index.handler");
  CHECK(plain.environment == std::map<std::string, std::string>{{"A", "from-defaults"}, {"B", "from-defaults"}});
  const auto& own = s.functions.at("own");
  CHECK(own.runtime.id == "python3.9");
  CHECK(own.runtime.minor == 9);
  CHECK(own.memory_mb == 128);
  CHECK(own.timeout_s == 1);
  CHECK(own.handler == "app.handler");
  CHECK(own.environment ==
        std::map<std::string, std::string>{{"A", "from-defaults"}, {"B", "from-function"}, {"C", "3"}});
}

TEST_CASE("scalars are read as written", "[stack][valid]") {
  Stack s = must_load(load(R"(
name: scalars
account_id: "000000000042"
functions:
  f:
    runtime: python3.12
    handler: app.handler
    code: code/python-app
    environment:
      FLOAT: 1.50
      BIG: 123456789012345678901234567890
      BOOL: true
      YES: yes
      NULLWORD: "null"
      EMPTY: ""
      QUOTED: "a: b # not a comment"
      BLOCK: |
        two
        lines
)"));
  CHECK(s.account_id == "000000000042");
  const auto& env = s.functions.at("f").environment;
  CHECK(env.at("FLOAT") == "1.50");
  CHECK(env.at("BIG") == "123456789012345678901234567890");
  CHECK(env.at("BOOL") == "true");
  CHECK(env.at("YES") == "yes");
  CHECK(env.at("NULLWORD") == "null");
  CHECK(env.at("EMPTY").empty());
  CHECK(env.at("QUOTED") == "a: b # not a comment");
  CHECK(env.at("BLOCK") == "two\nlines\n");
}

TEST_CASE("JSON is detected by content, tabs and all", "[stack][valid][json]") {
  std::string text =
      "{\n\t\"name\": \"json-stack\",\n\t\"account_id\": 210987654321,\n\t\"functions\": {\n\t\t\"f\": "
      "{\"runtime\": \"nodejs22.x\", \"code\": \"code/node-app\", \"handler\": \"index.handler\", "
      "\"memory\": 2048, \"environment\": {\"N\": 1.0e3, \"S\": \"caf\\u00e9\"}}\n\t}\n}\n";
  Stack s = must_load(load_text(text, "stack.json", fixtures()));
  CHECK(s.name == "json-stack");
  CHECK(s.account_id == "210987654321");
  CHECK(s.functions.at("f").memory_mb == 2048);
  CHECK(s.functions.at("f").environment.at("N") == "1.0e3");
  CHECK(s.functions.at("f").environment.at("S") == "caf\xc3\xa9");
}

TEST_CASE("YAML flow style at the top level is still YAML", "[stack][valid]") {
  Stack s = must_load(load("{name: flow, region: ap-southeast-2}"));
  CHECK(s.name == "flow");
  CHECK(s.region == "ap-southeast-2");
}

TEST_CASE("YAML anchors and aliases share settings", "[stack][valid]") {
  Stack s = must_load(load(R"(
name: anchors
functions:
  a: &common
    runtime: python3.12
    handler: app.handler
    code: code/python-app
    environment: &env {TABLE: t}
  b: *common
  c:
    runtime: python3.12
    handler: app.handler
    code: code/python-app
    environment: *env
)"));
  CHECK(s.functions.at("b").environment.at("TABLE") == "t");
  CHECK(s.functions.at("b").name == "b");
  CHECK(s.functions.at("c").environment.at("TABLE") == "t");
}

TEST_CASE("CRLF line endings and a BOM are fine", "[stack][valid]") {
  std::string text = "\xef\xbb\xbfname: crlf\r\nregion: us-west-2\r\n";
  Stack s = must_load(load(text));
  CHECK(s.name == "crlf");
  CHECK(s.region == "us-west-2");
}

TEST_CASE("api ids and key values are stable and AWS-shaped", "[stack][valid][ids]") {
  Stack one = must_load(
      load("name: one\napis:\n  a: {type: http, routes: {}}\n  b: {type: http, routes: {}}\napi_keys: {k: {}}\n"));
  Stack again = must_load(
      load("name: one\napis:\n  a: {type: http, routes: {}}\n  b: {type: http, routes: {}}\napi_keys: {k: {}}\n"));
  Stack other = must_load(load("name: two\napis:\n  a: {type: http, routes: {}}\napi_keys: {k: {}}\n"));
  const std::string& id = one.apis.at("a").api_id;
  CHECK(id.size() == 10);
  for (char c : id) CHECK(((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')));
  CHECK(id == again.apis.at("a").api_id);
  CHECK(id != one.apis.at("b").api_id);
  CHECK(id != other.apis.at("a").api_id);
  CHECK(id == stable_id("one/a"));
  CHECK(one.api_keys.at("k").value == again.api_keys.at("k").value);
  CHECK(one.api_keys.at("k").value != other.api_keys.at("k").value);
  CHECK(one.api_keys.at("k").id.size() == 10);
}

TEST_CASE("handler files are found where the runtimes look", "[stack][valid][code]") {
  TempDir tmp;
  tmp.write("app/pkg/sub/__init__.py", "def handler(e, c): pass\n");
  tmp.write("app/mod.py", "def handler(e, c): pass\n");
  tmp.write("layer1/python/lib/python3.11/site-packages/vendored.py", "def handler(e, c): pass\n");
  tmp.write("layer2/python/inlayer/deep.py", "def handler(e, c): pass\n");
  tmp.write("node/lib/util.cjs", "exports.a = {b: {c: () => 1}};\n");
  tmp.write("node/esm.mjs", "export const h = () => 1;\n");
  tmp.write("custom/readme.txt", "no bootstrap here\n");
  tmp.write("runtime-layer/bootstrap", "#!/bin/sh\n", true);
  Stack s = must_load(load_text(R"(
name: handlers
functions:
  package-init: {runtime: python3.11, code: app, handler: pkg.sub.handler}
  package-init-slash: {runtime: python3.11, code: app, handler: pkg/sub.handler}
  plain: {runtime: python3.11, code: app, handler: mod.handler}
  site-packages: {runtime: python3.11, code: app, handler: vendored.handler, layers: [layer1]}
  layer-python: {runtime: python3.11, code: app, handler: inlayer.deep.handler, layers: [layer1, layer2]}
  node-nested-export: {runtime: nodejs20.x, code: node, handler: lib/util.a.b.c}
  node-esm: {runtime: nodejs20.x, code: node, handler: esm.h}
  custom-from-layer: {runtime: provided.al2023, code: custom, layers: [runtime-layer]}
)",
                                "stack.yaml", tmp.path()));
  CHECK(s.functions.at("site-packages").layers == std::vector<fs::path>{tmp.path() / "layer1"});
  CHECK(s.functions.at("custom-from-layer").handler.empty());
}

TEST_CASE("warnings do not fail the load", "[stack][valid][warnings]") {
  auto r = load_fixture("warnings-stage-variables.yaml");
  REQUIRE(r.ok());
  CHECK(errors(r) == 0);
  CHECK(warnings(r) == 5);
  REQUIRE_WARNING(r, "apis.shop.routes[\"GET /orders\"]",
                  "stage 'qa' does not define the stage variable alias used by target "
                  "\"orders:${stageVariables.alias}\"",
                  12);
  REQUIRE_WARNING(r, "apis.shop.routes[\"GET /orders\"]",
                  "through stage 'prod' target \"orders:${stageVariables.alias}\" resolves to \"orders:gamma\"", 12);
  REQUIRE_WARNING(r, "apis.shop.routes[\"GET /orders/{id}\"]", "there is no function \"orders-v3\"", 13);
  REQUIRE_WARNING(r, "apis.shop.routes[\"POST /orders\"]",
                  "no usage plan with keys covers stages dev, prod, qa; every request there will get 403 Forbidden",
                  14);
  REQUIRE_WARNING(r, "apis.web.routes[\"GET /orders\"]", "stage '$default' does not define the stage variable alias",
                  22);
  CHECK(r.stack->apis.at("shop").routes.size() == 3);
  std::string text = format_report(r, "w.yaml");
  CHECK(text.find("w.yaml:12: warning: apis.shop.routes[\"GET /orders\"]: ") != std::string::npos);
  CHECK(text.find("0 errors, 5 warnings") != std::string::npos);
}

TEST_CASE("a plan's route throttles without a plan throttle are warned about", "[stack][valid][warnings]") {
  // CreateUsagePlan refuses per-method throttles on a plan without a throttle of its own
  // ("Can not define fine grain throttling if usage plan throttle is not defined.").
  const std::string head = R"(name: t
functions:
  fn: {runtime: python3.11, code: code/python-app, handler: app.handler}
apis:
  shop:
    type: rest
    routes: {GET /x: {function: fn, api_key_required: true}}
    stages: {dev: {}}
api_keys:
  k: {value: k-0123456789abcdefghij}
usage_plans:
  p:
    stages: [shop/dev]
    keys: [k]
)";
  auto bare = load(head + "    route_throttles:\n      shop/dev/GET /x: {rate: 1, burst: 2}\n");
  REQUIRE(bare.ok());
  CHECK(warnings(bare) == 1);
  REQUIRE_WARNING(bare, "usage_plans.p.route_throttles",
                  "route_throttles without a throttle of the plan's own: API Gateway refuses that at deploy", 15);
  auto with_throttle = load(head + "    throttle: {rate: 5, burst: 10}\n"
                                   "    route_throttles:\n      shop/dev/GET /x: {rate: 1, burst: 2}\n");
  REQUIRE(with_throttle.ok());
  CHECK(warnings(with_throttle) == 0);
}
