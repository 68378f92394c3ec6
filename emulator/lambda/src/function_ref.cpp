#include "sluice/lambda/function_ref.hpp"

#include <string_view>
#include <vector>

namespace sluice::lambda {

bool is_version_number(const std::string& q) {
  if (q.empty() || q.size() > 10) return false;
  for (char c : q)
    if (c < '0' || c > '9') return false;
  return q[0] != '0';
}


std::string function_arn(const std::string& region, const std::string& account, const std::string& name,
                         const std::string& qualifier) {
  std::string arn = "arn:aws:lambda:" + region + ":" + account + ":function:" + name;
  if (!qualifier.empty()) arn += ":" + qualifier;
  return arn;
}

namespace {

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.';
}
bool qualifier_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'; }
bool all_digits(std::string_view s, std::size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}
// [a-z]{2}(-gov)?-[a-z]+-\d
bool region_like(std::string_view s) {
  auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  if (s.size() < 6 || !lower(s[0]) || !lower(s[1]) || s[2] != '-') return false;
  std::size_t i = 3;
  if (s.substr(i, 4) == "gov-") i += 4;
  std::size_t start = i;
  while (i < s.size() && lower(s[i])) ++i;
  if (i == start || i + 2 != s.size() || s[i] != '-') return false;
  return s[i + 1] >= '0' && s[i + 1] <= '9';
}

}  // namespace

// Follows AWS's FunctionName pattern
// (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?
// by hand: it is parsed on every invocation.
ParsedRef parse_function_ref(const std::string& function_name, const std::string& qualifier_param) {
  ParsedRef out;
  auto invalid = [&] {
    out.error = RefError{"ValidationException",
                         "1 validation error detected: Value '" + function_name +
                             "' at 'functionName' failed to satisfy constraint: Member must satisfy regular "
                             "expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?"
                             "(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"};
    return out;
  };
  if (function_name.empty() || function_name.size() > 170) return invalid();
  std::vector<std::string_view> parts;
  std::string_view rest = function_name;
  while (true) {
    auto c = rest.find(':');
    parts.push_back(rest.substr(0, c));
    if (c == std::string_view::npos) break;
    rest.remove_prefix(c + 1);
  }
  FunctionRef ref;
  std::size_t i = 0;
  if (parts.size() >= 3 && parts[0] == "arn") {
    std::string_view partition = parts[1];
    if (!partition.empty() && partition.substr(0, 3) != "aws") return invalid();
    for (char c : partition)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-')) return invalid();
    if (parts[2] != "lambda") return invalid();
    i = 3;
  }
  if (i < parts.size() && region_like(parts[i]) && i + 1 < parts.size()) ref.region = std::string(parts[i++]);
  if (i < parts.size() && all_digits(parts[i], 12) && i + 1 < parts.size()) ref.account = std::string(parts[i++]);
  if (i < parts.size() && parts[i] == "function" && i + 1 < parts.size()) ++i;
  if (i >= parts.size() || parts[i].empty()) return invalid();
  for (char c : parts[i])
    if (!name_char(c)) return invalid();
  ref.name = std::string(parts[i++]);
  std::string derived;
  if (i < parts.size()) {
    std::string_view q = parts[i++];
    if (q != "$LATEST") {
      if (q.empty()) return invalid();
      for (char c : q)
        if (!qualifier_char(c)) return invalid();
    }
    derived = std::string(q);
  }
  if (i != parts.size()) return invalid();
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

bool valid_qualifier(const std::string& q) {
  // The Qualifier parameter's pattern, (|[a-zA-Z0-9$_-]+): "$latest" passes it (and then names
  // no version or alias).
  if (q.empty() || q.size() > 128) return false;
  for (char c : q)
    if (!qualifier_char(c) && c != '$') return false;
  return true;
}

}  // namespace sluice::lambda
