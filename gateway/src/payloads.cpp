// Lambda proxy integration payloads, as API Gateway builds and reads them.
//
// Sources, in the order they win: the AWS-recorded vectors in
// shared/vectors/aws-recorded (test_apigateway_lambda.snapshot.json: the REST
// event and the proxy response validation), AWS-validated LocalStack tests
// (binary responses), real HTTP API events published by AWS users, then the
// API Gateway developer guide and SAM CLI. Each rule below says which.
#include "ids.hpp"
#include "sluice/gateway/payloads.hpp"

#include "sluice/common/util.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

namespace sluice::gateway {
namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A JSON string as dump() writes it (no ASCII escaping, invalid UTF-8 replaced); printable
// ASCII without quotes or backslashes, the common case, is copied as it is.
void put_json_string(std::string& out, std::string_view v) {
  for (unsigned char c : v)
    if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f) {
      out += dump(json(std::string(v)));
      return;
    }
  out += '"';
  out.append(v);
  out += '"';
}

// One JSON object written member by member, closed when it goes out of scope. Callers give
// the members in sorted order, as nlohmann's std::map-backed objects are written.
class JsonObject {
 public:
  explicit JsonObject(std::string& out) : out_(out) { out_ += '{'; }
  ~JsonObject() { out_ += '}'; }
  JsonObject(const JsonObject&) = delete;
  JsonObject& operator=(const JsonObject&) = delete;
  void key(std::string_view k) {
    if (!first_) out_ += ',';
    first_ = false;
    put_json_string(out_, k);
    out_ += ':';
  }
  void str(std::string_view k, std::string_view v) {
    key(k);
    put_json_string(out_, v);
  }
  void raw(std::string_view k, std::string_view json_text) {
    key(k);
    out_.append(json_text);
  }
  void object(std::string_view k, const std::map<std::string, std::string>& members) {
    key(k);
    JsonObject o(out_);
    for (const auto& [mk, mv] : members) o.str(mk, mv);
  }
  template <class Strings>
  void strings(std::string_view k, const Strings& values) {
    key(k);
    out_ += '[';
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i) out_ += ',';
      put_json_string(out_, values[i]);
    }
    out_ += ']';
  }
  void null(std::string_view k) { raw(k, "null"); }
  std::string& out() { return out_; }

 private:
  std::string& out_;
  bool first_ = true;
};

// ---- headers ---------------------------------------------------------------

// Never forwarded to the integration (hop-by-hop and framing headers; LocalStack
// next_gen header_utils DROPPED_FROM_REQUEST_COMMON, checked against the
// recorded REST event which has no Content-Length nor Connection).
bool rest_drops(std::string_view name) {
  static constexpr std::string_view dropped[] = {
      "connection", "content-length", "content-md5",         "expect",   "max-forwards", "proxy-authenticate",
      "server",     "te",             "transfer-encoding",   "trailer",  "upgrade",      "www-authenticate",
      "keep-alive", "proxy-connection"};
  for (auto d : dropped)
    if (iequals(name, d)) return true;
  return false;
}

// HTTP APIs forward Content-Length (real events show it) but not hop-by-hop headers.
bool http_drops(std::string_view name) {
  static constexpr std::string_view dropped[] = {"connection", "keep-alive", "proxy-connection", "te",
                                                 "transfer-encoding", "trailer", "upgrade", "expect"};
  for (auto d : dropped)
    if (iequals(name, d)) return true;
  return false;
}

std::string title_case(std::string_view name) {
  std::string out(name);
  bool up = true;
  for (auto& c : out) {
    c = up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
           : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    up = c == '-';
  }
  return out;
}

// Header names grouped case-insensitively, first casing kept, values in order.
struct HeaderGroups {
  struct Group {
    std::string name;
    std::vector<std::string> values;
  };
  std::vector<Group> groups;

  Group* find(std::string_view name) {
    for (auto& g : groups)
      if (iequals(g.name, name)) return &g;
    return nullptr;
  }
  void add(std::string name, std::string value) {
    if (auto* g = find(name)) g->values.push_back(std::move(value));
    else groups.push_back({std::move(name), {std::move(value)}});
  }
  void set(std::string name, std::string value) {
    if (auto* g = find(name)) {
      g->name = std::move(name);
      g->values.assign(1, std::move(value));
    } else {
      groups.push_back({std::move(name), {std::move(value)}});
    }
  }
};

}  // namespace

// The port the client connected to; without it, from Host ("127.0.0.1:3000", "[::1]:3000"), else 80.
std::string forwarded_port(const Request& req) {
  if (req.local_port) return std::to_string(req.local_port);
  auto host = req.header("Host");
  if (!host) return "80";
  std::string_view h = *host;
  auto colon = h.rfind(':');
  auto bracket = h.rfind(']');
  if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket)) return "80";
  auto port = h.substr(colon + 1);
  if (port.empty() || port.size() > 5) return "80";
  for (char c : port)
    if (c < '0' || c > '9') return "80";
  return std::string(port);
}

// X-Forwarded-For as API Gateway sends it: the client's own chain, then the source address.
std::string forwarded_for(const Request& req) {
  std::string out;
  for (const auto& v : req.header_values("X-Forwarded-For")) {
    auto t = trim(v);
    if (t.empty()) continue;
    if (!out.empty()) out += ", ";
    out.append(t);
  }
  if (!req.source_ip.empty()) {
    if (!out.empty()) out += ", ";
    out += req.source_ip;
  }
  return out;
}

