// The validated stack: what sluice.yaml (or .json) means once loaded. Every
// module above reads these types; nothing here does I/O.
#pragma once

#include "sluice/stack/schedule.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::stack {

namespace fs = std::filesystem;

enum class RuntimeFamily { python, node, provided };

struct RuntimeId {
  std::string id;            // as written: "python3.12", "nodejs20.x", "provided.al2023"
  RuntimeFamily family = RuntimeFamily::python;
  int major = 0, minor = 0;  // python 3.12 -> 3,12; nodejs20.x -> 20,0; provided -> 0,0
};

struct AliasSpec {
  std::string name;
  std::string version;  // "$LATEST" or a version number as a string ("3")
  // at most one additional version with a weight in (0, 1)
  std::optional<std::pair<std::string, double>> additional;
};

// Where the record of an asynchronous invocation goes (AWS DestinationConfig): a function of
// this stack, run locally, or a resource by ARN (an SQS queue, SNS topic, EventBridge bus,
// Lambda function, or an S3 bucket for failures).
struct DestinationSpec {
  std::string function;   // a function of this stack; empty when `arn` is set
  std::string qualifier;  // with `function`: an alias, version or $LATEST; empty: see README
  std::string arn;        // otherwise the destination's ARN
  std::string service;    // "lambda" (also for `function`), "sqs", "sns", "events", "s3"
  std::string text() const { return arn.empty() ? function + (qualifier.empty() ? "" : ":" + qualifier) : arn; }
};

struct AsyncSpec {
  int max_retry_attempts = 2;    // 0..2
  int max_event_age_s = 21600;   // 60..21600
  std::optional<DestinationSpec> on_success, on_failure;
  std::optional<DestinationSpec> dead_letter;  // an SQS queue or SNS topic (AWS DeadLetterConfig)
};

// The function's logging configuration (AWS LoggingConfig). The levels only apply to JSON
// logs, as on AWS; empty = not set (AWS: INFO for both once the format is JSON).
struct LoggingSpec {
  std::string format = "Text";        // "Text" | "JSON"
  std::string application_log_level;  // "" | TRACE | DEBUG | INFO | WARN | ERROR | FATAL
  std::string system_log_level;       // "" | DEBUG | INFO | WARN
  bool operator==(const LoggingSpec&) const = default;
  // The levels AWS applies to JSON logs: INFO for one not set.
  std::string application_level() const { return application_log_level.empty() ? "INFO" : application_log_level; }
  std::string system_level() const { return system_log_level.empty() ? "INFO" : system_log_level; }
};

struct CorsSpec {
  std::vector<std::string> allow_origins;
  std::vector<std::string> allow_methods;
  std::vector<std::string> allow_headers;
  std::vector<std::string> expose_headers;
  std::optional<int> max_age;
  bool allow_credentials = false;
};

// A function URL (AWS FunctionUrlConfig): the function's own HTTP endpoint, payload 2.0.
struct FunctionUrlSpec {
  std::string auth_type = "NONE";        // "NONE" | "AWS_IAM"
  std::string invoke_mode = "BUFFERED";  // "BUFFERED" | "RESPONSE_STREAM"
  std::string qualifier;                 // "" (the unqualified function) or an alias of it
  std::optional<CorsSpec> cors;
  std::optional<int> port;               // fixed local port; otherwise assigned at serve time
  bool operator==(const FunctionUrlSpec& o) const {
    return auth_type == o.auth_type && invoke_mode == o.invoke_mode && qualifier == o.qualifier &&
           port == o.port && cors.has_value() == o.cors.has_value();
  }
};

struct FunctionSpec {
  std::string name;
  RuntimeId runtime;
  std::string handler;  // may be empty for provided runtimes
  fs::path code_dir;    // absolute, canonical
  std::string package;  // name of the shared package, empty when `code:` was used
  std::string description;
  int memory_mb = 128;  // 128..10240
  int timeout_s = 3;    // 1..900
  int ephemeral_mb = 512;  // 512..10240: the size of /tmp (Lambda's EphemeralStorage)
  std::map<std::string, std::string> environment;
  std::optional<int> reserved_concurrency;  // 0..account limit
  std::vector<fs::path> layers;             // absolute directories, in order (later wins)
  // Python only: a requirements file (absolute) that deploy turns into a layer built for
  // Lambda's platform; the function's own `requirements:`, else its package's. `serve`
  // does not install it (the packages must be importable by the local interpreter).
  std::optional<fs::path> requirements;
  std::map<std::string, AliasSpec> aliases;
  AsyncSpec async;
  std::optional<LoggingSpec> logging;  // absent: AWS's default (Text)
  std::optional<FunctionUrlSpec> url;  // a function URL
};

struct PackageSpec {
  std::string name;
  fs::path path;  // absolute
  std::optional<fs::path> requirements;  // absolute; for the Python functions using the package
};

// ---- API Gateway (issue 3 consumes these) ----------------------------------

enum class ApiType { rest, http };

struct Throttle {
  double rate = 0;  // steady requests per second
  int burst = 0;    // bucket size
};

// A route target: function[:qualifier], where the qualifier may hold
// ${stageVariables.NAME} references resolved per request.
struct RouteTarget {
  std::string function;   // may itself contain ${stageVariables.x}
  std::string qualifier;  // empty = unqualified ($LATEST)
};

