#include "sluice/aws/sigv4.hpp"

#include <algorithm>
#include <array>
#include <ctime>
#include <map>
#include <vector>

#include "sluice/common/hash.hpp"

namespace sluice::aws::sigv4 {
namespace {

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '~';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Trimall: leading and trailing whitespace removed, inner runs collapsed to one space.
std::string trim_all(std::string_view v) {
  std::string out;
  bool pending_space = false;
  for (char c : v) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string uri_encode(std::string_view s, bool keep_slash) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    if (unreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 0xF];
    }
  }
  return out;
}

std::string uri_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::string encode_path(std::string_view raw_path) {
  if (raw_path.empty()) return "/";
  std::string out = uri_encode(raw_path, true);
  if (out.front() != '/') out.insert(out.begin(), '/');
  return out;
}

std::string encode_query(const Pairs& raw_query) {
  std::string out;
  for (const auto& [k, v] : raw_query) {
    if (!out.empty()) out += '&';
    out += uri_encode(k);
    out += '=';
    out += uri_encode(v);
  }
  return out;
}

std::string normalize_path(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> segments;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view seg = path.substr(pos, next - pos);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    pos = next + 1;
  }
  std::string out = path.front() == '/' ? "/" : "";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i) out += '/';
    out += segments[i];
  }
  if (path.back() == '/' && !segments.empty()) out += '/';
  return out.empty() ? "/" : out;
}

std::string canonical_uri(std::string_view wire_path, bool s3) {
  if (wire_path.empty()) return "/";
  if (s3) return std::string(wire_path);
  return uri_encode(normalize_path(wire_path), true);
}

std::string canonical_query(const Pairs& raw_query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(raw_query.size());
  for (const auto& [k, v] : raw_query) encoded.emplace_back(uri_encode(k), uri_encode(v));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [k, v] : encoded) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

bool is_unsigned_header(std::string_view n) {
  static constexpr std::array<std::string_view, 12> names = {
      "authorization", "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
      "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id"};
  return std::find(names.begin(), names.end(), n) != names.end();
}

CanonicalHeaders canonical_headers(const Pairs& headers) {
  std::map<std::string, std::string> merged;  // sorted by lower-case name
  for (const auto& [name, value] : headers) {
    std::string n = lower(trim_all(name));
    if (is_unsigned_header(n)) continue;
    auto [it, inserted] = merged.try_emplace(n, trim_all(value));
    if (!inserted) {
      it->second += ',';
      it->second += trim_all(value);
    }
  }
  CanonicalHeaders out;
  for (const auto& [n, v] : merged) {
    out.block += n + ':' + v + '\n';
    if (!out.signed_headers.empty()) out.signed_headers += ';';
    out.signed_headers += n;
  }
  return out;
}

std::string sha256_hex(std::string_view data) { return hex(sluice::sha256(data)); }

Signature sign(const Input& input, const Scope& scope) {
  Signature out;
  CanonicalHeaders ch = canonical_headers(input.headers);
  out.signed_headers = ch.signed_headers;
  out.canonical_request = input.method + '\n' + canonical_uri(input.wire_path, input.s3) + '\n' +
                          canonical_query(input.query) + '\n' + ch.block + '\n' + ch.signed_headers + '\n' +
                          input.payload_hash;
  const std::string date = scope.amz_date.substr(0, 8);
  const std::string credential_scope = date + '/' + scope.region + '/' + scope.service + "/aws4_request";
  out.string_to_sign =
      "AWS4-HMAC-SHA256\n" + scope.amz_date + '\n' + credential_scope + '\n' + sha256_hex(out.canonical_request);
  std::string key = hmac_sha256("AWS4" + scope.secret_access_key, date);
  key = hmac_sha256(key, scope.region);
  key = hmac_sha256(key, scope.service);
  key = hmac_sha256(key, "aws4_request");
  out.signature = hex(hmac_sha256(key, out.string_to_sign));
  out.authorization = "AWS4-HMAC-SHA256 Credential=" + scope.access_key_id + '/' + credential_scope +
                      ", SignedHeaders=" + ch.signed_headers + ", Signature=" + out.signature;
  return out;
}

std::string amz_date(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

namespace {
void set_header(Pairs& headers, std::string_view lower_name, std::string value) {
  std::erase_if(headers, [&](const auto& h) { return lower(h.first) == lower_name; });
  headers.emplace_back(std::string(lower_name), std::move(value));
}
}  // namespace

Signature add_auth(SignRequest& request, const Credentials& credentials, const std::string& date) {
  const bool s3 = request.service == "s3";
  set_header(request.headers, "x-amz-date", date);
  if (!credentials.session_token.empty()) set_header(request.headers, "x-amz-security-token", credentials.session_token);
  std::string payload_hash = request.unsigned_payload ? kUnsignedPayload : sha256_hex(request.body);
  if (s3 || request.unsigned_payload) set_header(request.headers, "x-amz-content-sha256", payload_hash);
  std::erase_if(request.headers, [](const auto& h) { return lower(h.first) == "authorization"; });
  Input input{request.method, request.wire_path, request.query, request.headers, payload_hash, s3};
  Scope scope{credentials.access_key_id, credentials.secret_access_key, request.region, request.service, date};
  Signature sig = sign(input, scope);
  request.headers.emplace_back("authorization", sig.authorization);
  return sig;
}

}  // namespace sluice::aws::sigv4
