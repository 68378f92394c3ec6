// Service errors from JSON (Lambda, API Gateway, EventBridge) and XML (S3, IAM, STS) bodies.
#pragma once

#include <string>
#include <string_view>

#include "sluice/aws/client.hpp"

namespace sluice::aws {

// A non-2xx answer into a ServiceError. Code: the x-amzn-ErrorType header, else JSON
// __type / code / Code (a "prefix#" namespace is dropped), else XML <Code>; with no code in
// the body (S3's HEAD answers have none) the status as text, "404", as botocore does.
// Message: JSON message / Message, XML <Message>. Request id: x-amzn-RequestId,
// x-amz-request-id, else XML <RequestId>.
ServiceError parse_service_error(int status, const Pairs& lower_headers, const std::string& body,
                                 const std::string& service);

// The text of the first <tag>...</tag> (entities decoded), "" when absent. Enough for the
// fixed shapes of AWS's XML answers; not a general XML parser.
std::string xml_text(std::string_view xml, std::string_view tag);
std::string xml_unescape(std::string_view text);

}  // namespace sluice::aws
