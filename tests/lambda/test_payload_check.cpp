// sluice/lambda/payload_check.hpp: Invoke payload validation with Jackson's
// wording, checked against what AWS answered (recorded by LocalStack).
#include "sluice/lambda/payload_check.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace sluice::lambda;
using namespace std::string_literals;

#ifndef SLUICE_VECTORS_DIR
#error "SLUICE_VECTORS_DIR must point at shared/vectors"
#endif

namespace {

std::string at(int line, int column) {
  return "\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: " +
         std::to_string(line) + ", column: " + std::to_string(column) + "]";
}

std::string error_of(std::string_view payload) {
  auto e = check_json_payload(payload);
  REQUIRE(e);
  return *e;
}

const std::string value_list = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')";

// The InvalidRequestContentException message AWS recorded for one of
// LocalStack's test_lambda_invoke_payload_encoding_error cases (tests/vectors).
std::string recorded_message(const std::string& label) {
  std::ifstream in(std::string(SLUICE_VECTORS_DIR) + "/aws-recorded/test_lambda.snapshot.json");
  if (!in) FAIL("no recorded vectors under " SLUICE_VECTORS_DIR);
  auto doc = nlohmann::json::parse(in);
  for (auto& [key, value] : doc.items()) {
    if (key.find("test_lambda_invoke_payload_encoding_error[" + label + "-") == std::string::npos) continue;
    auto& content = value["recorded-content"];
    return content["invoke_function_invalid_payload_" + label]["Error"]["Message"].get<std::string>();
  }
  FAIL("no recorded snapshot for " << label);
  return {};
}

constexpr std::string_view lambda_prefix =
    "Could not parse request body into json: Could not parse payload into json: ";

}  // namespace

TEST_CASE("valid JSON documents pass", "[payload]") {
  for (std::string doc : {
           "{}", "[]", "0", "-0", "1", "-12.5e+10", "3E-2", "1.0", "true", "false", "null", "\"\"", "\"text\"",
           " \n\t\r{} \n\t\r", "{\"a\":1}", "[1,2,3]", "[ ]", "{ }",
           R"({"a": [1, 2, {"b": null, "c": [true, false]}], "d": {"e": {"f": "g"}}})",
           R"("\u00e9\ud83d\ude00\u0000\uFFFF")", R"("\"\\\/\b\f\n\r\t")",
           "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",  // raw UTF-8 in strings
           "{\n  \"multi\": [\n    1,\n    2\n  ]\n}\n",
       }) {
    INFO(doc);
    auto e = check_json_payload(doc);
    CHECK_FALSE(e);
    if (e) WARN(*e);
  }
}

TEST_CASE("AWS's recorded answers to non-JSON payloads are reproduced", "[payload][aws-recorded]") {
  // The bytes LocalStack sent (what the AWS CLI v2 sends for a JSON --payload
  // without --cli-binary-format raw-in-base64-out: the JSON, base64-decoded).
  SECTION("body: an invalid UTF-8 byte inside what looked like a token") {
    if (std::string expected = recorded_message("body"); !expected.empty()) {
      REQUIRE(expected.rfind(lambda_prefix, 0) == 0);
      CHECK(error_of("n\x87r\x9e\xe9\xb5\xd7I\xee\x9bmt") == expected.substr(lambda_prefix.size()));
    }
    CHECK(error_of("n\x87r\x9e\xe9\xb5\xd7I\xee\x9bmt") == "Invalid UTF-8 start byte 0x87" + at(1, 3));
  }
  SECTION("message: a C1 control byte where a value should start") {
    if (std::string expected = recorded_message("message"); !expected.empty()) {
      REQUIRE(expected.rfind(lambda_prefix, 0) == 0);
      CHECK(error_of("\x99\xeb,j\x07\xa1zYh") == expected.substr(lambda_prefix.size()));
    }
    CHECK(error_of("\x99\xeb,j\x07\xa1zYh") ==
          "Unexpected character ((CTRL-CHAR, code 153)): expected a valid value " + value_list + at(1, 1));
  }
}

