#include "sluice/stack/event_filter.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace sluice::stack {

using json = nlohmann::json;

namespace {

constexpr std::size_t kMaxPatternChars = 4096;  // Filter.Pattern's length limit in Lambda's API

const char* const kRules = "prefix, suffix, equals-ignore-case, anything-but, numeric or exists";

std::string at(const std::string& path) { return path.empty() ? "the pattern" : path; }

std::string short_json(const json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

bool is_comparison(const json& op, bool lower_only, bool upper_only) {
  if (!op.is_string()) return false;
  const auto& s = op.get_ref<const std::string&>();
  if (lower_only) return s == ">" || s == ">=";
  if (upper_only) return s == "<" || s == "<=";
  return s == "=" || s == "<" || s == "<=" || s == ">" || s == ">=";
}

bool finite_number(const json& v) { return v.is_number() && std::isfinite(v.get<double>()); }

// One element of a rule array: a value to equal, or {operator: operand}.
std::string rule_problem(const json& rule, const std::string& path) {
  if (rule.is_string() || rule.is_number() || rule.is_boolean() || rule.is_null()) return "";
  if (rule.is_array()) return path + ": a rule array holds values or {rule: operand} objects, not arrays";
  if (rule.size() != 1)
    return path + ": a rule is an object with exactly one of " + kRules + ", found " + short_json(rule);
  const auto first = rule.begin();
  const std::string& op = first.key();
  const json& operand = first.value();
  const std::string where = path + "." + op;
  if (op == "prefix" || op == "suffix") {
    if (operand.is_string()) return "";
    if (operand.is_object() && operand.size() == 1 && operand.contains("equals-ignore-case") &&
        operand["equals-ignore-case"].is_string())
      return "";
    return where + ": expected a string, or {\"equals-ignore-case\": string}, found " + short_json(operand);
  }
  if (op == "equals-ignore-case") {
    return operand.is_string() ? "" : where + ": expected a string, found " + short_json(operand);
  }
  if (op == "exists") {
    return operand.is_boolean() ? "" : where + ": expected true or false, found " + short_json(operand);
  }
  if (op == "anything-but") {
    if (operand.is_string() || finite_number(operand)) return "";
    if (operand.is_array() && !operand.empty()) {
      for (const auto& v : operand)
        if (!v.is_string() && !finite_number(v))
          return where + ": expected strings or numbers, found " + short_json(v);
      return "";
    }
    if (operand.is_object())
      return where + ": anything-but with " + (operand.empty() ? std::string("{}") : operand.begin().key()) +
             " is an EventBridge rule that Lambda's event filtering does not have; give a value or a list of "
             "values";
    return where + ": expected a string, a number or a non-empty list of them, found " + short_json(operand);
  }
  if (op == "numeric") {
    bool ok = operand.is_array() &&
              ((operand.size() == 2 && is_comparison(operand[0], false, false) && finite_number(operand[1])) ||
               (operand.size() == 4 && is_comparison(operand[0], true, false) && finite_number(operand[1]) &&
                is_comparison(operand[2], false, true) && finite_number(operand[3]) &&
                operand[1].get<double>() < operand[3].get<double>()));
    return ok ? ""
              : where + ": expected [OP, NUMBER] (OP one of =, <, <=, >, >=) or a range [\">\" or \">=\", LOW, "
                        "\"<\" or \"<=\", HIGH] with LOW < HIGH, found " + short_json(operand);
  }
  if (op == "wildcard" || op == "cidr")
    return where + ": '" + op + "' is an EventBridge rule that Lambda's event filtering does not have (Lambda has " +
           kRules + ")";
  return where + ": unknown rule '" + op + "': Lambda's event filtering has " + kRules;
}

std::string node_problem(const json& node, const std::string& path, bool top);

std::string field_problem(const std::string& key, const json& value, const std::string& path) {
  if (key == "$or") {
    if (!value.is_array() || value.size() < 2)
      return path + ": $or takes a list of at least two patterns, found " + short_json(value);
    return "";
  }
  if (value.is_object()) return node_problem(value, path, false);
  if (value.is_array()) {
    if (value.empty())
      return path + ": an empty list matches nothing (AWS refuses it); give at least one value or rule";
    for (std::size_t i = 0; i < value.size(); ++i)
      if (auto p = rule_problem(value[i], path + "[" + std::to_string(i) + "]"); !p.empty()) return p;
    return "";
  }
  return path + ": a field's values are given as a list, e.g. [" + short_json(value) + "], found " +
         short_json(value);
}

std::string node_problem(const json& node, const std::string& path, bool top) {
  if (!node.is_object() || node.empty())
    return at(path) + ": expected a JSON object with at least one field, found " + short_json(node);
  for (const auto& [key, value] : node.items()) {
    const std::string where = path.empty() ? key : path + "." + key;
    if (top && key != "body" && key != "$or")
      return where + ": SQS event sources filter on the message body only (AWS); put the field under body, e.g. "
                     "{\"body\": {\"" + key + "\": [...]}}";
    if (key == "$or") {
      if (auto p = field_problem(key, value, where); !p.empty()) return p;
      for (std::size_t i = 0; i < value.size(); ++i)
        if (auto p = node_problem(value[i], where + "[" + std::to_string(i) + "]", top); !p.empty()) return p;
      continue;
    }
    if (auto p = field_problem(key, value, where); !p.empty()) return p;
  }
  return "";
}

// ---- matching -------------------------------------------------------------------------

bool ascii_iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x != y && std::tolower(x) != std::tolower(y)) return false;
  }
  return true;
}