namespace {

enum class Flavor { rest, http_v1 };

// Header names as AWS shows them in payload 1.0 events.
//  REST: client casing, but Authorization and User-Agent title-cased (recorded
//  event: "aUThorization" arrives as "Authorization"; LocalStack integrations/aws.py).
//  HTTP API 1.0: real events show Content-Length/Content-Type/Host/User-Agent
//  title-cased and accept/accept-encoding/accept-language/cache-control lower-cased
//  even when the client (Postman, Go) sent them capitalized; others keep their casing.
std::string v1_header_name(const std::string& name, Flavor flavor) {
  if (flavor == Flavor::rest) {
    if (iequals(name, "authorization") || iequals(name, "user-agent")) return title_case(name);
    return name;
  }
  static constexpr std::string_view titled[] = {"content-length", "content-type", "host", "user-agent"};
  static constexpr std::string_view lowered[] = {"accept", "accept-encoding", "accept-language", "cache-control"};
  for (auto t : titled)
    if (iequals(name, t)) return title_case(name);
  for (auto l : lowered)
    if (iequals(name, l)) return to_lower(name);
  return name;
}

HeaderGroups v1_headers(const Request& req, const EventInput& in, Flavor flavor) {
  HeaderGroups g;
  for (const auto& h : req.headers) {
    if (h.name.empty()) continue;
    if (flavor == Flavor::rest ? rest_drops(h.name) : http_drops(h.name)) continue;
    g.add(v1_header_name(h.name, flavor), h.value);
  }
  // Added by the gateway in front of every integration (recorded REST event; real HTTP API events).
  g.set("X-Forwarded-For", forwarded_for(req));
  g.set("X-Forwarded-Port", forwarded_port(req));
  g.set("X-Forwarded-Proto", "http");  // sluice serves plain HTTP on loopback
  if (!in.trace_id.empty()) g.set("X-Amzn-Trace-Id", in.trace_id);
  return g;
}

// Payload 1.0 headers and query strings: each name with all its values, names sorted as
// nlohmann's objects were.
using Groups = std::map<std::string, std::vector<std::string>>;

Groups grouped(HeaderGroups g) {
  Groups out;
  for (auto& grp : g.groups) out.emplace(std::move(grp.name), std::move(grp.values));
  return out;
}

Groups grouped(std::vector<std::pair<std::string, std::string>> pairs) {
  Groups out;
  for (auto& [k, v] : pairs) out[k].push_back(std::move(v));
  return out;
}

// Payload 1.0 shows them twice: the last value of each name (put_last_values) and all of them
// (put_all_values); null when there are none.
void put_last_values(JsonObject& ev, std::string_view k, const Groups& groups) {
  if (groups.empty()) return ev.null(k);
  ev.key(k);
  JsonObject o(ev.out());
  for (const auto& [name, values] : groups) o.str(name, values.back());
}

void put_all_values(JsonObject& ev, std::string_view k, const Groups& groups) {
  if (groups.empty()) return ev.null(k);
  ev.key(k);
  JsonObject o(ev.out());
  for (const auto& [name, values] : groups) o.strings(name, values);
}

// ---- query strings ---------------------------------------------------------

// REST decodes '+' as a space (recorded event: "plus=test+alias@gmail.com" arrives
// as "test alias@gmail.com", "%2B" as "+"); so do HTTP APIs and function URLs (parse_query).
std::vector<std::pair<std::string, std::string>> rest_query(std::string_view raw) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 0;
  while (i <= raw.size() && !raw.empty()) {
    auto amp = raw.find('&', i);
    if (amp == std::string_view::npos) amp = raw.size();
    auto part = raw.substr(i, amp - i);
    if (!part.empty()) {
      auto eq = part.find('=');
      std::string key = url_decode(part.substr(0, eq), true);
      std::string value = eq == std::string_view::npos ? std::string() : url_decode(part.substr(eq + 1), true);
      if (!key.empty()) out.emplace_back(std::move(key), std::move(value));
    }
    if (amp >= raw.size()) break;
    i = amp + 1;
  }
  return out;
}

// ---- ids and paths ---------------------------------------------------------

// A stable id shaped like API Gateway's resource/deployment ids (6 lower-case alnum).
std::string fake_id(std::string_view seed) { return resource_style_id(seed); }

std::string domain_prefix_of(const EventInput& in) {
  if (!in.domain_prefix.empty()) return in.domain_prefix;
  auto dot = in.domain_name.find('.');
  return in.domain_name.substr(0, dot);
}

// The path as sent below the stage: raw_path without its "/stage" prefix. Leading
// slashes before the stage are not part of it (recorded "//stage/proxy-value"),
// those after it are ("/stage//proxy-value").
std::string raw_below_stage(const Request& req, const std::string& stage) {
  std::string_view raw = req.raw_path;
  if (raw.empty()) return req.path.empty() ? std::string("/") : req.path;
  auto q = raw.find('?');
  if (q != std::string_view::npos) raw = raw.substr(0, q);
  std::string_view rest = raw;
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  if (!stage.empty() && stage != "$default" && rest.substr(0, stage.size()) == stage &&
      (rest.size() == stage.size() || rest[stage.size()] == '/')) {
    rest.remove_prefix(stage.size());
    return std::string(rest);  // "" or "/..."
  }
  return std::string(raw);
}

std::string collapse_leading_slashes(std::string_view p) {
  std::size_t i = 0;
  while (i < p.size() && p[i] == '/') ++i;
  std::string out = "/";
  out.append(p.substr(i));
  return out;
}

bool tpl_param(std::string_view s) { return s.size() >= 3 && s.front() == '{' && s.back() == '}'; }

