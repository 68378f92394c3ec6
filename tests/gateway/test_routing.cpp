// sluice/gateway/routing.hpp: API Gateway's route precedence for REST and HTTP APIs.
#include "sluice/gateway/routing.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace sluice;
using namespace sluice::gateway;

namespace {

stack::RouteSpec route(const std::string& key) {
  stack::RouteSpec r;
  r.key = key;
  if (key != "$default") {
    auto sp = key.find(' ');
    r.method = key.substr(0, sp);
    r.path = key.substr(sp + 1);
  }
  r.target.function = "fn-" + key;
  return r;
}

stack::ApiSpec api_of(stack::ApiType type, const std::vector<std::string>& keys) {
  stack::ApiSpec api;
  api.name = "test";
  api.type = type;
  api.api_id = "abcdef1234";
  for (const auto& k : keys) api.routes.push_back(route(k));
  return api;
}

// The route key that matched, or "" for none.
std::string chosen(const Router& r, std::string_view method, std::string_view path) {
  auto m = r.match(method, path);
  return m.route ? m.route->key : std::string();
}

}  // namespace

TEST_CASE("REST: static beats {param} beats {proxy+}, level by level", "[routing][rest]") {
  auto api = api_of(stack::ApiType::rest, {"GET /movies", "GET /movies/{id}", "GET /movies/top", "ANY /{proxy+}",
                                           "GET /movies/{id}/cast", "GET /movies/{id}/{proxy+}"});
  Router r(api);
  CHECK(chosen(r, "GET", "/movies") == "GET /movies");
  CHECK(chosen(r, "GET", "/movies/top") == "GET /movies/top");
  CHECK(chosen(r, "GET", "/movies/12") == "GET /movies/{id}");
  CHECK(chosen(r, "GET", "/movies/12/cast") == "GET /movies/{id}/cast");
  CHECK(chosen(r, "GET", "/movies/12/crew") == "GET /movies/{id}/{proxy+}");
  CHECK(chosen(r, "GET", "/movies/12/crew/1/2") == "GET /movies/{id}/{proxy+}");
  CHECK(chosen(r, "GET", "/other") == "ANY /{proxy+}");
  CHECK(chosen(r, "POST", "/a/b/c") == "ANY /{proxy+}");
}

TEST_CASE("REST: path parameters, resource path and route key", "[routing][rest]") {
  auto api = api_of(stack::ApiType::rest, {"GET /movies/{id}", "ANY /files/{proxy+}", "GET /u/{user}/p/{post}"});
  Router r(api);
  auto m = r.match("GET", "/movies/12");
  REQUIRE(m.route);
  CHECK(m.resource_path == "/movies/{id}");
  CHECK(m.route_key == "GET /movies/{id}");
  CHECK(m.path_parameters == std::map<std::string, std::string>{{"id", "12"}});

  m = r.match("DELETE", "/files/a/b/c.txt");
  REQUIRE(m.route);
  CHECK(m.resource_path == "/files/{proxy+}");
  CHECK(m.route_key == "ANY /files/{proxy+}");
  CHECK(m.path_parameters == std::map<std::string, std::string>{{"proxy", "a/b/c.txt"}});

  m = r.match("GET", "/u/ann/p/7");
  REQUIRE(m.route);
  CHECK(m.path_parameters == std::map<std::string, std::string>{{"user", "ann"}, {"post", "7"}});

  // Values are taken from the path the router is given (the server passes the decoded path).
  m = r.match("GET", "/movies/a b+c@d");
  REQUIRE(m.route);
  CHECK(m.path_parameters.at("id") == "a b+c@d");
}

TEST_CASE("REST: {proxy+} needs at least one segment and does not match its parent", "[routing][rest]") {
  auto api = api_of(stack::ApiType::rest, {"ANY /{proxy+}", "GET /files/{proxy+}"});
  Router r(api);
  CHECK(chosen(r, "GET", "/") == "");
  // /files exists as a resource (the parent of /files/{proxy+}), without methods: it
  // shadows the root proxy, and neither greedy variable matches it.
  auto parent = r.match("GET", "/files");
  CHECK_FALSE(parent.route);
  CHECK(parent.path_found);
  CHECK(r.match("GET", "/files/x").path_parameters.at("proxy") == "x");

  auto only_files = api_of(stack::ApiType::rest, {"GET /files/{proxy+}"});
  Router r2(only_files);
  auto m = r2.match("GET", "/files");
  CHECK_FALSE(m.route);
  CHECK(m.path_found);  // /files exists as a resource (the parent), with no method
  CHECK(chosen(r2, "GET", "/files/") == "");  // trailing slash ignored: still the parent
}

