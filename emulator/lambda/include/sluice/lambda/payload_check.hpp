// Validation of Invoke payloads. Lambda parses the payload as JSON and answers
// InvalidRequestContentException with the parser's message; this reproduces
// the wording of the common cases (invalid UTF-8, unexpected characters,
// unrecognised tokens, early end of input), with the line and column.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::lambda {

// std::nullopt when the payload is one valid JSON document (surrounding whitespace allowed).
std::optional<std::string> check_json_payload(std::string_view payload);

// A JSON string literal (with quotes) for s; invalid UTF-8 bytes become U+FFFD.
std::string json_quote(std::string_view s);

}  // namespace sluice::lambda