// REST path parameters are not percent-decoded (recorded: "test%2Balias@gmail.com"
// stays encoded in pathParameters.proxy; serverless#5037: "%40" stays "%40"). The
// router works on the decoded path, so the values are taken again from the raw
// path; when the two do not line up (an encoded '/'), the router's values stay.
std::optional<std::map<std::string, std::string>> raw_path_parameters(std::string_view resource_path,
                                                                      std::string_view raw_below) {
  std::vector<std::string_view> tpl;
  for (std::size_t i = 0; i < resource_path.size();) {
    if (resource_path[i] == '/') {
      ++i;
      continue;
    }
    auto j = resource_path.find('/', i);
    if (j == std::string_view::npos) j = resource_path.size();
    tpl.push_back(resource_path.substr(i, j - i));
    i = j;
  }
  std::string_view p = raw_below;
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < tpl.size(); ++i) {
    auto t = tpl[i];
    bool greedy = tpl_param(t) && t[t.size() - 2] == '+';
    if (greedy) {
      if (i + 1 != tpl.size() || pos >= p.size()) return std::nullopt;
      out[std::string(t.substr(1, t.size() - 3))] = std::string(p.substr(pos));
      return out;
    }
    if (pos > p.size()) return std::nullopt;
    auto end = p.find('/', pos);
    if (end == std::string_view::npos) end = p.size();
    auto seg = p.substr(pos, end - pos);
    if (seg.empty()) return std::nullopt;
    if (tpl_param(t)) out[std::string(t.substr(1, t.size() - 2))] = std::string(seg);
    pos = end + 1;
  }
  if (pos < p.size()) return std::nullopt;
  return out;
}

const Request& empty_request() {
  static const Request r{};
  return r;
}
const stack::ApiSpec& empty_api() {
  static const stack::ApiSpec a{};
  return a;
}
const RouteMatch& empty_match() {
  static const RouteMatch m{};
  return m;
}

// Payload 1.0's stageVariables: null when the stage has none.
void put_v1_stage_variables(JsonObject& ev, const EventInput& in) {
  if (in.stage_variables && !in.stage_variables->empty()) ev.object("stageVariables", *in.stage_variables);
  else ev.null("stageVariables");
}

// The members payload 1.0 events (REST and HTTP API 1.0) share before "path", in order.
void put_v1_leading(JsonObject& ev, const Request& req, const EventInput& in, const Groups& headers,
                    const Groups& query) {
  if (req.body.empty()) ev.null("body");  // null when there is none
  else if (in.base64_body) ev.str("body", base64_encode(req.body));
  else ev.str("body", req.body);
  put_last_values(ev, "headers", headers);
  ev.str("httpMethod", req.method);
  ev.raw("isBase64Encoded", !req.body.empty() && in.base64_body ? "true" : "false");
  put_all_values(ev, "multiValueHeaders", headers);
  put_all_values(ev, "multiValueQueryStringParameters", query);
}

void put_identity(JsonObject& ev, const Request& req, const EventInput& in, Flavor flavor) {
  ev.key("identity");
  JsonObject id(ev.out());
  id.null("accessKey");
  id.null("accountId");
  if (flavor == Flavor::rest && !in.api_key.empty()) {
    id.str("apiKey", in.api_key);
    id.str("apiKeyId", in.api_key_id);
  }
  id.null("caller");
  if (flavor == Flavor::http_v1) id.null("cognitoAmr");  // real HTTP API 1.0 events carry it
  id.null("cognitoAuthenticationProvider");
  id.null("cognitoAuthenticationType");
  id.null("cognitoIdentityId");
  id.null("cognitoIdentityPoolId");
  id.null("principalOrgId");
  id.str("sourceIp", req.source_ip);
  id.null("user");
  if (auto ua = req.header("User-Agent")) id.str("userAgent", *ua);
  else id.null("userAgent");
  id.null("userArn");
}

// ---- response helpers ------------------------------------------------------

bool token_char(unsigned char c) {
  if (std::isalnum(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
    case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

// A header the server can write: a token name, a value without CR, LF or NUL.
bool writable_header(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (unsigned char c : name)
    if (!token_char(c)) return false;
  for (char c : value)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

// Scalar JSON -> header value. Strings as they are, booleans "true"/"false"
// (recorded: "header-bool": true arrives as "true"), numbers as written.
// nullopt for null (the header is left out); error for objects and arrays.
enum class Scalar { ok, skip, bad };
Scalar scalar_string(const json& v, std::string& out) {
  switch (v.type()) {
    case json::value_t::string:
      out = v.get_ref<const std::string&>();
      return Scalar::ok;
    case json::value_t::boolean:
      out = v.get<bool>() ? "true" : "false";
      return Scalar::ok;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      out = v.dump();
      return Scalar::ok;
    case json::value_t::null:
      return Scalar::skip;
    default:
      return Scalar::bad;
  }
}

// statusCode: an integer or a numeric string (recorded: "201" answers 201,
// "test" answers 502); 100..599.
bool parse_status(const json& v, unsigned& out) {
  long long n = 0;
  if (v.is_number_integer() || v.is_number_unsigned()) {
    n = v.get<long long>();
  } else if (v.is_number_float()) {
    double d = v.get<double>();
    if (!(d >= 200 && d <= 599) || d != static_cast<double>(static_cast<long long>(d))) return false;
    n = static_cast<long long>(d);
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s.empty() || s.size() > 3) return false;
    for (char c : s)
      if (c < '0' || c > '9') return false;
    n = std::stoll(s);
  } else {
    return false;
  }
  // A 1xx is not a final answer: written as one, it leaves the client waiting for the real
  // status line (curl hangs on a 101). Refused like any other invalid status code.
  if (n < 200 || n > 599) return false;
  out = static_cast<unsigned>(n);
  return true;
}

// isBase64Encoded: a boolean, or "true"/"false" (SAM local_apigw_service, from trials).
bool parse_flag(const json& v, bool& out) {
  if (v.is_null()) {
    out = false;
    return true;
  }
  if (v.is_boolean()) {
    out = v.get<bool>();
    return true;
  }
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s == "true" || s == "True" || s == "false" || s == "False") {
      out = s[0] == 't' || s[0] == 'T';
      return true;
    }
  }
  return false;
}

Mapped invalid(std::string problem) {
  Mapped m;
  m.ok = false;
  m.problem = std::move(problem);
  return m;
}

std::string type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::discarded: return "invalid";
    default: return "a number";
  }
}

