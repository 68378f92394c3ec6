// sluice/gateway/event_stream.hpp: the application/vnd.amazon.eventstream
// framing of InvokeWithResponseStream, checked against fixed vectors and
// against botocore's own decoder (what boto3 and the AWS CLI use).
#include "sluice/gateway/event_stream.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "../test_support.hpp"

#include <sys/wait.h>

#include <cstdio>

using namespace sluice::gateway;
using namespace std::string_literals;
using Headers = std::vector<std::pair<std::string, std::string>>;

namespace {

std::string unhex(std::string_view h) {
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return out;
}

std::uint32_t be32(std::string_view s, std::size_t at) {
  return (std::uint32_t(std::uint8_t(s[at])) << 24) | (std::uint32_t(std::uint8_t(s[at + 1])) << 16) |
         (std::uint32_t(std::uint8_t(s[at + 2])) << 8) | std::uint32_t(std::uint8_t(s[at + 3]));
}

void put_be32(std::string& s, std::size_t at, std::uint32_t v) {
  s[at] = static_cast<char>(v >> 24);
  s[at + 1] = static_cast<char>(v >> 16);
  s[at + 2] = static_cast<char>(v >> 8);
  s[at + 3] = static_cast<char>(v);
}

// Recomputes both CRCs after a deliberate change, so that only the change is wrong.
void reseal(std::string& msg) {
  put_be32(msg, 8, crc32(std::string_view(msg).substr(0, 8)));
  put_be32(msg, msg.size() - 4, crc32(std::string_view(msg).substr(0, msg.size() - 4)));
}

std::string binary_payload() {
  std::string p;
  for (int i = 0; i < 1000; ++i) p.push_back(static_cast<char>((i * 37) & 0xff));
  return p;
}

}  // namespace

TEST_CASE("crc32 is the IEEE CRC-32", "[event_stream][crc]") {
  CHECK(crc32("123456789") == 0xCBF43926u);
  CHECK(crc32("") == 0u);
  CHECK(crc32("The quick brown fox jumps over the lazy dog") == 0x414FA339u);
  // The seed continues a running CRC, as zlib's crc32(crc, buf) does.
  CHECK(crc32("56789", crc32("1234")) == 0xCBF43926u);
}

TEST_CASE("encode_event matches fixed vectors", "[event_stream]") {
  // An empty message: 16 bytes, prelude CRC 0x05c248eb, message CRC 0x7d98c8ff.
  CHECK(encode_event({}, "") == unhex("000000100000000005c248eb7d98c8ff"));
  // One string header and a two-byte payload (computed with Python's zlib.crc32).
  CHECK(encode_event({{":event-type", "PayloadChunk"}}, "hi") ==
        unhex("0000002d0000001bd616fd300b3a6576656e742d7479706507000c5061796c6f61644368756e6b686958c76727"));
}

TEST_CASE("encode_event lays out prelude, headers, payload and CRCs", "[event_stream]") {
  const Headers headers{{":event-type", "PayloadChunk"}, {"x-empty", ""}};
  const std::string payload = "abc";
  std::string msg = encode_event(headers, payload);
  const std::size_t header_bytes = (1 + 11 + 1 + 2 + 12) + (1 + 7 + 1 + 2 + 0);
  CHECK(msg.size() == 12 + header_bytes + payload.size() + 4);
  CHECK(be32(msg, 0) == msg.size());
  CHECK(be32(msg, 4) == header_bytes);
  CHECK(be32(msg, 8) == crc32(std::string_view(msg).substr(0, 8)));
  CHECK(be32(msg, msg.size() - 4) == crc32(std::string_view(msg).substr(0, msg.size() - 4)));
  CHECK(msg.substr(12, 1) == std::string(1, '\x0b'));
  CHECK(msg.substr(13, 11) == ":event-type");
  CHECK(msg[24] == 7);  // string
  CHECK(msg.substr(msg.size() - 7, 3) == "abc");
}

TEST_CASE("encode/decode round trip", "[event_stream]") {
  for (const auto& [headers, payload] : std::vector<std::pair<Headers, std::string>>{
           {{}, ""},
           {{{":event-type", "InvokeComplete"}}, "{}"},
           {{{"a", ""}, {"b", "x"}, {std::string(255, 'n'), std::string(1000, 'v')}}, "payload"},
           {{{":content-type", "application/octet-stream"}}, binary_payload()},
           {{{":message-type", "event"}}, std::string(256 * 1024, '\0')},
       }) {
    std::string msg = encode_event(headers, payload);
    std::size_t consumed = 99;
    auto ev = decode_event(msg, consumed);
    REQUIRE(ev);
    CHECK(consumed == msg.size());
    CHECK(ev->headers == headers);
    CHECK(ev->payload == payload);
  }
}

