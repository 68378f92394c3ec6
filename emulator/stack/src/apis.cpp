// APIs: type, port, timeouts, binary media types, CORS, stages and their
// throttles; routes and authorizers have their own files.
#include <algorithm>
#include <climits>

#include "schema.hpp"

namespace sluice::stack::detail {

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
    if (r)
      t.rate = *r;
    else
      ok = false;
  } else {
    c_.missing(v, "rate", "steady requests per second");
    ok = false;
  }
  if (auto x = f->get("burst")) {
    if (auto b = c_.integer(*x, 0, INT_MAX))
      t.burst = static_cast<int>(*b);
    else
      ok = false;
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
    if (auto s = c_.string(i, "a string"))
      out.push_back(*s);
    else
      ok = false;
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
  if (!valid_name(name, 128))
    c_.error(v, "API name " + sluice::quoted(name) + " must be 1 to 128 letters, digits, '-' or '_'");
  auto f = c_.fields(v,
                     {"type", "port", "binary_media_types", "api_key_source", "cors", "timeout_ms", "routes", "stages",
                      "authorizers"},
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
  if (name_ok_)
    api.api_id = stable_id(stack_.name + "/" + name);
  else
    api.api_id = stable_id("/" + name);

  if (auto x = f->get("port"))
    if (auto p = c_.integer(*x, 0, 65535))
      if (*p != 0) api.port = static_cast<int>(*p);  // 0 = pick a free port at serve time
  if (auto x = f->get("timeout_ms"))
    if (auto t = c_.integer(*x, 50, max_timeout)) api.timeout_ms = static_cast<int>(*t);

  if (auto x = f->get("binary_media_types")) {
    if (http)
      c_.error(*x, "binary_media_types applies to REST APIs only; HTTP APIs base64-encode binary bodies by themselves");
    else
      read_binary_media_types(*x, api);
  }
  if (auto x = f->get("api_key_source")) {
    if (http)
      c_.error(*x, "api_key_source applies to REST APIs only; HTTP APIs have no API keys");
    else if (auto s = c_.choice(*x, {"HEADER", "AUTHORIZER"}, "API key source"))
      api.api_key_source = *s;
  }
  if (auto x = f->get("cors")) {
    if (rest)
      c_.error(*x,
               "cors applies to HTTP APIs only; in a REST API with proxy integrations the function returns the "
               "Access-Control-* headers itself (and OPTIONS needs its own route)");
    else
      api.cors = cors(*x);
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

void Loader::read_stages(const Fields& api_fields, ApiSpec& api, ApiInfo& info,
                         std::vector<std::pair<std::string, View>>& deferred) {
  const bool rest = info.type == ApiType::rest, http = info.type == ApiType::http;
  const View* sv = api_fields.get("stages");
  if (!sv) {
    if (http) {
      api.stages["$default"] = StageSpec{"$default", {}, std::nullopt, {}};
      info.stage_names.insert("$default");
    } else if (rest) {
      c_.error(api_fields.self,
               "a REST API needs at least one stage, e.g. stages: {dev: {variables: {env: dev}}}; "
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
            c_.error(vv,
                     "stage variable values are at most 512 characters; this one has " + std::to_string(val.size()));
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

void Loader::read_binary_media_types(const View& v, ApiSpec& api) {
  auto list = string_list(v, "a list of media types such as image/png");
  if (!list) return;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string& m = (*list)[i];
    auto slash = m.find('/');
    bool good = slash != std::string::npos && slash > 0 && slash + 1 < m.size() &&
                chars_in(m.substr(0, slash), media_char) && chars_in(m.substr(slash + 1), media_char);
    if (good)
      api.binary_media_types.push_back(m);
    else
      c_.error(c_.item(v, i), "expected a media type such as \"image/png\" or \"*/*\", found " + sluice::quoted(m));
  }
}

std::optional<CorsSpec> Loader::cors(const View& v, bool function_url) {
  auto cf = c_.fields(
      v, {"allow_origins", "allow_methods", "allow_headers", "expose_headers", "max_age", "allow_credentials"},
      "a mapping of CORS settings", true);
  if (!cf) return std::nullopt;
  CorsSpec cors;
  // A single value reads as a one-item list; problems point at the item when there is a list.
  auto each = [&](const View& y, std::string_view expected, auto&& take) {
    if (auto l = string_list(y, expected, true))
      for (std::size_t i = 0; i < l->size(); ++i) take((*l)[i], y.seq() ? c_.item(y, i) : y);
  };
  if (auto y = cf->get("allow_origins"))
    each(*y, "a list of origins such as https://example.com or \"*\"", [&](const std::string& o, const View& at) {
      if (o == "*" || o.find("://") != std::string::npos)
        cors.allow_origins.push_back(o);
      else
        c_.error(at, "expected an origin such as \"https://example.com\" or \"*\", found " + sluice::quoted(o));
    });
  if (auto y = cf->get("allow_methods")) {
    // Lambda takes no OPTIONS for a function URL (the URL answers preflights itself).
    std::vector<std::string> allowed{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "*"};
    if (!function_url) allowed.insert(allowed.end() - 1, "OPTIONS");
    each(*y, "a list of HTTP methods", [&](const std::string& m, const View& at) {
      if (std::find(allowed.begin(), allowed.end(), m) != allowed.end())
        cors.allow_methods.push_back(m);
      else if (function_url && m == "OPTIONS")
        c_.error(at, "a function URL's allow_methods takes GET, PUT, POST, DELETE, HEAD, PATCH or \"*\", as "
                     "Lambda does: the URL answers OPTIONS preflights itself");
      else
        c_.error(at, with_choices("unknown method " + sluice::quoted(m), m, allowed, "allowed"));
    });
  }
  if (auto y = cf->get("allow_headers"))
    if (auto l = string_list(*y, "a list of header names", true)) cors.allow_headers = *l;
  if (auto y = cf->get("expose_headers"))
    if (auto l = string_list(*y, "a list of header names", true)) cors.expose_headers = *l;
  if (auto y = cf->get("max_age"))
    if (auto n = c_.integer(*y, 0, 86400)) cors.max_age = static_cast<int>(*n);
  if (auto y = cf->get("allow_credentials"))
    if (auto b = c_.boolean(*y)) cors.allow_credentials = *b;
  // HTTP APIs refuse the pair; Lambda accepts it for a function URL and answers each request
  // with its own Origin and Access-Control-Allow-Credentials (recorded: LeanerCloud/CUDly#390).
  if (!function_url && cors.allow_credentials &&
      std::find(cors.allow_origins.begin(), cors.allow_origins.end(), "*") != cors.allow_origins.end())
    c_.error(v,
             "allow_credentials: true cannot be combined with allow_origins \"*\" (API Gateway and browsers "
             "refuse it); list the origins instead");
  return cors;
}

}  // namespace sluice::stack::detail
