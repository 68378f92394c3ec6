// The API Gateway request path: stage, CORS preflight, route, authorizer, API
// key, throttling and quota, target resolution with stage variables, the
// Lambda proxy integration with its timeout, response mapping, AWS's headers
// and one access-log line. Each step's failure becomes AWS's answer here, in
// one place (answer()).
#include "sluice/gateway/gateway.hpp"

#include "sluice/common/hash.hpp"
#include "sluice/common/http_server.hpp"
#include "sluice/common/log.hpp"
#include "sluice/common/util.hpp"
#include "sluice/gateway/authorizers.hpp"
#include "sluice/gateway/cors.hpp"
#include "sluice/gateway/payloads.hpp"
#include "sluice/gateway/url_auth.hpp"
#include "sluice/aws/credentials.hpp"
#include "sluice/gateway/routing.hpp"
#include "sluice/gateway/usage.hpp"
#include "sluice/common/await_all.hpp"
#include "sluice/lambda/service.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <deque>
#include <set>

namespace sluice::gateway {

namespace asio = boost::asio;
using json = nlohmann::json;
using mono = std::chrono::steady_clock;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

auto logger() {
  static auto l = log::get("gateway");
  return l;
}

// Everything one API needs per request; immutable once built, shared by the
// requests in flight while a reload swaps in a new one.
struct ApiState {
  stack::ApiSpec spec;
  std::string region, account;
  std::unique_ptr<Router> router;
  std::map<std::string, std::shared_ptr<JwtVerifier>> jwt;
  std::map<std::string, std::string> jwt_errors;  // authorizer -> why it cannot verify
};

std::shared_ptr<ApiState> make_state(const stack::Stack& st, const stack::ApiSpec& api) {
  auto s = std::make_shared<ApiState>();
  s->spec = api;
  s->region = st.region;
  s->account = st.account_id;
  s->router = std::make_unique<Router>(s->spec);
  for (const auto& [name, auth] : s->spec.authorizers) {
    if (auth.type != stack::AuthorizerType::jwt) continue;
    try {
      s->jwt[name] = std::make_shared<JwtVerifier>(auth.jwt);
    } catch (const std::exception& e) {
      s->jwt_errors[name] = e.what();
      logger()->error("API {}: JWT authorizer {} cannot verify tokens: {}", api.name, name, e.what());
    }
  }
  return s;
}

// ${stageVariables.NAME} substitution; nullopt names the missing variable.
struct Substituted {
  std::string value;
  std::string missing;  // non-empty: this variable is not defined on the stage
};
Substituted substitute(const std::string& text, const std::map<std::string, std::string>& vars) {
  Substituted out;
  std::size_t pos = 0;
  while (true) {
    auto start = text.find("${stageVariables.", pos);
    if (start == std::string::npos) {
      out.value.append(text, pos, std::string::npos);
      return out;
    }
    out.value.append(text, pos, start - pos);
    auto end = text.find('}', start);
    if (end == std::string::npos) {
      out.value.append(text, start, std::string::npos);
      return out;
    }
    std::string name = text.substr(start + 17, end - start - 17);
    auto it = vars.find(name);
    if (it == vars.end()) {
      out.missing = name;
      return out;
    }
    out.value += it->second;
    pos = end + 1;
  }
}

std::string trace_root() {
  char epoch[9];
  std::snprintf(epoch, sizeof epoch, "%08llx", static_cast<unsigned long long>(epoch_ms() / 1000) & 0xffffffffULL);
  return "Root=1-" + std::string(epoch) + "-" + random_hex(24);
}

// REST APIs continue a trace the client started: an X-Amzn-Trace-Id with a
// Root comes back whole, and a Root alone gets a Parent of the gateway's own
// (AWS-validated LocalStack test_invocation_trace_id). Anything else starts a
// new trace.
std::string continued_trace(const std::optional<std::string>& client) {
  if (!client) return trace_root();
  std::string_view h = trim(*client);
  static constexpr std::string_view root = "Root=1-";
  if (h.substr(0, root.size()) != root) return trace_root();
  std::string_view id = h.substr(root.size(), 8 + 1 + 24);
  if (id.size() != 33 || id[8] != '-') return trace_root();
  for (std::size_t i = 0; i < id.size(); ++i)
    if (i != 8 && !std::isxdigit(static_cast<unsigned char>(id[i]))) return trace_root();
  if (h.size() > root.size() + id.size() && h[root.size() + id.size()] != ';') return trace_root();
  for (char c : h)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return trace_root();
  if (h.find(";Parent=") != std::string_view::npos) return std::string(h);
  std::string out(h.substr(0, root.size() + id.size()));
  out += ";Parent=" + random_hex(16);
  out.append(h.substr(root.size() + id.size()));
  return out;
}

struct PendingInvoke {
  explicit PendingInvoke(asio::any_io_executor ex) : wake(ex) {}
  std::optional<lambda::InvokeResponse> result;
  asio::steady_timer wake;
};

asio::awaitable<void> run_invoke(std::shared_ptr<PendingInvoke> p, lambda::LambdaService* service,
                                 lambda::InvokeRequest req) {
  auto res = co_await service->invoke(std::move(req));
  p->result = std::move(res);
  p->wake.cancel();
}

// Invokes within a time limit (an integration's timeout, an authorizer's 10 s): nullopt when the
// limit came first. The invocation keeps running then, as on AWS, but nobody waits for it.
asio::awaitable<std::optional<lambda::InvokeResponse>> invoke_within(lambda::LambdaService* service,
                                                                     lambda::InvokeRequest req,
                                                                     std::chrono::milliseconds limit) {
  auto ex = co_await asio::this_coro::executor;
  auto pending = std::make_shared<PendingInvoke>(ex);
  pending->wake.expires_after(limit);
  asio::co_spawn(ex, run_invoke(pending, service, std::move(req)), asio::detached);
  // co_spawn runs the invocation inline up to its first suspension: one that fails at once
  // (unknown function or alias) has already answered, and its cancel() found no wait to cancel.
  if (!pending->result) co_await pending->wake.async_wait(nothrow);
  co_return std::move(pending->result);
}

// Collects a streamed function response (API routes answer buffered).
asio::awaitable<void> collect_stream(std::shared_ptr<runtime::ResponseStream> stream, std::string* out, bool* error) {
  std::function<void(std::string_view)> append = [out](std::string_view chunk) { out->append(chunk); };
  co_await lambda::read_stream(*stream, append);  // no temporaries in co_await (GCC 12)
  if (!stream->error_type().empty()) *error = true;
}

// Percent-decoding that refuses a '%' not followed by two hex digits (nullopt).
std::optional<std::string> decode_path_strictly(std::string_view s) {
  for (std::size_t i = s.find('%'); i != std::string_view::npos; i = s.find('%', i + 1))
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
      return std::nullopt;
  return url_decode(s);
}

// A function URL's id: 32 characters of [a-z0-9], the same for the same account and function
// (AWS derives it from the account too; the value itself is not AWS's).
std::string url_id(const std::string& account, const std::string& function) {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string digest = sha256(account + ":" + function);  // 32 raw bytes
  std::string id;
  for (unsigned char b : digest) id += alphabet[b % 36];
  return id;
}

// A function URL's own answers: JSON {"Message": ...} with x-amzn-ErrorType, as Lambda's
// front end writes them (AWS-recorded for 403).
Response url_error(unsigned status, const std::string& type, const std::string& message) {
  Response r;
  r.status = status;
  r.set("Content-Type", "application/json");
  r.set("x-amzn-ErrorType", type);
  r.body = json{{"Message", message}}.dump();
  return r;
}

constexpr const char* url_forbidden =
    "Forbidden. For troubleshooting Function URL authorization issues, see: "
    "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html";

}  // namespace

