#include "sluice/lambda/function_ref.hpp"

#include <regex>

namespace sluice::lambda {

bool is_version_number(const std::string& q) {
  if (q.empty() || q.size() > 10) return false;
  for (char c : q)
    if (c < '0' || c > '9') return false;
  return q[0] != '0';
}

bool valid_qualifier(const std::string& q) {
  static const std::regex re(R"(^(\$LATEST|[a-zA-Z0-9_-]+)$)");
  return q.size() <= 128 && std::regex_match(q, re);
}

std::string function_arn(const std::string& region, const std::string& account, const std::string& name,
                         const std::string& qualifier) {
  std::string arn = "arn:aws:lambda:" + region + ":" + account + ":function:" + name;
  if (!qualifier.empty()) arn += ":" + qualifier;
  return arn;
}

ParsedRef parse_function_ref(const std::string& function_name, const std::string& qualifier_param) {
  // AWS's FunctionName pattern (API_Invoke), anchored.
  static const std::regex re(
      R"(^(arn:(aws[a-zA-Z-]*)?:lambda:)?(([a-z]{2}(-gov)?-[a-z]+-\d{1}):)?((\d{12}):)?(function:)?([a-zA-Z0-9_.-]+)(:(\$LATEST|[a-zA-Z0-9_-]+))?$)");
  ParsedRef out;
  std::smatch m;
  if (function_name.empty() || function_name.size() > 170 || !std::regex_match(function_name, m, re)) {
    out.error = RefError{"ValidationException",
                         "1 validation error detected: Value '" + function_name +
                             "' at 'functionName' failed to satisfy constraint: Member must satisfy regular "
                             "expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?"
                             "(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"};
    return out;
  }
  FunctionRef ref;
  ref.region = m[4].matched ? m[4].str() : "";
  ref.account = m[7].matched ? m[7].str() : "";
  ref.name = m[9].str();
  std::string derived = m[11].matched ? m[11].str() : "";
  if (ref.name.size() > 64) {
    out.error = RefError{"ValidationException",
                         "1 validation error detected: Value '" + ref.name +
                             "' at 'functionName' failed to satisfy constraint: Member must have length less than "
                             "or equal to 64"};
    return out;
  }
  if (!qualifier_param.empty()) {
    if (!valid_qualifier(qualifier_param)) {
      out.error = RefError{"ValidationException",
                           "1 validation error detected: Value '" + qualifier_param +
                               "' at 'qualifier' failed to satisfy constraint: Member must satisfy regular "
                               "expression pattern: (|[a-zA-Z0-9$_-]+)"};
      return out;
    }
    if (!derived.empty() && derived != qualifier_param) {
      out.error = RefError{"InvalidParameterValueException",
                           "The derived qualifier from the function name does not match the specified qualifier."};
      return out;
    }
    derived = qualifier_param;
  }
  ref.qualifier = derived;
  out.ref = ref;
  return out;
}

}  // namespace sluice::lambda