std::string snippet(std::string_view s) {
  if (s.size() <= 200) return sluice::quoted(s);
  return sluice::quoted(s.substr(0, 200)) + "...";
}

// Media type match against binaryMediaTypes, as AWS-validated LocalStack tests
// (test_aws_proxy_binary_response) show it: exact type/subtype, "type/*" on the
// right, "*/*" for everything; a wildcard on the left ("*/test") never matches.
bool media_type_matches(std::string_view mime, const std::vector<std::string>& types) {
  if (types.empty()) return false;
  auto cut = mime.find_first_of(",;");
  mime = trim(mime.substr(0, cut));
  auto slash = mime.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= mime.size()) return false;
  auto type = mime.substr(0, slash), sub = mime.substr(slash + 1);
  if (sub.find('/') != std::string_view::npos) return false;
  for (const auto& bmt_full : types) {
    std::string_view bmt = trim(std::string_view(bmt_full).substr(0, bmt_full.find(';')));
    auto bs = bmt.find('/');
    if (bs == std::string_view::npos) continue;
    auto bt = bmt.substr(0, bs), bsub = bmt.substr(bs + 1);
    if (bt == "*" && bsub == "*") return true;
    if (bt == "*") continue;
    if (!iequals(bt, type)) continue;
    if (bsub == "*" || iequals(bsub, sub)) return true;
  }
  return false;
}

// Only the first media type of the first Accept header counts; the response
// Content-Type does not (AWS-validated: "ContentType does not matter at all").
bool accept_is_binary(const Request& req, const std::vector<std::string>& types) {
  for (const auto& h : req.headers)
    if (iequals(h.name, "Accept")) return media_type_matches(h.value, types);
  return false;
}

struct ParsedProxy {
  unsigned status = 200;
  Headers headers;
  std::string body;
  bool base64 = false;
};

// The payload 1.0 shape shared by REST and HTTP API 1.0 outputs.
//  strict: REST rejects unknown keys and accepts a missing statusCode (200);
//  HTTP API 1.0 ignores unknown keys and requires statusCode (SAM, from trials) [U].
std::optional<std::string> parse_v1_output(const json& out, bool strict, ParsedProxy& p) {
  if (!out.is_object()) return "the output is " + type_name(out) + ", not an object";
  bool have_b64_alias = false;
  for (auto it = out.begin(); it != out.end(); ++it) {
    const auto& k = it.key();
    if (k == "statusCode" || k == "headers" || k == "multiValueHeaders" || k == "body" || k == "isBase64Encoded")
      continue;
    if (k == "base64Encoded" && strict) {  // REST reads this alias first (SAM, from trials)
      have_b64_alias = true;
      continue;
    }
    if (k == "cookies" && !strict) continue;
    if (strict) return "unexpected key " + sluice::quoted(k) + " (allowed: statusCode, headers, multiValueHeaders, body, isBase64Encoded)";
  }

  auto sc = out.find("statusCode");
  if (sc == out.end() || sc->is_null()) {
    if (!strict) return std::string("statusCode is missing");
    p.status = 200;
  } else if (!parse_status(*sc, p.status)) {
    return "statusCode " + snippet(sc->dump()) + " is not a final HTTP status code (200 to 599)";
  }

  // headers + multiValueHeaders, merged as AWS documents and the recorded
  // responses show: the multi values first, then the single value unless that
  // same value is already listed; the multiValueHeaders casing names the header.
  struct Multi {
    std::string name;
    std::vector<std::string> values;
  };
  std::vector<Multi> multi;
  if (auto mh = out.find("multiValueHeaders"); mh != out.end() && !mh->is_null()) {
    if (!mh->is_object()) return "multiValueHeaders is " + type_name(*mh) + ", not an object";
    for (auto it = mh->begin(); it != mh->end(); ++it) {
      if (it->is_null()) continue;
      if (!it->is_array()) return "multiValueHeaders." + it.key() + " is " + type_name(*it) + ", not a list";
      Multi m{it.key(), {}};
      for (const auto& v : *it) {
        std::string s;
        auto r = scalar_string(v, s);
        if (r == Scalar::bad) return "multiValueHeaders." + it.key() + " holds " + type_name(v);
        if (r == Scalar::ok) m.values.push_back(std::move(s));
      }
      multi.push_back(std::move(m));
    }
  }
  for (const auto& m : multi)
    for (const auto& v : m.values) p.headers.push_back({m.name, v});
  if (auto h = out.find("headers"); h != out.end() && !h->is_null()) {
    if (!h->is_object()) return "headers is " + type_name(*h) + ", not an object";
    for (auto it = h->begin(); it != h->end(); ++it) {
      std::string s;
      auto r = scalar_string(*it, s);
      if (r == Scalar::bad) return "headers." + it.key() + " is " + type_name(*it) + ", not a string";
      if (r == Scalar::skip) continue;
      const Multi* same = nullptr;
      for (const auto& m : multi)
        if (iequals(m.name, it.key())) same = &m;
      if (same) {
        bool dup = false;
        for (const auto& v : same->values) dup = dup || v == s;
        if (!dup) p.headers.push_back({same->name, std::move(s)});
      } else {
        p.headers.push_back({it.key(), std::move(s)});
      }
    }
  }
  for (const auto& hd : p.headers)
    if (!writable_header(hd.name, hd.value)) return "header " + snippet(hd.name) + " cannot be sent over HTTP";

  if (auto b = out.find("body"); b != out.end() && !b->is_null()) {
    if (!b->is_string()) return "body is " + type_name(*b) + ", not a string";
    p.body = b->get<std::string>();
  }
  const json* flag = nullptr;
  if (have_b64_alias) flag = &out.at("base64Encoded");
  else if (auto f = out.find("isBase64Encoded"); f != out.end()) flag = &*f;
  if (flag && !parse_flag(*flag, p.base64))
    return "isBase64Encoded is " + type_name(*flag) + ", not a boolean";
  return std::nullopt;
}

