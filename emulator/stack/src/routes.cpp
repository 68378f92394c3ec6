// Routes: "METHOD /path" keys, FUNCTION[:QUALIFIER] targets with stage
// variables, and the per-stage checks of what a target resolves to.
#include <algorithm>

#include "schema.hpp"

namespace sluice::stack::detail {

// ---- route keys --------------------------------------------------------------

std::variant<RouteKey, std::string> parse_route_key(const std::string& text, std::optional<ApiType> type) {
  RouteKey rk;
  if (text == "$default") {
    if (type == ApiType::rest)
      return std::string(
          "the $default route exists only in HTTP APIs; a REST API catches everything with "
          "\"ANY /{proxy+}\"");
    rk.key = rk.shape = "$default";
    return rk;
  }
  auto sp = text.find(' ');
  if (sp == std::string::npos)
    return "route " + sluice::quoted(text) + " must be \"METHOD /path\" (e.g. \"GET /movies/{id}\")" +
           (type == ApiType::rest ? std::string() : std::string(" or \"$default\""));
  std::string method = text.substr(0, sp);
  std::string path(trim(std::string_view(text).substr(sp + 1)));
  if (std::find(route_methods.begin(), route_methods.end(), method) == route_methods.end()) {
    std::string msg = "route " + sluice::quoted(text) + " has an unknown method " + squoted(method);
    std::string near = nearest(method, route_methods);
    if (!near.empty()) msg += "; did you mean " + squoted(near) + "?";
    msg += (near.empty() ? "; methods: " : " Methods: ") + list_words(route_methods);
    return msg;
  }
  if (path.empty() || path[0] != '/')
    return "route " + sluice::quoted(text) + ": the path must start with '/' (e.g. \"" + method + " /movies\")";
  std::vector<std::string> segs = split(std::string_view(path).substr(1), '/');
  if (!segs.empty() && segs.back().empty()) segs.pop_back();  // a trailing slash is ignored, as on AWS
  std::set<std::string> params;
  std::vector<std::string> shape;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const std::string& s = segs[i];
    if (s.empty()) return "route " + sluice::quoted(text) + ": the path has an empty segment ('//')";
    if (s.front() == '{') {
      if (s.back() != '}' || s.size() < 3)
        return "route " + sluice::quoted(text) + ": path parameter " + sluice::quoted(s) +
               " must be a whole segment like {id}";
      std::string name = s.substr(1, s.size() - 2);
      bool greedy = !name.empty() && name.back() == '+';
      if (greedy) name.pop_back();
      if (name.empty() || !chars_in(name, word_char))
        return "route " + sluice::quoted(text) + ": path parameter names are letters, digits and '_', found " +
               sluice::quoted(s);
      if (greedy && i + 1 != segs.size())
        return "route " + sluice::quoted(text) + ": the greedy parameter {" + name + "+} must be the last segment";
      if (!params.insert(name).second)
        return "route " + sluice::quoted(text) + ": the path parameter " + squoted(name) + " appears twice";
      shape.push_back(greedy ? "{+}" : "{}");
      continue;
    }
    if (!chars_in(s, path_char))
      return "route " + sluice::quoted(text) + ": segment " + sluice::quoted(s) +
             " has characters a path may not hold (a parameter must be a whole segment like {id})";
    shape.push_back(s);
  }
  rk.method = method;
  rk.segments = segs;
  rk.path = "/" + join(segs, "/");
  rk.key = method + " " + rk.path;
  rk.shape = method + " /" + join(shape, "/");
  return rk;
}

// ---- route targets -----------------------------------------------------------

