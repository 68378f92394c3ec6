// Small, dependency-free helpers shared by every module: ids, encodings,
// time formats, string handling. Kept free of heavy headers on purpose.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// Random RFC 4122 version-4 UUID, lower-case: 8476a536-e9f4-41e8-9739-2dfe598c3fcd
std::string new_uuid();
// n random lower-case hex digits
std::string random_hex(std::size_t n);
// X-Ray style trace header: Root=1-<8 hex epoch>-<24 hex>;Parent=<16 hex>;Sampled=0
std::string new_trace_id();
// API Gateway's short id shape (e.g. x-amz-apigw-id: "Xe3kFHw5oAMEbPQ=")
std::string new_apigw_id();

std::string base64_encode(std::string_view in);
// Lenient decode (either alphabet, whitespace, optional padding); std::nullopt
// when the input is not base64 at all.
std::optional<std::string> base64_decode(std::string_view in);
// Strict base64url as JWTs use it: URL alphabet only, padding optional, nothing else.
std::optional<std::string> base64url_decode(std::string_view in);

std::string to_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
std::string_view trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);

// arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE; the resource keeps any further ':'
// (function:NAME:QUALIFIER). nullopt when the text is not "arn:" and five ':'-separated parts.
struct Arn {
  std::string partition, service, region, account, resource;
};
std::optional<Arn> parse_arn(std::string_view text);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
// Edit distance, for "did you mean" suggestions.
std::size_t levenshtein(std::string_view a, std::string_view b);
// The closest candidate within a sensible distance, or empty.
std::string nearest(std::string_view word, const std::vector<std::string>& candidates);

bool valid_utf8(std::string_view s);
// Percent-decoding of URL components; '+' is kept unless plus_as_space.
std::string url_decode(std::string_view s, bool plus_as_space = false);
std::string url_encode(std::string_view s);

using wall_clock = std::chrono::system_clock;
using mono_clock = std::chrono::steady_clock;

std::int64_t epoch_ms(wall_clock::time_point t = wall_clock::now());
// 2024-03-04T19:15:17.135Z
std::string iso8601_ms(wall_clock::time_point t = wall_clock::now());
// 04/Mar/2020:19:15:17 +0000 (API Gateway requestTime)
std::string clf_time(wall_clock::time_point t = wall_clock::now());
// 2024/03/04 (log stream date prefix)
std::string ymd_slashes(wall_clock::time_point t = wall_clock::now());
// RFC 7231 date for the Date header
std::string http_date(wall_clock::time_point t = wall_clock::now());

// "%.2f" without locale surprises
std::string fixed2(double v);

// Human-facing quoting for error messages: "value" with control characters escaped.
std::string quoted(std::string_view s);

}  // namespace sluice
