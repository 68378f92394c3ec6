// Names and ARNs deploy gives AWS resources; pure functions, unit-tested.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace sluice::deploy {

std::string bucket_name(const std::string& stack, const std::string& account, const std::string& region);
std::string function_name(const std::string& stack, const std::string& function);
std::string function_arn(const std::string& region, const std::string& account, const std::string& name,
                         const std::string& qualifier = "");
// arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{functionArn}/invocations
std::string invocation_uri(const std::string& region, const std::string& function_arn);
// ${stageVariables.NAME} replaced from `variables`; nullopt when one is not defined.
std::optional<std::string> substitute_stage_variables(const std::string& text,
                                                      const std::map<std::string, std::string>& variables);
// Lambda statement ids allow [a-zA-Z0-9-_]; anything else becomes '-'.
std::string statement_id(const std::string& text);
// The URL a stage answers at: AWS's execute-api host, or moto's form under its endpoint.
std::string stage_url(const std::string& api_id, const std::string& region, const std::string& stage,
                      const std::optional<std::string>& endpoint_url, bool http_api);
// 20261121T080102123Z: sortable, used for history keys.
std::string compact_timestamp();

}  // namespace sluice::deploy
