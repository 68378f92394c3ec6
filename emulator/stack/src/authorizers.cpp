// Authorizers: token and request (Lambda) and jwt, with their identity
// sources, caching, payload formats and signing keys.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "schema.hpp"

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
    if (looks_integer(t) && t.size() < 18) return std::stoll(t);
    if (looks_number(t)) {
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

namespace {

bool context_char(unsigned char c) { return word_char(c) || c == '.'; }

// Checks one identity source's shape for the API type; `header` says whether it names a header.
bool identity_source_ok(const std::string& s, bool rest, bool& header) {
  auto after = [&](std::string_view prefix, bool (*ok)(unsigned char)) {
    return starts_with(s, prefix) && s.size() > prefix.size() && chars_in(s.substr(prefix.size()), ok);
  };
  const char* h = rest ? "method.request.header." : "$request.header.";
  const char* q = rest ? "method.request.querystring." : "$request.querystring.";
  const char* sv = rest ? "stageVariables." : "$stageVariables.";
  const char* cx = rest ? "context." : "$context.";
  header = after(h, header_char);
  return header || after(q, header_char) || after(sv, word_char) || after(cx, context_char);
}

// The keys each kind of authorizer takes.
std::vector<std::string> authorizer_keys(AuthorizerType type, bool http) {
  switch (type) {
    case AuthorizerType::token:
      return {"type", "function", "identity_source", "identity_validation_expression", "ttl"};
    case AuthorizerType::request:
      if (http) return {"type", "function", "identity_source", "ttl", "payload_format", "simple_responses"};
      return {"type", "function", "identity_source", "ttl"};
    case AuthorizerType::jwt:
      break;
  }
  return {"type", "identity_source", "issuer", "audience", "jwks_file", "jwks"};
}

std::string authorizer_kind(AuthorizerType type, bool rest) {
  switch (type) {
    case AuthorizerType::token:
      return "a token authorizer";
    case AuthorizerType::request:
      return std::string(rest ? "a REST" : "an HTTP") + " request authorizer";
    case AuthorizerType::jwt:
      break;
  }
  return "a jwt authorizer";
}

}  // namespace

void Loader::read_authorizer(const std::string& name, const View& v, ApiSpec& api, ApiInfo& info) {
  if (!valid_name(name, 128) || name == "none") {
    c_.error(v, "authorizer name " + sluice::quoted(name) +
                    " must be 1 to 128 letters, digits, '-' or '_' (and not \"none\", which routes use to mean no "
                    "authorizer)");
    return;
  }
  auto f = c_.fields(v,
                     {"type", "function", "identity_source", "identity_validation_expression", "ttl", "payload_format",
                      "simple_responses", "issuer", "audience", "jwks_file", "jwks"},
                     "a mapping with the authorizer's settings (type, function, ...)");
  if (!f) return;
  auto type = authorizer_type(*f, info);
  if (!type) return;
  info.authorizer_types[name] = *type;
  const bool rest = info.type == ApiType::rest, http = info.type == ApiType::http;

  std::vector<std::string> takes = authorizer_keys(*type, http);
  for (const auto& [key, kv] : f->by_key)
    if (std::find(takes.begin(), takes.end(), key) == takes.end())
      c_.error(kv, "'" + key + "' does not apply to " + authorizer_kind(*type, rest) +
                       " (it takes: " + list_words(takes) + ")");

  AuthorizerSpec a;
  a.name = name;
  a.type = *type;
  a.payload_format = rest ? "1.0" : "2.0";
  if (*type == AuthorizerType::jwt) {
    read_jwt(*f, a.jwt);
  } else {
    read_lambda_authorizer(*f, a, info);
  }
  read_identity_sources(*f, a, info);
  api.authorizers[name] = std::move(a);
}

std::optional<AuthorizerType> Loader::authorizer_type(const Fields& f, const ApiInfo& info) {
  const bool rest = info.type == ApiType::rest, http = info.type == ApiType::http;
  const View* x = f.get("type");
  if (!x) {
    c_.missing(f.self, "type", rest ? "token or request" : http ? "request or jwt" : "token, request or jwt");
    return std::nullopt;
  }
  std::vector<std::string> allowed = rest   ? std::vector<std::string>{"token", "request"}
                                     : http ? std::vector<std::string>{"request", "jwt"}
                                            : std::vector<std::string>{"token", "request", "jwt"};
  const std::string& t = x->text();
  if (x->scalar() && std::find(allowed.begin(), allowed.end(), t) != allowed.end())
    return t == "token" ? AuthorizerType::token : t == "request" ? AuthorizerType::request : AuthorizerType::jwt;
  if (x->scalar() && (t == "jwt" || t == "token")) {
    c_.error(*x, "authorizer type " + sluice::quoted(t) + " is not available in " +
                     (rest ? "a REST API" : "an HTTP API") + "; " + (rest ? "REST" : "HTTP") +
                     " APIs allow: " + list_words(allowed));
  } else {
    c_.choice(*x, allowed, std::string(rest ? "REST" : http ? "HTTP" : "") + " authorizer type");
  }
  return std::nullopt;
}

// token and request authorizers: a Lambda function decides, its answer cached for ttl seconds.
void Loader::read_lambda_authorizer(const Fields& f, AuthorizerSpec& a, const ApiInfo& info) {
  if (auto x = f.get("function")) {
    if (auto fn = c_.string(*x, "a function name")) {
      if (function_names_.count(*fn))
        a.function = *fn;
      else
        c_.error(*x, with_choices("unknown function " + sluice::quoted(*fn), *fn, keys_of_set(function_names_),
                                  "functions", "no functions are defined"));
    }
  } else {
    c_.missing(f.self, "function", "the Lambda function that decides");
  }
  if (auto x = f.get("ttl"))
    if (auto t = c_.integer(*x, 0, 3600)) a.ttl_s = static_cast<int>(*t);

  if (auto x = f.get("identity_validation_expression"); x && a.type == AuthorizerType::token) {
    if (auto s = c_.string(*x, "a regular expression")) {
      int depth = 0, max_depth = 0;
      for (char ch : *s) {
        if (ch == '(') max_depth = std::max(max_depth, ++depth);
        if (ch == ')') --depth;
      }
      // std::regex compiles recursively: bound what it is given.
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

  if (a.type == AuthorizerType::request && info.type == ApiType::http) {
    if (auto x = f.get("payload_format"))
      if (auto p = payload_format(*x)) a.payload_format = *p;
    if (auto x = f.get("simple_responses"))
      if (auto b = c_.boolean(*x)) {
        a.simple_responses = *b;
        if (*b && a.payload_format != "2.0")
          c_.error(*x, "simple_responses needs payload_format \"2.0\" (payload 1.0 authorizers return an IAM policy)");
      }
  }
}

void Loader::read_identity_sources(const Fields& f, AuthorizerSpec& a, const ApiInfo& info) {
  const bool rest = info.type == ApiType::rest;
  const View* x = f.get("identity_source");
  if (!x) {
    if (a.type == AuthorizerType::token) a.identity_sources = {"method.request.header.Authorization"};
    if (a.type == AuthorizerType::jwt) a.identity_sources = {"$request.header.Authorization"};
    // AWS builds the cache key from the identity sources: caching needs at least one.
    if (a.type == AuthorizerType::request && a.ttl_s > 0)
      c_.error(f.self, "a request authorizer with caching (ttl " + std::to_string(a.ttl_s) +
                           (f.has("ttl") ? "" : " by default") +
                           ") needs at least one identity_source to build the cache key; add one (e.g. " +
                           (rest ? "method.request.header.Authorization" : "$request.header.Authorization") +
                           ") or set ttl: 0");
    return;
  }
  auto sources = string_list(*x, "an identity source or a list of them", true);
  if (!sources) return;
  for (std::size_t i = 0; i < sources->size(); ++i) {
    const std::string& s = (*sources)[i];
    View at = x->seq() ? c_.item(*x, i) : *x;
    bool header = false;
    if (!identity_source_ok(s, rest, header)) {
      c_.error(at, rest ? "expected a REST identity source such as method.request.header.Authorization, "
                          "method.request.querystring.token, stageVariables.NAME or context.NAME, found " +
                              sluice::quoted(s)
                        : "expected an HTTP API identity source such as $request.header.Authorization, "
                          "$request.querystring.token, $stageVariables.NAME or $context.NAME, found " +
                              sluice::quoted(s));
      continue;
    }
    if (a.type == AuthorizerType::token && !header) {
      c_.error(at, "a token authorizer reads its token from one header (method.request.header.NAME), found " +
                       sluice::quoted(s));
      continue;
    }
    if (a.type == AuthorizerType::jwt &&
        !(starts_with(s, "$request.header.") || starts_with(s, "$request.querystring."))) {
      c_.error(at,
               "a jwt authorizer reads the token from a header or query string ($request.header.Authorization), "
               "found " +
                   sluice::quoted(s));
      continue;
    }
    a.identity_sources.push_back(s);
  }
  if (a.type == AuthorizerType::request && a.ttl_s > 0 && sources->empty())
    c_.error(*x, "a request authorizer with caching (ttl " + std::to_string(a.ttl_s) +
                     ") needs at least one identity_source to build the cache key, or ttl: 0");
  if ((a.type == AuthorizerType::token || a.type == AuthorizerType::jwt) && sources->size() != 1)
    c_.error(*x, std::string(a.type == AuthorizerType::token ? "a token" : "a jwt") +
                     " authorizer takes exactly one identity source, found " + std::to_string(sources->size()));
}

void Loader::read_jwt(const Fields& f, JwtConfig& jwt) {
  if (auto x = f.get("issuer")) {
    if (auto s = c_.string(*x, "the issuer URL (the token's iss claim)")) {
      if (s->empty())
        c_.error(*x, "the issuer is empty; give the token's iss value, e.g. https://auth.example.com/");
      else
        jwt.issuer = *s;
    }
  } else {
    c_.missing(f.self, "issuer", "the expected iss claim, e.g. https://cognito-idp.REGION.amazonaws.com/POOL_ID");
  }
  if (auto x = f.get("audience")) {
    if (auto l = string_list(*x, "a list of audiences (aud claim values)", true)) {
      if (l->empty()) c_.error(*x, "audience is empty; list at least one accepted aud value");
      jwt.audience = *l;
    }
  } else {
    c_.missing(f.self, "audience", "a list of accepted aud values (client ids)");
  }
  const View* file = f.get("jwks_file");
  const View* inline_keys = f.get("jwks");
  if (file && inline_keys) {
    c_.error(f.self, "set either 'jwks_file' or 'jwks', not both");
  } else if (!file && !inline_keys) {
    c_.error(f.self,
             "a jwt authorizer needs the signing keys: 'jwks_file' (a JWKS JSON file) or 'jwks' (inline "
             "{keys: [...]})");
  } else if (file) {
    read_jwks_file(*file, jwt);
  } else {
    read_inline_jwks(*inline_keys, jwt);
  }
}

void Loader::read_jwks_file(const View& v, JwtConfig& jwt) {
  auto s = c_.string(v, "a JWKS file path");
  if (!s) return;
  fs::path p = resolve(*s);
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) {
    c_.error(v, "jwks_file " + sluice::quoted(*s) + " does not exist or is not a file (looked for " + p.string() + ")");
    return;
  }
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = parse_json(ss.str());
  const Node* root = doc.root.get();
  bool has_keys = false;
  if (root && root->kind == Node::Kind::map)
    for (const auto& e : root->entries)
      if (e.key == "keys" && e.value && e.value->kind == Node::Kind::seq) has_keys = true;
  if (!has_keys) {
    c_.error(v, "jwks_file " + p.string() + " is not a JWKS (a JSON object with a \"keys\" list)" +
                    (doc.problems.empty() ? "" : ": " + doc.problems.front().message));
    return;
  }
  fs::path canon = fs::canonical(p, ec);
  jwt.jwks_file = ec ? p : canon;
}

void Loader::read_inline_jwks(const View& v, JwtConfig& jwt) {
  auto kf = c_.fields(v, {"keys"}, "a JWKS mapping {keys: [...]}");
  if (!kf) return;
  const View* k = kf->get("keys");
  if (!k) {
    c_.missing(v, "keys", "the list of JSON Web Keys");
    return;
  }
  auto items = c_.list(*k, "a list of JSON Web Keys");
  if (!items) return;
  bool good = true;
  for (const auto& item : *items)
    if (!item.map()) {
      c_.error(item, "expected a JSON Web Key (a mapping with kty, kid, ...), found " + Checker::found(item));
      good = false;
    }
  if (good) jwt.jwks_inline = to_json(v.n).dump();
}

}  // namespace sluice::stack::detail
