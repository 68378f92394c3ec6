// The catalogue of event kinds, --set parsing and the shared helpers.
#include "sluice/events/generate.hpp"

#include "kinds.hpp"
#include "sluice/common/hash.hpp"
#include "sluice/common/util.hpp"
#include "sluice/stack/schedule.hpp"

#include <zlib.h>

#include <algorithm>
#include <random>
#include <stdexcept>

namespace sluice::events {

namespace {

using detail::ojson;
using detail::Settings;
using Builder = ojson (*)(const Settings&);

struct Entry {
  EventKind kind;
  Builder build;
};

const std::vector<std::string> common_keys{"region", "account"};

std::vector<std::string> keys(std::vector<std::string> own) {
  own.insert(own.end(), common_keys.begin(), common_keys.end());
  return own;
}

const std::vector<Entry>& catalogue() {
  static const std::vector<Entry> entries{
      {{"apigateway", "aws-proxy", "REST API proxy integration event (payload 1.0), as the gateway sends it",
        keys({"method", "path", "resource", "body", "stage", "header.NAME", "query.NAME", "stage_variable.NAME",
              "api_id", "request_id", "source_ip", "base64"})},
       detail::apigateway_rest},
      {{"apigateway", "http-api", "HTTP API event (payload 2.0), as the gateway sends it",
        keys({"method", "path", "route", "body", "stage", "header.NAME", "query.NAME", "stage_variable.NAME",
              "api_id", "request_id", "source_ip", "base64"})},
       detail::apigateway_http},
      {{"apigateway", "authorizer-token", "REST TOKEN authorizer event",
        keys({"token", "method", "path", "stage", "api_id"})},
       detail::apigateway_authorizer_token},
      {{"apigateway", "authorizer-request", "REST REQUEST authorizer event",
        keys({"method", "path", "resource", "stage", "header.NAME", "query.NAME", "stage_variable.NAME", "api_id",
              "request_id", "source_ip"})},
       detail::apigateway_authorizer_request},
      {{"lambda", "function-url", "Function URL request (payload 2.0), as a function URL sends it",
        keys({"method", "path", "body", "header.NAME", "query.NAME", "url_id", "request_id", "source_ip", "base64",
              "auth"})},
       detail::lambda_function_url},
      {{"lambda", "destination",
        "invocation record an async invocation's destination gets (on_success / on_failure), as sluice sends it",
        keys({"function", "qualifier", "condition", "event", "response", "attempts", "request_id", "version"})},
       detail::lambda_destination},
      {{"sqs", "receive-message", "SQS messages delivered by an event source mapping",
        keys({"body", "queue", "count", "group_id"})},
       detail::sqs_receive_message},
      {{"sns", "notification", "SNS notification delivered to a subscribed function",
        keys({"message", "topic", "subject"})},
       detail::sns_notification},
      {{"s3", "put", "S3 ObjectCreated:Put notification", keys({"bucket", "key", "size", "etag"})}, detail::s3_put},
      {{"dynamodb", "update", "DynamoDB stream record of a MODIFY (NEW_AND_OLD_IMAGES)",
        keys({"table", "keys", "new_image", "old_image"})},
       detail::dynamodb_update},
      {{"eventbridge", "scheduled-event", "EventBridge scheduled rule event (detail-type \"Scheduled Event\")",
        keys({"rule", "time", "detail", "id"})},
       detail::eventbridge_scheduled},
      {{"cloudwatch", "scheduled-event",
        "the same scheduled event under its CloudWatch Events name (alias of eventbridge scheduled-event)",
        keys({"rule", "time", "detail", "id"})},
       detail::eventbridge_scheduled},
      {{"cloudwatch", "logs", "CloudWatch Logs subscription event (awslogs.data: base64 of gzipped JSON)",
        keys({"group", "stream", "message", "filter"})},
       detail::cloudwatch_logs},
  };
  return entries;
}

std::string squote(const std::string& s) { return "'" + s + "'"; }

// The nearest name by spelling, else one the word starts with ("bucket_name" -> "bucket").
std::string suggest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string near = nearest(word, candidates);
  if (!near.empty() || word.empty()) return near;
  for (const auto& c : candidates)
    if (c.size() >= 3 && (starts_with(word, c) || starts_with(c, word))) return c;
  return "";
}

// "<msg>; did you mean 'x'? Label: a, b" or "<msg>; label: a, b"
std::string with_list(std::string msg, const std::string& word, const std::vector<std::string>& candidates,
                      const std::string& label) {
  std::string near = suggest(word, candidates);
  if (!near.empty()) return msg + "; did you mean " + squote(near) + "? " + label + ": " + join(candidates, ", ");
  return msg + "; " + to_lower(label) + ": " + join(candidates, ", ");
}

std::vector<std::string> sources() {
  std::vector<std::string> out;
  for (const auto& e : catalogue())
    if (std::find(out.begin(), out.end(), e.kind.source) == out.end()) out.push_back(e.kind.source);
  return out;
}

// "header.X-Foo" matches "header.NAME".
std::optional<std::string> prefix_key(const std::string& key) {
  auto dot = key.find('.');
  if (dot == std::string::npos) return std::nullopt;
  return key.substr(0, dot);
}

}  // namespace