// Headers a REST API does not pass through from its integration's response:
// those the gateway owns come out renamed x-amzn-Remapped-<name> (responses
// captured from real APIs behind Lambda proxy integrations show
// x-amzn-Remapped-Authorization, -WWW-Authenticate, -Date, -Server and
// -Connection; AG known issues for REST APIs; LocalStack's next-gen gateway
// remaps Connection, Content-Length, Date and Server), and Transfer-Encoding is
// dropped. Without this, a function could also break the response framing.
void remap_rest_response_headers(Headers& headers) {
  static constexpr std::string_view remapped[] = {"Authorization", "Connection", "Content-Length",
                                                  "Date",          "Server",     "WWW-Authenticate"};
  std::erase_if(headers, [](const Header& h) { return iequals(h.name, "Transfer-Encoding"); });
  for (auto& h : headers)
    for (auto r : remapped)
      if (iequals(h.name, r)) {
        h.name = "x-amzn-Remapped-" + std::string(r);
        break;
      }
}

void default_content_type(Headers& headers, const char* name) {
  for (const auto& h : headers)
    if (iequals(h.name, "Content-Type")) return;
  headers.push_back({name, "application/json"});
}

json parse_payload(std::string_view payload) { return json::parse(payload.begin(), payload.end(), nullptr, false); }

}  // namespace

// ---- events ----------------------------------------------------------------

// Written straight out, as http_v2_event (the DOM was a fifth of the gateway's CPU on a REST
// route); members in the sorted order nlohmann's objects gave them.
std::string rest_event(const EventInput& in) {
  const Request& req = in.request ? *in.request : empty_request();
  const stack::ApiSpec& api = in.api ? *in.api : empty_api();
  const RouteMatch& match = in.match ? *in.match : empty_match();

  const std::string below = raw_below_stage(req, in.stage);
  const std::string resource = match.resource_path.empty() ? req.path : match.resource_path;
  const Groups headers = grouped(v1_headers(req, in, Flavor::rest));
  const Groups query = grouped(rest_query(req.raw_query));

  std::map<std::string, std::string> params = match.path_parameters;
  if (!params.empty())
    if (auto raw = raw_path_parameters(resource, below)) params = std::move(*raw);

  std::string out;
  out.reserve(2048 + req.body.size() * (in.base64_body ? 2 : 1));
  {  // the event object, closed at the end of this block
    JsonObject ev(out);
    put_v1_leading(ev, req, in, headers, query);
    ev.str("path", collapse_leading_slashes(below));
    if (params.empty()) ev.null("pathParameters");
    else ev.object("pathParameters", params);
    put_last_values(ev, "queryStringParameters", query);

    ev.key("requestContext");
    {
      JsonObject rc(out);
      rc.str("accountId", in.account_id);
      rc.str("apiId", api.api_id);
      if (in.authorizer && !in.authorizer->is_null()) rc.raw("authorizer", dump(*in.authorizer));
      rc.str("deploymentId", fake_id(api.api_id + "/deployment/" + in.stage));
      rc.str("domainName", in.domain_name);
      rc.str("domainPrefix", domain_prefix_of(in));
      rc.str("extendedRequestId", in.extended_request_id);
      rc.str("httpMethod", req.method);
      put_identity(rc, req, in, Flavor::rest);
      rc.str("path", "/" + in.stage + below);
      rc.str("protocol", req.protocol);
      rc.str("requestId", in.request_id);
      rc.str("requestTime", clf_time(in.time));
      rc.raw("requestTimeEpoch", std::to_string(epoch_ms(in.time)));
      rc.str("resourceId", fake_id(api.api_id + "/resource/" + resource));
      rc.str("resourcePath", resource);
      rc.str("stage", in.stage);
    }
    ev.str("resource", resource);
    put_v1_stage_variables(ev, in);
  }
  return out;
}

std::string http_v1_event(const EventInput& in) {
  const Request& req = in.request ? *in.request : empty_request();
  const stack::ApiSpec& api = in.api ? *in.api : empty_api();
  const RouteMatch& match = in.match ? *in.match : empty_match();

  // Real HTTP API 1.0 events: path carries the stage for named stages
  // ("/v1/users/1/inventories"), resource/resourcePath are the route path or
  // "$default", resourceId is the route key, extendedRequestId = requestId.
  const bool is_default_route = match.route_key == "$default" || match.route_key.empty();
  const std::string resource = is_default_route ? std::string("$default") : match.resource_path;
  const std::string full_path =
      (in.stage.empty() || in.stage == "$default") ? req.path : "/" + in.stage + (req.path == "/" ? "" : req.path);
  const Groups headers = grouped(v1_headers(req, in, Flavor::http_v1));
  const Groups query = grouped(parse_query(req.raw_query));

  std::string out;
  out.reserve(2048 + req.body.size() * (in.base64_body ? 2 : 1));
  {  // the event object, closed at the end of this block
    JsonObject ev(out);
    put_v1_leading(ev, req, in, headers, query);
    ev.str("path", full_path);
    if (match.path_parameters.empty()) ev.null("pathParameters");
    else ev.object("pathParameters", match.path_parameters);
    put_last_values(ev, "queryStringParameters", query);

    ev.key("requestContext");
    {
      JsonObject rc(out);
      rc.str("accountId", in.account_id);
      rc.str("apiId", api.api_id);
      if (in.authorizer && !in.authorizer->is_null()) {
        // Payload 1.0 shows JWT results flat ({"claims": ..., "scopes": ...}).
        auto jwt = in.authorizer->find("jwt");
        const bool flat = in.authorizer->is_object() && jwt != in.authorizer->end();
        rc.raw("authorizer", dump(flat ? *jwt : *in.authorizer));
      }
      rc.str("domainName", in.domain_name);
      rc.str("domainPrefix", domain_prefix_of(in));
      rc.str("extendedRequestId", in.extended_request_id.empty() ? in.request_id : in.extended_request_id);
      rc.str("httpMethod", req.method);
      put_identity(rc, req, in, Flavor::http_v1);
      rc.str("path", full_path);
      rc.str("protocol", req.protocol);
      rc.str("requestId", in.request_id);
      rc.str("requestTime", clf_time(in.time));
      rc.raw("requestTimeEpoch", std::to_string(epoch_ms(in.time)));
      rc.str("resourceId", is_default_route ? std::string("$default") : match.route_key);
      rc.str("resourcePath", resource);
      rc.str("stage", in.stage);
    }
    ev.str("resource", resource);
    put_v1_stage_variables(ev, in);
    ev.str("version", "1.0");
  }
  return out;
}