struct Gateway::Impl : std::enable_shared_from_this<Impl> {
  struct Listener {
    std::string name;
    std::shared_ptr<http::Server> server;
    unsigned short port = 0;
    std::shared_ptr<ApiState> state;
  };

  Impl(asio::any_io_executor ex_, lambda::LambdaService& svc, GatewayOptions opts,
       std::function<void(const std::string&)> log)
      : ex(ex_), service(svc), options(std::move(opts)), access_log(std::move(log)) {}

  asio::any_io_executor ex;
  lambda::LambdaService& service;
  GatewayOptions options;
  std::function<void(const std::string&)> access_log;
  std::shared_ptr<const stack::Stack> stack;
  std::unique_ptr<UsageControl> usage;
  AuthorizerCache auth_cache;
  std::map<std::string, std::shared_ptr<Listener>> listeners;
  struct UrlListener {
    std::string function;
    stack::FunctionUrlSpec spec;
    stack::ApiSpec api;  // what the payload 2.0 event needs of an API: its id (the URL id)
    std::shared_ptr<http::Server> server;
    unsigned short port = 0;
  };
  std::map<std::string, std::shared_ptr<UrlListener>> url_listeners;
  std::set<unsigned short> used_ports;
  std::set<std::string> warned_es256;
  unsigned short next_port = 0;

  // ------------------------------------------------------------ listeners

  // One of sluice's listeners has the port, or will have it (the Invoke API's).
  bool taken_by_sluice(unsigned short port) const {
    return used_ports.count(port) ||
           std::find(options.reserved_ports.begin(), options.reserved_ports.end(), port) != options.reserved_ports.end();
  }

  unsigned short pick_port(std::optional<int> fixed) {
    if (fixed) return static_cast<unsigned short>(*fixed);
    if (options.base_port == 0) return 0;
    if (next_port == 0) next_port = options.base_port;
    while (taken_by_sluice(next_port)) ++next_port;
    return next_port++;
  }

  std::shared_ptr<Listener> open(const stack::ApiSpec& api) {
    auto l = std::make_shared<Listener>();
    l->name = api.name;
    l->state = make_state(*stack, api);
    http::ServerLimits limits = server_limits(options.body_limit);
    std::weak_ptr<Impl> wi = weak_from_this();
    std::weak_ptr<Listener> wl = l;
    stack::ApiType type = api.type;
    l->server = std::make_shared<http::Server>(
        ex, "api " + api.name, limits,
        [wi, wl](http::Request& req, http::Responder& out) -> asio::awaitable<void> {
          auto self = wi.lock();
          auto listener = wl.lock();
          if (!self || !listener) co_return;
          co_await self->handle(listener, req, out);
        },
        [type](unsigned status, const std::string& message) {
          http::Response r{static_cast<http::bhttp::status>(status), 11};
          r.set(http::bhttp::field::content_type, "application/json");
          if (type == stack::ApiType::rest) {
            r.set("x-amzn-RequestId", new_uuid());
            r.set("x-amz-apigw-id", new_apigw_id());
          } else {
            r.set("apigw-requestid", new_apigw_id());
          }
          if (status == 413) {
            Response g = gateway_error(type, GatewayError::request_too_large);
            for (const auto& h : g.headers) r.set(h.name, h.value);
            r.body() = g.body;
          } else {
            r.body() = json{{"message", message}}.dump();
          }
          r.prepare_payload();
          return r;
        });
    l->port = start_server(*l->server, "[api " + api.name + "/-]", api.port);
    return l;
  }

  http::ServerLimits server_limits(std::size_t body_limit) const {
    http::ServerLimits limits;
    limits.body_limit = body_limit;
    limits.header_limit = options.header_limit;
    limits.read_timeout = options.read_timeout;
    limits.idle_timeout = options.idle_timeout;
    limits.write_timeout = std::chrono::seconds(60);
    return limits;
  }

  // Logs refused requests under `tag`, binds (a fixed port, or the next free one) and starts.
  unsigned short start_server(http::Server& server, const std::string& tag, std::optional<int> fixed) {
    std::weak_ptr<Impl> wi = weak_from_this();
    server.on_reject([wi, tag](unsigned status, const std::string& message, const http::tcp::endpoint& remote) {
      auto self = wi.lock();
      if (self && self->access_log)
        self->access_log(tag + " request from " + remote.address().to_string() + " refused -> " +
                         std::to_string(status) + " [" + message + "]");
    });
    unsigned short port = server.listen(options.host, pick_port(fixed)).port();
    used_ports.insert(port);
    server.start();
    return port;
  }

  // An answer as the HTTP server sends it (Content-Length set from the body). A 204 or 304
  // carries no body in HTTP: a function's body there is dropped rather than sent (which would
  // corrupt the connection) or refused.
  static http::Response to_http(Response&& res, unsigned version) {
    http::Response h{static_cast<http::bhttp::status>(res.status), version};
    for (auto& x : res.headers) h.insert(x.name, x.value);
    if (res.status != 204 && res.status != 304) h.body() = std::move(res.body);
    h.prepare_payload();
    return h;
  }

