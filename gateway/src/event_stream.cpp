#include "sluice/gateway/event_stream.hpp"

#include <array>
#include <nlohmann/json.hpp>

namespace sluice::gateway {
namespace {

std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

void put32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

std::uint32_t get32(std::string_view s, std::size_t at) {
  return (std::uint32_t(std::uint8_t(s[at])) << 24) | (std::uint32_t(std::uint8_t(s[at + 1])) << 16) |
         (std::uint32_t(std::uint8_t(s[at + 2])) << 8) | std::uint32_t(std::uint8_t(s[at + 3]));
}

}  // namespace

std::uint32_t crc32(std::string_view data, std::uint32_t seed) {
  static const auto table = make_table();
  std::uint32_t c = seed ^ 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string encode_event(const std::vector<std::pair<std::string, std::string>>& headers, std::string_view payload) {
  std::string hdr;
  for (const auto& [name, value] : headers) {
    hdr.push_back(static_cast<char>(name.size()));
    hdr += name;
    hdr.push_back(7);  // string
    hdr.push_back(static_cast<char>((value.size() >> 8) & 0xff));
    hdr.push_back(static_cast<char>(value.size() & 0xff));
    hdr += value;
  }
  std::uint32_t total = static_cast<std::uint32_t>(12 + hdr.size() + payload.size() + 4);
  std::string out;
  out.reserve(total);
  put32(out, total);
  put32(out, static_cast<std::uint32_t>(hdr.size()));
  put32(out, crc32(std::string_view(out.data(), 8)));
  out += hdr;
  out.append(payload);
  put32(out, crc32(out));
  return out;
}

std::optional<DecodedEvent> decode_event(std::string_view data, std::size_t& consumed) {
  consumed = 0;
  if (data.size() < 16) return std::nullopt;
  std::uint32_t total = get32(data, 0), hlen = get32(data, 4);
  if (total < 16 || data.size() < total || hlen > total - 16) return std::nullopt;
  if (crc32(data.substr(0, 8)) != get32(data, 8)) return std::nullopt;
  if (crc32(data.substr(0, total - 4)) != get32(data, total - 4)) return std::nullopt;
  DecodedEvent ev;
  std::size_t p = 12, end = 12 + hlen;
  while (p < end) {
    std::size_t nlen = std::uint8_t(data[p++]);
    if (p + nlen + 3 > end) return std::nullopt;
    std::string name(data.substr(p, nlen));
    p += nlen;
    if (data[p++] != 7) return std::nullopt;
    std::size_t vlen = (std::size_t(std::uint8_t(data[p])) << 8) | std::uint8_t(data[p + 1]);
    p += 2;
    if (p + vlen > end) return std::nullopt;
    ev.headers.emplace_back(std::move(name), std::string(data.substr(p, vlen)));
    p += vlen;
  }
  ev.payload = std::string(data.substr(end, total - 4 - end));
  consumed = total;
  return ev;
}

std::string payload_chunk_event(std::string_view bytes) {
  return encode_event({{":event-type", "PayloadChunk"},
                       {":content-type", "application/octet-stream"},
                       {":message-type", "event"}},
                      bytes);
}

std::string invoke_complete_event(const std::string& error_code, const std::string& error_details,
                                  const std::string& log_result) {
  nlohmann::json j = nlohmann::json::object();
  if (!error_code.empty()) j["ErrorCode"] = error_code;
  if (!error_details.empty()) j["ErrorDetails"] = error_details;
  if (!log_result.empty()) j["LogResult"] = log_result;
  return encode_event({{":event-type", "InvokeComplete"},
                       {":content-type", "application/json"},
                       {":message-type", "event"}},
                      j.dump());
}

}  // namespace sluice::gateway