// Written straight out rather than through a json DOM (the event is built on every proxied
// request: the DOM's allocations were a tenth of the gateway's CPU). Members come in the
// order nlohmann's sorted objects gave them, so the bytes are the same as before.
std::string http_v2_event(const EventInput& in) {
  const Request& req = in.request ? *in.request : empty_request();
  const stack::ApiSpec& api = in.api ? *in.api : empty_api();
  const RouteMatch& match = in.match ? *in.match : empty_match();
  const std::string route_key = match.route_key.empty() ? std::string("$default") : match.route_key;
  // rawPath is the decoded path (HTTP APIs decode it; middleapi/standard-server#93 and
  // hotsock/voker's testdata from live captures) with the stage for named stages (observed).
  // A function URL keeps rawPath as sent and decodes only requestContext.http.path (voker's
  // live function URL capture: "/capture/space%20value" and "/capture/space value").
  const std::string http_path =
      (in.stage.empty() || in.stage == "$default") ? req.path : "/" + in.stage + (req.path == "/" ? "" : req.path);
  const std::string raw_path =
      in.function_url ? (req.raw_path.empty() ? std::string("/") : req.raw_path) : http_path;

  // Lower-case names, repeats joined with commas, Cookie headers moved to cookies (a function
  // URL keeps them in headers too).
  std::vector<std::string_view> cookies;
  std::map<std::string, std::string> headers, query;
  // A repeated name's values joined with commas (headers and query alike).
  auto join = [](std::map<std::string, std::string>& to, std::string name, std::string_view value) {
    auto [it, fresh] = to.try_emplace(std::move(name), value);
    if (!fresh) {
      it->second += ',';
      it->second.append(value);
    }
  };
  auto put = [&](std::string name, std::string_view value) { join(headers, std::move(name), value); };
  for (const auto& h : req.headers) {
    if (h.name.empty() || http_drops(h.name)) continue;
    if (iequals(h.name, "cookie")) {
      std::string_view rest = h.value;
      while (!rest.empty()) {
        auto semi = rest.find(';');
        auto c = trim(rest.substr(0, semi));
        if (!c.empty()) cookies.push_back(c);
        if (semi == std::string_view::npos) break;
        rest.remove_prefix(semi + 1);
      }
      if (!in.function_url) continue;
    }
    if (iequals(h.name, "x-forwarded-for") || iequals(h.name, "x-forwarded-port") ||
        iequals(h.name, "x-forwarded-proto") || (iequals(h.name, "x-amzn-trace-id") && !in.trace_id.empty()))
      continue;  // replaced below
    put(to_lower(h.name), h.value);
  }
  put("x-forwarded-for", forwarded_for(req));
  put("x-forwarded-port", forwarded_port(req));
  put("x-forwarded-proto", "http");
  if (!in.trace_id.empty()) put("x-amzn-trace-id", in.trace_id);

  for (auto& [k, v] : parse_query(req.raw_query)) join(query, std::move(k), v);

  std::string out;
  out.reserve(1024 + req.body.size() * (in.base64_body ? 2 : 1));
  {  // the event object, closed at the end of this block
    JsonObject ev(out);
    if (!req.body.empty()) {
      if (in.base64_body) ev.str("body", base64_encode(req.body));
      else ev.str("body", req.body);
    }
    if (!cookies.empty()) ev.strings("cookies", cookies);
    ev.object("headers", headers);
    ev.raw("isBase64Encoded", !req.body.empty() && in.base64_body ? "true" : "false");
    if (!match.path_parameters.empty()) ev.object("pathParameters", match.path_parameters);
    if (!query.empty()) ev.object("queryStringParameters", query);
    ev.str("rawPath", raw_path);
    ev.str("rawQueryString", req.raw_query);

    ev.key("requestContext");
    {
      JsonObject rc(out);
      rc.str("accountId", in.account_id);
      rc.str("apiId", api.api_id);
      if (in.authorizer && !in.authorizer->is_null()) rc.raw("authorizer", dump(*in.authorizer));
      rc.str("domainName", in.domain_name);
      rc.str("domainPrefix", domain_prefix_of(in));
      rc.key("http");
      {
        JsonObject http(out);
        http.str("method", req.method);
        http.str("path", http_path);
        http.str("protocol", req.protocol);
        http.str("sourceIp", req.source_ip);
        http.str("userAgent", req.header("User-Agent").value_or(""));
      }
      rc.str("requestId", in.request_id);
      rc.str("routeKey", route_key);
      rc.str("stage", in.stage.empty() ? std::string("$default") : in.stage);
      rc.str("time", clf_time(in.time));
      rc.raw("timeEpoch", std::to_string(epoch_ms(in.time)));
    }
    ev.str("routeKey", route_key);
    if (in.stage_variables && !in.stage_variables->empty()) ev.object("stageVariables", *in.stage_variables);
    ev.str("version", "2.0");
  }
  return out;
}

bool rest_body_is_binary(const Request& req, const std::vector<std::string>& binary_media_types) {
  if (req.body.empty()) return false;
  auto ct = req.header("Content-Type");
  return ct && media_type_matches(*ct, binary_media_types);
}

