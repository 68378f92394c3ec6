// AWS_IAM function URLs: the SigV4 signature of a request, checked as Lambda checks it, against
// the credentials sluice finds on this machine (the same chain as `sluice deploy`).
#pragma once

#include "sluice/gateway/types.hpp"

#include <chrono>
#include <string>

namespace sluice::gateway {

struct CallerIdentity {
  bool ok = false;
  std::string problem;  // why the request was refused (for the access log)
  std::string access_key, account_id, caller_id, user_arn;
};

struct LocalCredentials {
  std::string access_key_id, secret_access_key;
  std::string session_token;  // temporary credentials' token ("" for long-term keys)
  std::string unavailable;  // why there are none ("" when found)
};

// Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/lambda/aws4_request, ...: the
// credential scope must name `region` and the lambda service, X-Amz-Date must be within 15
// minutes of `now`, the key must be the local one, the X-Amz-Security-Token (header or presigned
// query) the local session token (none for long-term keys), and the signature must match the request.
CallerIdentity verify_sigv4(const Request& req, const std::string& region, const std::string& account_id,
                            const LocalCredentials& local, std::chrono::system_clock::time_point now);

}  // namespace sluice::gateway