TEST_CASE("REST: trailing and repeated slashes as the recorded events show", "[routing][rest]") {
  auto api = api_of(stack::ApiType::rest, {"ANY /{proxy+}", "GET /hardcoded"});
  Router r(api);
  // invocation-payload-with-trailing-slash: proxy "proxy-value"
  CHECK(r.match("GET", "/proxy-value/").path_parameters.at("proxy") == "proxy-value");
  // invocation-payload-with-double-slash: inner "//" kept in the proxy value
  CHECK(r.match("GET", "/proxy-value//double-slash").path_parameters.at("proxy") == "proxy-value//double-slash");
  // invocation-payload-with-prepended-slash: leading slashes dropped
  CHECK(r.match("GET", "//proxy-value").path_parameters.at("proxy") == "proxy-value");
  // invocation-hardcoded: "//hardcoded" reaches /hardcoded with no path parameters
  auto m = r.match("GET", "//hardcoded");
  REQUIRE(m.route);
  CHECK(m.route->key == "GET /hardcoded");
  CHECK(m.path_parameters.empty());
  CHECK(chosen(r, "GET", "/hardcoded/") == "GET /hardcoded");
  CHECK(chosen(r, "GET", "/hardcoded///") == "GET /hardcoded");
}

TEST_CASE("REST: an explicit method beats ANY; HEAD is not implied by GET", "[routing][rest]") {
  auto api = api_of(stack::ApiType::rest, {"GET /pets", "ANY /pets", "GET /cats"});
  Router r(api);
  CHECK(chosen(r, "GET", "/pets") == "GET /pets");
  CHECK(chosen(r, "POST", "/pets") == "ANY /pets");
  CHECK(chosen(r, "HEAD", "/pets") == "ANY /pets");
  CHECK(chosen(r, "OPTIONS", "/pets") == "ANY /pets");

  auto m = r.match("HEAD", "/cats");
  CHECK_FALSE(m.route);
  CHECK(m.path_found);
  CHECK(m.resource_path == "/cats");

  // ANY covers the seven methods API Gateway lists, not arbitrary verbs.
  m = r.match("PROPFIND", "/pets");
  CHECK_FALSE(m.route);
  CHECK(m.path_found);
}

TEST_CASE("REST: the resource is chosen before the method (403 rather than falling back)", "[routing][rest]") {
  auto api = api_of(stack::ApiType::rest, {"ANY /{proxy+}", "POST /users", "GET /a/{x}/c"});
  Router r(api);
  auto m = r.match("GET", "/users");
  CHECK_FALSE(m.route);
  CHECK(m.path_found);
  // /a and /a/{x} exist because GET /a/{x}/c needs them; they have no methods.
  m = r.match("GET", "/a/b");
  CHECK_FALSE(m.route);
  CHECK(m.path_found);
  CHECK(m.resource_path == "/a/{x}");
  m = r.match("GET", "/a");
  CHECK_FALSE(m.route);
  CHECK(m.path_found);
  CHECK(chosen(r, "GET", "/a/b/c") == "GET /a/{x}/c");
  CHECK(chosen(r, "GET", "/a/b/d") == "ANY /{proxy+}");  // no child of /a/{x} takes "d": backtrack
}

TEST_CASE("REST: unknown paths are not found; the root resource always exists", "[routing][rest]") {
  auto api = api_of(stack::ApiType::rest, {"GET /movies"});
  Router r(api);
  auto m = r.match("GET", "/nothing");
  CHECK_FALSE(m.route);
  CHECK_FALSE(m.path_found);
  m = r.match("GET", "/");
  CHECK_FALSE(m.route);
  CHECK(m.path_found);

  auto with_root = api_of(stack::ApiType::rest, {"GET /", "GET /movies"});
  Router r2(with_root);
  m = r2.match("GET", "/");
  REQUIRE(m.route);
  CHECK(m.resource_path == "/");
  CHECK(m.route_key == "GET /");
  CHECK(chosen(r2, "GET", "") == "GET /");
}

TEST_CASE("REST: static segments are case-sensitive", "[routing][rest]") {
  auto api = api_of(stack::ApiType::rest, {"GET /Movies"});
  Router r(api);
  CHECK(chosen(r, "GET", "/Movies") == "GET /Movies");
  CHECK(chosen(r, "GET", "/movies") == "");
}

TEST_CASE("HTTP: the reference precedence table", "[routing][http]") {
  // AG:http-api-develop-routes: GET /pets/dog/1 > GET /pets/dog/{id} > GET /pets/{proxy+} > ANY /{proxy+} > $default
  auto api = api_of(stack::ApiType::http,
                    {"$default", "ANY /{proxy+}", "GET /pets/{proxy+}", "GET /pets/dog/{id}", "GET /pets/dog/1"});
  Router r(api);
  struct Row {
    const char* method;
    const char* path;
    const char* key;
  } rows[] = {
      {"GET", "/pets/dog/1", "GET /pets/dog/1"},
      {"GET", "/pets/dog/2", "GET /pets/dog/{id}"},
      {"GET", "/pets/cat/2", "GET /pets/{proxy+}"},
      {"GET", "/pets/dog/1/x", "GET /pets/{proxy+}"},
      {"POST", "/pets/dog/1", "ANY /{proxy+}"},
      {"GET", "/birds", "ANY /{proxy+}"},
      {"DELETE", "/birds/1", "ANY /{proxy+}"},
      {"GET", "/", "$default"},
  };
  for (const auto& row : rows) {
    INFO(row.method << " " << row.path);
    CHECK(chosen(r, row.method, row.path) == row.key);
  }
  auto m = r.match("GET", "/");
  CHECK(m.route_key == "$default");
  CHECK(m.resource_path.empty());
  m = r.match("GET", "/pets/dog/2");
  CHECK(m.route_key == "GET /pets/dog/{id}");
  CHECK(m.resource_path == "/pets/dog/{id}");
  CHECK(m.path_parameters == std::map<std::string, std::string>{{"id", "2"}});
  m = r.match("GET", "/pets/a/b/c");
  CHECK(m.path_parameters == std::map<std::string, std::string>{{"proxy", "a/b/c"}});
}

