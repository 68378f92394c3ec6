// sluice/lambda/function_ref.hpp: the names callers give a function.
#include "sluice/lambda/function_ref.hpp"

#include <catch2/catch.hpp>

using namespace sluice::lambda;

namespace {

FunctionRef ok(const std::string& name, const std::string& qualifier = "") {
  auto p = parse_function_ref(name, qualifier);
  INFO("function name: " << name << ", qualifier: " << qualifier);
  if (p.error) FAIL_CHECK(p.error->code << ": " << p.error->message);
  REQUIRE(p.ref);
  return *p.ref;
}

RefError bad(const std::string& name, const std::string& qualifier = "") {
  auto p = parse_function_ref(name, qualifier);
  INFO("function name: " << name << ", qualifier: " << qualifier);
  CHECK_FALSE(p.ref);
  REQUIRE(p.error);
  return *p.error;
}

const std::string name_pattern_message_tail =
    "' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: "
    "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)"
    "(:(\\$LATEST|[a-zA-Z0-9-_]+))?";

}  // namespace

TEST_CASE("plain names and name:qualifier", "[function_ref]") {
  auto r = ok("my-function");
  CHECK(r.name == "my-function");
  CHECK(r.qualifier.empty());
  CHECK(r.region.empty());
  CHECK(r.account.empty());

  CHECK(ok("Fn_1.v2").name == "Fn_1.v2");

  r = ok("my-function:prod");
  CHECK(r.name == "my-function");
  CHECK(r.qualifier == "prod");

  r = ok("my-function:$LATEST");
  CHECK(r.qualifier == "$LATEST");
  r = ok("my-function:42");
  CHECK(r.qualifier == "42");
}

TEST_CASE("full ARNs", "[function_ref]") {
  auto r = ok("arn:aws:lambda:us-east-1:123456789012:function:my-function");
  CHECK(r.name == "my-function");
  CHECK(r.qualifier.empty());
  CHECK(r.region == "us-east-1");
  CHECK(r.account == "123456789012");

  r = ok("arn:aws:lambda:eu-west-3:123456789012:function:my-function:7");
  CHECK(r.name == "my-function");
  CHECK(r.qualifier == "7");
  CHECK(r.region == "eu-west-3");

  r = ok("arn:aws:lambda:us-east-1:123456789012:function:my-function:live");
  CHECK(r.qualifier == "live");
  r = ok("arn:aws:lambda:us-east-1:123456789012:function:my-function:$LATEST");
  CHECK(r.qualifier == "$LATEST");

  r = ok("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:gov-fn");
  CHECK(r.region == "us-gov-west-1");
  CHECK(r.name == "gov-fn");
  r = ok("arn:aws-cn:lambda:cn-north-1:123456789012:function:cn-fn");
  CHECK(r.region == "cn-north-1");
}

TEST_CASE("partial ARNs", "[function_ref]") {
  auto r = ok("123456789012:function:my-function");
  CHECK(r.name == "my-function");
  CHECK(r.account == "123456789012");
  CHECK(r.region.empty());
  CHECK(r.qualifier.empty());

  r = ok("123456789012:function:my-function:prod");
  CHECK(r.name == "my-function");
  CHECK(r.qualifier == "prod");
}

TEST_CASE("names outside AWS's pattern are a ValidationException", "[function_ref]") {
  for (std::string name : {"", "my function", "my/function", "fn:", "fn:a:b", "fn:a b", "fn:1.5", "héllo",
                           "arn:aws:lambda:us-east-1:123:function:fn", "fn;drop", ":fn"}) {
    auto e = bad(name);
    CHECK(e.code == "ValidationException");
    CHECK(e.message == "1 validation error detected: Value '" + name + name_pattern_message_tail);
  }
  // Longer than the whole ARN may be.
  auto e = bad("arn:aws:lambda:us-east-1:123456789012:function:" + std::string(130, 'a'));
  CHECK(e.code == "ValidationException");
}

TEST_CASE("a function name is at most 64 characters", "[function_ref]") {
  CHECK(ok(std::string(64, 'f')).name == std::string(64, 'f'));
  CHECK(ok("arn:aws:lambda:us-east-1:123456789012:function:" + std::string(64, 'f') + ":1").name.size() == 64);

  auto e = bad(std::string(65, 'f'));
  CHECK(e.code == "ValidationException");
  CHECK(e.message == "1 validation error detected: Value '" + std::string(65, 'f') +
                         "' at 'functionName' failed to satisfy constraint: Member must have length less than or "
                         "equal to 64");
  CHECK(bad("123456789012:function:" + std::string(65, 'g') + ":prod").code == "ValidationException");
}

TEST_CASE("the Qualifier parameter and the name's qualifier must agree", "[function_ref]") {
  auto r = ok("my-function", "prod");
  CHECK(r.qualifier == "prod");
  r = ok("my-function:prod", "prod");
  CHECK(r.qualifier == "prod");
  r = ok("arn:aws:lambda:us-east-1:123456789012:function:my-function:3", "3");
  CHECK(r.qualifier == "3");
  r = ok("my-function", "$LATEST");
  CHECK(r.qualifier == "$LATEST");

  for (auto [name, q] : std::vector<std::pair<std::string, std::string>>{
           {"my-function:prod", "dev"},
           {"my-function:1", "2"},
           {"my-function:$LATEST", "1"},
           {"arn:aws:lambda:us-east-1:123456789012:function:my-function:3", "4"}}) {
    auto e = bad(name, q);
    CHECK(e.code == "InvalidParameterValueException");
    CHECK(e.message == "The derived qualifier from the function name does not match the specified qualifier.");
  }

  auto e = bad("my-function", "bad qualifier");
  CHECK(e.code == "ValidationException");
  CHECK(e.message == "1 validation error detected: Value 'bad qualifier' at 'qualifier' failed to satisfy "
                     "constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)");
}

TEST_CASE("is_version_number", "[function_ref]") {
  for (const char* v : {"1", "9", "10", "42", "1234567890"}) CHECK(is_version_number(v));
  for (const char* v : {"", "0", "01", "-1", "1.0", "$LATEST", "prod", "12345678901", "1a", " 1"})
    CHECK_FALSE(is_version_number(v));
}

TEST_CASE("valid_qualifier", "[function_ref]") {
  using V = std::vector<std::string>;
  // The parameter's pattern, (|[a-zA-Z0-9$_-]+), lets "$latest" through: it then names nothing (404).
  for (const auto& q : V{"$LATEST", "1", "prod", "blue_green-2", std::string(128, 'q'), "$latest", "LATEST$"})
    CHECK(valid_qualifier(q));
  for (const auto& q : V{"", "a b", "a:b", "a.b", std::string(129, 'q'), "\xc3\xa9"})
    CHECK_FALSE(valid_qualifier(q));
}

TEST_CASE("function_arn", "[function_ref]") {
  CHECK(function_arn("us-east-1", "123456789012", "fn") == "arn:aws:lambda:us-east-1:123456789012:function:fn");
  CHECK(function_arn("eu-west-3", "123456789012", "fn", "prod") ==
        "arn:aws:lambda:eu-west-3:123456789012:function:fn:prod");
  CHECK(function_arn("us-east-1", "123456789012", "fn", "$LATEST") ==
        "arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST");
  // What function_arn builds, parse_function_ref reads back.
  auto r = ok(function_arn("ap-southeast-2", "210987654321", "round-trip", "5"));
  CHECK(r.region == "ap-southeast-2");
  CHECK(r.account == "210987654321");
  CHECK(r.name == "round-trip");
  CHECK(r.qualifier == "5");
}