std::variant<ParsedTarget, std::string> parse_target(const std::string& text) {
  ParsedTarget pt;
  if (text.empty()) return std::string("the target is empty; expected FUNCTION or FUNCTION:QUALIFIER");
  // Mark which characters are literal and which belong to ${stageVariables.x}.
  std::string function, qualifier;
  bool in_qualifier = false;
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, 2, "${") == 0) {
      auto close = text.find('}', i);
      const std::string prefix = "${stageVariables.";
      if (close == std::string::npos || text.compare(i, prefix.size(), prefix) != 0)
        return "malformed stage variable reference in " + sluice::quoted(text) + "; write ${stageVariables.NAME}";
      std::string name = text.substr(i + prefix.size(), close - i - prefix.size());
      if (name.empty() || !chars_in(name, word_char))
        return "stage variable name " + sluice::quoted(name) + " in " + sluice::quoted(text) +
               " must be letters, digits or '_'";
      pt.variables.push_back(name);
      (in_qualifier ? pt.qualifier_static : pt.function_static) = false;
      (in_qualifier ? qualifier : function) += text.substr(i, close - i + 1);
      i = close + 1;
      continue;
    }
    char c = text[i];
    if (c == ':') {
      if (in_qualifier)
        return "target " + sluice::quoted(text) + " has more than one ':'; expected FUNCTION or FUNCTION:QUALIFIER";
      in_qualifier = true;
      ++i;
      continue;
    }
    bool ok = in_qualifier ? (name_char(static_cast<unsigned char>(c)) || c == '$')
                           : name_char(static_cast<unsigned char>(c));
    if (!ok)
      return "target " + sluice::quoted(text) + " has the character " + sluice::quoted(std::string(1, c)) +
             "; function names are letters, digits, '-' and '_' (FUNCTION[:QUALIFIER], either may use "
             "${stageVariables.NAME})";
    (in_qualifier ? qualifier : function).push_back(c);
    ++i;
  }
  if (function.empty()) return "target " + sluice::quoted(text) + " names no function";
  if (in_qualifier && qualifier.empty())
    return "target " + sluice::quoted(text) +
           " ends with ':'; give a qualifier ($LATEST, a version number or an alias)";
  if (pt.function_static && function.size() > 64)
    return "function name in target " + sluice::quoted(text) + " is longer than 64 characters";
  pt.target.function = function;
  pt.target.qualifier = qualifier;
  return pt;
}