TEST_CASE("invalid UTF-8 inside strings", "[payload][utf8]") {
  CHECK(error_of("\"\x87\"") == "Invalid UTF-8 start byte 0x87" + at(1, 3));
  CHECK(error_of("{\"key\": \"ab\xff\"}") == "Invalid UTF-8 start byte 0xff" + at(1, 13));
  CHECK(error_of("\"\xc3(\"").rfind("Invalid UTF-8 middle byte 0x28", 0) == 0);
  CHECK(error_of("\"\xe2\x82\"").rfind("Invalid UTF-8 middle byte 0x22", 0) == 0);
  CHECK(error_of("\"\xc3").rfind("Unexpected end-of-input", 0) == 0);
}

TEST_CASE("unexpected characters", "[payload]") {
  CHECK(error_of("\x01") == "Unexpected character ((CTRL-CHAR, code 1)): expected a valid value " + value_list +
                                at(1, 1));
  CHECK(error_of("@") == "Unexpected character ('@' (code 64)): expected a valid value " + value_list + at(1, 1));
  CHECK(error_of("  ]") == "Unexpected character (']' (code 93)): expected a valid value " + value_list + at(1, 3));
  CHECK(error_of("{a: 1}") ==
        "Unexpected character ('a' (code 97)): was expecting double-quote to start field name" + at(1, 2));
  CHECK(error_of("{\"a\" 1}") ==
        "Unexpected character ('1' (code 49)): was expecting a colon to separate field name and value" + at(1, 6));
  CHECK(error_of("[1 2]") ==
        "Unexpected character ('2' (code 50)): was expecting comma to separate Array entries" + at(1, 4));
  CHECK(error_of("{\"a\":1 \"b\":2}") ==
        "Unexpected character ('\"' (code 34)): was expecting comma to separate Object entries" + at(1, 8));
  CHECK(error_of("\"a\x01" "b\"") ==
        "Illegal unquoted character ((CTRL-CHAR, code 1)): has to be escaped using backslash to be included in "
        "string value" + at(1, 3));
  CHECK(error_of(R"("\x")") == "Unrecognized character escape 'x' (code 120)" + at(1, 3));
  CHECK(error_of(R"("\u12G4")").rfind("Unexpected character in Unicode escape", 0) == 0);
}

TEST_CASE("unrecognized tokens: Jackson reports the whole token and the place after it", "[payload][tokens]") {
  CHECK(error_of("nul") == "Unrecognized token 'nul': was expecting " + value_list + at(1, 4));
  CHECK(error_of("truex") == "Unrecognized token 'truex': was expecting " + value_list + at(1, 6));
  CHECK(error_of("hello") == "Unrecognized token 'hello': was expecting " + value_list + at(1, 6));
  CHECK(error_of("hello world") == "Unrecognized token 'hello': was expecting " + value_list + at(1, 7));
  CHECK(error_of("True") == "Unrecognized token 'True': was expecting " + value_list + at(1, 5));
  CHECK(error_of("{\"a\": nul}") == "Unrecognized token 'nul': was expecting " + value_list + at(1, 11));
  CHECK(error_of("[fals3, 1]") == "Unrecognized token 'fals3': was expecting " + value_list + at(1, 8));
  // The line break that ends a token is consumed but not counted as a new line.
  CHECK(error_of("{\n  \"a\": tru\n}") == "Unrecognized token 'tru': was expecting " + value_list + at(2, 12));
  // Jackson cuts the token short at 256 characters.
  CHECK(error_of("n" + std::string(400, 'x')) ==
        "Unrecognized token 'n" + std::string(255, 'x') + "...': was expecting " + value_list + at(1, 257));
  // A bad UTF-8 byte in the middle of a token is reported as such.
  CHECK(error_of("tr\xc3(") == "Invalid UTF-8 middle byte 0x28" + at(1, 5));
}

TEST_CASE("trailing garbage after the root value", "[payload]") {
  CHECK(error_of("{} x") == "Unexpected character ('x' (code 120)): expected end-of-input after the root value" +
                                at(1, 4));
  CHECK(error_of("[1]]").rfind("Unexpected character (']' (code 93))", 0) == 0);
  CHECK(error_of("1 2").rfind("Unexpected character ('2' (code 50))", 0) == 0);
  CHECK(error_of("\"a\"\"b\"").rfind("Unexpected character ('\"' (code 34))", 0) == 0);
}

