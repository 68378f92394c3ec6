#include "sluice/gateway/invoke_api.hpp"

#include "control_api.hpp"

#include "sluice/common/http_server.hpp"
#include "sluice/common/log.hpp"
#include "sluice/common/util.hpp"
#include "sluice/gateway/event_stream.hpp"
#include "sluice/lambda/function_ref.hpp"
#include "sluice/lambda/service.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <deque>
#include <optional>

namespace sluice::gateway {

namespace asio = boost::asio;
using http::Request;
using http::Response;
using json = nlohmann::json;

namespace {

constexpr std::size_t max_buffered = 6 * 1024 * 1024 + 100;

Response error_response(const lambda::ServiceError& e, const std::string& request_id) {
  Response res{static_cast<http::bhttp::status>(e.status), 11};
  json body = json::object();
  // Lambda's ValidationException (a value outside its model) has no Type (AWS-recorded).
  if (e.code != "ValidationException") body["Type"] = e.type;
  // AWS spells the message key "Message" for ResourceNotFoundException and "message" elsewhere.
  body[e.code == "ResourceNotFoundException" ? "Message" : "message"] = e.message;
  if (!e.reason.empty()) body["Reason"] = e.reason;
  res.set("x-amzn-ErrorType", e.code);
  res.set("x-amzn-RequestId", request_id);
  res.set(http::bhttp::field::content_type, "application/json");
  res.body() = body.dump();
  res.prepare_payload();
  return res;
}

Response lambda_style_error(unsigned status, const std::string& message) {
  std::string code = status == 413   ? "RequestEntityTooLargeException"
                     : status == 408 ? "RequestTimeoutException"
                     : status == 431 ? "RequestHeaderFieldsTooLargeException"
                     : status == 404 ? "UnknownOperationException"
                     : status >= 500 ? "ServiceException"
                                     : "InvalidRequestContentException";
  std::string msg = status == 413 ? "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
                                  : message;
  return error_response(lambda::ServiceError{status, code, msg, "", status >= 500 ? "Service" : "User"}, new_uuid());
}

std::string header(const Request& req, std::string_view name) {
  auto it = req.find(name);
  return it == req.end() ? std::string() : std::string(it->value());
}

struct Target {
  enum Kind { invoke, invoke_stream, invoke_async, publish, unknown } kind = unknown;
  std::string function;
  std::string qualifier;
};

Target parse_target(http::bhttp::verb method, std::string_view target) {
  Target t;
  std::string_view path = target, query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  for (const auto& kv : split(query, '&')) {
    auto eq = kv.find('=');
    std::string key = url_decode(kv.substr(0, eq), true);
    if (key == "Qualifier" && eq != std::string::npos) t.qualifier = url_decode(kv.substr(eq + 1), true);
  }
  auto parts = split(path, '/');  // "", "2015-03-31", "functions", NAME, "invocations"
  // The legacy InvokeAsync (boto3's invoke_async, deprecated but served): .../invoke-async[/]
  if (parts.size() == 6 && parts[5].empty() && parts[4] == "invoke-async") parts.pop_back();
  if (parts.size() == 5 && parts[0].empty() && parts[1] == "2014-11-13" && parts[2] == "functions" &&
      parts[4] == "invoke-async" && method == http::bhttp::verb::post) {
    t.function = url_decode(parts[3]);
    t.kind = Target::invoke_async;
    return t;
  }
  if (parts.size() == 5 && parts[0].empty() && parts[2] == "functions" && method == http::bhttp::verb::post) {
    t.function = url_decode(parts[3]);
    if (parts[1] == "2015-03-31" && parts[4] == "invocations") t.kind = Target::invoke;
    else if (parts[1] == "2021-11-15" && parts[4] == "response-streaming-invocations") t.kind = Target::invoke_stream;
    else if (parts[1] == "2015-03-31" && parts[4] == "versions") t.kind = Target::publish;
  }
  return t;
}

// Collects a streamed response into one buffer (plain Invoke of a streaming function).
asio::awaitable<bool> collect(std::shared_ptr<runtime::ResponseStream> stream, std::string& out) {
  bool too_large = false;
  std::function<void(std::string_view)> append = [&out, &too_large](std::string_view chunk) {
    if (out.size() + chunk.size() > max_buffered) too_large = true;
    else out.append(chunk);
  };
  co_await lambda::read_stream(*stream, append);  // no temporaries in co_await (GCC 12)
  co_return !too_large;
}

}  // namespace

struct InvokeApi::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor ex_, lambda::LambdaService& svc) : ex(ex_), service(svc) {}
  asio::any_io_executor ex;
  lambda::LambdaService& service;
  std::shared_ptr<http::Server> server;
  AdminHandler admin;

  asio::awaitable<void> handle(Request& req, http::Responder& out) {
    if (admin && starts_with(req.target(), "/sluice/")) {
      co_await handle_admin(req, out);
      co_return;
    }
    Target t = parse_target(req.method(), req.target());
    if (t.kind == Target::unknown && req.method() == http::bhttp::verb::get) {
      if (auto answer = control_plane_get(req.target(), service)) {
        std::string rid = new_uuid();
        if (!answer->error_code.empty()) {
          Response r = error_response(
              lambda::ServiceError{answer->status, answer->error_code, answer->error_message, "", "User"}, rid);
          co_await out.send(std::move(r));
          co_return;
        }
        Response r{http::bhttp::status::ok, 11};
        r.set("x-amzn-RequestId", rid);
        r.set(http::bhttp::field::content_type, "application/json");
        r.body() = std::move(answer->body);
        r.prepare_payload();
        co_await out.send(std::move(r));
        co_return;
      }
    }
    if (t.kind == Target::unknown) {
      Response r = lambda_style_error(404, "Unknown operation: " + std::string(req.method_string()) + " " +
                                               std::string(req.target()));
      co_await out.send(std::move(r));
      co_return;
    }
    if (t.kind == Target::publish) {
      co_await publish(req, t, out);
      co_return;
    }
    lambda::InvokeRequest ir;
    ir.function = t.function;
    ir.qualifier = t.qualifier;
    ir.payload = std::move(req.body());
    // AWS's message for a header outside its enum.
    auto not_in_enum = [](const std::string& value, const char* member, const char* allowed) {
      return lambda::ServiceError{400, "ValidationException",
                                  "1 validation error detected: Value '" + value + "' at '" + member +
                                      "' failed to satisfy constraint: Member must satisfy enum value set: " + allowed,
                                  "", "User"};
    };
    std::optional<lambda::ServiceError> refusal;
    std::string type = header(req, "X-Amz-Invocation-Type");
    std::string log_type = header(req, "X-Amz-Log-Type");
    if (t.kind == Target::invoke_async) type = "Event", log_type.clear();
    if (type.empty() || type == "RequestResponse") ir.type = lambda::InvocationType::request_response;
    else if (type == "Event") ir.type = lambda::InvocationType::event;
    else if (type == "DryRun") ir.type = lambda::InvocationType::dry_run;
    else refusal = not_in_enum(type, "invocationType", "[Event, RequestResponse, DryRun]");
    if (!refusal && t.kind == Target::invoke_stream && ir.type == lambda::InvocationType::event)
      refusal = lambda::ServiceError{400, "InvalidParameterValueException",
                                     "InvokeWithResponseStream supports RequestResponse and DryRun invocation types",
                                     "", "User"};
    if (!refusal && !log_type.empty() && log_type != "Tail" && log_type != "None")
      refusal = not_in_enum(log_type, "logType", "[Tail, None]");
    if (refusal) {
      Response r = error_response(*refusal, new_uuid());
      co_await out.send(std::move(r));
      co_return;
    }
    ir.tail = log_type == "Tail" && ir.type == lambda::InvocationType::request_response;
    ir.client_context_b64 = header(req, "X-Amz-Client-Context");
    ir.trace_header = header(req, "X-Amzn-Trace-Id");
    ir.tenant_id = header(req, "X-Amz-Tenant-Id");
    ir.source = "invoke-api";

    auto res = co_await service.invoke(std::move(ir));
    if (res.error) {
      Response r = error_response(*res.error, res.request_id);
      co_await out.send(std::move(r));
      co_return;
    }
    if (t.kind == Target::invoke_stream) {
      co_await stream_out(res, out);
      co_return;
    }
    Response r{static_cast<http::bhttp::status>(res.status), 11};
    r.set("x-amzn-RequestId", res.request_id);
    if (!res.trace_id.empty()) r.set("X-Amzn-Trace-Id", res.trace_id);
    if (t.kind == Target::invoke_async) {
      r.set(http::bhttp::field::content_type, "application/json");
      r.body() = R"({"Status":202})";
    }
    if (res.status == 200) {
      std::string payload = std::move(res.payload);
      bool function_error = res.function_error;
      if (res.stream) {
        // Plain Invoke of a function that streams: the caller gets the whole body.
        payload.clear();
        bool ok = co_await collect(res.stream, payload);
        if (!ok) {
          payload = R"({"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"})";
          function_error = true;
        } else if (!res.stream->error_type().empty()) {
          payload = res.stream->error_body();
          function_error = true;
        }
      }
      r.set("X-Amz-Executed-Version", res.executed_version);
      if (function_error) r.set("X-Amz-Function-Error", "Unhandled");
      if (!res.log_result.empty()) r.set("X-Amz-Log-Result", res.log_result);
      r.set(http::bhttp::field::content_type, function_error || res.content_type.empty() ? "application/json"
                                                                                          : res.content_type);
      r.body() = std::move(payload);
    }
    r.prepare_payload();
    co_await out.send(std::move(r));
  }

  asio::awaitable<void> handle_admin(Request& req, http::Responder& out) {
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    auto answer = std::make_shared<std::pair<unsigned, std::string>>(404, "");
    bool handled = false;
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [&](auto handler) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          auto ex2 = ex;
          handled = admin(std::string(req.method_string()), path, [h, ex2, answer](unsigned status, std::string body) {
            answer->first = status;
            answer->second = std::move(body);
            asio::post(ex2, [h] { (*h)(); });
          });
          if (!handled) asio::post(ex2, [h] { (*h)(); });
        },
        asio::use_awaitable);
    if (!handled) {
      Response r = lambda_style_error(404, "Unknown operation: " + std::string(req.method_string()) + " " + target);
      co_await out.send(std::move(r));
      co_return;
    }
    Response r{static_cast<http::bhttp::status>(answer->first), 11};
    r.set(http::bhttp::field::content_type, "application/json");
    r.body() = std::move(answer->second);
    r.prepare_payload();
    co_await out.send(std::move(r));
  }

  asio::awaitable<void> stream_out(lambda::InvokeResponse& res, http::Responder& out) {
    Response head{http::bhttp::status::ok, 11};
    head.set("x-amzn-RequestId", res.request_id);
    head.set(http::bhttp::field::content_type, "application/vnd.amazon.eventstream");
    if (res.status == 204) {
      Response r{http::bhttp::status::no_content, 11};
      r.set("x-amzn-RequestId", res.request_id);
      co_await out.send(std::move(r));
      co_return;
    }
    head.set("X-Amz-Executed-Version", res.executed_version);
    if (!res.stream) {
      co_await out.start_chunked(std::move(head));
      if (!res.function_error) {
        std::string ev = payload_chunk_event(res.payload);
        co_await out.write_chunk(ev);
      }
      std::string code, details;
      if (res.function_error) {
        auto j = json::parse(res.payload, nullptr, false);
        code = j.is_object() && j.contains("errorType") ? j["errorType"].get<std::string>() : "Unhandled";
        details = res.payload;
      }
      std::string done = invoke_complete_event(code, details, res.log_result);
      co_await out.write_chunk(done);
      co_await out.finish_chunked();
      co_return;
    }
    co_await out.start_chunked(std::move(head));
    // Chunks are forwarded as they arrive; the producer pauses while writes are behind.
    auto stream = res.stream;
    {
      lambda::StreamReader reader(ex, stream);
      while (!out.failed()) {
        auto chunk = co_await reader.next();
        if (!chunk) break;
        std::string ev = payload_chunk_event(*chunk);
        co_await out.write_chunk(ev);
      }
    }
    if (out.failed()) co_return;
    std::string code = stream->error_type(), details = stream->error_body();
    std::string done = invoke_complete_event(code, details, res.log_result);
    co_await out.write_chunk(done);
    co_await out.finish_chunked();
  }

  asio::awaitable<void> publish(Request& req, const Target& t, http::Responder& out) {
    std::string rid = new_uuid();
    auto parsed = lambda::parse_function_ref(t.function, "");
    if (parsed.error) {
      lambda::ServiceError err{400, parsed.error->code, parsed.error->message, "", "User"};
      Response r = error_response(err, rid);
      co_await out.send(std::move(r));
      co_return;
    }
    std::string description;
    auto body = json::parse(req.body().empty() ? "{}" : req.body(), nullptr, false);
    if (body.is_object() && body.contains("Description") && body["Description"].is_string())
      description = body["Description"].get<std::string>();
    const auto& st = service.stack();
    auto fit = st.functions.find(parsed.ref->name);
    if (fit == st.functions.end()) {
      lambda::ServiceError err{404, "ResourceNotFoundException",
                               "Function not found: " + lambda::function_arn(st.region, st.account_id, parsed.ref->name),
                               "", "User"};
      Response r = error_response(err, rid);
      co_await out.send(std::move(r));
      co_return;
    }
    std::optional<lambda::VersionStore::Published> pub;
    std::string failure;
    try {
      pub = service.publish(parsed.ref->name, description);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!pub) {
      lambda::ServiceError err{500, "ServiceException", failure, "", "Service"};
      Response r = error_response(err, rid);
      co_await out.send(std::move(r));
      co_return;
    }
    Response r{http::bhttp::status::created, 11};
    r.set("x-amzn-RequestId", rid);
    r.set(http::bhttp::field::content_type, "application/json");
    r.body() = function_configuration(pub->config, service, true);
    r.prepare_payload();
    co_await out.send(std::move(r));
  }
};

InvokeApi::InvokeApi(asio::any_io_executor ex, lambda::LambdaService& service)
    : impl_(std::make_shared<Impl>(ex, service)) {
  http::ServerLimits limits;
  limits.body_limit = 6 * 1024 * 1024;
  limits.header_limit = 64 * 1024;
  // Invocations may legitimately take up to 15 minutes.
  limits.write_timeout = std::chrono::minutes(16);
  std::weak_ptr<Impl> w = impl_;
  impl_->server = std::make_shared<http::Server>(
      ex, "lambda", limits,
      [w](Request& req, http::Responder& out) -> asio::awaitable<void> {
        auto self = w.lock();
        if (!self) co_return;
        co_await self->handle(req, out);
      },
      lambda_style_error);
}

InvokeApi::~InvokeApi() = default;

unsigned short InvokeApi::listen(const std::string& host, unsigned short port) {
  return impl_->server->listen(host, port).port();
}
void InvokeApi::start() { impl_->server->start(); }
void InvokeApi::set_admin_handler(AdminHandler handler) { impl_->admin = std::move(handler); }
asio::awaitable<void> InvokeApi::drain(std::chrono::milliseconds deadline) {
  return impl_->server->drain(deadline);
}

}  // namespace sluice::gateway
