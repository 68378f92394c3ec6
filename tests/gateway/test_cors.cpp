// sluice/gateway/cors.hpp: HTTP API CORS (AG:http-api-cors).
#include "sluice/gateway/cors.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using namespace sluice::gateway;

namespace {

Request preflight(const char* origin, const char* method, const char* headers = nullptr) {
  Request r;
  r.method = "OPTIONS";
  r.path = "/pets";
  if (origin) r.headers.push_back({"Origin", origin});
  if (method) r.headers.push_back({"Access-Control-Request-Method", method});
  if (headers) r.headers.push_back({"Access-Control-Request-Headers", headers});
  return r;
}

Request simple(const char* origin) {
  Request r;
  r.method = "GET";
  r.path = "/pets";
  if (origin) r.headers.push_back({"Origin", origin});
  return r;
}

stack::CorsSpec spec(std::vector<std::string> origins) {
  stack::CorsSpec c;
  c.allow_origins = std::move(origins);
  c.allow_methods = {"GET", "POST", "OPTIONS"};
  c.allow_headers = {"authorization", "content-type"};
  c.expose_headers = {"x-request-id", "date"};
  c.max_age = 300;
  return c;
}

bool has_cors_headers(const Response& r) {
  for (const auto& h : r.headers)
    if (h.name.rfind("Access-Control-", 0) == 0 || h.name.rfind("access-control-", 0) == 0) return true;
  return false;
}

}  // namespace

TEST_CASE("a preflight is OPTIONS with Origin and Access-Control-Request-Method", "[cors]") {
  CHECK(is_preflight(preflight("https://app.example.com", "POST")));
  CHECK_FALSE(is_preflight(preflight(nullptr, "POST")));
  CHECK_FALSE(is_preflight(preflight("https://app.example.com", nullptr)));
  CHECK_FALSE(is_preflight(preflight("", "POST")));
  CHECK_FALSE(is_preflight(preflight("https://app.example.com", "  ")));
  auto get = preflight("https://app.example.com", "POST");
  get.method = "GET";
  CHECK_FALSE(is_preflight(get));
  Request lower;
  lower.method = "OPTIONS";
  lower.headers = {{"origin", "https://a.com"}, {"access-control-request-method", "GET"}};
  CHECK(is_preflight(lower));
}

TEST_CASE("preflight for an allowed origin answers 204 with the configuration", "[cors]") {
  auto cors = spec({"https://app.example.com"});
  auto r = preflight_response(cors, preflight("https://app.example.com", "POST", "content-type"));
  CHECK(r.status == 204);
  CHECK(r.body.empty());
  CHECK(r.get("Access-Control-Allow-Origin") == std::optional<std::string>("https://app.example.com"));
  CHECK(r.get("Access-Control-Allow-Methods") == std::optional<std::string>("GET,POST,OPTIONS"));
  CHECK(r.get("Access-Control-Allow-Headers") == std::optional<std::string>("authorization,content-type"));
  CHECK(r.get("Access-Control-Max-Age") == std::optional<std::string>("300"));
  CHECK_FALSE(r.get("Access-Control-Allow-Credentials"));
  CHECK_FALSE(r.get("Access-Control-Expose-Headers"));  // only on actual responses

  // Origins compare case-insensitively; a configured trailing slash is tolerated.
  CHECK(preflight_response(spec({"https://App.Example.com/"}), preflight("https://app.example.com", "GET"))
            .get("Access-Control-Allow-Origin") == std::optional<std::string>("https://app.example.com"));
}

TEST_CASE("preflight for a denied origin or method carries no CORS headers", "[cors]") {
  auto cors = spec({"https://app.example.com"});
  auto r = preflight_response(cors, preflight("https://evil.example.com", "POST"));
  CHECK(r.status == 204);
  CHECK_FALSE(has_cors_headers(r));

  r = preflight_response(cors, preflight("https://app.example.com", "DELETE"));
  CHECK(r.status == 204);
  CHECK_FALSE(has_cors_headers(r));

  r = preflight_response(cors, preflight("http://app.example.com", "GET"));  // another scheme, another origin
  CHECK_FALSE(has_cors_headers(r));

  r = preflight_response(cors, preflight(nullptr, "GET"));
  CHECK_FALSE(has_cors_headers(r));

  stack::CorsSpec none;
  CHECK_FALSE(has_cors_headers(preflight_response(none, preflight("https://app.example.com", "GET"))));
}

TEST_CASE("origin forms AWS documents: exact, *, https://*, http://*", "[cors]") {
  auto allow = [](std::vector<std::string> origins, const char* origin) {
    return preflight_response(spec(std::move(origins)), preflight(origin, "GET")).get("Access-Control-Allow-Origin");
  };
  CHECK(allow({"*"}, "https://anything.test") == std::optional<std::string>("*"));
  CHECK(allow({"https://*"}, "https://anything.test") == std::optional<std::string>("https://anything.test"));
  CHECK_FALSE(allow({"https://*"}, "http://anything.test"));
  CHECK(allow({"http://*"}, "http://localhost:5173") == std::optional<std::string>("http://localhost:5173"));
  CHECK_FALSE(allow({"http://*"}, "https://localhost:5173"));
  // Not a documented form: a subdomain wildcard only matches itself, as on AWS.
  CHECK_FALSE(allow({"https://*.example.com"}, "https://app.example.com"));
  CHECK(allow({"https://a.com", "https://b.com"}, "https://b.com") == std::optional<std::string>("https://b.com"));
  CHECK(allow({"*", "https://b.com"}, "https://b.com") == std::optional<std::string>("https://b.com"));
  CHECK_FALSE(allow({}, "https://b.com"));
}

