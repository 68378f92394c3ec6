// Authorizers: token and request (Lambda) and jwt, with their identity
// sources, caching, payload formats and signing keys.
#include "schema.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

namespace sluice::stack::detail {

// ---- the tree as JSON (inline JWKS) ------------------------------------------

nlohmann::json to_json(const Node* n) {
  if (!n || n->kind == Node::Kind::null) return nullptr;
  if (n->kind == Node::Kind::scalar) {
    if (!n->plain) return n->text;
    const std::string& t = n->text;
    if (t == "true" || t == "True" || t == "TRUE") return true;
    if (t == "false" || t == "False" || t == "FALSE") return false;
    if (t == "null" || t == "~" || t == "Null" || t == "NULL") return nullptr;
    if (detail::looks_integer(t) && t.size() < 18) return std::stoll(t);
    if (detail::looks_number(t)) {
      double d = std::strtod(t.c_str(), nullptr);
      if (std::isfinite(d)) return d;
    }
    return t;
  }
  if (n->kind == Node::Kind::seq) {
    auto arr = nlohmann::json::array();
    for (const auto& i : n->items) arr.push_back(to_json(i.get()));
    return arr;
  }
  auto obj = nlohmann::json::object();
  for (const auto& e : n->entries) obj[e.key] = to_json(e.value.get());
  return obj;
}

void Loader::read_authorizers(const View& v, ApiSpec& api, ApiInfo& info) {
  auto entries = c_.named(v, "a mapping of authorizer names to their settings", true);
  if (!entries) return;
  for (const auto& [name, av] : *entries) info.authorizer_names.insert(name);
  for (const auto& [name, av] : *entries) {
    if (c_.stopped()) return;
    read_authorizer(name, av, api, info);
  }
}

void Loader::read_authorizer(const std::string& name, const View& v, ApiSpec& api, ApiInfo& info) {
  if (!valid_name(name, 128) || name == "none") {
    c_.error(v, "authorizer name " + sluice::quoted(name) +
                    " must be 1 to 128 letters, digits, '-' or '_' (and not \"none\", which routes use to mean no "
                    "authorizer)");
    return;
  }
  auto f = c_.fields(v,
                     {"type", "function", "identity_source", "identity_validation_expression", "ttl",
                      "payload_format", "simple_responses", "issuer", "audience", "jwks_file", "jwks"},
                     "a mapping with the authorizer's settings (type, function, ...)");
  if (!f) return;
  const bool rest = info.type == ApiType::rest, http = info.type == ApiType::http;
  AuthorizerSpec a;
  a.name = name;
  std::optional<AuthorizerType> type;
  if (auto x = f->get("type")) {
    std::vector<std::string> allowed = rest   ? std::vector<std::string>{"token", "request"}
                                       : http ? std::vector<std::string>{"request", "jwt"}
                                              : std::vector<std::string>{"token", "request", "jwt"};
    if (x->scalar() && std::find(allowed.begin(), allowed.end(), x->text()) != allowed.end()) {
      const std::string& t = x->text();
      type = t == "token" ? AuthorizerType::token : t == "request" ? AuthorizerType::request : AuthorizerType::jwt;
    } else if (x->scalar() && (x->text() == "jwt" || x->text() == "token")) {
      c_.error(*x, "authorizer type " + sluice::quoted(x->text()) + " is not available in " +
                       (rest ? "a REST API" : "an HTTP API") + "; " + (rest ? "REST" : "HTTP") +
                       " APIs allow: " + list_words(allowed));
    } else {
      c_.choice(*x, allowed, std::string(rest ? "REST" : http ? "HTTP" : "") + " authorizer type");
    }
  } else {
    c_.missing(v, "type", rest ? "token or request" : http ? "request or jwt" : "token, request or jwt");
  }
  if (!type) return;
  a.type = *type;
  info.authorizer_types[name] = *type;

  // Which keys each kind takes; the rest are reported as not applying.
  std::vector<std::string> takes;
  std::string kind;
  switch (*type) {
    case AuthorizerType::token:
      takes = {"type", "function", "identity_source", "identity_validation_expression", "ttl"};
      kind = "a token authorizer";
      break;
    case AuthorizerType::request:
      takes = {"type", "function", "identity_source", "ttl"};
      if (http) takes.insert(takes.end(), {"payload_format", "simple_responses"});
      kind = std::string(rest ? "a REST" : "an HTTP") + " request authorizer";
      break;
    case AuthorizerType::jwt:
      takes = {"type", "identity_source", "issuer", "audience", "jwks_file", "jwks"};
      kind = "a jwt authorizer";
      break;
  }
  bool applicable_ok = true;
  for (const auto& [key, kv] : f->by_key) {
    if (std::find(takes.begin(), takes.end(), key) == takes.end()) {
      c_.error(kv, "'" + key + "' does not apply to " + kind + " (it takes: " + list_words(takes) + ")");
      applicable_ok = false;
    }
  }
  (void)applicable_ok;

  if (*type != AuthorizerType::jwt) {
    if (auto x = f->get("function")) {
      if (auto fn = c_.string(*x, "a function name")) {
        if (function_names_.count(*fn)) {
          a.function = *fn;
        } else {
          std::vector<std::string> names = keys_of_set(function_names_);
          c_.error(*x, with_choices("unknown function " + sluice::quoted(*fn), *fn, names, "functions",
                                    "no functions are defined"));
        }
      }
    } else {
      c_.missing(v, "function", "the Lambda function that decides");
    }
    if (auto x = f->get("ttl"))
      if (auto t = c_.integer(*x, 0, 3600)) a.ttl_s = static_cast<int>(*t);
  }

  // Identity sources.
  if (auto x = f->get("identity_source")) {
    if (auto sources = string_list(*x, "an identity source or a list of them", true)) {
      for (std::size_t i = 0; i < sources->size(); ++i) {
        const std::string& s = (*sources)[i];
        View at = x->seq() ? c_.item(*x, i) : *x;
        auto rest_of = [&](std::string_view prefix) -> std::optional<std::string> {
          if (starts_with(s, prefix)) return s.substr(prefix.size());
          return std::nullopt;
        };
        bool good = false;
        bool header = false;
        if (rest) {
          if (auto h = rest_of("method.request.header.")) good = header = !h->empty() && chars_in(*h, header_char);
          else if (auto q = rest_of("method.request.querystring.")) good = !q->empty() && chars_in(*q, header_char);
          else if (auto sv = rest_of("stageVariables.")) good = !sv->empty() && chars_in(*sv, word_char);
          else if (auto cx = rest_of("context.")) good = !cx->empty() && chars_in(*cx, [](unsigned char c) { return word_char(c) || c == '.'; });
          if (!good)
            c_.error(at, "expected a REST identity source such as method.request.header.Authorization, "
                         "method.request.querystring.token, stageVariables.NAME or context.NAME, found " + sluice::quoted(s));
        } else {
          if (auto h = rest_of("$request.header.")) good = header = !h->empty() && chars_in(*h, header_char);
          else if (auto q = rest_of("$request.querystring.")) good = !q->empty() && chars_in(*q, header_char);
          else if (auto sv = rest_of("$stageVariables.")) good = !sv->empty() && chars_in(*sv, word_char);
          else if (auto cx = rest_of("$context.")) good = !cx->empty() && chars_in(*cx, [](unsigned char c) { return word_char(c) || c == '.'; });
          if (!good)
            c_.error(at, "expected an HTTP API identity source such as $request.header.Authorization, "
                         "$request.querystring.token, $stageVariables.NAME or $context.NAME, found " + sluice::quoted(s));
        }
        if (!good) continue;
        if (*type == AuthorizerType::token && !header) {
          c_.error(at, "a token authorizer reads its token from one header (method.request.header.NAME), found " + sluice::quoted(s));
          continue;
        }
        if (*type == AuthorizerType::jwt && !(starts_with(s, "$request.header.") || starts_with(s, "$request.querystring."))) {
          c_.error(at, "a jwt authorizer reads the token from a header or query string ($request.header.Authorization), found " + sluice::quoted(s));
          continue;
        }
        a.identity_sources.push_back(s);
      }
      if ((*type == AuthorizerType::token || *type == AuthorizerType::jwt) && sources->size() != 1)
        c_.error(*x, std::string(*type == AuthorizerType::token ? "a token" : "a jwt") +
                         " authorizer takes exactly one identity source, found " + std::to_string(sources->size()));
    }
  } else if (*type == AuthorizerType::token) {
    a.identity_sources = {"method.request.header.Authorization"};
  } else if (*type == AuthorizerType::jwt) {
    a.identity_sources = {"$request.header.Authorization"};
  }
  if (*type == AuthorizerType::request && a.ttl_s > 0 && a.identity_sources.empty() && !f->has("identity_source"))
    c_.error(v, "a request authorizer with caching (ttl " + std::to_string(a.ttl_s) +
                    (f->has("ttl") ? "" : " by default") +
                    ") needs at least one identity_source to build the cache key; add one (e.g. " +
                    (rest ? "method.request.header.Authorization" : "$request.header.Authorization") +
                    ") or set ttl: 0");

  if (auto x = f->get("identity_validation_expression"); x && *type == AuthorizerType::token) {
    if (auto s = c_.string(*x, "a regular expression")) {
      int depth = 0, max_depth = 0;
      for (char ch : *s) {
        if (ch == '(') max_depth = std::max(max_depth, ++depth);
        if (ch == ')') --depth;
      }
      if (s->size() > 1024 || max_depth > 50) {
        c_.error(*x, "identity_validation_expression is too large (at most 1024 characters, 50 nested groups)");
      } else {
        try {
          std::regex re(*s, std::regex::ECMAScript);
          a.identity_validation_expression = *s;
        } catch (const std::regex_error& e) {
          c_.error(*x, "identity_validation_expression " + sluice::quoted(*s) + " is not a valid regular expression (" +
                           e.what() + ")");
        }
      }
    }
  }

  a.payload_format = rest ? "1.0" : "2.0";
  if (*type == AuthorizerType::request && http) {
    if (auto x = f->get("payload_format"))
      if (auto p = payload_format(*x)) a.payload_format = *p;
    if (auto x = f->get("simple_responses"))
      if (auto b = c_.boolean(*x)) {
        a.simple_responses = *b;
        if (*b && a.payload_format != "2.0")
          c_.error(*x, "simple_responses needs payload_format \"2.0\" (payload 1.0 authorizers return an IAM policy)");
      }
  }

  if (*type == AuthorizerType::jwt) {
    if (auto x = f->get("issuer")) {
      if (auto s = c_.string(*x, "the issuer URL (the token's iss claim)")) {
        if (s->empty()) c_.error(*x, "the issuer is empty; give the token's iss value, e.g. https://auth.example.com/");
        else a.jwt.issuer = *s;
      }
    } else {
      c_.missing(v, "issuer", "the expected iss claim, e.g. https://cognito-idp.REGION.amazonaws.com/POOL_ID");
    }
    if (auto x = f->get("audience")) {
      if (auto l = string_list(*x, "a list of audiences (aud claim values)", true)) {
        if (l->empty()) c_.error(*x, "audience is empty; list at least one accepted aud value");
        a.jwt.audience = *l;
      }
    } else {
      c_.missing(v, "audience", "a list of accepted aud values (client ids)");
    }
    const View* file = f->get("jwks_file");
    const View* inline_keys = f->get("jwks");
    if (file && inline_keys) {
      c_.error(v, "set either 'jwks_file' or 'jwks', not both");
    } else if (!file && !inline_keys) {
      c_.error(v, "a jwt authorizer needs the signing keys: 'jwks_file' (a JWKS JSON file) or 'jwks' (inline "
                  "{keys: [...]})");
    } else if (file) {
      if (auto s = c_.string(*file, "a JWKS file path")) {
        fs::path p = resolve(*s);
        std::error_code ec;
        if (!fs::is_regular_file(p, ec)) {
          c_.error(*file, "jwks_file " + sluice::quoted(*s) + " does not exist or is not a file (looked for " + p.string() + ")");
        } else {
          std::ifstream in(p, std::ios::binary);
          std::stringstream ss;
          ss << in.rdbuf();
          auto doc = detail::parse_json(ss.str());
          const Node* root = doc.root.get();
          bool good = root && root->kind == Node::Kind::map;
          bool has_keys = false;
          if (good)
            for (const auto& e : root->entries)
              if (e.key == "keys" && e.value && e.value->kind == Node::Kind::seq) has_keys = true;
          if (!good || !has_keys) {
            c_.error(*file, "jwks_file " + p.string() + " is not a JWKS (a JSON object with a \"keys\" list)" +
                                (doc.problems.empty() ? "" : ": " + doc.problems.front().message));
          } else {
            fs::path canon = fs::canonical(p, ec);
            a.jwt.jwks_file = ec ? p : canon;
          }
        }
      }
    } else {
      auto kf = c_.fields(*inline_keys, {"keys"}, "a JWKS mapping {keys: [...]}");
      if (kf) {
        if (auto k = kf->get("keys")) {
          if (auto items = c_.list(*k, "a list of JSON Web Keys")) {
            bool good = true;
            for (const auto& item : *items)
              if (!item.map()) {
                c_.error(item, "expected a JSON Web Key (a mapping with kty, kid, ...), found " + Checker::found(item));
                good = false;
              }
            if (good) a.jwt.jwks_inline = to_json(inline_keys->n).dump();
          }
        } else {
          c_.missing(*inline_keys, "keys", "the list of JSON Web Keys");
        }
      }
    }
  }
  api.authorizers[name] = std::move(a);
}

}  // namespace sluice::stack::detail
