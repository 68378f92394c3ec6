#include "sluice/gateway/url_auth.hpp"

#include "sluice/aws/sigv4.hpp"
#include "sluice/common/hash.hpp"
#include "sluice/common/util.hpp"

#include <cctype>
#include <cstdlib>
#include <optional>
#include <ctime>

namespace sluice::gateway {

namespace {

// "20150830T123600Z" -> time point; nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_amz_date(const std::string& s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  std::tm tm{};
  try {
    tm.tm_year = std::stoi(s.substr(0, 4)) - 1900;
    tm.tm_mon = std::stoi(s.substr(4, 2)) - 1;
    tm.tm_mday = std::stoi(s.substr(6, 2));
    tm.tm_hour = std::stoi(s.substr(9, 2));
    tm.tm_min = std::stoi(s.substr(11, 2));
    tm.tm_sec = std::stoi(s.substr(13, 2));
  } catch (...) {
    return std::nullopt;
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string field(std::string_view auth, std::string_view name) {
  auto at = auth.find(std::string(name) + "=");
  if (at == std::string_view::npos) return {};
  auto start = at + name.size() + 1;
  auto end = auth.find(',', start);
  return std::string(trim(auth.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start)));
}

}  // namespace

CallerIdentity verify_sigv4(const Request& req, const std::string& region, const std::string& account_id,
                            const LocalCredentials& local, std::chrono::system_clock::time_point now) {
  CallerIdentity who;
  // The signature comes in the Authorization header, or in the query (a presigned URL:
  // X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders,
  // X-Amz-Signature), as botocore's SigV4Auth and SigV4QueryAuth make them.
  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& pair : split(req.raw_query, '&')) {
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    query.emplace_back(aws::sigv4::uri_decode(pair.substr(0, eq)),
                       eq == std::string::npos ? "" : aws::sigv4::uri_decode(pair.substr(eq + 1)));
  }
  auto query_value = [&](std::string_view name) -> std::optional<std::string> {
    for (const auto& [k, v] : query)
      if (k == name) return v;
    return std::nullopt;
  };
  auto auth = req.header("Authorization");
  const bool presigned = !auth && query_value("X-Amz-Algorithm").has_value();
  std::string credential, signed_headers, signature, amz_date;
  std::optional<long> expires;
  if (presigned) {
    if (*query_value("X-Amz-Algorithm") != "AWS4-HMAC-SHA256") {
      who.problem = "AWS_IAM: the presigned URL's X-Amz-Algorithm is not AWS4-HMAC-SHA256";
      return who;
    }
    credential = query_value("X-Amz-Credential").value_or("");
    signed_headers = query_value("X-Amz-SignedHeaders").value_or("");
    signature = query_value("X-Amz-Signature").value_or("");
    amz_date = query_value("X-Amz-Date").value_or("");
    std::string e = query_value("X-Amz-Expires").value_or("");
    try {
      std::size_t used = 0;
      long n = e.empty() ? -1 : std::stol(e, &used);
      if (used == e.size() && n >= 1 && n <= 604800) expires = n;
    } catch (...) {
    }
    if (!expires) {
      who.problem = "AWS_IAM: the presigned URL's X-Amz-Expires must be 1 to 604800 seconds, found " +
                    (e.empty() ? std::string("none") : sluice::quoted(e));
      return who;
    }
  } else {
    if (!auth) {
      who.problem = "AWS_IAM: the request is not signed (no Authorization header, no presigned query)";
      return who;
    }
    constexpr std::string_view scheme = "AWS4-HMAC-SHA256 ";
    if (auth->compare(0, scheme.size(), scheme) != 0) {
      who.problem = "AWS_IAM: the Authorization header is not AWS4-HMAC-SHA256";
      return who;
    }
    std::string_view rest = std::string_view(*auth).substr(scheme.size());
    credential = field(rest, "Credential");
    signed_headers = field(rest, "SignedHeaders");
    signature = field(rest, "Signature");
    amz_date = req.header("X-Amz-Date").value_or("");
  }
  auto parts = split(credential, '/');
  if (parts.size() != 5 || parts[4] != "aws4_request" || signed_headers.empty() || signature.empty()) {
    who.problem = presigned ? "AWS_IAM: malformed presigned URL (X-Amz-Credential, X-Amz-SignedHeaders, "
                              "X-Amz-Signature)"
                            : "AWS_IAM: malformed Authorization header";
    return who;
  }
  const std::string& key = parts[0];
  if (parts[3] != "lambda" || parts[2] != region) {
    who.problem = "AWS_IAM: signed for " + parts[3] + " in " + parts[2] + ", not lambda in " + region;
    return who;
  }
  auto when = amz_date.empty() ? std::nullopt : parse_amz_date(amz_date);
  if (!when) {
    who.problem = presigned ? "AWS_IAM: no valid X-Amz-Date in the presigned URL" : "AWS_IAM: no valid X-Amz-Date header";
    return who;
  }
  if (presigned) {
    if (when->time_since_epoch() - now.time_since_epoch() > std::chrono::minutes(15)) {
      who.problem = "AWS_IAM: the presigned URL's X-Amz-Date " + amz_date + " is in the future";
      return who;
    }
    if (now > *when + std::chrono::seconds(*expires)) {
      who.problem = "AWS_IAM: the presigned URL expired (X-Amz-Date " + amz_date + " + X-Amz-Expires " +
                    std::to_string(*expires) + " s)";
      return who;
    }
  } else if (when->time_since_epoch() - now.time_since_epoch() > std::chrono::minutes(15) ||
             now.time_since_epoch() - when->time_since_epoch() > std::chrono::minutes(15)) {
    who.problem = "AWS_IAM: X-Amz-Date " + amz_date + " is more than 15 minutes from now";
    return who;
  }
  if (amz_date.substr(0, 8) != parts[1]) {
    who.problem = "AWS_IAM: the credential scope's date is not X-Amz-Date's";
    return who;
  }
  if (!local.unavailable.empty()) {
    who.problem = "AWS_IAM: no local credentials to check the signature with (" + local.unavailable + ")";
    return who;
  }
  if (key != local.access_key_id) {
    who.problem = "AWS_IAM: signed with access key " + key + ", not with the local credentials' " + local.access_key_id;
    return who;
  }

