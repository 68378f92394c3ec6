// Calls the Lambda service makes to other AWS services (destinations, SQS event sources):
// clients at a given endpoint, JSON-protocol requests, a failure in one line.
#pragma once

#include "sluice/aws/client.hpp"

#include <chrono>
#include <exception>
#include <memory>
#include <string>

namespace sluice::lambda::detail {

// A client for `region` at `endpoint`; throws aws::CredentialsError when there are none.
std::unique_ptr<aws::Client> service_client(const std::string& region, const std::string& endpoint,
                                            std::chrono::milliseconds read_timeout, int max_attempts);

// POST / with X-Amz-Target `target` (AmazonSQS.SendMessage, AWSEvents.PutEvents, ...) in the
// JSON protocol `json_version` ("1.0", "1.1"); returns the answer's body, throws on failure.
std::string json_call(aws::Client& client, const std::string& service, const std::string& target,
                      const std::string& json_version, std::string body);

// "CODE: message" for a service's refusal, else what().
std::string failure_text(const std::exception& e);

}  // namespace sluice::lambda::detail
