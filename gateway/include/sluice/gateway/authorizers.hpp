// Lambda authorizers (REST TOKEN / REQUEST, HTTP API payload 1.0 / 2.0 with
// simple responses or IAM policies) and JWT authorizers (reference §4.8):
// identity sources, the events authorizer functions receive, interpreting
// their output, IAM policy evaluation against method ARNs, result caching, and
// JWT verification with OpenSSL. Pure logic: invoking the function is the
// server's job.
#pragma once

#include "sluice/gateway/routing.hpp"
#include "sluice/gateway/types.hpp"
#include "sluice/stack/model.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::gateway {

// arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{METHOD}/{path without leading '/'}
std::string method_arn(const std::string& region, const std::string& account, const std::string& api_id,
                       const std::string& stage, const std::string& method, const std::string& path);

enum class PolicyEffect { allow, deny, none };  // none: no statement matched (implicit deny)
// IAM policy document evaluation for execute-api:Invoke: Deny wins over Allow;
// Resource and Action may use '*' and '?' wildcards; Resource/Action may be a
// string or a list; Statement may be an object or a list.
PolicyEffect evaluate_policy(const nlohmann::json& policy_document, const std::string& method_arn);

// Everything identity sources and authorizer events may refer to.
struct AuthInput {
  const Request* request = nullptr;
  const RouteMatch* match = nullptr;
  const stack::ApiSpec* api = nullptr;
  std::string stage;
  const std::map<std::string, std::string>* stage_variables = nullptr;
  std::string method_arn;  // REST methodArn / HTTP routeArn
  std::string request_id, account_id, region, domain_name;
  std::string extended_request_id;  // REST: the request's x-amz-apigw-id, as its integration event has it
  std::string trace_id;             // X-Amzn-Trace-Id the gateway adds to the headers
  std::chrono::system_clock::time_point time;  // the request's time, the integration event's too
};

// The identity the authorizer keys on: the token for TOKEN authorizers, the
// values of every identity source as a JSON list for REQUEST/HTTP ones. nullopt when a
// source is missing or empty (the gateway answers 401 without invoking).
// For TOKEN authorizers a value failing identity_validation_expression is nullopt too.
std::optional<std::string> identity(const stack::AuthorizerSpec& auth, const AuthInput& in);

// The event the authorizer function receives.
std::string authorizer_event(const stack::AuthorizerSpec& auth, const AuthInput& in);

struct AuthDecision {
  enum Kind { allow, unauthorized, denied, denied_explicit, failure } kind = failure;
  // What the integration sees: REST: flat object {principalId, <context keys as strings>};
  // HTTP lambda: {"lambda": {<context>}}; HTTP jwt: {"jwt": {"claims": {...}, "scopes": [...]}}.
  nlohmann::json context;
  std::string usage_identifier_key;  // REST usageIdentifierKey, for API key source AUTHORIZER
  std::string problem;               // why failure, for the log
};

// Interprets what the authorizer function returned for a request with this
// method/route ARN. function_error: the invocation failed (an error whose
// message is exactly "Unauthorized" means 401).
AuthDecision interpret_authorizer_output(const stack::ApiSpec& api, const stack::AuthorizerSpec& auth,
                                         const std::string& payload, bool function_error,
                                         const std::string& method_arn);

// Authorizer results cached per (authorizer, identity) for ttl seconds. The
// stored value is the raw output, re-evaluated against each request's ARN (a
// cached policy naming one path denies others, as on AWS).
class AuthorizerCache {
 public:
  struct Entry {
    std::string payload;
    bool function_error = false;
  };
  std::optional<Entry> get(const std::string& authorizer, const std::string& identity,
                           std::chrono::steady_clock::time_point now) const;
  void put(const std::string& authorizer, const std::string& identity, Entry entry, int ttl_s,
           std::chrono::steady_clock::time_point now);
  void clear();

 private:
  struct Stored {
    Entry entry;
    std::chrono::steady_clock::time_point expires;
  };
  std::map<std::pair<std::string, std::string>, Stored> entries_;
};

// JWT authorizer: RS256 / ES256 signatures against keys of a JWKS (file or
// inline), issuer, audience (aud or client_id), exp and nbf, and the route's
// required scopes (scope / scp claims).
class JwtVerifier {
 public:
  // Throws std::runtime_error naming the problem when the JWKS cannot be used.
  explicit JwtVerifier(const stack::JwtConfig& config);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  struct Result {
    bool ok = false;
    std::string error;  // for the log and the WWW-Authenticate header
    nlohmann::json claims;
    std::vector<std::string> scopes;
    // A valid token that carries none of the route's scopes: 403 Forbidden
    // (error="insufficient_scope") rather than 401.
    bool insufficient_scope = false;
    std::string algorithm;  // the token's alg, once its signature verified
  };
  // token: the identity source value (a leading "Bearer " is removed).
  Result verify(const std::string& token, const std::vector<std::string>& required_scopes,
                std::chrono::system_clock::time_point now) const;

 private:
  struct Keys;
  std::unique_ptr<Keys> keys_;
  stack::JwtConfig config_;
};

// What the integration sees for a verified token, as AWS renders it:
// {"jwt": {"claims": {<every claim as a string; lists as "[a b]">}, "scopes": [..] | null}}.
nlohmann::json jwt_authorizer_context(const JwtVerifier::Result& result, bool route_has_scopes);

// The www-authenticate header of a refused JWT request:
// Bearer scope="<route scopes>" error="invalid_token|insufficient_scope" error_description="...".
std::string jwt_www_authenticate(const JwtVerifier::Result& result, const std::vector<std::string>& required_scopes);

}  // namespace sluice::gateway