// Numbers equal as AWS compares them for exact matches: by their text (300 is not 300.0).
bool same_number(const json& a, const json& b) { return a.is_number() && b.is_number() && a.dump() == b.dump(); }

bool affix_matches(const json& operand, const std::string& s, bool prefix) {
  const bool fold = operand.is_object();
  const std::string& want = fold ? operand["equals-ignore-case"].get_ref<const std::string&>()
                                 : operand.get_ref<const std::string&>();
  if (want.size() > s.size()) return false;
  std::string_view part = prefix ? std::string_view(s).substr(0, want.size())
                                 : std::string_view(s).substr(s.size() - want.size());
  return fold ? ascii_iequal(part, want) : part == want;
}

bool compare(const std::string& op, double v, double bound) {
  if (op == "=") return v == bound;
  if (op == "<") return v < bound;
  if (op == "<=") return v <= bound;
  if (op == ">") return v > bound;
  return v >= bound;
}

// A rule against a value that is present and a leaf (not an object, not a list).
bool rule_matches(const json& rule, const json& v) {
  if (rule.is_string()) return v.is_string() && v.get_ref<const std::string&>() == rule.get_ref<const std::string&>();
  if (rule.is_number()) return same_number(rule, v);
  if (rule.is_boolean()) return v.is_boolean() && v == rule;
  if (rule.is_null()) return v.is_null();
  const auto first = rule.begin();
  const std::string& op = first.key();
  const json& operand = first.value();
  if (op == "exists") return operand.get<bool>();
  if (op == "prefix" || op == "suffix")
    return v.is_string() && affix_matches(operand, v.get_ref<const std::string&>(), op == "prefix");
  if (op == "equals-ignore-case")
    return v.is_string() && ascii_iequal(v.get_ref<const std::string&>(), operand.get_ref<const std::string&>());
  if (op == "anything-but") {
    if (!v.is_string() && !v.is_number()) return false;
    auto equal = [&](const json& x) { return x.is_string() ? v == x : same_number(x, v); };
    if (!operand.is_array()) return !equal(operand);
    for (const auto& x : operand)
      if (equal(x)) return false;
    return true;
  }
  if (op == "numeric") {
    if (!v.is_number()) return false;
    const double x = v.get<double>();
    for (std::size_t i = 0; i + 1 < operand.size(); i += 2)
      if (!compare(operand[i].get_ref<const std::string&>(), x, operand[i + 1].get<double>())) return false;
    return true;
  }
  return false;
}