TEST_CASE("decode_event takes one message off the front of a stream", "[event_stream]") {
  std::string first = payload_chunk_event("part one");
  std::string second = payload_chunk_event("part two");
  std::string third = invoke_complete_event("", "", "");
  std::string stream = first + second + third;
  std::vector<std::string> payloads;
  std::string_view rest = stream;
  while (!rest.empty()) {
    std::size_t consumed = 0;
    auto ev = decode_event(rest, consumed);
    REQUIRE(ev);
    REQUIRE(consumed > 0);
    payloads.push_back(ev->payload);
    rest.remove_prefix(consumed);
  }
  CHECK(payloads == std::vector<std::string>{"part one", "part two", "{}"});
}

TEST_CASE("decode_event refuses incomplete and corrupt input", "[event_stream]") {
  const std::string msg = encode_event({{":event-type", "PayloadChunk"}, {":message-type", "event"}}, "payload");
  std::size_t consumed = 7;

  SECTION("every truncation is incomplete") {
    for (std::size_t n = 0; n < msg.size(); ++n) {
      INFO("first " << n << " bytes");
      CHECK_FALSE(decode_event(std::string_view(msg).substr(0, n), consumed));
      CHECK(consumed == 0);
    }
  }
  SECTION("a corrupted prelude CRC") {
    std::string bad = msg;
    bad[9] ^= 0x01;
    CHECK_FALSE(decode_event(bad, consumed));
  }
  SECTION("a corrupted length (the prelude CRC no longer matches)") {
    std::string bad = msg;
    bad[3] ^= 0x01;
    CHECK_FALSE(decode_event(bad, consumed));
    bad = msg;
    bad[7] ^= 0x02;
    CHECK_FALSE(decode_event(bad, consumed));
  }
  SECTION("a corrupted payload byte (the message CRC no longer matches)") {
    std::string bad = msg;
    bad[bad.size() - 6] ^= 0x20;
    CHECK_FALSE(decode_event(bad, consumed));
  }
  SECTION("a corrupted header byte") {
    std::string bad = msg;
    bad[14] ^= 0x20;
    CHECK_FALSE(decode_event(bad, consumed));
  }
  SECTION("a corrupted message CRC") {
    std::string bad = msg;
    bad.back() ^= 0x01;
    CHECK_FALSE(decode_event(bad, consumed));
  }
  SECTION("a header type other than string, with valid CRCs") {
    std::string bad = msg;
    REQUIRE(bad[12 + 1 + 11] == 7);
    bad[12 + 1 + 11] = 6;  // byte array
    reseal(bad);
    CHECK_FALSE(decode_event(bad, consumed));
  }
  SECTION("a header length running past the headers, with valid CRCs") {
    std::string bad = msg;
    bad[12 + 1 + 11 + 2] = static_cast<char>(0xff);  // value length
    reseal(bad);
    CHECK_FALSE(decode_event(bad, consumed));
  }
  SECTION("headers longer than the message, with valid CRCs") {
    std::string bad = msg;
    put_be32(bad, 4, static_cast<std::uint32_t>(bad.size()));
    reseal(bad);
    CHECK_FALSE(decode_event(bad, consumed));
  }
  SECTION("a total length under the minimum, with valid CRCs") {
    std::string bad = msg;
    put_be32(bad, 0, 15);
    reseal(bad);
    CHECK_FALSE(decode_event(bad, consumed));
  }
  CHECK(consumed == 0);
}

TEST_CASE("payload_chunk_event", "[event_stream]") {
  const std::string bytes = binary_payload();
  std::size_t consumed = 0;
  auto ev = decode_event(payload_chunk_event(bytes), consumed);
  REQUIRE(ev);
  CHECK(ev->headers == Headers{{":event-type", "PayloadChunk"},
                               {":content-type", "application/octet-stream"},
                               {":message-type", "event"}});
  CHECK(ev->payload == bytes);
}

TEST_CASE("invoke_complete_event", "[event_stream]") {
  const Headers expected_headers{
      {":event-type", "InvokeComplete"}, {":content-type", "application/json"}, {":message-type", "event"}};
  std::size_t consumed = 0;

  auto ok = decode_event(invoke_complete_event("", "", ""), consumed);
  REQUIRE(ok);
  CHECK(ok->headers == expected_headers);
  CHECK(nlohmann::json::parse(ok->payload) == nlohmann::json::object());

  auto with_log = decode_event(invoke_complete_event("", "", "U1RBUlQ="), consumed);
  REQUIRE(with_log);
  CHECK(nlohmann::json::parse(with_log->payload) == nlohmann::json{{"LogResult", "U1RBUlQ="}});

  auto failed = decode_event(invoke_complete_event("Unhandled", "{\"errorMessage\":\"boom \\\"x\\\"\"}", "TE9H"),
                             consumed);
  REQUIRE(failed);
  CHECK(failed->headers == expected_headers);
  CHECK(nlohmann::json::parse(failed->payload) ==
        nlohmann::json{{"ErrorCode", "Unhandled"},
                       {"ErrorDetails", "{\"errorMessage\":\"boom \\\"x\\\"\"}"},
                       {"LogResult", "TE9H"}});
}

