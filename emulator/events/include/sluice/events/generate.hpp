// Sample events, as `sam local generate-event` prints them: realistic, ready for a
// handler. Used by `sluice generate-event` and by the Python package.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sluice::events {

struct EventKind {
  std::string source;       // "apigateway", "sqs", "sns", "s3", "dynamodb", "eventbridge", "cloudwatch"
  std::string kind;         // "aws-proxy", "http-api", "authorizer-token", "receive-message", ...
  std::string description;  // one line for --help
  std::vector<std::string> settable;  // keys accepted by --set (e.g. "path", "method", "body")
};

const std::vector<EventKind>& event_kinds();

// The event as pretty JSON text. `sets` are --set key=value pairs. Throws
// std::invalid_argument with a clear message for an unknown source, kind or key.
std::string generate_event(const std::string& source, const std::string& kind,
                           const std::vector<std::pair<std::string, std::string>>& sets);

}  // namespace sluice::events
