// The Lambda Invoke API on loopback, for boto3, the aws CLI and the SDKs:
// Invoke, InvokeWithResponseStream and PublishVersion.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
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

  // sluice's own routes under /sluice/ (e.g. POST /sluice/schedules/NAME/trigger). The
  // handler answers through `reply` (status, JSON body), on the executor; false = no such route.
  using Reply = std::function<void(unsigned status, std::string json)>;
  using AdminHandler = std::function<bool(const std::string& method, const std::string& path, Reply reply)>;
  void set_admin_handler(AdminHandler handler);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::gateway