  // Temporary credentials sign with their session token, long-term keys without one: any other
  // token is refused, as STS would refuse a forged one.
  std::string token = presigned ? query_value("X-Amz-Security-Token").value_or("")
                                : req.header("X-Amz-Security-Token").value_or("");
  if (token != local.session_token) {
    who.problem = local.session_token.empty()
                      ? "AWS_IAM: the request carries an X-Amz-Security-Token, but the local credentials have no "
                        "session token"
                  : token.empty() ? "AWS_IAM: the request carries no X-Amz-Security-Token, but the local credentials "
                                    "are temporary (they have a session token)"
                                  : "AWS_IAM: the request's X-Amz-Security-Token is not the local credentials' "
                                    "session token";
    return who;
  }

  aws::sigv4::Input in;
  in.method = req.method;
  in.wire_path = req.raw_path.empty() ? "/" : req.raw_path;
  for (const auto& [k, v] : query)
    if (!presigned || k != "X-Amz-Signature") in.query.emplace_back(k, v);  // every parameter but the signature
  auto wanted = split(signed_headers, ';');
  for (const auto& h : req.headers)
    for (const auto& w : wanted)
      if (iequals(h.name, w)) in.headers.emplace_back(h.name, h.value);
  auto content_hash = req.header("X-Amz-Content-SHA256");
  in.payload_hash = content_hash ? *content_hash : aws::sigv4::sha256_hex(req.body);
  aws::sigv4::Scope scope{key, local.secret_access_key, parts[2], "lambda", amz_date};
  auto expected = aws::sigv4::sign(in, scope);
  if (expected.signed_headers != signed_headers) {
    who.problem = "AWS_IAM: the signed headers " + signed_headers + " are not all in the request (or include ones "
                  "that are never signed)";
    return who;
  }
  if (expected.signature != signature && presigned && !content_hash) {
    in.payload_hash = "UNSIGNED-PAYLOAD";  // presigned URLs may leave the body unsigned (S3's way)
    expected = aws::sigv4::sign(in, scope);
  }
  if (expected.signature != signature) {
    who.problem = "AWS_IAM: the signature does not match the request (another secret key, or the request was "
                  "changed after it was signed)";
    return who;
  }
  who.ok = true;
  who.access_key = key;
  who.account_id = account_id;
  // Locally the caller is known by its key only: the ids below are derived from it.
  std::string tail = hex(sha256(key)).substr(0, 17);
  for (auto& c : tail) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  who.caller_id = "AIDA" + tail;
  who.user_arn = "arn:aws:iam::" + account_id + ":user/" + key;
  return who;
}

}  // namespace sluice::gateway
