// The read side of Lambda's control plane on the Invoke API's port, for tests and tools
// that look before they call (boto3's get_function, list_aliases, waiters): answers from the
// stack and the published versions, in AWS's shapes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::lambda {
class LambdaService;
struct VersionConfig;
}  // namespace sluice::lambda

namespace sluice::gateway {

// A FunctionConfiguration as Lambda answers it (GetFunctionConfiguration, PublishVersion):
// `qualified` puts the version in FunctionArn. JSON text.
std::string function_configuration(const lambda::VersionConfig& config, lambda::LambdaService& service, bool qualified);

struct ControlAnswer {
  unsigned status = 200;
  std::string body;  // JSON
  std::string error_code, error_message;  // set for errors (status 4xx)
};

// nullopt: `target` (path and query of a GET) is none of GetFunction, GetFunctionConfiguration,
// ListFunctions, ListVersionsByFunction, ListAliases, GetAlias, GetFunctionEventInvokeConfig,
// GetFunctionConcurrency.
std::optional<ControlAnswer> control_plane_get(std::string_view target, lambda::LambdaService& service);

}  // namespace sluice::gateway