bool http_body_is_binary(const Request& req) {
  if (req.body.empty()) return false;
  auto ct = req.header("Content-Type");
  if (!ct) return true;
  std::string mime = to_lower(trim(std::string_view(*ct).substr(0, ct->find(';'))));
  auto slash = mime.find('/');
  if (slash == std::string::npos) return true;
  std::string_view type = std::string_view(mime).substr(0, slash), sub = std::string_view(mime).substr(slash + 1);
  if (type == "text") return false;
  if (ends_with(sub, "+json") || ends_with(sub, "+xml")) return false;
  if (type == "application" &&
      (sub == "json" || sub == "xml" || sub == "javascript" || sub == "x-javascript" || sub == "ecmascript"))
    return false;
  return true;
}

// ---- responses -------------------------------------------------------------

Mapped rest_response(std::string_view payload, const Request& req, const std::vector<std::string>& binary_media_types) {
  json out = parse_payload(payload);
  if (out.is_discarded()) return invalid("Malformed Lambda proxy response: not JSON: " + snippet(payload));
  ParsedProxy p;
  if (auto problem = parse_v1_output(out, true, p)) return invalid("Malformed Lambda proxy response: " + *problem);

  Mapped m;
  m.response.status = p.status;
  m.response.headers = std::move(p.headers);
  remap_rest_response_headers(m.response.headers);
  default_content_type(m.response.headers, "Content-Type");
  if (p.base64 && accept_is_binary(req, binary_media_types)) {
    auto bytes = base64_decode(p.body);
    if (!bytes) {
      // AWS answers 500 here, not 502 (AWS-validated LocalStack test, "bad base64").
      m.response = gateway_error(stack::ApiType::rest, GatewayError::configuration_error);
      m.problem = "isBase64Encoded is true but the body is not valid base64";
      return m;
    }
    m.response.body = std::move(*bytes);
  } else {
    m.response.body = std::move(p.body);  // base64 text returned as is (recorded "b64-encoded-true")
  }
  return m;
}

Mapped http_v1_response(std::string_view payload) {
  json out = parse_payload(payload);
  if (out.is_discarded()) return invalid("Malformed Lambda proxy response: not JSON: " + snippet(payload));
  ParsedProxy p;
  if (auto problem = parse_v1_output(out, false, p)) return invalid("Malformed Lambda proxy response: " + *problem);
  Mapped m;
  m.response.status = p.status;
  m.response.headers = std::move(p.headers);
  default_content_type(m.response.headers, "Content-Type");
  if (p.base64) {  // HTTP APIs decode regardless of media types
    auto bytes = base64_decode(p.body);
    if (!bytes) return invalid("isBase64Encoded is true but the body is not valid base64");
    m.response.body = std::move(*bytes);
  } else {
    m.response.body = std::move(p.body);
  }
  return m;
}

Mapped http_v2_response(std::string_view payload) {
  json out = parse_payload(payload);
  if (out.is_discarded()) return invalid("Lambda output is not JSON: " + snippet(payload));

  Mapped m;
  auto sc = out.is_object() ? out.find("statusCode") : out.end();
  if (!out.is_object() || sc == out.end() || sc->is_null()) {
    // Valid JSON without statusCode: 200, the output itself is the JSON body (AG:
    // http-api-develop-integrations-lambda; a JSON string stays quoted).
    m.response.status = 200;
    m.response.headers.push_back({"content-type", "application/json"});
    m.response.body.assign(payload.data(), payload.size());
    return m;
  }
  if (!parse_status(*sc, m.response.status))
    return invalid("statusCode " + snippet(sc->dump()) + " is not a final HTTP status code (200 to 599)");

  if (auto h = out.find("headers"); h != out.end() && !h->is_null()) {
    if (!h->is_object()) return invalid("headers is " + type_name(*h) + ", not an object");
    for (auto it = h->begin(); it != h->end(); ++it) {
      std::string s;
      if (it->is_array()) {  // [U] lists are joined as repeated headers are
        for (const auto& v : *it) {
          std::string one;
          auto r = scalar_string(v, one);
          if (r == Scalar::bad) return invalid("headers." + it.key() + " holds " + type_name(v));
          if (r == Scalar::skip) continue;
          if (!s.empty()) s += ',';
          s += one;
        }
      } else {
        auto r = scalar_string(*it, s);
        if (r == Scalar::bad) return invalid("headers." + it.key() + " is " + type_name(*it) + ", not a string");
        if (r == Scalar::skip) continue;
      }
      if (!writable_header(it.key(), s)) return invalid("header " + snippet(it.key()) + " cannot be sent over HTTP");
      m.response.headers.push_back({it.key(), std::move(s)});
    }
  }
  if (auto c = out.find("cookies"); c != out.end() && c->is_array()) {
    for (const auto& v : *c) {
      if (!v.is_string()) continue;
      const auto& s = v.get_ref<const std::string&>();
      if (!writable_header("Set-Cookie", s)) return invalid("a cookie cannot be sent over HTTP");
      m.response.headers.push_back({"set-cookie", s});
    }
  }
  std::string body;
  if (auto b = out.find("body"); b != out.end() && !b->is_null()) {
    if (!b->is_string()) return invalid("body is " + type_name(*b) + ", not a string");
    body = b->get<std::string>();
  }
  bool b64 = false;
  if (auto f = out.find("isBase64Encoded"); f != out.end() && !parse_flag(*f, b64))
    return invalid("isBase64Encoded is " + type_name(*f) + ", not a boolean");
  if (b64) {
    auto bytes = base64_decode(body);
    if (!bytes) return invalid("isBase64Encoded is true but the body is not valid base64");
    body = std::move(*bytes);
  }
  m.response.body = std::move(body);
  default_content_type(m.response.headers, "content-type");
  return m;
}

