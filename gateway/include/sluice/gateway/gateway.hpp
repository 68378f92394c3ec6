// The API Gateway emulation: one HTTP listener per API of the stack, each
// request taken through stage, route, authorizer, API key, throttling and the
// Lambda proxy integration, with AWS's answers at every step.
#pragma once

#include "sluice/stack/model.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::lambda {
class LambdaService;
}

namespace sluice::gateway {

struct GatewayOptions {
  std::string host = "127.0.0.1";
  unsigned short base_port = 3000;  // APIs without a port get consecutive ports from here; 0 = ephemeral
  std::vector<unsigned short> reserved_ports;  // never assigned to an API (e.g. the Lambda API's)
  std::optional<int> timeout_ms;               // lowers every integration timeout (tests)
  std::string untimed_function;                // no integration timeout for it (the function being debugged)
  std::size_t body_limit = 10 * 1024 * 1024;   // API Gateway's payload limit
  std::size_t header_limit = 10240;            // request line + headers
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  double account_rate = 10000;  // the account-level throttle, AWS's default quota
  int account_burst = 5000;
};

struct ApiEndpoint {
  std::string name;
  stack::ApiType type;
  std::string url;  // http://127.0.0.1:PORT
  std::vector<std::string> stages;
};

struct UrlEndpoint {
  std::string function;
  std::string url;  // http://127.0.0.1:PORT
  std::string auth_type, invoke_mode;
};

class Gateway {
 public:
  // access_log receives one line per request.
  Gateway(boost::asio::any_io_executor ex, lambda::LambdaService& service, GatewayOptions options,
          std::function<void(const std::string&)> access_log);
  ~Gateway();

  // Binds every API; throws std::runtime_error naming the API and address on failure.
  void start(const stack::Stack& stack);
  // Applies a new validated stack: routes, stages, keys, plans and authorizers
  // change at once; APIs added get a listener, removed ones are drained.
  void reload(const stack::Stack& stack);
  // Why reload(stack) could not open every listener it needs (a fixed port taken by another
  // program or by another of sluice's listeners), one line each; empty: it can.
  std::vector<std::string> reload_problems(const stack::Stack& stack) const;
  boost::asio::awaitable<void> drain(std::chrono::milliseconds deadline);

  std::vector<ApiEndpoint> endpoints() const;
  std::vector<UrlEndpoint> url_endpoints() const;  // function URLs

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::gateway