// A field's rule list against the field (nullptr: the field is missing). Any rule may match;
// a list in the event matches when any of its values does.
bool leaf_matches(const json& rules, const json* field) {
  if (!field) {
    for (const auto& r : rules)
      if (r.is_object() && r.begin().key() == "exists" && !r.begin()->get<bool>()) return true;
    return false;
  }
  if (field->is_object()) return false;  // rules apply to leaves only
  if (field->is_array()) {
    for (const auto& e : *field)
      if (!e.is_object() && !e.is_array() && leaf_matches(rules, &e)) return true;
    return false;
  }
  for (const auto& r : rules)
    if (rule_matches(r, *field)) return true;
  return false;
}

// A pattern object against a value (nullptr: missing). Fields are ANDed; a list of objects in
// the event matches when any of its objects does.
bool node_matches(const json& pattern, const json* v) {
  if (v && v->is_array()) {
    for (const auto& e : *v)
      if (e.is_object() && node_matches(pattern, &e)) return true;
    return false;
  }
  for (const auto& [key, sub] : pattern.items()) {
    bool ok = false;
    if (key == "$or") {
      ok = std::any_of(sub.begin(), sub.end(), [&](const json& alt) { return node_matches(alt, v); });
    } else {
      const json* f = nullptr;
      if (v && v->is_object()) {
        auto it = v->find(key);
        if (it != v->end()) f = &*it;
      }
      if (sub.is_object()) ok = node_matches(sub, f && (f->is_object() || f->is_array()) ? f : nullptr);
      else ok = leaf_matches(sub, f);
    }
    if (!ok) return false;
  }
  return true;
}

// The top of an SQS pattern: `body` holds either a JSON pattern (then the body must be JSON)
// or rules for the body as a plain string (then it must not be): a mismatch drops the message.
// `body`: the parsed body when it is JSON, else its text as a JSON string.
bool top_matches(const json& pattern, const json& body, bool body_is_json) {
  for (const auto& [key, sub] : pattern.items()) {
    bool ok = false;
    if (key == "$or")
      ok = std::any_of(sub.begin(), sub.end(), [&](const json& alt) { return top_matches(alt, body, body_is_json); });
    else if (sub.is_object())
      ok = body_is_json && node_matches(sub, &body);
    else
      ok = !body_is_json && leaf_matches(sub, &body);
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string sqs_filter_problem(const std::string& pattern) {
  if (pattern.size() > kMaxPatternChars)
    return "the pattern is " + std::to_string(pattern.size()) + " characters long; AWS takes at most " +
           std::to_string(kMaxPatternChars);
  auto parsed = json::parse(pattern, nullptr, false);
  if (parsed.is_discarded()) return "the pattern is not valid JSON";
  return node_problem(parsed, "", true);
}

struct SqsFilters::Impl {
  std::vector<json> patterns;
};

SqsFilters::SqsFilters(const std::vector<std::string>& patterns) : impl_(std::make_unique<Impl>()) {
  for (const auto& p : patterns) {
    auto parsed = json::parse(p, nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) impl_->patterns.push_back(std::move(parsed));
  }
}

SqsFilters::~SqsFilters() = default;

bool SqsFilters::empty() const { return impl_->patterns.empty(); }

bool SqsFilters::passes(std::string_view body) const {
  if (impl_->patterns.empty()) return true;
  // Parsed (or taken as text) once for all the patterns.
  json parsed = json::parse(body.begin(), body.end(), nullptr, false);
  const bool is_json = parsed.is_object() || parsed.is_array();
  const json subject = is_json ? std::move(parsed) : json(std::string(body));
  return std::any_of(impl_->patterns.begin(), impl_->patterns.end(),
                     [&](const json& p) { return top_matches(p, subject, is_json); });
}

}  // namespace sluice::stack