TEST_CASE("HTTP: full matches beat greedy routes whatever their static prefix", "[routing][http]") {
  auto api = api_of(stack::ApiType::http, {"GET /{a}/{b}/{c}", "GET /x/{proxy+}"});
  Router r(api);
  CHECK(chosen(r, "GET", "/x/y/z") == "GET /{a}/{b}/{c}");
  CHECK(chosen(r, "GET", "/x/y") == "GET /x/{proxy+}");
}

TEST_CASE("HTTP: an explicit method beats ANY on the same path; methods filter first", "[routing][http]") {
  auto api = api_of(stack::ApiType::http, {"ANY /pets/{id}", "GET /pets/{id}", "POST /pets/dog"});
  Router r(api);
  CHECK(chosen(r, "GET", "/pets/1") == "GET /pets/{id}");
  CHECK(chosen(r, "PUT", "/pets/1") == "ANY /pets/{id}");
  CHECK(chosen(r, "POST", "/pets/dog") == "POST /pets/dog");
  CHECK(chosen(r, "GET", "/pets/dog") == "GET /pets/{id}");  // full match by route and method
  CHECK(chosen(r, "HEAD", "/pets/dog") == "ANY /pets/{id}");
}

TEST_CASE("HTTP: no route and no $default means not found", "[routing][http]") {
  auto api = api_of(stack::ApiType::http, {"GET /pets"});
  Router r(api);
  auto m = r.match("GET", "/cats");
  CHECK_FALSE(m.route);
  CHECK(chosen(r, "POST", "/pets") == "");
  CHECK(chosen(r, "HEAD", "/pets") == "");  // HEAD not implied by GET
}

TEST_CASE("HTTP: a trailing slash reaches a greedy route with an empty proxy", "[routing][http]") {
  // A real HTTP API 1.0 event: POST /handler/ on ANY /handler/{proxy+} gave {"proxy": ""}.
  auto api = api_of(stack::ApiType::http, {"ANY /handler/{proxy+}"});
  Router r(api);
  auto m = r.match("POST", "/handler/");
  REQUIRE(m.route);
  CHECK(m.path_parameters == std::map<std::string, std::string>{{"proxy", ""}});
  CHECK(chosen(r, "POST", "/handler") == "");
  CHECK(r.match("POST", "/handler/pero").path_parameters.at("proxy") == "pero");

  auto both = api_of(stack::ApiType::http, {"GET /pets", "GET /pets/{proxy+}"});
  Router r2(both);
  CHECK(chosen(r2, "GET", "/pets/") == "GET /pets");  // a full match still comes first
}

TEST_CASE("HTTP: route keys are printed as AWS prints them", "[routing][http]") {
  auto api = api_of(stack::ApiType::http, {"GET /pets/{id}", "$default"});
  Router r(api);
  CHECK(r.match("GET", "/pets/7").route_key == "GET /pets/{id}");
  CHECK(r.match("PATCH", "/zzz").route_key == "$default");
}

TEST_CASE("routing never crashes on odd paths and methods", "[routing]") {
  auto rest = api_of(stack::ApiType::rest, {"ANY /{proxy+}", "GET /a/{b}", "GET /"});
  auto http = api_of(stack::ApiType::http, {"ANY /{proxy+}", "GET /a/{b}", "$default"});
  Router rr(rest), rh(http);
  std::vector<std::string> paths = {"", "/", "//", "///", "/a", "/a/", "/a//", "a", "a/b", "/%", "/a/{b}",
                                    "/{proxy+}", std::string(10000, '/'), "/" + std::string(100000, 'x'),
                                    std::string("/\0/x", 4), "/\xff\xfe/\x80"};
  std::mt19937 gen(42);
  for (int i = 0; i < 500; ++i) {
    std::string p;
    int n = gen() % 20;
    for (int k = 0; k < n; ++k) p.push_back("/ab{}+%\0"[gen() % 8]);
    paths.push_back(p);
  }
  for (const auto& p : paths)
    for (const char* m : {"GET", "", "ANY", "get", "X"}) {
      (void)rr.match(m, p);
      (void)rh.match(m, p);
    }
  SUCCEED();

  stack::ApiSpec empty;
  Router none(empty);
  CHECK_FALSE(none.match("GET", "/").route);
}
