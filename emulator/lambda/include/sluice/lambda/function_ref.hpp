// Parsing what callers name a function by: my-fn, my-fn:prod,
// 123456789012:function:my-fn, arn:aws:lambda:us-east-1:123456789012:function:my-fn:3.
#pragma once

#include <optional>
#include <string>

namespace sluice::lambda {

struct FunctionRef {
  std::string name;
  std::string qualifier;  // empty when unqualified
  std::string region;     // from an ARN, else empty
  std::string account;    // from an ARN or partial ARN, else empty
};

struct RefError {
  std::string code;     // InvalidParameterValueException | ResourceNotFoundException
  std::string message;
};

// Validates against AWS's FunctionName pattern and combines it with the
// separate Qualifier parameter (they must agree when both are given).
struct ParsedRef {
  std::optional<FunctionRef> ref;
  std::optional<RefError> error;
};
ParsedRef parse_function_ref(const std::string& function_name, const std::string& qualifier_param);

bool valid_qualifier(const std::string& q);
bool is_version_number(const std::string& q);

std::string function_arn(const std::string& region, const std::string& account, const std::string& name,
                         const std::string& qualifier = "");

}  // namespace sluice::lambda
