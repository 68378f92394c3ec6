// AWS access for `sluice deploy`: credentials as the SDKs find them, SigV4 signing,
// an HTTP(S) client with the SDKs' standard retry mode, and service errors parsed
// into code and message. Synchronous: deploy is a command, not a server.
// Contract shared by deploy/aws (implementation) and deploy/ (callers).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sluice::aws {

using Pairs = std::vector<std::pair<std::string, std::string>>;

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty when none
  std::string source;         // "environment", "shared credentials file (profile dev)", ...
};

// A missing or unusable credential: one sentence that says what to do.
struct CredentialsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The connection failed or timed out after every retry.
struct TransportError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A non-2xx answer (after retries): parsed from JSON or XML bodies.
struct ServiceError : std::runtime_error {
  ServiceError(int status, std::string code, std::string message, std::string request_id, std::string service);
  int status = 0;
  std::string code;        // "ResourceNotFoundException", "NoSuchBucket", "AccessDenied", ...
  std::string message;
  std::string request_id;
  std::string service;

  // The credentials were refused (InvalidClientTokenId, SignatureDoesNotMatch,
  // UnrecognizedClientException, InvalidAccessKeyId, ExpiredToken, ...): not a permission
  // problem (AccessDenied is not one of them) but a key, secret or token that is wrong or old.
  bool is_auth_error() const;
  bool is_throttling() const;   // Throttling, TooManyRequestsException, SlowDown, ...
  bool is_transient() const;    // 500/502/503/504, RequestTimeout, ...
};

// One sentence for a user whose credentials were refused:
// "AWS refused the credentials from the environment (InvalidClientTokenId: ...): ..."
std::string rejected_credentials_sentence(const ServiceError& error, const Credentials& credentials);

struct Request {
  std::string method = "GET";
  std::string service;       // signing name: lambda, apigateway, s3, iam, sts, events
  std::string path = "/";    // raw, not percent-encoded: the client encodes each segment
  Pairs query;               // raw names and values; repeated and empty keys allowed
  Pairs headers;             // content-type, x-amz-target, ...; host/date/auth are added
  std::string body;
  bool unsigned_payload = false;  // S3 uploads: x-amz-content-sha256: UNSIGNED-PAYLOAD
  // Called as the body goes out (uploads show a progress bar): bytes sent, total.
  std::function<void(std::size_t, std::size_t)> progress;
};

struct Response {
  int status = 0;
  Pairs headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& lower_name) const;  // "" when absent
};

struct ClientOptions {
  std::string region;                      // empty: AWS_REGION / AWS_DEFAULT_REGION / profile / us-east-1
  std::optional<std::string> endpoint_url; // every service at this URL (moto); else AWS's endpoints
  std::string profile;                     // empty: AWS_PROFILE or "default"
  std::string role_arn;                    // non-empty: sts:AssumeRole with the resolved credentials
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds read_timeout{60000};
  int max_attempts = 3;                    // standard retry mode
  // PEM file of trusted CAs for HTTPS; empty: AWS_CA_BUNDLE, else the system store
  // (OpenSSL's default paths, which honour SSL_CERT_FILE / SSL_CERT_DIR).
  std::string ca_file;
  std::function<void(const std::string&)> on_retry;  // a line for the progress log
};

class Client {
 public:
  explicit Client(ClientOptions options);  // resolves credentials now: throws CredentialsError
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Signs, sends, retries (throttling, 5xx, transport errors; quota and jittered backoff);
  // returns a 2xx response, else throws ServiceError or TransportError.
  Response call(const Request& request);

  const std::string& region() const;
  const Credentials& credentials() const;
  // "https://lambda.eu-west-3.amazonaws.com" or the endpoint URL.
  std::string endpoint(const std::string& service) const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace sluice::aws
