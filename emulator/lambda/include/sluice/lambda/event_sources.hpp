// SQS event source mappings of the stack: each enabled one polls its queue (at the endpoint
// the AWS SDKs would use: AWS_ENDPOINT_URL_SQS, else AWS_ENDPOINT_URL) on a thread of its
// own, invokes the function synchronously with batches of messages in the "aws:sqs" event,
// and deletes what succeeded (all of a batch, or all but its reported batchItemFailures).
#pragma once

#include "sluice/stack/model.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <string>

namespace sluice::lambda {

class LambdaService;

// The "aws:sqs" event for messages as SQS's ReceiveMessage (JSON protocol) returns them
// (`messages`: its "Messages" array, as JSON text).
std::string sqs_event(const std::string& messages_json, const std::string& queue_arn);

class EventSources {
 public:
  EventSources(boost::asio::any_io_executor ex, LambdaService& service, const stack::Stack& stack);
  ~EventSources();  // stop()
  EventSources(const EventSources&) = delete;
  EventSources& operator=(const EventSources&) = delete;

  void start();
  // Mappings of the new stack replace the old ones (a poll under way finishes first).
  void reload(const stack::Stack& stack);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::lambda