struct RouteSpec {
  std::string key;     // "GET /movies/{id}", "ANY /{proxy+}", "$default"
  std::string method;  // "GET", "ANY", or "" for $default
  std::string path;    // "/movies/{id}", or "" for $default
  RouteTarget target;
  bool api_key_required = false;               // rest only
  std::string authorizer;                      // name in ApiSpec::authorizers; "" = none
  std::vector<std::string> authorization_scopes;  // jwt authorizers
  std::string payload_format;                  // http APIs: "2.0" (default) or "1.0"; rest: "1.0"
  std::optional<int> timeout_ms;               // integration timeout override
  std::optional<Throttle> throttle;            // route-level throttle
};

struct StageSpec {
  std::string name;
  std::map<std::string, std::string> variables;
  std::optional<Throttle> throttle;                     // stage default
  std::map<std::string, Throttle> route_throttles;      // by route key
};

enum class AuthorizerType { token, request, jwt };

struct JwtConfig {
  std::string issuer;
  std::vector<std::string> audience;
  std::optional<fs::path> jwks_file;  // absolute
  std::string jwks_inline;            // JSON text of a JWKS, when given inline
};

struct AuthorizerSpec {
  std::string name;
  AuthorizerType type = AuthorizerType::token;
  std::string function;  // lambda authorizers
  // REST: "method.request.header.Authorization" style; HTTP: "$request.header.Authorization" style.
  std::vector<std::string> identity_sources;
  std::string identity_validation_expression;  // TOKEN only
  int ttl_s = 300;                             // 0..3600; 0 disables caching
  std::string payload_format = "2.0";          // HTTP lambda authorizers: "1.0" | "2.0"
  bool simple_responses = false;               // HTTP lambda authorizers, payload 2.0
  JwtConfig jwt;
};

struct ApiSpec {
  std::string name;
  ApiType type = ApiType::rest;
  std::optional<int> port;  // fixed port; otherwise assigned at serve time
  std::vector<RouteSpec> routes;
  std::map<std::string, StageSpec> stages;  // http APIs always have "$default" unless disabled
  std::map<std::string, AuthorizerSpec> authorizers;
  std::vector<std::string> binary_media_types;  // rest
  // rest: where a keyed route's API key comes from: "HEADER" (x-api-key) or "AUTHORIZER" (the
  // usageIdentifierKey its Lambda authorizer returns)
  std::string api_key_source = "HEADER";
  std::optional<CorsSpec> cors;                 // http
  int timeout_ms = 29000;                       // rest default 29000, http default 30000
  std::string api_id;                           // 10 lower-case alnum chars, stable per name
};

struct ApiKeySpec {
  std::string name;
  std::string value;  // >= 20 characters, as AWS requires
  std::string id;     // stable id derived from the name
  bool enabled = true;
};

enum class QuotaPeriod { day, week, month };

struct QuotaSpec {
  int limit = 0;
  QuotaPeriod period = QuotaPeriod::day;
  int offset = 0;
};

struct UsagePlanSpec {
  std::string name;
  std::vector<std::pair<std::string, std::string>> stages;  // (api, stage)
  std::optional<Throttle> throttle;
  std::map<std::string, Throttle> route_throttles;  // "api/stage/GET /path" -> throttle
  std::optional<QuotaSpec> quota;
  std::vector<std::string> keys;  // names in Stack::api_keys
};

// ---- Schedules (EventBridge scheduled rules) ----------------------------------

struct ScheduleSpec {
  std::string name;
  std::string function;
  std::string qualifier;  // empty = unqualified ($LATEST)
  ScheduleExpression expression;
  std::optional<std::string> input;  // constant JSON text sent instead of the scheduled event
  bool enabled = true;
  std::string description;
};

// An SQS event source mapping: Lambda polls the queue and invokes the function (synchronously)
// with batches of messages; a batch that succeeds is deleted from the queue.
struct EventSourceSpec {
  std::string name;
  std::string function;
  std::string qualifier;             // empty = unqualified ($LATEST)
  std::string queue_arn;             // arn:aws:sqs:REGION:ACCOUNT:NAME
  int batch_size = 10;               // 1..10000 (10 for FIFO queues)
  int batching_window_s = 0;         // 0..300 (MaximumBatchingWindowInSeconds)
  bool report_batch_item_failures = false;  // FunctionResponseTypes: ReportBatchItemFailures
  bool enabled = true;
  int max_concurrency = 0;  // ScalingConfig.MaximumConcurrency (2..1000); 0 = not set
  // FilterCriteria: each a JSON pattern (compact text, as AWS's Filter.Pattern); a message reaches
  // the function when any matches (sluice/stack/event_filter.hpp); none = every message.
  std::vector<std::string> filters;
  bool operator==(const EventSourceSpec&) const = default;
};

struct Defaults {
  std::optional<RuntimeId> runtime;
  std::optional<int> memory_mb;
  std::optional<int> timeout_s;
  std::optional<int> ephemeral_mb;
  std::map<std::string, std::string> environment;
  std::optional<std::string> handler;
  std::optional<LoggingSpec> logging;
};

struct Stack {
  fs::path source;    // the file it came from (absolute)
  fs::path base_dir;  // its directory; relative paths resolve from here
  std::string name;
  std::string region = "us-east-1";
  std::string account_id = "123456789012";
  Defaults defaults;
  std::map<std::string, PackageSpec> packages;
  std::map<std::string, FunctionSpec> functions;
  std::map<std::string, ApiSpec> apis;
  std::map<std::string, ApiKeySpec> api_keys;
  std::map<std::string, UsagePlanSpec> usage_plans;
  std::map<std::string, ScheduleSpec> schedules;
  std::map<std::string, EventSourceSpec> event_sources;
};

}  // namespace sluice::stack
