// The HTTP(S) transport behind Client (private). Beast and Asio stay in http.cpp.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "sluice/aws/client.hpp"

namespace sluice::aws::detail {

struct Endpoint {
  bool https = true;
  std::string host;
  std::string port;         // "443", "80", "5000"
  std::string base_path;    // "" or "/prefix" (no trailing slash)
  std::string host_header;  // host, plus ":port" when not the scheme's default
  std::string url() const;  // scheme://host[:port][base_path]
};
// "http://127.0.0.1:5000", "https://lambda.eu-west-3.amazonaws.com"; throws std::invalid_argument.
Endpoint parse_endpoint(const std::string& url);

// The connection could not be made, broke, or timed out.
struct TransportFailure : TransportError {
  TransportFailure(const std::string& what, bool timeout_, bool retryable_)
      : TransportError(what), timeout(timeout_), retryable(retryable_) {}
  bool timeout;
  bool retryable;  // false for TLS verification failures and bad endpoints
};

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds read_timeout{60000};
  std::string ca_file;  // empty: the system store
};

// Synchronous client on a private io_context; one kept-alive connection per endpoint.
class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // `target` is the request-target ("/path?query"); headers are sent as given, plus
  // Host and Content-Length. Throws TransportFailure.
  Response send(const Endpoint& endpoint, const std::string& method, const std::string& target, const Pairs& headers,
                const std::string& body, const std::function<void(std::size_t, std::size_t)>& progress);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::aws::detail
