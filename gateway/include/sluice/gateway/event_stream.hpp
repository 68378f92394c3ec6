// AWS event-stream framing (application/vnd.amazon.eventstream), as used by
// InvokeWithResponseStream: prelude with lengths and CRC32, typed headers,
// payload, message CRC32.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::gateway {

std::uint32_t crc32(std::string_view data, std::uint32_t seed = 0);

// All headers are strings (type 7), which is all Lambda sends.
std::string encode_event(const std::vector<std::pair<std::string, std::string>>& headers, std::string_view payload);

struct DecodedEvent {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;
};
// Decodes one message from the front of data (verifying both CRCs); consumed
// tells how many bytes it used. std::nullopt when incomplete or corrupt.
std::optional<DecodedEvent> decode_event(std::string_view data, std::size_t& consumed);

// The two events Lambda streams back.
std::string payload_chunk_event(std::string_view bytes);
std::string invoke_complete_event(const std::string& error_code, const std::string& error_details,
                                  const std::string& log_result);

}  // namespace sluice::gateway
