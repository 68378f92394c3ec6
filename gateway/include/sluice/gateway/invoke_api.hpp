// The Lambda Invoke API on loopback, for boto3, the aws CLI and the SDKs:
// Invoke, InvokeWithResponseStream and PublishVersion.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace sluice::lambda {
class LambdaService;
}

namespace sluice::gateway {

class InvokeApi {
 public:
  InvokeApi(boost::asio::any_io_executor ex, lambda::LambdaService& service);
  ~InvokeApi();
  // Returns the bound port; throws std::runtime_error naming the address on failure.
  unsigned short listen(const std::string& host, unsigned short port);
  void start();
  boost::asio::awaitable<void> drain(std::chrono::milliseconds deadline);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::gateway
