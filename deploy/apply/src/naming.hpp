// Names and ARNs deploy gives AWS resources; pure functions, unit-tested.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>

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
// Whether a name fits Lambda's alias names: (?!^[0-9]+$)([a-zA-Z0-9-_]+), 1 to 128 characters
// (all digits would read as a version number). Each stage is an alias of every function.
bool valid_alias_name(const std::string& name);
// The qualifier a permission or an integration names for a target's qualifier: "$LATEST" is
// the unqualified function (AWS refuses AddPermission on $LATEST: the function's own policy
// covers it); anything else as it is.
std::string permission_qualifier(const std::string& qualifier);
// "FUNCTION[:QUALIFIER]" (a target, an authorizer's function) as its function and qualifier ("" when none).
std::pair<std::string, std::string> split_target(const std::string& target);
// The "FUNCTION[:QUALIFIER]" an invocation URI (invocation_uri of a function_arn) invokes, stage
// variables as written; "" when it names no function (a JWT authorizer has no URI).
std::string invoked_target(const std::string& uri);
// 20261121T080102123Z: sortable, used for history keys.
std::string compact_timestamp();

}  // namespace sluice::deploy

namespace sluice::deploy {

// ---- EventBridge schedules ----------------------------------------------------------------

// The rule of schedule SCHEDULE in stage STAGE: "STACK-STAGE-SCHEDULE", within EventBridge's
// 64 characters ([.\-_A-Za-z0-9]): a longer name keeps its first 55 characters, then "-" and
// 8 hex digits of the SHA-256 of the whole name.
std::string rule_name(const std::string& stack, const std::string& stage, const std::string& schedule);
// What every rule of that stack and stage starts with (for ListRules' NamePrefix).
std::string rule_prefix(const std::string& stack, const std::string& stage);
// The Id of the target deploy puts on the rules of one stack and stage: "sluice.STACK.STAGE"
// ('.' appears in neither name, so it is unambiguous), or "sluice." + 32 hex digits when longer
// than 64. A rule is sluice's, for this stack and stage, when it carries that target.
std::string schedule_target_id(const std::string& stack, const std::string& stage);
// The qualifier a schedule's target gets in stage STAGE: none or an alias name -> the alias
// STAGE (every alias deploy manages is a stage alias); a version number -> that version;
// "$LATEST" -> "" (the unqualified function).
std::string schedule_qualifier(const std::string& qualifier, const std::string& stage);
// Whether a name fits EventBridge's [.\-_A-Za-z0-9]+.
bool valid_rule_chars(const std::string& name);

}  // namespace sluice::deploy
