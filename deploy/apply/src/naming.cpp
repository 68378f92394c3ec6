#include "naming.hpp"

#include "sluice/common/hash.hpp"

#include <algorithm>
#include <cctype>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace sluice::deploy {

std::string bucket_name(const std::string& stack, const std::string& account, const std::string& region) {
  std::string out = "sluice-";
  for (char c : stack) out.push_back((std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? std::tolower(c) : '-');
  out += "-" + account + "-" + region;
  if (out.size() > 63) out.resize(63);
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

std::string function_name(const std::string& stack, const std::string& function) { return stack + "-" + function; }

std::string function_arn(const std::string& region, const std::string& account, const std::string& name,
                         const std::string& qualifier) {
  std::string arn = "arn:aws:lambda:" + region + ":" + account + ":function:" + name;
  if (!qualifier.empty()) arn += ":" + qualifier;
  return arn;
}

std::string invocation_uri(const std::string& region, const std::string& function_arn) {
  return "arn:aws:apigateway:" + region + ":lambda:path/2015-03-31/functions/" + function_arn + "/invocations";
}

std::optional<std::string> substitute_stage_variables(const std::string& text,
                                                      const std::map<std::string, std::string>& variables) {
  static const std::string open = "${stageVariables.";
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    auto b = text.find(open, pos);
    if (b == std::string::npos) break;
    auto e = text.find('}', b);
    if (e == std::string::npos) break;
    out += text.substr(pos, b - pos);
    auto name = text.substr(b + open.size(), e - b - open.size());
    auto it = variables.find(name);
    if (it == variables.end()) return std::nullopt;
    out += it->second;
    pos = e + 1;
  }
  out += text.substr(pos);
  return out;
}

std::string statement_id(const std::string& text) {
  std::string out;
  for (char c : text) out.push_back((std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '-');
  if (out.size() > 100) out.resize(100);
  return out;
}

std::string stage_url(const std::string& api_id, const std::string& region, const std::string& stage,
                      const std::optional<std::string>& endpoint_url, bool http_api) {
  if (endpoint_url) {
    std::string base = *endpoint_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base + "/restapis/" + api_id + "/" + stage + "/_user_request_";
  }
  std::string url = "https://" + api_id + ".execute-api." + region + ".amazonaws.com";
  if (!(http_api && stage == "$default")) url += "/" + stage;
  return url;
}

bool valid_alias_name(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  bool all_digits = true;
  for (unsigned char c : name) {
    if (!(std::isalnum(c) || c == '-' || c == '_')) return false;
    if (!std::isdigit(c)) all_digits = false;
  }
  return !all_digits;
}

std::string permission_qualifier(const std::string& qualifier) { return qualifier == "$LATEST" ? "" : qualifier; }

std::pair<std::string, std::string> split_target(const std::string& target) {
  const auto colon = target.find(':');
  return {target.substr(0, colon), colon == std::string::npos ? std::string() : target.substr(colon + 1)};
}

std::string invoked_target(const std::string& uri) {
  static const std::string function = ":function:", tail = "/invocations";
  const auto b = uri.find(function);
  const auto e = uri.rfind(tail);
  if (b == std::string::npos || e == std::string::npos || e < b + function.size() || e + tail.size() != uri.size())
    return "";
  return uri.substr(b + function.size(), e - b - function.size());
}

std::string compact_timestamp() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02d%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace sluice::deploy

namespace sluice::deploy {

namespace {
constexpr std::size_t kRuleNameMax = 64;
}

std::string rule_name(const std::string& stack, const std::string& stage, const std::string& schedule) {
  std::string full = stack + "-" + stage + "-" + schedule;
  if (full.size() <= kRuleNameMax) return full;
  return full.substr(0, 55) + "-" + hex(sha256(full)).substr(0, 8);
}

std::string rule_prefix(const std::string& stack, const std::string& stage) {
  std::string p = stack + "-" + stage + "-";
  if (p.size() > 55) p.resize(55);
  return p;
}

std::string schedule_target_id(const std::string& stack, const std::string& stage) {
  std::string id = "sluice." + stack + "." + stage;
  if (id.size() <= kRuleNameMax) return id;
  return "sluice." + hex(sha256(stack + "." + stage)).substr(0, 32);
}

std::string schedule_qualifier(const std::string& qualifier, const std::string& stage) {
  if (qualifier == "$LATEST") return "";
  if (!qualifier.empty() && std::all_of(qualifier.begin(), qualifier.end(),
                                        [](unsigned char c) { return std::isdigit(c); }))
    return qualifier;
  return stage;
}

bool valid_rule_chars(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '-' || c == '_';
  });
}

}  // namespace sluice::deploy
