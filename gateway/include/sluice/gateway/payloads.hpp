// Lambda proxy integration payloads: the event a function receives (REST
// payload 1.0, HTTP API payload 1.0 and 2.0) and the mapping of what it
// returns to an HTTP response, exactly as API Gateway does (reference §4.1-4.3,
// §4.10; AWS-recorded events in shared/vectors/aws-recorded).
#pragma once

#include "sluice/gateway/routing.hpp"
#include "sluice/gateway/types.hpp"
#include "sluice/stack/model.hpp"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::gateway {

struct EventInput {
  const Request* request = nullptr;
  const stack::ApiSpec* api = nullptr;
  const RouteMatch* match = nullptr;
  std::string stage;  // "$default" for an HTTP API's default stage
  const std::map<std::string, std::string>* stage_variables = nullptr;
  std::string request_id;           // requestContext.requestId (REST: a UUID; HTTP: API Gateway's short id)
  std::string extended_request_id;  // REST requestContext.extendedRequestId
  std::string account_id, region;
  std::chrono::system_clock::time_point time;
  std::string domain_name;    // the Host the client used, e.g. "127.0.0.1:3000"
  std::string domain_prefix;  // its first label
  std::string trace_id;       // X-Amzn-Trace-Id the gateway adds (REST events show it as a header)
  // REST: the flat authorizer object (principalId, context keys as strings,
  // integrationLatency). HTTP: {"lambda": {...}} or {"jwt": {"claims": ..., "scopes": ...}}.
  const nlohmann::json* authorizer = nullptr;
  std::string api_key, api_key_id;  // REST, when the route required a key
  bool base64_body = false;         // decided with rest_body_is_binary / http_body_is_binary
  // A function URL's payload 2.0 differs from an HTTP API's: rawPath as sent (percent-encoded;
  // requestContext.http.path decoded) and the Cookie header kept in headers beside cookies.
  bool function_url = false;
};

// Headers API Gateway adds to what integrations and authorizers receive: X-Forwarded-For (the
// client's own chain, then its address) and X-Forwarded-Port (beside X-Forwarded-Proto "http").
std::string forwarded_for(const Request& req);
std::string forwarded_port(const Request& req);

std::string rest_event(const EventInput& in);     // REST API, payload 1.0
std::string http_v1_event(const EventInput& in);  // HTTP API, payload 1.0
std::string http_v2_event(const EventInput& in);  // HTTP API, payload 2.0

// REST: the request body is base64-encoded when its Content-Type matches one of
// the API's binary media types (wildcards such as image/* and */* allowed).
bool rest_body_is_binary(const Request& req, const std::vector<std::string>& binary_media_types);
// HTTP APIs: base64 unless the content type is text-like (text/*, JSON, XML, JavaScript...).
bool http_body_is_binary(const Request& req);

struct Mapped {
  bool ok = true;       // false: the output was not a valid proxy response (the gateway answers 502 / 500)
  Response response;    // valid when ok
  std::string problem;  // why it was invalid, for the log; also set, with ok and a ready
                        // 500 response, when REST could not decode a base64 body (AWS answers 500 there)
};

// REST payload 1.0 output: strict (extra keys, wrong types => not ok). A base64
// body is decoded only when isBase64Encoded is true and the request's first
// Accept type matches a binary media type (AWS-validated: the response
// Content-Type plays no part).
Mapped rest_response(std::string_view payload, const Request& req, const std::vector<std::string>& binary_media_types);
// HTTP payload 2.0 output: a JSON value without statusCode becomes a 200 JSON body;
// cookies become Set-Cookie headers; base64 decoded when isBase64Encoded.
Mapped http_v2_response(std::string_view payload);
// HTTP payload 1.0 output (same shape as REST, no binary media types).
Mapped http_v1_response(std::string_view payload);

// Function URL output (BUFFERED): an object with statusCode maps as payload 2.0; any other
// JSON value is a 200 application/json body as it is -- a string's own text, other values
// written compactly (AWS-recorded).
Mapped function_url_response(std::string_view payload);

// RESPONSE_STREAM function URLs: a stream of content type
// application/vnd.awslambda.http-integration-response starts with a JSON prelude
// ({"statusCode", "headers", "cookies"}) and 8 NUL bytes, then the body.
constexpr std::string_view http_integration_content_type = "application/vnd.awslambda.http-integration-response";
struct StreamPrelude {
  bool ok = false;
  Response head;        // status and headers (cookies as set-cookie), no body
  std::string problem;  // when not ok
};
StreamPrelude parse_stream_prelude(std::string_view prelude);

// The gateway's own answers (reference §4.5), with x-amzn-ErrorType on REST APIs.
enum class GatewayError {
  missing_authentication_token,  // REST: no route or method (403)
  not_found,                     // HTTP: no route (404)
  forbidden,                     // missing/invalid API key (403)
  unauthorized,                  // authorizer: missing identity or "Unauthorized" (401)
  access_denied,                 // authorizer: not allowed (403), implicit
  access_denied_explicit,        // authorizer: explicit Deny (403)
  authorizer_failure,            // authorizer error/invalid output (REST 500 {"message": null}; HTTP 500)
  integration_failure,           // function error / malformed output (REST 502, HTTP 500)
  configuration_error,           // target resolves to nothing (REST 500, HTTP 500)
  integration_timeout,           // REST 504, HTTP 503
  throttled,                     // 429 Too Many Requests
  quota_exceeded,                // 429 Limit Exceeded
  request_too_large,             // 413
  bad_request,                   // HTTP: a path that does not decode (400)
};
Response gateway_error(stack::ApiType type, GatewayError error);

}  // namespace sluice::gateway