TEST_CASE("documents that end early", "[payload]") {
  CHECK(error_of("").rfind("No content to map due to end-of-input", 0) == 0);
  CHECK(error_of("   \n").rfind("No content to map due to end-of-input", 0) == 0);
  CHECK(error_of("\"abc") == "Unexpected end-of-input: was expecting closing quote for a string value" + at(1, 5));
  CHECK(error_of("{\"a\": 1").rfind("Unexpected end-of-input: expected close marker for Object", 0) == 0);
  CHECK(error_of("{\"a\": 1,").rfind("Unexpected end-of-input: expected close marker for Object", 0) == 0);
  CHECK(error_of("{\"a\"").rfind("Unexpected end-of-input", 0) == 0);
  CHECK(error_of("{").rfind("Unexpected end-of-input: expected close marker for Object", 0) == 0);
  CHECK(error_of("[1, 2").rfind("Unexpected end-of-input: expected close marker for Array", 0) == 0);
  CHECK(error_of("[").rfind("Unexpected end-of-input", 0) == 0);
  CHECK(error_of("-").rfind("Unexpected character after '-' in numeric value", 0) == 0);
  CHECK(error_of("1.").rfind("Unexpected character: Decimal point not followed by a digit", 0) == 0);
  CHECK(error_of("1e").rfind("Unexpected character: Exponent indicator not followed by a digit", 0) == 0);
  CHECK(error_of("01").rfind("Invalid numeric value: Leading zeroes not allowed", 0) == 0);
}

TEST_CASE("nesting is limited to 1000 levels, as Jackson's StreamReadConstraints", "[payload][depth]") {
  auto arrays = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  auto objects = [](int n) {
    std::string s;
    for (int i = 0; i < n - 1; ++i) s += "{\"k\":";
    s += "{}";
    s += std::string(n - 1, '}');
    return s;
  };
  CHECK_FALSE(check_json_payload(arrays(1000)));
  CHECK_FALSE(check_json_payload(objects(1000)));
  CHECK_FALSE(check_json_payload(std::string(1000, '[') + "1" + std::string(1000, ']')));
  const std::string message =
      "Document nesting depth (1001) exceeds the maximum allowed (1000, from "
      "`StreamReadConstraints.getMaxNestingDepth()`)";
  CHECK(error_of(arrays(1001)) == message);
  CHECK(error_of(objects(1001)) == message);
  CHECK(error_of(std::string(1001, '[') + "1" + std::string(1001, ']')) == message);
  // Far deeper input fails the same way instead of exhausting the stack.
  CHECK(error_of(std::string(200000, '[')) == message);
}

TEST_CASE("json_quote", "[payload][quote]") {
  CHECK(json_quote("") == "\"\"");
  CHECK(json_quote("plain") == "\"plain\"");
  CHECK(json_quote("q\"b\\s") == "\"q\\\"b\\\\s\"");
  CHECK(json_quote("\n\r\t\b\f") == "\"\\n\\r\\t\\b\\f\"");
  CHECK(json_quote("\x01\x1f"s) == "\"\\u0001\\u001f\"");
  CHECK(json_quote("nul\0"s) == "\"nul\\u0000\"");
  CHECK(json_quote("/ and \x7f") == "\"/ and \x7f\"");
  CHECK(json_quote("caf\xc3\xa9 \xf0\x9f\x98\x80") == "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
  // Invalid UTF-8 becomes U+FFFD so that the result is always valid JSON.
  CHECK(json_quote("a\xff" "b") == "\"a\xef\xbf\xbd" "b\"");
  CHECK(json_quote("\xc3") == "\"\xef\xbf\xbd\"");
  CHECK(json_quote("\xed\xa0\x80") == "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");

  // Whatever the bytes, the result parses back (to the same text when it was valid UTF-8).
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::string s : {all, "ordinary text"s, "tab\there \"quoted\" \\ back"s, "\xe2\x82\xac\x80\xc0\xaf"s}) {
    std::string quoted = json_quote(s);
    CHECK_FALSE(check_json_payload(quoted));
    auto parsed = nlohmann::json::parse(quoted, nullptr, false);
    REQUIRE(parsed.is_string());
  }
  CHECK(nlohmann::json::parse(json_quote("tab\there \"quoted\" \\ back")).get<std::string>() ==
        "tab\there \"quoted\" \\ back");
}
