// Destinations of asynchronous invocations (AWS DestinationConfig): the invocation record
// Lambda builds once an event succeeds or fails for good, and its delivery to a queue,
// topic, event bus, bucket or function outside the stack. Functions of the stack are
// invoked by the service itself. No Asio here: delivery runs on a thread of its own, with
// the synchronous AWS client deploy uses.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::lambda {

// What one asynchronous event came to.
struct AsyncOutcome {
  std::string request_id;
  std::string function_arn;    // as invoked, qualified ("...:function:NAME:$LATEST", ":ALIAS")
  std::string condition;       // Success | RetriesExhausted | EventAgeExceeded | ZeroReservedConcurrency
  int attempts = 0;            // approximateInvokeCount
  std::string request_payload; // the event as sent (JSON text)
  bool ran = false;            // a response exists (responseContext / responsePayload)
  int status_code = 200;
  std::string executed_version;
  bool function_error = false;
  std::string response_payload;  // the function's answer (JSON text, or raw bytes)
  std::chrono::system_clock::time_point time = std::chrono::system_clock::now();  // the record's timestamp
};

// The record as Lambda sends it: {"version":"1.0","timestamp",...,"requestContext":{...},
// "requestPayload", "responseContext", "responsePayload"}.
std::string invocation_record(const AsyncOutcome& outcome);

// A function error's "errorMessage" (the whole payload when it has none).
std::string error_message(const std::string& payload);

// A record handed to a destination, kept for `app.destinations()` and the logs.
struct DestinationDelivery {
  std::string function;     // whose event it was
  std::string request_id;   // of the event
  std::string condition;
  std::string kind;         // "on_success" | "on_failure" | "dead_letter"
  std::string destination;  // as the stack names it
  std::string record;       // what was sent: the invocation record (a dead-letter queue: the event)
  std::string state = "pending";  // pending | delivered | failed | not_sent
  std::string detail;       // request id of the destination invocation, message id, or why not
  std::chrono::system_clock::time_point time = std::chrono::system_clock::now();
};

// The endpoint an AWS SDK would use for a service here: AWS_ENDPOINT_URL_<SERVICE>, else
// AWS_ENDPOINT_URL; empty when neither is set. `service`: sqs, sns, events, s3, lambda.
std::string destination_endpoint(const std::string& service);
// What to set when destination_endpoint(service) is empty, for messages.
std::string endpoint_hint(const std::string& service);

// Sends records to ARNs, one at a time on a thread of its own, in order. `done` is called on
// that thread with the delivery's final state ("delivered" + message id, or "failed" + why).
class RemoteDestinations {
 public:
  using Done = std::function<void(const std::string& state, const std::string& detail)>;
  RemoteDestinations();
  ~RemoteDestinations();  // stops after the delivery under way (waits at most a few seconds)
  RemoteDestinations(const RemoteDestinations&) = delete;
  RemoteDestinations& operator=(const RemoteDestinations&) = delete;

  struct Message {
    std::string arn;           // sqs, sns, events, lambda or s3
    std::string body;          // the invocation record (or, for a dead-letter queue, the event)
    bool success = false;      // the condition was Success (EventBridge's detail-type says which)
    std::string function_arn;  // the source function, qualified
    // SQS / SNS message attributes (dead-letter queues): name, data type, value.
    std::vector<std::array<std::string, 3>> attributes;
  };
  void send(Message message, Done done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::lambda
