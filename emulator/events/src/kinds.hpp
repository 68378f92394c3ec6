// The generators behind generate_event: one function per kind, reading the
// --set values through Settings (which has already refused unknown keys).
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::events::detail {

using ojson = nlohmann::ordered_json;

struct Settings {
  std::string source, kind;
  std::map<std::string, std::string> values;                // last value of each plain key
  std::vector<std::string> messages;                        // every `message` (cloudwatch logs)
  std::vector<std::pair<std::string, std::string>> headers;  // header.NAME
  std::vector<std::pair<std::string, std::string>> query;    // query.NAME

  std::string get(const std::string& key, const std::string& fallback) const;
  bool has(const std::string& key) const { return values.count(key) != 0; }
  std::string region() const { return get("region", "us-east-1"); }
  std::string account() const { return get("account", "123456789012"); }
  // Checked readers: throw std::invalid_argument naming the key, what was found and what is allowed.
  long long integer(const std::string& key, long long fallback, long long lo, long long hi) const;
  bool boolean(const std::string& key, bool fallback) const;
  ojson json_value(const std::string& key, const ojson& fallback, bool object_only) const;
  std::chrono::system_clock::time_point time(const std::string& key) const;  // now when unset
  [[noreturn]] void bad(const std::string& key, const std::string& what) const;
};

ojson apigateway_rest(const Settings& s);
ojson apigateway_http(const Settings& s);
ojson apigateway_authorizer_token(const Settings& s);
ojson apigateway_authorizer_request(const Settings& s);
ojson lambda_function_url(const Settings& s);
ojson lambda_destination(const Settings& s);
ojson sqs_receive_message(const Settings& s);
ojson sns_notification(const Settings& s);
ojson s3_put(const Settings& s);
ojson dynamodb_update(const Settings& s);
ojson eventbridge_scheduled(const Settings& s);
ojson cloudwatch_logs(const Settings& s);

// Shared helpers
std::string iso_ms(std::chrono::system_clock::time_point t);  // 2024-03-01T09:00:00.123Z
std::string iso_s(std::chrono::system_clock::time_point t);   // 2024-03-01T09:00:00Z
std::string md5_hex(const std::string& data);
std::string gzip(const std::string& data);
std::string random_alnum(std::size_t n, bool upper_only = false);

}  // namespace sluice::events::detail