TEST_CASE("credentials: the origin is named, never *", "[cors]") {
  auto cors = spec({"*"});
  cors.allow_credentials = true;
  auto r = preflight_response(cors, preflight("https://app.example.com", "GET"));
  CHECK(r.get("Access-Control-Allow-Origin") == std::optional<std::string>("https://app.example.com"));
  CHECK(r.get("Access-Control-Allow-Credentials") == std::optional<std::string>("true"));

  Response res;
  apply_cors(cors, simple("https://app.example.com"), res);
  CHECK(res.get("Access-Control-Allow-Origin") == std::optional<std::string>("https://app.example.com"));
  CHECK(res.get("Access-Control-Allow-Credentials") == std::optional<std::string>("true"));
}

TEST_CASE("* in allowMethods and allowHeaders answers what the preflight asked", "[cors]") {
  stack::CorsSpec cors;
  cors.allow_origins = {"*"};
  cors.allow_methods = {"*"};
  cors.allow_headers = {"*"};
  auto r = preflight_response(cors, preflight("https://app.example.com", "PATCH", "x-custom, content-type"));
  CHECK(r.get("Access-Control-Allow-Origin") == std::optional<std::string>("*"));
  CHECK(r.get("Access-Control-Allow-Methods") == std::optional<std::string>("PATCH"));
  CHECK(r.get("Access-Control-Allow-Headers") == std::optional<std::string>("x-custom, content-type"));
  CHECK_FALSE(r.get("Access-Control-Max-Age"));

  r = preflight_response(cors, preflight("https://app.example.com", "GET"));
  CHECK_FALSE(r.get("Access-Control-Allow-Headers"));  // nothing asked, nothing to echo

  // Nothing configured for methods: the origin alone is answered.
  stack::CorsSpec origin_only;
  origin_only.allow_origins = {"https://a.com"};
  r = preflight_response(origin_only, preflight("https://a.com", "PUT"));
  CHECK(r.get("Access-Control-Allow-Origin") == std::optional<std::string>("https://a.com"));
  CHECK_FALSE(r.get("Access-Control-Allow-Methods"));
  CHECK_FALSE(r.get("Access-Control-Allow-Headers"));

  // Method names compare case-insensitively.
  CHECK(preflight_response(spec({"*"}), preflight("https://a.com", "post")).get("Access-Control-Allow-Origin"));
}

TEST_CASE("apply_cors replaces the backend's CORS headers", "[cors]") {
  auto cors = spec({"https://app.example.com"});
  Response res;
  res.headers = {{"Content-Type", "application/json"},
                 {"Access-Control-Allow-Origin", "*"},
                 {"access-control-allow-methods", "DELETE"},
                 {"ACCESS-CONTROL-MAX-AGE", "1"},
                 {"X-Other", "kept"}};
  apply_cors(cors, simple("https://app.example.com"), res);
  CHECK(res.get("Access-Control-Allow-Origin") == std::optional<std::string>("https://app.example.com"));
  CHECK(res.get("Access-Control-Expose-Headers") == std::optional<std::string>("x-request-id,date"));
  CHECK_FALSE(res.get("Access-Control-Allow-Methods"));
  CHECK_FALSE(res.get("Access-Control-Max-Age"));
  CHECK_FALSE(res.get("Access-Control-Allow-Credentials"));
  CHECK(res.get("X-Other") == std::optional<std::string>("kept"));
  CHECK(res.get("Content-Type") == std::optional<std::string>("application/json"));
  int origins = 0;
  for (const auto& h : res.headers) origins += h.name == "Access-Control-Allow-Origin";
  CHECK(origins == 1);
}

TEST_CASE("apply_cors: disallowed or missing Origin gets no CORS headers at all", "[cors]") {
  auto cors = spec({"https://app.example.com"});
  Response res;
  res.headers = {{"Access-Control-Allow-Origin", "*"}, {"X-Other", "kept"}};
  apply_cors(cors, simple("https://evil.example.com"), res);
  CHECK_FALSE(has_cors_headers(res));
  CHECK(res.get("X-Other"));

  Response res2;
  res2.headers = {{"Access-Control-Allow-Origin", "*"}};
  apply_cors(cors, simple(nullptr), res2);
  CHECK(res2.headers.empty());
}

TEST_CASE("CORS never crashes on odd values", "[cors]") {
  auto cors = spec({"", " ", "*://*", "://*", "https://*", "\xff"});
  auto writable = [](const Response& r) {
    for (const auto& h : r.headers)
      for (char c : h.name + h.value)
        if (c == '\r' || c == '\n' || c == '\0') return false;
    return true;
  };
  for (const char* origin : {"", " ", "https://", "https:/", "null", "\xff\xfe", "https://a.com\r\nX: y"}) {
    auto r = preflight_response(cors, preflight(origin, "GET", ""));
    CHECK(r.status == 204);
    CHECK(writable(r));
    Response res;
    apply_cors(cors, simple(origin), res);
    CHECK(writable(res));
  }
  stack::CorsSpec star;
  star.allow_origins = {"*"};
  star.allow_methods = {"*"};
  star.allow_headers = {"*"};
  auto r = preflight_response(star, preflight("https://a.com", "GET\r\nX: y", "a\r\nb"));
  CHECK(writable(r));
  r = preflight_response(star, preflight("https://a.com", "GET", "a\r\nb"));
  CHECK(writable(r));
  CHECK(r.get("Access-Control-Allow-Origin"));
  CHECK_FALSE(preflight_response(spec({"https://*"}), preflight("https://", "GET")).get("Access-Control-Allow-Origin"));
}