const std::vector<EventKind>& event_kinds() {
  static const std::vector<EventKind> kinds = [] {
    std::vector<EventKind> out;
    for (const auto& e : catalogue()) out.push_back(e.kind);
    return out;
  }();
  return kinds;
}

std::string generate_event(const std::string& source, const std::string& kind,
                           const std::vector<std::pair<std::string, std::string>>& sets) {
  std::vector<std::string> all_sources = sources();
  if (std::find(all_sources.begin(), all_sources.end(), source) == all_sources.end()) {
    throw std::invalid_argument(with_list("unknown event source " + squote(source), source, all_sources, "Sources"));
  }
  const Entry* entry = nullptr;
  std::vector<std::string> kinds_of_source;
  for (const auto& e : catalogue()) {
    if (e.kind.source != source) continue;
    kinds_of_source.push_back(e.kind.kind);
    if (e.kind.kind == kind) entry = &e;
  }
  if (!entry) {
    throw std::invalid_argument(with_list("unknown kind " + squote(kind) + " for source " + source, kind,
                                          kinds_of_source, "Kinds of " + source));
  }

  Settings s;
  s.source = source;
  s.kind = kind;
  const auto& allowed = entry->kind.settable;
  for (const auto& [key, value] : sets) {
    bool ok = std::find(allowed.begin(), allowed.end(), key) != allowed.end();
    auto prefix = prefix_key(key);
    if (!ok && prefix && key.size() > prefix->size() + 1)
      ok = std::find(allowed.begin(), allowed.end(), *prefix + ".NAME") != allowed.end();
    if (!ok) {
      throw std::invalid_argument(
          with_list("unknown key " + squote(key) + " for " + source + " " + kind, key, allowed, "Keys"));
    }
    if (prefix == "header") {
      std::string name = key.substr(7);
      bool token = std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) || std::string_view("!#$%&'*+.^_`|~-").find(static_cast<char>(c)) != std::string_view::npos;
      });
      if (!token) throw std::invalid_argument("--set " + key + ": " + squote(name) + " is not a valid header name");
      s.headers.emplace_back(name, value);
    } else if (prefix == "query") {
      s.query.emplace_back(key.substr(6), value);
    } else if (prefix == "stage_variable") {
      s.values[key] = value;
    } else {
      if (key == "message") s.messages.push_back(value);
      s.values[key] = value;
    }
  }
  ojson ev = entry->build(s);
  return ev.dump(2);
}

namespace detail {

std::string Settings::get(const std::string& key, const std::string& fallback) const {
  auto it = values.find(key);
  return it == values.end() ? fallback : it->second;
}

void Settings::bad(const std::string& key, const std::string& what) const {
  throw std::invalid_argument("--set " + key + "=" + sluice::quoted(get(key, "")) + " for " + source + " " + kind + ": " +
                              what);
}

long long Settings::integer(const std::string& key, long long fallback, long long lo, long long hi) const {
  if (!has(key)) return fallback;
  const std::string v = get(key, "");
  bool digits = !v.empty() && v.size() < 18 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
  long long n = digits ? std::stoll(v) : -1;
  if (!digits || n < lo || n > hi)
    bad(key, "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  return n;
}

bool Settings::boolean(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  std::string v = to_lower(get(key, ""));
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  bad(key, "expected true or false");
}

ojson Settings::json_value(const std::string& key, const ojson& fallback, bool object_only) const {
  if (!has(key)) return fallback;
  ojson v = ojson::parse(get(key, ""), nullptr, false);
  if (v.is_discarded()) bad(key, "expected JSON text, e.g. '{\"id\": 1}'");
  if (object_only && !v.is_object()) bad(key, "expected a JSON object, e.g. '{\"id\": 1}'");
  return v;
}

std::chrono::system_clock::time_point Settings::time(const std::string& key) const {
  if (!has(key)) return std::chrono::system_clock::now();
  auto t = stack::parse_iso_utc(get(key, ""));
  if (!t) bad(key, "expected a UTC time such as 2024-03-01T09:00:00Z");
  return std::chrono::system_clock::time_point(*t);
}

std::string iso_ms(std::chrono::system_clock::time_point t) { return iso8601_ms(t); }

std::string iso_s(std::chrono::system_clock::time_point t) {
  return stack::iso_utc(std::chrono::floor<std::chrono::seconds>(t));
}

std::string md5_hex(const std::string& data) { return sluice::hex(sluice::md5(data)); }

std::string gzip(const std::string& data) {
  z_stream zs{};
  // 15 + 16: a gzip wrapper rather than zlib's, as CloudWatch Logs sends.
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("zlib: deflateInit2 failed");
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("zlib: deflate failed");
  return out;
}

std::string random_alnum(std::size_t n, bool upper_only) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::string_view alphabet = upper_only ? "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                               : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(alphabet[pick(rng)]);
  return out;
}

}  // namespace detail

}  // namespace sluice::events