  // The request as the API Gateway logic sees it (path not yet split from a stage).
  static Request to_request(http::Request& hreq, http::Responder& out, unsigned short port) {
    Request req;
    req.method = std::string(hreq.method_string());
    std::string target(hreq.target());
    auto q = target.find('?');
    req.raw_path = q == std::string::npos ? target : target.substr(0, q);
    req.raw_query = q == std::string::npos ? "" : target.substr(q + 1);
    for (const auto& f : hreq) req.headers.push_back({std::string(f.name_string()), std::string(f.value())});
    req.body = std::move(hreq.body());
    req.source_ip = out.remote().address().to_string();
    req.local_port = port;
    req.protocol = hreq.version() == 10 ? "HTTP/1.0" : "HTTP/1.1";
    return req;
  }

  void start(const stack::Stack& st) {
    stack = std::make_shared<const stack::Stack>(st);
    usage = std::make_unique<UsageControl>(*stack, stack::Throttle{options.account_rate, options.account_burst});
    for (const auto& [name, api] : stack->apis) listeners[name] = open(api);
    for (const auto& [name, fn] : stack->functions)
      if (fn.url) url_listeners[name] = open_url(fn);
  }

  // A fixed port reload() would have to open: taken by another of sluice's listeners, or not
  // available to listen on (another program has it, no permission).
  std::vector<std::string> reload_problems(const stack::Stack& st) const {
    std::vector<std::string> out;
    auto check = [&](const std::string& what, std::optional<int> fixed, unsigned short current) {
      if (!fixed || *fixed == 0 || *fixed == current) return;
      auto port = static_cast<unsigned short>(*fixed);
      if (taken_by_sluice(port)) {
        out.push_back(what + ": port " + std::to_string(port) + " is already one of sluice's listeners");
        return;
      }
      boost::system::error_code ec;
      asio::ip::tcp::acceptor probe(ex);
      auto addr = asio::ip::make_address(options.host, ec);
      asio::ip::tcp::endpoint ep{addr, port};
      if (!ec) probe.open(ep.protocol(), ec);
      if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) probe.bind(ep, ec);
      if (ec) out.push_back(what + ": cannot listen on " + options.host + ":" + std::to_string(port) + ": " + ec.message());
    };
    for (const auto& [name, api] : st.apis) {
      auto it = listeners.find(name);
      check("API " + name, api.port, it == listeners.end() ? 0 : it->second->port);
    }
    for (const auto& [name, fn] : st.functions) {
      if (!fn.url) continue;
      auto it = url_listeners.find(name);
      check("function URL of " + name, fn.url->port, it == url_listeners.end() ? 0 : it->second->port);
    }
    return out;
  }

  void reload(const stack::Stack& st) {
    auto next = std::make_shared<const stack::Stack>(st);
    auto old = stack;
    stack = next;
    usage = std::make_unique<UsageControl>(*stack, stack::Throttle{options.account_rate, options.account_burst});
    auth_cache.clear();
    for (auto it = listeners.begin(); it != listeners.end();) {
      auto api = stack->apis.find(it->first);
      bool port_changed = api != stack->apis.end() && api->second.port && *api->second.port != it->second->port;
      if (api == stack->apis.end() || port_changed) {
        auto server = it->second->server;
        used_ports.erase(it->second->port);
        asio::co_spawn(ex, server->drain(std::chrono::seconds(10)), asio::detached);
        logger()->info("API {} {}", it->first, api == stack->apis.end() ? "removed" : "moves to a new port");
        it = listeners.erase(it);
      } else {
        it->second->state = make_state(*stack, api->second);
        ++it;
      }
    }
    for (const auto& [name, api] : stack->apis) {
      if (listeners.count(name)) continue;
      try {
        listeners[name] = open(api);
      } catch (const std::exception& e) {
        logger()->error("API {} cannot start: {}", name, e.what());
      }
    }
    // Function URLs: removed ones (or ones with a new port) are drained, new ones open.
    for (auto it = url_listeners.begin(); it != url_listeners.end();) {
      auto fit = stack->functions.find(it->first);
      bool gone = fit == stack->functions.end() || !fit->second.url;
      bool moved = !gone && fit->second.url->port && *fit->second.url->port != it->second->port;
      if (gone || moved) {
        used_ports.erase(it->second->port);
        asio::co_spawn(ex, it->second->server->drain(std::chrono::seconds(10)), asio::detached);
        logger()->info("function URL of {} {}", it->first, gone ? "removed" : "moves to a new port");
        it = url_listeners.erase(it);
      } else {
        it->second->spec = *fit->second.url;
        ++it;
      }
    }
    for (const auto& [name, fn] : stack->functions) {
      if (!fn.url || url_listeners.count(name)) continue;
      try {
        url_listeners[name] = open_url(fn);
      } catch (const std::exception& e) {
        logger()->error("function URL of {} cannot start: {}", name, e.what());
      }
    }
  }

  // Every listener at once: each stops accepting now, not after the ones before it drained.
  asio::awaitable<void> drain(std::chrono::milliseconds deadline) {
    auto self = shared_from_this();
    std::vector<asio::awaitable<void>> drains;
    for (auto& [name, l] : listeners) drains.push_back(l->server->drain(deadline));
    for (auto& [name, l] : url_listeners) drains.push_back(l->server->drain(deadline));
    auto all = await_all(ex, std::move(drains));  // named: no temporaries in co_await (GCC 12)
    co_await std::move(all);
  }

  // ------------------------------------------------------------ per request

  struct Trail {  // what the access log says about a request
    std::string stage = "-";
    std::string function = "-";
    std::string version;
    bool cold = false;
    bool traced = false;  // reached the authorizer or the integration
    std::string note;
  };

  // ------------------------------------------------------------ function URLs

  std::shared_ptr<UrlListener> open_url(const stack::FunctionSpec& fn) {
    auto l = std::make_shared<UrlListener>();
    l->function = fn.name;
    l->spec = *fn.url;
    l->api.name = fn.name;
    l->api.type = stack::ApiType::http;
    l->api.api_id = url_id(stack->account_id, fn.name);
    http::ServerLimits limits = server_limits(6 * 1024 * 1024);  // Lambda's synchronous payload limit
    std::weak_ptr<Impl> wi = weak_from_this();
    std::weak_ptr<UrlListener> wl = l;
    l->server = std::make_shared<http::Server>(
        ex, "function URL " + fn.name, limits,
        [wi, wl](http::Request& req, http::Responder& out) -> asio::awaitable<void> {
          auto self = wi.lock();
          auto listener = wl.lock();
          if (!self || !listener) co_return;
          co_await self->handle_url(listener, req, out);
        },
        [](unsigned status, const std::string& message) {
          http::Response r{static_cast<http::bhttp::status>(status), 11};
          r.set(http::bhttp::field::content_type, "application/json");
          r.set("x-amzn-RequestId", new_uuid());
          if (status == 413) {
            r.set("x-amzn-ErrorType", "RequestEntityTooLargeException");
            r.body() = json{{"Message", "Request must be smaller than 6291456 bytes for the InvokeFunction operation"}}.dump();
          } else {
            r.body() = json{{"Message", message}}.dump();
          }
          r.prepare_payload();
          return r;
        });
    l->port = start_server(*l->server, "[url " + fn.name + "]", fn.url->port);
    return l;
  }

  asio::awaitable<void> handle_url(std::shared_ptr<UrlListener> listener, http::Request& hreq, http::Responder& out) {
    auto started = mono::now();
    const auto spec = listener->spec;
    Request req = to_request(hreq, out, listener->port);
    req.path = url_decode(req.raw_path);
    if (req.path.empty()) req.path = "/";

    std::string request_id = new_uuid();
    std::string trace = trace_root();
    Trail trail;
    trail.stage = "";
    trail.function = listener->function;
    bool streamed = false;
    Response res = co_await process_url(listener, spec, req, request_id, trace, trail, out, streamed);
    double ms = std::chrono::duration<double, std::milli>(mono::now() - started).count();
    auto log_line = [&](unsigned status) {
      if (!access_log) return;
      std::string line = "[url " + listener->function + "] " + req.method + " " + req.raw_path +
                         (req.raw_query.empty() ? "" : "?" + req.raw_query) + " -> " + std::to_string(status) +
                         (streamed ? " streamed" : "") + " in " + fixed2(ms) + " ms";
      if (!trail.version.empty())
        line += " (" + listener->function + ":" + trail.version + ", " + (trail.cold ? "cold" : "warm") + ")";
      if (!trail.note.empty()) line += " [" + trail.note + "]";
      access_log(line);
    };
    if (streamed) {  // already answered, chunk by chunk
      log_line(res.status);
      co_return;
    }
    res.set("x-amzn-RequestId", request_id);
    if (trail.traced) res.set("X-Amzn-Trace-Id", trace);
    if (!res.get("Date")) res.set("Date", http_date());
    if (spec.cors && !is_preflight(req)) apply_cors(*spec.cors, req, res);  // a preflight's answer has its own
    http::Response hres = to_http(std::move(res), hreq.version());
    log_line(res.status);
    co_await out.send(std::move(hres));
  }

  // Everything but the final write; a RESPONSE_STREAM answer is written here (streamed = true).
  asio::awaitable<Response> process_url(std::shared_ptr<UrlListener> listener, stack::FunctionUrlSpec spec,
                                        Request& req, const std::string& request_id, const std::string& trace,
                                        Trail& trail, http::Responder& out, bool& streamed) {
    if (spec.cors && is_preflight(req)) {
      trail.note = "CORS preflight";
      co_return preflight_response(*spec.cors, req);
    }
    json iam;
    std::string account = "anonymous";  // AuthType NONE (AWS-recorded events)
    if (spec.auth_type == "AWS_IAM") {
      auto who = verify_iam(req);
      if (!who.ok) {
        trail.note = who.problem;
        co_return url_error(403, "AccessDeniedException", url_forbidden);
      }
      account = who.account_id;
      iam = json{{"iam",
                  {{"accessKey", who.access_key},
                   {"accountId", who.account_id},
                   {"callerId", who.caller_id},
                   {"cognitoIdentity", nullptr},
                   {"principalOrgId", nullptr},
                   {"userArn", who.user_arn},
                   {"userId", who.caller_id}}}};
    }

    EventInput ev;
    RouteMatch no_route;
    ev.request = &req;
    ev.api = &listener->api;
    ev.match = &no_route;
    ev.stage = "$default";
    ev.request_id = request_id;
    ev.account_id = account;
    ev.region = stack->region;
    ev.time = wall_clock::now();
    ev.domain_name = req.header("Host").value_or(options.host);
    ev.domain_prefix = listener->api.api_id;  // the URL id, as the URL's first label on AWS
    ev.function_url = true;
    ev.trace_id = trace;
    if (!iam.is_null()) ev.authorizer = &iam;
    ev.base64_body = http_body_is_binary(req);

    lambda::InvokeRequest ir;
    ir.function = listener->function;
    ir.qualifier = spec.qualifier;
    ir.payload = http_v2_event(ev);
    ir.payload_must_be_json = false;
    ir.trace_header = trace;
    ir.request_id = request_id;
    ir.source = "url " + listener->function;
    trail.traced = true;
    // No gateway in between: the function's own timeout is the only limit.
    auto result = co_await service.invoke(std::move(ir));
    trail.version = result.executed_version;
    trail.cold = result.cold_start;
    if (result.error) {
      const auto& e = *result.error;
      trail.note = "Lambda answered " + std::to_string(e.status) + " " + e.code + ": " + e.message;
      if (e.status == 404 || e.status == 400) co_return url_error(403, "AccessDeniedException", url_forbidden);
      co_return url_error(e.status, e.code, e.message);
    }

    if (spec.invoke_mode == "RESPONSE_STREAM") {
      streamed = true;
      co_return co_await stream_url(result, request_id, trace, spec, req, trail, out);
    }

    std::string payload;
    bool answered = co_await whole_payload(result, payload, trail);
    if (!answered) co_return internal_server_error();
    Mapped mapped = function_url_response(payload);
    if (!mapped.ok) {
      trail.note = "the function's answer is not a function URL response: " + mapped.problem;
      co_return internal_server_error();
    }
    co_return std::move(mapped.response);
  }

  // AWS_IAM: checked against the credentials of this machine (resolved once, as deploy does).
  std::optional<LocalCredentials> local_credentials;
  CallerIdentity verify_iam(const Request& req) {
    if (!local_credentials) {
      local_credentials.emplace();
      try {
        auto settings = aws::resolve_settings("", stack->region, aws::Environment::process());
        local_credentials->access_key_id = settings.credentials.access_key_id;
        local_credentials->secret_access_key = settings.credentials.secret_access_key;
        local_credentials->session_token = settings.credentials.session_token;
      } catch (const std::exception& e) {
        local_credentials->unavailable = e.what();
      }
    }
    return verify_sigv4(req, stack->region, stack->account_id, *local_credentials, std::chrono::system_clock::now());
  }

  // The whole answer of an invocation (a streamed one collected); false on a function error,
  // which the trail notes.
  static asio::awaitable<bool> whole_payload(lambda::InvokeResponse& result, std::string& payload, Trail& trail) {
    payload = std::move(result.payload);
    bool function_error = result.function_error;
    if (result.stream) {
      payload.clear();
      co_await collect_stream(result.stream, &payload, &function_error);
    }
    if (function_error) {
      trail.note = function_error_note(result);
      co_return false;
    }
    co_return true;
  }

  static std::string function_error_note(const lambda::InvokeResponse& result) {
    return "function error" + (result.error_type.empty() ? "" : " (" + result.error_type + ")");
  }

  // 502 "Internal Server Error" (AWS-recorded for a function error).
  static Response internal_server_error() {
    Response r;
    r.status = 502;
    r.set("Content-Type", "application/json");
    r.body = "Internal Server Error";
    return r;
  }

  // RESPONSE_STREAM: the function's stream goes out as it comes (an HTTP integration stream's
  // prelude sets the status and headers); a function that does not stream gets its whole
  // payload sent as the body, unmapped, as Lambda does.
  asio::awaitable<Response> stream_url(lambda::InvokeResponse& result, const std::string& request_id,
                                       const std::string& trace, const stack::FunctionUrlSpec& spec, const Request& req,
                                       Trail& trail, http::Responder& out) {
    auto head_of = [&](Response r) {
      r.set("x-amzn-RequestId", request_id);
      r.set("X-Amzn-Trace-Id", trace);
      if (!r.get("Date")) r.set("Date", http_date());
      if (spec.cors) apply_cors(*spec.cors, req, r);
      http::Response h{static_cast<http::bhttp::status>(r.status), 11};  // the head only: no Content-Length
      for (auto& x : r.headers) h.insert(x.name, x.value);
      return h;
    };
    if (!result.stream) {
      Response r;
      if (result.function_error) {
        trail.note = function_error_note(result);
        r = internal_server_error();
      } else {
        r.status = 200;
        r.set("Content-Type", result.content_type.empty() ? "application/json" : result.content_type);
        r.body = std::move(result.payload);
      }
      auto h = head_of(r);
      unsigned status = r.status;
      co_await out.start_chunked(std::move(h));
      co_await out.write_chunk(r.body);
      co_await out.finish_chunked();
      Response done;
      done.status = status;
      co_return done;
    }

    auto stream = result.stream;
    bool integration = stream->content_type() == http_integration_content_type;
    const std::string stream_type = stream->content_type().empty() ? "application/octet-stream" : stream->content_type();
    std::string prelude;  // integration streams: bytes up to the 8 NUL bytes
    bool headed = false;  // the response head is out
    bool cut = false;     // the answer was replaced by an error: the rest of the stream is dropped
    unsigned status = 200;
    static const std::string delimiter(8, '\0');
    // (Named arguments only: no temporaries in co_await expressions with GCC 12.)
    auto send_head = [&](Response& r) -> asio::awaitable<void> {
      status = r.status;
      headed = true;
      http::Response h = head_of(std::move(r));
      co_await out.start_chunked(std::move(h));
    };
    auto fail_with = [&](const std::string& why) -> asio::awaitable<void> {
      trail.note = why;
      cut = true;
      Response r = internal_server_error();
      std::string body = r.body;
      co_await send_head(r);
      co_await out.write_chunk(body);
    };
    {
      lambda::StreamReader reader(ex, stream);
      while (!out.failed() && !cut) {
        auto next = co_await reader.next();
        if (!next) break;
        std::string& chunk = *next;
        if (!headed && integration) {
          prelude += chunk;
          auto at = prelude.find(delimiter);
          if (at == std::string::npos) {
            if (prelude.size() > 1024 * 1024) {
              std::string why = "the stream's prelude has no end (8 NUL bytes) in its first MB";
              co_await fail_with(why);
            }
            continue;
          }
          auto p = parse_stream_prelude(std::string_view(prelude).substr(0, at));
          if (!p.ok) {
            co_await fail_with(p.problem);
            continue;
          }
          std::string rest = prelude.substr(at + delimiter.size());
          co_await send_head(p.head);
          co_await out.write_chunk(rest);
          continue;
        }
        if (!headed) {
          Response r;
          r.set("Content-Type", stream_type);
          co_await send_head(r);
        }
        co_await out.write_chunk(chunk);
      }
    }
    if (!headed) {
      // An integration stream that ended inside its prelude, or an empty stream.
      Response r;
      if (integration && !prelude.empty()) {
        auto p = parse_stream_prelude(prelude);
        if (p.ok) r = std::move(p.head);
        else {
          trail.note = p.problem;
          r = internal_server_error();
        }
      } else {
        r.set("Content-Type", stream_type);
      }
      std::string body = r.body;
      co_await send_head(r);
      co_await out.write_chunk(body);
    }
    if (!stream->error_type().empty()) {
      // Failed mid-stream: the body ends without its last chunk, so the client sees it cut short.
      trail.note = "the function failed mid-stream: " + stream->error_type();
      out.close_after();
    } else {
      co_await out.finish_chunked();
    }
    Response done;
    done.status = status;
    co_return done;
  }



  asio::awaitable<void> handle(std::shared_ptr<Listener> listener, http::Request& hreq, http::Responder& out) {
    auto state = listener->state;
    auto started = mono::now();
    const auto& api = state->spec;
    bool rest = api.type == stack::ApiType::rest;

    Request req = to_request(hreq, out, listener->port);

    std::string request_id = rest ? new_uuid() : new_apigw_id();
    std::string apigw_id = new_apigw_id();
    std::string trace = rest ? continued_trace(req.header("X-Amzn-Trace-Id")) : trace_root();
    Trail trail;

    Response res = co_await process(state, req, request_id, apigw_id, trace, trail);

    // AWS's own headers on every answer.
    if (rest) {
      res.set("x-amzn-RequestId", request_id);
      res.set("x-amz-apigw-id", apigw_id);
      // Answers from the integration, whatever their status, and from the
      // authorizer step carry the trace (recorded AWS responses; the gateway's
      // own early refusals, like MOCK integrations, do not).
      if (trail.traced) res.set("X-Amzn-Trace-Id", trace);
    } else {
      res.set("apigw-requestid", request_id);
    }
    if (!res.get("Date")) res.set("Date", http_date());

    http::Response hres = to_http(std::move(res), hreq.version());

    // Logged before the answer goes out, so that a client holding the answer finds its line
    // (the Python package's app.access_log() right after a request).
    double ms = std::chrono::duration<double, std::milli>(mono::now() - started).count();
    if (access_log) {
      std::string line = "[api " + api.name + "/" + trail.stage + "] " + req.method + " " + req.raw_path +
                         (req.raw_query.empty() ? "" : "?" + req.raw_query) + " -> " + std::to_string(res.status) +
                         " in " + fixed2(ms) + " ms";
      if (trail.function != "-")
        line += " (" + trail.function + ":" + (trail.version.empty() ? "?" : trail.version) + ", " +
                (trail.cold ? "cold" : "warm") + ")";
      if (!trail.note.empty()) line += " [" + trail.note + "]";
      access_log(line);
    }
    co_await out.send(std::move(hres));
  }

  static Response error(const ApiState& st, GatewayError e) { return gateway_error(st.spec.type, e); }

  asio::awaitable<Response> process(std::shared_ptr<ApiState> state, Request& req, const std::string& request_id,
                                    const std::string& apigw_id, const std::string& trace, Trail& trail) {
    const auto& api = state->spec;
    bool rest = api.type == stack::ApiType::rest;

    // ---- stage
    std::string stage;
    std::string below;  // raw path below the stage
    {
      std::string_view raw = req.raw_path;
      std::string_view first = raw.substr(raw.empty() || raw[0] != '/' ? 0 : 1);
      // REST: slashes before the stage do not count ("//stage/path" reaches the
      // stage; recorded AWS event invocation-payload-with-prepended-slash-to-stage).
      if (rest)
        while (!first.empty() && first.front() == '/') first.remove_prefix(1);
      auto slash = first.find('/');
      std::string seg = url_decode(first.substr(0, slash));
      std::string_view rest_of = slash == std::string_view::npos ? std::string_view("/") : first.substr(slash);
      if (rest) {
        if (seg.empty() || !api.stages.count(seg)) {
          trail.note = seg.empty() ? "no stage in the path" : "no stage named " + sluice::quoted(seg);
          co_return error(*state, GatewayError::forbidden);
        }
        stage = seg;
        below = std::string(rest_of);
      } else if (!seg.empty() && seg != "$default" && api.stages.count(seg)) {
        stage = seg;
        below = std::string(rest_of);
      } else if (api.stages.count("$default")) {
        stage = "$default";
        below = std::string(raw.empty() ? "/" : raw);
      } else {
        trail.note = "no stage matches";
        co_return error(*state, GatewayError::not_found);
      }
    }
    trail.stage = stage;
    req.path = url_decode(below);
    if (!rest) {
      // HTTP APIs decode the path twice, and a '?' that the first decoding yields ends it (live
      // captures, hotsock/voker ingress-paths.json: "%3F" cuts the path there, "%252F" arrives as
      // "/", "%2525" as "%", and "%25done" is refused with 400).
      if (auto q = req.path.find('?'); q != std::string::npos) req.path.erase(q);
      auto twice = decode_path_strictly(req.path);
      if (!twice) {
        trail.note = "the path " + sluice::quoted(req.path) + " holds a '%' that is not followed by two hex digits";
        Response r = error(*state, GatewayError::bad_request);
        if (api.cors) apply_cors(*api.cors, req, r);
        co_return r;
      }
      req.path = std::move(*twice);
    }
    if (req.path.empty()) req.path = "/";
    const auto& stage_spec = api.stages.at(stage);

    // ---- route
    RouteMatch match = state->router->match(req.method, req.path);

    // ---- CORS preflight (HTTP APIs with a CORS configuration answer it themselves), unless the
    // preflight falls to a $default route with an authorizer: that route catches it, and its
    // authorizer answers an unauthenticated one (reference §4.9; an OPTIONS /{proxy+} route
    // without authorization is the remedy there as on AWS).
    if (!rest && api.cors && is_preflight(req)) {
      bool caught = match.route && match.route_key == "$default" && !match.route->authorizer.empty() &&
                    match.route->authorizer != "none";
      if (!caught) {
        trail.note = "CORS preflight";
        co_return preflight_response(*api.cors, req);
      }
    }
    if (!match.route) {
      trail.note = match.path_found ? "no " + req.method + " method on this resource" : "no route";
      Response r = error(*state, rest ? GatewayError::missing_authentication_token : GatewayError::not_found);
      if (!rest && api.cors) apply_cors(*api.cors, req, r);
      co_return r;
    }
    const auto& route = *match.route;

    auto with_cors = [&](Response r) {
      if (!rest && api.cors) apply_cors(*api.cors, req, r);
      return r;
    };

    // The request's time, in its authorizer's event and its integration's alike.
    const auto request_time = wall_clock::now();

    // ---- authorizer
    json authorizer_ctx;
    bool has_authorizer = !route.authorizer.empty() && route.authorizer != "none";
    std::string usage_key;
    if (has_authorizer) {
      trail.traced = true;
      auto ait = api.authorizers.find(route.authorizer);
      if (ait == api.authorizers.end()) {
        trail.note = "authorizer " + route.authorizer + " is not defined";
        co_return with_cors(error(*state, GatewayError::authorizer_failure));
      }
      const auto& auth = ait->second;
      AuthInput in;
      in.request = &req;
      in.match = &match;
      in.api = &api;
      in.stage = stage;
      in.stage_variables = &stage_spec.variables;
      in.method_arn = method_arn(state->region, state->account, api.api_id, stage, req.method, req.path);
      // "The ARN of a method with authorization" may not exceed 1,600 bytes: 414 (AG:limits).
      if (rest && in.method_arn.size() > 1600) {
        trail.note = "the method ARN is " + std::to_string(in.method_arn.size()) + " bytes, over API Gateway's 1,600";
        Response r;
        r.status = 414;
        r.headers.push_back({"Content-Type", "application/json"});
        r.body = R"({"message":"Request-URI Too Long"})";
        co_return r;
      }
      in.request_id = request_id;
      in.account_id = state->account;
      in.region = state->region;
      in.domain_name = req.header("Host").value_or("");
      in.extended_request_id = rest ? apigw_id : request_id;
      in.trace_id = trace;
      in.time = request_time;

      auto id = identity(auth, in);
      if (!id) {
        trail.note = "authorizer " + auth.name + ": identity source missing";
        Response r = error(*state, GatewayError::unauthorized);
        // JWT authorizers challenge a request without a token with a bare scheme (RFC 6750 §3.1,
        // as AWS answers: "www-authenticate: Bearer").
        if (auth.type == stack::AuthorizerType::jwt) r.set("www-authenticate", "Bearer");
        co_return with_cors(std::move(r));
      }
      if (auth.type == stack::AuthorizerType::jwt) {
        auto vit = state->jwt.find(auth.name);
        if (vit == state->jwt.end()) {
          trail.note = "JWT authorizer " + auth.name + " has no usable keys";
          co_return with_cors(error(*state, GatewayError::authorizer_failure));
        }
        auto result = vit->second->verify(*id, route.authorization_scopes, wall_clock::now());
        if (!result.ok) {
          trail.note = "JWT rejected: " + result.error;
          Response r = error(*state, result.insufficient_scope ? GatewayError::access_denied : GatewayError::unauthorized);
          r.set("www-authenticate", jwt_www_authenticate(result, route.authorization_scopes));
          co_return with_cors(std::move(r));
        }
        if (result.algorithm == "ES256" && !warned_es256.count(api.name + "/" + auth.name)) {
          warned_es256.insert(api.name + "/" + auth.name);
          logger()->warn("API {}: JWT authorizer {} accepted an ES256 token; AWS HTTP API JWT authorizers only "
                         "verify RSA signatures, so this token would be refused there",
                         api.name, auth.name);
        }
        authorizer_ctx = jwt_authorizer_context(result, !route.authorization_scopes.empty());
      } else {
        std::optional<AuthorizerCache::Entry> cached;
        bool cacheable = auth.ttl_s > 0 && !id->empty();
        // The cache belongs to a stage (FlushStageAuthorizersCache flushes one stage's).
        const std::string cache_name = stage + "/" + auth.name;
        if (cacheable) cached = auth_cache.get(cache_name, *id, mono::now());
        AuthorizerCache::Entry entry;
        long long authorizer_ms = 0;  // a cached result took no integration time
        if (cached) {
          entry = *cached;
        } else {
          auto invoked = mono::now();
          lambda::InvokeRequest ir;
          ir.function = auth.function;
          ir.payload = authorizer_event(auth, in);
          ir.payload_must_be_json = false;
          ir.trace_header = trace;
          ir.source = "authorizer " + auth.name;
          // HTTP API authorizers have 10 s to answer, then the request fails with 500 (reference
          // §4.8); the invocation runs on, as an integration's does.
          auto limit = std::chrono::milliseconds(rest ? 24 * 3600 * 1000 : 10'000);
          if (!rest && options.timeout_ms) limit = std::min(limit, std::chrono::milliseconds(*options.timeout_ms));
          auto answer = co_await invoke_within(&service, std::move(ir), limit);
          authorizer_ms = std::chrono::duration_cast<std::chrono::milliseconds>(mono::now() - invoked).count();
          if (!answer) {
            trail.note = "authorizer " + auth.name + " did not answer within " + std::to_string(limit.count()) + " ms";
            co_return with_cors(error(*state, GatewayError::authorizer_failure));
          }
          auto& ares = *answer;
          if (ares.error) {
            trail.note = "authorizer " + auth.name + " could not be invoked: " + ares.error->code;
            co_return with_cors(error(*state, GatewayError::authorizer_failure));
          }
          entry.payload = std::move(ares.payload);
          entry.function_error = ares.function_error;
          if (cacheable && !entry.function_error) auth_cache.put(cache_name, *id, entry, auth.ttl_s, mono::now());
        }
        AuthDecision d = interpret_authorizer_output(api, auth, entry.payload, entry.function_error, in.method_arn);
        switch (d.kind) {
          case AuthDecision::allow:
            authorizer_ctx = std::move(d.context);
            // REST events show the authorizer's latency beside its context (real
            // captured events: "integrationLatency": 0 when served from the cache).
            if (rest && authorizer_ctx.is_object()) authorizer_ctx["integrationLatency"] = authorizer_ms;
            usage_key = d.usage_identifier_key;
            break;
          case AuthDecision::unauthorized:
            trail.note = "authorizer " + auth.name + ": Unauthorized";
            co_return with_cors(error(*state, GatewayError::unauthorized));
          case AuthDecision::denied:
            trail.note = "authorizer " + auth.name + ": not allowed";
            co_return with_cors(error(*state, GatewayError::access_denied));
          case AuthDecision::denied_explicit:
            trail.note = "authorizer " + auth.name + ": explicit deny";
            co_return with_cors(error(*state, GatewayError::access_denied_explicit));
          case AuthDecision::failure:
            trail.note = "authorizer " + auth.name + " failed: " + d.problem;
            co_return with_cors(error(*state, GatewayError::authorizer_failure));
        }
      }
    }

    // ---- API key, throttling and quota
    KeyCheck key;
    bool keyed = rest && route.api_key_required;
    if (keyed) {
      // The key comes from the x-api-key header, or with api_key_source AUTHORIZER from the
      // usageIdentifierKey the route's authorizer returned (the header is then ignored).
      const bool from_authorizer = api.api_key_source == "AUTHORIZER";
      std::optional<std::string> presented =
          from_authorizer ? (usage_key.empty() ? std::nullopt : std::optional<std::string>(usage_key))
                          : req.header("x-api-key");
      key = usage->check_key(api.name, stage, presented);
      if (!key.ok) {
        trail.note = std::string(presented ? "API key not valid for this stage" : "API key missing") +
                     (from_authorizer ? " (the authorizer's usageIdentifierKey)" : "");
        co_return error(*state, GatewayError::forbidden);
      }
    }
    switch (usage->admit(api.name, stage, match.route_key, keyed ? &key : nullptr, mono::now(), wall_clock::now())) {
      case Verdict::allow: break;
      case Verdict::throttled:
        trail.note = "throttled";
        co_return with_cors(error(*state, GatewayError::throttled));
      case Verdict::quota_exceeded:
        trail.note = "quota exceeded";
        co_return with_cors(error(*state, GatewayError::quota_exceeded));
    }

    // ---- target
    Substituted fn = substitute(route.target.function, stage_spec.variables);
    Substituted qual = substitute(route.target.qualifier, stage_spec.variables);
    std::string missing = !fn.missing.empty() ? fn.missing : qual.missing;
    if (!missing.empty()) {
      trail.note = "stage variable " + sluice::quoted(missing) + " is not defined on stage " + stage;
      co_return with_cors(error(*state, GatewayError::configuration_error));
    }
    trail.function = fn.value;

    // ---- event
    EventInput ev;
    ev.request = &req;
    ev.api = &api;
    ev.match = &match;
    ev.stage = stage;
    ev.stage_variables = &stage_spec.variables;
    ev.request_id = request_id;
    // REST events carry API Gateway's own id apart; HTTP API 1.0 events repeat requestId there.
    ev.extended_request_id = rest ? apigw_id : request_id;
    ev.account_id = stack->account_id;
    ev.region = stack->region;
    ev.time = request_time;
    ev.domain_name = req.header("Host").value_or(options.host);
    ev.domain_prefix = ev.domain_name.substr(0, ev.domain_name.find_first_of(".:"));
    ev.trace_id = trace;
    if (has_authorizer) ev.authorizer = &authorizer_ctx;
    if (keyed && key.key) {
      ev.api_key = key.key->value;
      ev.api_key_id = key.key->id;
    }
    std::string format = rest ? "1.0" : (route.payload_format.empty() ? "2.0" : route.payload_format);
    ev.base64_body = rest ? rest_body_is_binary(req, api.binary_media_types) : http_body_is_binary(req);
    std::string event = rest ? rest_event(ev) : format == "1.0" ? http_v1_event(ev) : http_v2_event(ev);

    // ---- invoke, within the integration timeout
    lambda::InvokeRequest ir;
    ir.function = fn.value;
    ir.qualifier = qual.value;
    ir.payload = std::move(event);
    ir.payload_must_be_json = false;
    ir.trace_header = trace;
    ir.source = "api " + api.name + "/" + stage + " " + match.route_key;
    int timeout_ms = route.timeout_ms.value_or(api.timeout_ms);
    if (options.timeout_ms) timeout_ms = std::min(timeout_ms, *options.timeout_ms);
    if (!options.untimed_function.empty() && fn.value == options.untimed_function) timeout_ms = 24 * 3600 * 1000;
    trail.traced = true;
    auto answer = co_await invoke_within(&service, std::move(ir), std::chrono::milliseconds(timeout_ms));
    if (!answer) {
      trail.note = "integration timed out after " + std::to_string(timeout_ms) + " ms";
      co_return with_cors(error(*state, GatewayError::integration_timeout));
    }
    auto& result = *answer;
    trail.version = result.executed_version;
    trail.cold = result.cold_start;
    if (result.error) {
      trail.note = "Lambda answered " + std::to_string(result.error->status) + " " + result.error->code + ": " +
                   result.error->message;
      bool config = result.error->status == 404 || result.error->status == 400;
      // An event over Lambda's 6 MB (a body between 6 and 10 MB): a REST API answers 413, as
      // recorded from AWS (koki-develop/lgtm-generator#10); an HTTP API's answer is unrecorded.
      if (rest && result.error->status == 413) co_return with_cors(error(*state, GatewayError::request_too_large));
      co_return with_cors(error(*state, config ? GatewayError::configuration_error : GatewayError::integration_failure));
    }
    std::string payload;
    bool answered = co_await whole_payload(result, payload, trail);
    if (!answered) co_return with_cors(error(*state, GatewayError::integration_failure));

    // ---- response mapping
    Mapped mapped = rest ? rest_response(payload, req, api.binary_media_types)
                         : format == "1.0" ? http_v1_response(payload) : http_v2_response(payload);
    if (!mapped.ok) {
      // REST and payload 1.0 problems come with this prefix already: say it once.
      std::string_view problem = mapped.problem;
      constexpr std::string_view prefix = "Malformed Lambda proxy response: ";
      if (problem.substr(0, prefix.size()) == prefix) problem.remove_prefix(prefix.size());
      trail.note = "malformed Lambda proxy response: " + std::string(problem);
      co_return with_cors(error(*state, GatewayError::integration_failure));
    }
    co_return with_cors(std::move(mapped.response));
  }
};