namespace {

std::string run(const std::string& cmd, int& exit_code) {
  std::FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// Runs botocore's EventStreamBuffer over the bytes in `file` and returns what
// it decoded as JSON: [{"headers": {...}, "payload_hex": "...", "status": N}...].
nlohmann::json botocore_decode(const std::filesystem::path& file) {
  // Fed in odd-sized pieces, as a socket would deliver them.
  const std::string script =
      "import json, sys\n"
      "from botocore.eventstream import EventStreamBuffer\n"
      "buf = EventStreamBuffer()\n"
      "data = open(sys.argv[1], \"rb\").read()\n"
      "for i in range(0, len(data), 7):\n"
      "    buf.add_data(data[i:i + 7])\n"
      "print(json.dumps([{\"headers\": m.headers, \"payload_hex\": m.payload.hex(),\n"
      "                   \"status\": m.to_response_dict()[\"status_code\"]} for m in buf]))\n";
  int code = 0;
  std::string out = run("python3 -c '" + script + "' '" + file.string() + "' 2>&1", code);
  INFO("python3 output: " << out);
  REQUIRE(code == 0);
  auto j = nlohmann::json::parse(out, nullptr, false);
  REQUIRE(j.is_array());
  return j;
}

std::string to_hex(std::string_view s) {
  static constexpr char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

}  // namespace

TEST_CASE("botocore decodes what sluice encodes", "[event_stream][botocore]") {
  test_support::TempDir dir;
  const std::string bytes = binary_payload();
  const std::string details = "{\"errorMessage\":\"caf\xc3\xa9\",\"errorType\":\"Error\"}";
  std::string stream = payload_chunk_event("first chunk") + payload_chunk_event(bytes) + payload_chunk_event("") +
                       encode_event({{"x-custom", "value with \xc3\xa9"}, {"x-empty", ""}}, "custom") +
                       invoke_complete_event("Unhandled", details, "TE9H");
  test_support::write_file(dir / "stream.bin", stream);

  auto decoded = botocore_decode(dir / "stream.bin");
  REQUIRE(decoded.size() == 5);

  const nlohmann::json chunk_headers = {
      {":event-type", "PayloadChunk"}, {":content-type", "application/octet-stream"}, {":message-type", "event"}};
  CHECK(decoded[0]["headers"] == chunk_headers);
  CHECK(decoded[0]["payload_hex"] == to_hex("first chunk"));
  CHECK(decoded[0]["status"] == 200);
  CHECK(decoded[1]["headers"] == chunk_headers);
  CHECK(decoded[1]["payload_hex"] == to_hex(bytes));
  CHECK(decoded[2]["payload_hex"] == "");
  CHECK(decoded[3]["headers"] == nlohmann::json{{"x-custom", "value with \xc3\xa9"}, {"x-empty", ""}});
  CHECK(decoded[3]["payload_hex"] == to_hex("custom"));
  CHECK(decoded[4]["headers"] == nlohmann::json{{":event-type", "InvokeComplete"},
                                                {":content-type", "application/json"},
                                                {":message-type", "event"}});
  auto complete = nlohmann::json::parse(unhex(decoded[4]["payload_hex"].get<std::string>()));
  CHECK(complete == nlohmann::json{{"ErrorCode", "Unhandled"}, {"ErrorDetails", details}, {"LogResult", "TE9H"}});
}

TEST_CASE("botocore rejects a message whose CRC sluice would reject", "[event_stream][botocore]") {
  // The decoders agree on corruption too: botocore raises, and the script fails.
  test_support::TempDir dir;
  std::string msg = payload_chunk_event("payload");
  msg[msg.size() - 6] ^= 0x20;
  std::size_t consumed = 0;
  CHECK_FALSE(decode_event(msg, consumed));
  test_support::write_file(dir / "bad.bin", msg);
  int code = 0;
  std::string out = run("python3 -c 'import sys\n"
                        "from botocore.eventstream import EventStreamBuffer\n"
                        "b = EventStreamBuffer()\n"
                        "b.add_data(open(sys.argv[1], \"rb\").read())\n"
                        "list(b)' '" +
                            (dir / "bad.bin").string() + "' 2>&1",
                        code);
  INFO(out);
  CHECK(code == 1);
  CHECK(out.find("ChecksumMismatch") != std::string::npos);
}
