// HTTP API CORS (AG:http-api-cors): the gateway answers preflights itself and
// owns the CORS headers of every response.
//
// Allowed origins are exact origins, "*" (any), or the documented scheme
// prefixes "https://*" and "http://*"; AWS documents no other wildcard form, so
// "https://*.example.com" only matches itself, as on AWS. The response names
// the request's origin, or "*" when only "*" allowed it; with credentials
// allowed it always names the origin, since browsers refuse "*" with
// credentials (AWS refuses that configuration outright).
// A "*" in allowMethods/allowHeaders is answered with what the preflight asked
// for, which browsers accept with or without credentials [U].
#include "sluice/gateway/cors.hpp"

#include "sluice/common/util.hpp"

#include <optional>

namespace sluice::gateway {
namespace {

bool contains_star(const std::vector<std::string>& v) {
  for (const auto& s : v)
    if (trim(s) == "*") return true;
  return false;
}

std::string join_list(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    auto t = trim(s);
    if (t.empty()) continue;
    if (!out.empty()) out += ',';
    out.append(t);
  }
  return out;
}

// Request values echoed into response headers must be writable as they are.
bool echoable(std::string_view v) {
  for (unsigned char c : v)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

// The Access-Control-Allow-Origin value for this origin, or nullopt when not allowed.
std::optional<std::string> allowed_origin(const stack::CorsSpec& cors, std::string_view origin) {
  origin = trim(origin);
  if (origin.empty() || !echoable(origin)) return std::nullopt;
  bool star = false;
  for (const auto& configured : cors.allow_origins) {
    std::string_view o = trim(configured);
    while (o.size() > 1 && o.back() == '/') o.remove_suffix(1);
    if (o == "*") {
      star = true;
      continue;
    }
    if (ends_with(o, "://*")) {
      auto prefix = o.substr(0, o.size() - 1);  // "https://"
      if (origin.size() > prefix.size() && iequals(origin.substr(0, prefix.size()), prefix))
        return std::string(origin);
      continue;
    }
    if (iequals(o, origin)) return std::string(origin);
  }
  if (star) return cors.allow_credentials ? std::string(origin) : std::string("*");
  return std::nullopt;
}

bool method_allowed(const stack::CorsSpec& cors, std::string_view method) {
  if (cors.allow_methods.empty()) return true;  // nothing configured: origin-only answer
  for (const auto& m : cors.allow_methods) {
    auto t = trim(m);
    if (t == "*" || iequals(t, method)) return true;
  }
  return false;
}

bool is_cors_header(std::string_view name) {
  constexpr std::string_view prefix = "access-control-";
  return name.size() >= prefix.size() && iequals(name.substr(0, prefix.size()), prefix);
}

}  // namespace

bool is_preflight(const Request& req) {
  if (req.method != "OPTIONS") return false;
  auto origin = req.header("Origin");
  auto method = req.header("Access-Control-Request-Method");
  return origin && !trim(*origin).empty() && method && !trim(*method).empty();
}

Response preflight_response(const stack::CorsSpec& cors, const Request& req) {
  Response r;
  r.status = 204;
  auto origin = req.header("Origin");
  if (!origin) return r;
  auto allow = allowed_origin(cors, *origin);
  if (!allow) return r;
  std::string requested_method(trim(req.header("Access-Control-Request-Method").value_or("")));
  if (!echoable(requested_method) || !method_allowed(cors, requested_method)) return r;

  r.add("Access-Control-Allow-Origin", *allow);
  if (cors.allow_credentials) r.add("Access-Control-Allow-Credentials", "true");
  if (!cors.allow_methods.empty()) {
    std::string methods = contains_star(cors.allow_methods) ? requested_method : join_list(cors.allow_methods);
    if (!methods.empty()) r.add("Access-Control-Allow-Methods", std::move(methods));
  }
  if (!cors.allow_headers.empty()) {
    std::string headers;
    if (contains_star(cors.allow_headers)) {
      // Echo what was asked for (all header values, as one list).
      for (const auto& v : req.header_values("Access-Control-Request-Headers")) {
        auto t = trim(v);
        if (t.empty() || !echoable(t)) continue;
        if (!headers.empty()) headers += ',';
        headers.append(t);
      }
    } else {
      headers = join_list(cors.allow_headers);
    }
    if (!headers.empty()) r.add("Access-Control-Allow-Headers", std::move(headers));
  }
  if (cors.max_age) r.add("Access-Control-Max-Age", std::to_string(*cors.max_age));
  return r;
}

void apply_cors(const stack::CorsSpec& cors, const Request& req, Response& res) {
  std::erase_if(res.headers, [](const Header& h) { return is_cors_header(h.name); });
  auto origin = req.header("Origin");
  if (!origin) return;
  auto allow = allowed_origin(cors, *origin);
  if (!allow) return;
  res.add("Access-Control-Allow-Origin", *allow);
  if (cors.allow_credentials) res.add("Access-Control-Allow-Credentials", "true");
  std::string expose = join_list(cors.expose_headers);
  if (!expose.empty()) res.add("Access-Control-Expose-Headers", std::move(expose));
}

}  // namespace sluice::gateway