Gateway::Gateway(asio::any_io_executor ex, lambda::LambdaService& service, GatewayOptions options,
                 std::function<void(const std::string&)> access_log)
    : impl_(std::make_shared<Impl>(ex, service, std::move(options), std::move(access_log))) {}
Gateway::~Gateway() = default;

void Gateway::start(const stack::Stack& stack) { impl_->start(stack); }
void Gateway::reload(const stack::Stack& stack) { impl_->reload(stack); }
std::vector<std::string> Gateway::reload_problems(const stack::Stack& stack) const {
  return impl_->reload_problems(stack);
}
asio::awaitable<void> Gateway::drain(std::chrono::milliseconds deadline) { return impl_->drain(deadline); }

std::vector<ApiEndpoint> Gateway::endpoints() const {
  std::vector<ApiEndpoint> out;
  for (const auto& [name, l] : impl_->listeners) {
    ApiEndpoint e;
    e.name = name;
    e.type = l->state->spec.type;
    e.url = "http://" + impl_->options.host + ":" + std::to_string(l->port);
    for (const auto& [stage, spec] : l->state->spec.stages) e.stages.push_back(stage);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<UrlEndpoint> Gateway::url_endpoints() const {
  std::vector<UrlEndpoint> out;
  for (const auto& [name, l] : impl_->url_listeners)
    out.push_back(UrlEndpoint{name, "http://" + impl_->options.host + ":" + std::to_string(l->port), l->spec.auth_type,
                              l->spec.invoke_mode});
  return out;
}

}  // namespace sluice::gateway