// ---- function URLs -----------------------------------------------------------

Mapped function_url_response(std::string_view payload) {
  json out = parse_payload(payload);
  if (out.is_discarded()) return invalid("Lambda output is not JSON: " + snippet(payload));
  auto sc = out.is_object() ? out.find("statusCode") : out.end();
  if (out.is_object() && sc != out.end() && !sc->is_null()) return http_v2_response(payload);
  // Without statusCode: 200, application/json, the value as the body -- a string's own text
  // (no quotes), anything else written compactly in its own key order (AWS-recorded:
  // "hello" -> hello, {"hello": "world"} -> {"hello":"world"}, ["hello", 3, true] ->
  // ["hello",3,true], 3.1 -> 3.1).
  Mapped m;
  m.response.status = 200;
  m.response.headers.push_back({"content-type", "application/json"});
  if (out.is_string()) {
    m.response.body = out.get<std::string>();
  } else {
    auto ordered = nlohmann::ordered_json::parse(payload.begin(), payload.end(), nullptr, false);
    m.response.body = ordered.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }
  return m;
}

StreamPrelude parse_stream_prelude(std::string_view prelude) {
  StreamPrelude p;
  json j = parse_payload(prelude);
  if (!j.is_object()) {
    p.problem = "the stream's prelude is not a JSON object: " + snippet(prelude);
    return p;
  }
  // The prelude is a payload 2.0 response without its body.
  json as_response = j;
  as_response.erase("body");
  as_response.erase("isBase64Encoded");
  if (!as_response.contains("statusCode")) as_response["statusCode"] = 200;
  Mapped m = http_v2_response(as_response.dump());
  if (!m.ok) {
    p.problem = "the stream's prelude: " + m.problem;
    return p;
  }
  p.ok = true;
  p.head = std::move(m.response);
  p.head.body.clear();
  return p;
}

// ---- the gateway's own answers ---------------------------------------------

Response gateway_error(stack::ApiType type, GatewayError error) {
  Response r;
  if (type == stack::ApiType::http) {
    // HTTP APIs: plain messages, no x-amzn-ErrorType (reference §4.5).
    const char* body = R"({"message":"Internal Server Error"})";
    switch (error) {
      case GatewayError::missing_authentication_token:
      case GatewayError::not_found:
        r.status = 404, body = R"({"message":"Not Found"})";
        break;
      case GatewayError::forbidden:
      case GatewayError::access_denied:
      case GatewayError::access_denied_explicit:
        r.status = 403, body = R"({"message":"Forbidden"})";
        break;
      case GatewayError::unauthorized:
        r.status = 401, body = R"({"message":"Unauthorized"})";
        break;
      case GatewayError::authorizer_failure:
      case GatewayError::integration_failure:
      case GatewayError::configuration_error:
        r.status = 500;
        break;
      case GatewayError::integration_timeout:
        r.status = 503, body = R"({"message":"Service Unavailable"})";
        break;
      case GatewayError::throttled:
      case GatewayError::quota_exceeded:
        r.status = 429, body = R"({"message":"Too Many Requests"})";
        break;
      case GatewayError::request_too_large:
        r.status = 413, body = R"({"message":"Request Entity Too Large"})";  // [U]
        break;
      case GatewayError::bad_request:
        r.status = 400, body = R"({"message":"Bad Request"})";  // [U] the status is AWS's, the body ours
        break;
    }
    r.headers.push_back({"content-type", "application/json"});
    r.body = body;
    return r;
  }

  // REST: default gateway responses; the spacing is AWS's own (the 502/504 bodies
  // come from the integration layer with a space, the templated ones without).
  const char* body = R"({"message": "Internal server error"})";
  const char* kind = "InternalServerErrorException";
  switch (error) {
    case GatewayError::missing_authentication_token:
    case GatewayError::not_found:
      r.status = 403, body = R"({"message":"Missing Authentication Token"})", kind = "MissingAuthenticationTokenException";
      break;
    case GatewayError::forbidden:
      r.status = 403, body = R"({"message":"Forbidden"})", kind = "ForbiddenException";
      break;
    case GatewayError::unauthorized:
      r.status = 401, body = R"({"message":"Unauthorized"})", kind = "UnauthorizedException";
      break;
    case GatewayError::access_denied:
      r.status = 403, body = R"({"Message":"User is not authorized to access this resource"})",
      kind = "AccessDeniedException";
      break;
    case GatewayError::access_denied_explicit:
      r.status = 403, body = R"({"Message":"User is not authorized to access this resource with an explicit deny"})",
      kind = "AccessDeniedException";
      break;
    case GatewayError::authorizer_failure:
      r.status = 500, body = R"({"message": null})", kind = "AuthorizerConfigurationException";
      break;
    case GatewayError::integration_failure:
      r.status = 502;
      break;
    case GatewayError::configuration_error:
      r.status = 500;
      break;
    case GatewayError::integration_timeout:
      r.status = 504, body = R"({"message": "Endpoint request timed out"})";
      break;
    case GatewayError::throttled:
      r.status = 429, body = R"({"message":"Too Many Requests"})", kind = "TooManyRequestsException";
      break;
    case GatewayError::quota_exceeded:
      r.status = 429, body = R"({"message":"Limit Exceeded"})", kind = "LimitExceededException";
      break;
    case GatewayError::request_too_large:
      // As AWS answered an event over Lambda's limit (recorded: 31 bytes, BadRequestException).
      r.status = 413, body = R"({"message": "Request Too Long"})", kind = "BadRequestException";
      break;
    case GatewayError::bad_request:
      r.status = 400, body = R"({"message":"Bad Request"})", kind = "BadRequestException";  // [U]
      break;
  }
  r.headers.push_back({"Content-Type", "application/json"});
  r.headers.push_back({"x-amzn-ErrorType", kind});
  r.body = body;
  return r;
}

}  // namespace sluice::gateway
