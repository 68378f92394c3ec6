// AWS Signature Version 4, pure functions (no I/O): canonical request, string to sign,
// signature and Authorization header, with the S3 exceptions (no path normalisation, no
// second encoding, x-amz-content-sha256 / UNSIGNED-PAYLOAD).
//
// Paths come in two forms. The *raw* path is what a caller means ("/functions/my fn");
// the *wire* path is what goes on the request line: each segment percent-encoded
// (encode_path). For every service but S3 the canonical URI encodes the normalised wire path
// once more (botocore and the other SDKs do exactly this); S3 signs the wire path as is.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "sluice/aws/client.hpp"

namespace sluice::aws::sigv4 {

inline constexpr const char* kUnsignedPayload = "UNSIGNED-PAYLOAD";
inline constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// RFC 3986 percent-encoding: A-Z a-z 0-9 - _ . ~ kept, everything else %XX (upper case).
std::string uri_encode(std::string_view s, bool keep_slash = false);
// %XX decoded (a '+' stays a '+'); malformed escapes are kept as they are.
std::string uri_decode(std::string_view s);
// Raw path -> wire path: every segment encoded, '/' kept; "" becomes "/".
std::string encode_path(std::string_view raw_path);
// Raw query pairs -> "a=1&b=&c=%20" in the given order.
std::string encode_query(const Pairs& raw_query);
// Dot segments removed and repeated slashes collapsed (not for S3).
std::string normalize_path(std::string_view wire_path);
// The canonical URI: S3 keeps the wire path; other services normalise then encode again.
std::string canonical_uri(std::string_view wire_path, bool s3);
// Encoded names and values, sorted by name then value (byte order), "k=v" joined by '&';
// an empty value keeps its '=' ("k=").
std::string canonical_query(const Pairs& raw_query);

struct CanonicalHeaders {
  std::string block;           // "name:value\n" per signed header, names lower-case and sorted
  std::string signed_headers;  // "content-type;host;x-amz-date"
};
// Header names lower-cased; values trimmed with inner runs of whitespace (spaces, tabs,
// folded lines) collapsed to one space; repeated names joined with ',' in their order.
// Headers the SDKs never sign (user-agent, expect, connection, transfer-encoding,
// x-amzn-trace-id, authorization, ...) are left out.
CanonicalHeaders canonical_headers(const Pairs& headers);
bool is_unsigned_header(std::string_view lower_name);

struct Input {
  std::string method;
  std::string wire_path;       // as on the request line
  Pairs query;                 // raw names and values
  Pairs headers;               // as sent (host and x-amz-date included)
  std::string payload_hash;    // hex SHA-256 of the body, or UNSIGNED-PAYLOAD
  bool s3 = false;
};

struct Scope {
  std::string access_key_id;
  std::string secret_access_key;
  std::string region;
  std::string service;
  std::string amz_date;  // 20150830T123600Z
};

struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // lower-case hex
  std::string signed_headers;
  std::string authorization;  // the Authorization header value
};

Signature sign(const Input& input, const Scope& scope);

// "20150830T123600Z" for a time point (UTC).
std::string amz_date(std::chrono::system_clock::time_point t);
std::string sha256_hex(std::string_view data);

// What Client does to every request, exposed for the differential test against botocore:
// adds X-Amz-Date, X-Amz-Security-Token (when the credentials have one),
// X-Amz-Content-SHA256 (S3 always: the body's hash or UNSIGNED-PAYLOAD), then signs and
// adds Authorization. `headers` must already hold Host.
struct SignRequest {
  std::string method;
  std::string wire_path;
  Pairs query;  // raw
  Pairs headers;
  std::string_view body;
  bool unsigned_payload = false;
  std::string service;  // signing name; "s3" turns the S3 rules on
  std::string region;
};
Signature add_auth(SignRequest& request, const Credentials& credentials, const std::string& amz_date);

}  // namespace sluice::aws::sigv4