std::string substitute(const std::string& text, const std::map<std::string, std::string>& vars) {
  std::string out;
  const std::string prefix = "${stageVariables.";
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, prefix.size(), prefix) == 0) {
      auto close = text.find('}', i);
      std::string name = text.substr(i + prefix.size(), close - i - prefix.size());
      auto it = vars.find(name);
      out += it == vars.end() ? "" : it->second;
      i = close + 1;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

void Loader::read_routes(const View& v, ApiSpec& api, ApiInfo& info) {
  auto entries = c_.named(v, "a mapping of \"METHOD /path\" route keys to targets", true);
  if (!entries) return;
  if (entries->empty())
    c_.warning(v, "the API has no routes; every request will get " +
                      std::string(info.type == ApiType::rest ? "403 Missing Authentication Token" : "404 Not Found"));
  std::map<std::string, std::string> shapes;  // shape -> first key
  std::map<std::string, int> lines;           // normalised key -> line
  for (const auto& [key, rv] : *entries) {
    if (c_.stopped()) return;
    read_route(key, rv, api, info, shapes, lines);
  }
  // REST resources: one variable child per path level (as on AWS: "A sibling ({id}) of this
  // resource already has a variable path part -- only one is allowed").
  if (info.type == ApiType::rest) {
    std::map<std::string, std::pair<std::string, std::string>> variable_child;  // parent -> (segment, route)
    for (const auto& r : api.routes) {
      std::string parent;
      for (const auto& seg : split(std::string_view(r.path).substr(1), '/')) {
        if (seg.empty()) break;
        if (seg.front() == '{') {
          auto [it, inserted] = variable_child.emplace(parent, std::make_pair(seg, r.key));
          if (!inserted && it->second.first != seg) {
            auto at = route_views_.find(api.name + "/" + r.key);
            if (at != route_views_.end())
              c_.error(at->second, "path part " + seg + " conflicts with " + it->second.first + " of route " +
                                       sluice::quoted(it->second.second) +
                                       ": a REST resource has at most one variable child (use the same parameter "
                                       "name at the same place)");
          }
        }
        parent += "/" + seg;
      }
    }
  }
}

void Loader::read_route(const std::string& key, const View& v, ApiSpec& api, ApiInfo& info,
                        std::map<std::string, std::string>& shapes, std::map<std::string, int>& lines) {
  const bool rest = info.type == ApiType::rest, http = info.type == ApiType::http;
  auto parsed = parse_route_key(key, info.type);
  if (auto err = std::get_if<std::string>(&parsed)) {
    c_.error(v, *err);
    return;
  }
  const RouteKey& rk = std::get<RouteKey>(parsed);
  if (auto it = lines.find(rk.key); it != lines.end()) {
    c_.error(v, "route " + sluice::quoted(key) + " is the same route as the one on line " + std::to_string(it->second) +
                    " (a trailing slash does not make a different route)");
    return;
  }
  if (auto it = shapes.find(rk.shape); it != shapes.end()) {
    c_.error(v, "route " + sluice::quoted(key) + " conflicts with route " + sluice::quoted(it->second) +
                    ": they match the same requests (parameter names do not make routes different)");
    return;
  }
  lines[rk.key] = v.line;
  shapes[rk.shape] = key;
  info.route_keys.insert(rk.key);
  route_views_[api.name + "/" + rk.key] = v;

  RouteSpec route;
  route.key = rk.key;
  route.method = rk.method;
  route.path = rk.path;
  route.payload_format = http ? "2.0" : "1.0";

  View target_at = v;
  std::optional<std::string> target_text;
  if (v.scalar()) {
    target_text = v.text();
  } else if (v.map()) {
    auto f = c_.fields(v,
                       {"function", "api_key_required", "authorizer", "authorization_scopes", "payload_format",
                        "timeout_ms", "throttle"},
                       "a target (FUNCTION[:QUALIFIER]) or a mapping {function, ...}");
    if (!f) return;
    if (auto x = f->get("function")) {
      target_at = *x;
      target_text = c_.string(*x, "a target FUNCTION[:QUALIFIER]");
    } else {
      c_.missing(v, "function", "the target FUNCTION[:QUALIFIER]");
    }
    if (auto x = f->get("api_key_required")) {
      if (http)
        c_.error(*x, "api_key_required applies to REST APIs only; HTTP APIs have no API keys");
      else if (auto b = c_.boolean(*x))
        route.api_key_required = *b;
    }
    if (auto x = f->get("authorizer")) {
      if (auto s = c_.string(*x, "an authorizer name or \"none\"")) {
        if (*s != "none") {
          if (info.authorizer_names.count(*s)) {
            route.authorizer = *s;
          } else {
            std::vector<std::string> names = keys_of_set(info.authorizer_names);
            c_.error(*x, with_choices("unknown authorizer " + sluice::quoted(*s), *s, names,
                                      "this API's authorizers (or \"none\")",
                                      "this API defines no authorizers (\"none\" means no authorizer)"));
          }
        }
      }
    }
    if (auto x = f->get("authorization_scopes")) {
      if (auto scopes = string_list(*x, "a list of OAuth scopes", true)) {
        auto t = info.authorizer_types.find(route.authorizer);
        if (route.authorizer.empty())
          c_.error(*x, "authorization_scopes needs a jwt authorizer on the route ('authorizer: NAME')");
        else if (t != info.authorizer_types.end() && t->second != AuthorizerType::jwt)
          c_.error(*x, "authorization_scopes applies to jwt authorizers only; " + sluice::quoted(route.authorizer) +
                           " is a " + (t->second == AuthorizerType::token ? "token" : "request") + " authorizer");
        else
          route.authorization_scopes = *scopes;
      }
    }
    if (auto x = f->get("payload_format")) {
      if (rest)
        c_.error(*x, "payload_format applies to HTTP APIs only; REST APIs always send payload 1.0");
      else if (auto p = payload_format(*x))
        route.payload_format = *p;
    }
    if (auto x = f->get("timeout_ms"))
      if (auto t = c_.integer(*x, 50, http ? 30000 : 29000)) route.timeout_ms = static_cast<int>(*t);
    if (auto x = f->get("throttle")) route.throttle = throttle(*x);
  } else {
    c_.error(v, "expected a target (FUNCTION[:QUALIFIER]) or a mapping {function, ...}, found " + Checker::found(v));
    return;
  }
  if (!target_text) {
    api.routes.push_back(std::move(route));
    return;
  }
  auto pt = parse_target(*target_text);
  if (auto err = std::get_if<std::string>(&pt)) {
    c_.error(target_at, *err);
  } else {
    const ParsedTarget& t = std::get<ParsedTarget>(pt);
    route.target = t.target;
    check_target(target_at, t, api);
  }
  api.routes.push_back(std::move(route));
}

std::optional<std::string> Loader::static_qualifier_error(const std::string& function, const std::string& qualifier) {
  if (qualifier.empty() || qualifier == "$LATEST" || positive_version(qualifier)) return std::nullopt;
  auto it = alias_names_.find(function);
  if (it != alias_names_.end() && it->second.count(qualifier)) return std::nullopt;
  std::vector<std::string> aliases = it == alias_names_.end() ? std::vector<std::string>{} : keys_of_set(it->second);
  return with_choices("qualifier " + sluice::quoted(qualifier) + " is not $LATEST, a version number or an alias of " +
                          squoted(function),
                      qualifier, aliases, "its aliases", "it has no aliases");
}

void Loader::check_target(const View& at, const ParsedTarget& pt, const ApiSpec& api) {
  const RouteTarget& t = pt.target;
  if (pt.function_static) {
    if (!function_names_.count(t.function)) {
      std::vector<std::string> names = keys_of_set(function_names_);
      c_.error(at, with_choices("unknown function " + sluice::quoted(t.function), t.function, names, "functions",
                                "no functions are defined"));
      return;
    }
    if (pt.qualifier_static)
      if (auto err = static_qualifier_error(t.function, t.qualifier)) {
        c_.error(at, *err);
        return;
      }
  }
  if (pt.variables.empty()) return;
  // Stage variables: each stage must define them, and what they resolve to should exist.
  std::string text = t.function + (t.qualifier.empty() ? "" : ":" + t.qualifier);
  for (const auto& [sname, stage] : api.stages) {
    std::vector<std::string> missing;
    for (const auto& var : pt.variables)
      if (!stage.variables.count(var) && std::find(missing.begin(), missing.end(), var) == missing.end())
        missing.push_back(var);
    if (!missing.empty()) {
      c_.warning(at, "stage " + squoted(sname) + " does not define the stage variable" +
                         (missing.size() > 1 ? "s " : " ") + list_words(missing) + " used by target " +
                         sluice::quoted(text) + "; requests through that stage will fail");
      continue;
    }
    std::string fn = substitute(t.function, stage.variables);
    std::string q = substitute(t.qualifier, stage.variables);
    std::string resolved = fn + (q.empty() ? "" : ":" + q);
    if (!function_names_.count(fn)) {
      c_.warning(at, "through stage " + squoted(sname) + " target " + sluice::quoted(text) + " resolves to " +
                         sluice::quoted(resolved) + ", but there is no function " + sluice::quoted(fn) +
                         "; requests through that stage will fail");
      continue;
    }
    if (auto err = static_qualifier_error(fn, q))
      c_.warning(at, "through stage " + squoted(sname) + " target " + sluice::quoted(text) + " resolves to " +
                         sluice::quoted(resolved) + ", but " + *err);
  }
}

}  // namespace sluice::stack::detail
