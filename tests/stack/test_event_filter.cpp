// Lambda's event filtering for SQS event sources: which message bodies pass a FilterCriteria.
#include "sluice/stack/event_filter.hpp"

#include <catch2/catch.hpp>

using sluice::stack::sqs_filter_problem;
using sluice::stack::SqsFilters;

namespace {

bool passes(const std::string& pattern, const std::string& body) {
  REQUIRE(sqs_filter_problem(pattern).empty());
  return SqsFilters({pattern}).passes(body);
}

}  // namespace

TEST_CASE("filters: equals, or, and, nested fields", "[stack][event_filter]") {
  const std::string p = R"({"body": {"kind": ["order", "refund"], "shop": {"country": ["FR"]}}})";
  CHECK(passes(p, R"({"kind": "order", "shop": {"country": "FR"}, "other": 1})"));
  CHECK(passes(p, R"({"kind": "refund", "shop": {"country": "FR"}})"));
  CHECK_FALSE(passes(p, R"({"kind": "order", "shop": {"country": "DE"}})"));  // fields are ANDed
  CHECK_FALSE(passes(p, R"({"kind": "order"})"));                               // a field is missing
  CHECK_FALSE(passes(p, R"({"kind": "ORDER", "shop": {"country": "FR"}})"));  // no case folding
  // a list in the message matches when any of its values does; lists of objects are searched
  CHECK(passes(R"({"body": {"tags": ["b"]}})", R"({"tags": ["a", "b"]})"));
  CHECK(passes(R"({"body": {"items": {"sku": ["x1"]}}})", R"({"items": [{"sku": "x0"}, {"sku": "x1"}]})"));
  // numbers, booleans and null equal by type and text: 1 is not "1", and 300 is not 300.0
  CHECK(passes(R"({"body": {"n": [1]}})", R"({"n": 1})"));
  CHECK_FALSE(passes(R"({"body": {"n": [1]}})", R"({"n": "1"})"));
  CHECK_FALSE(passes(R"({"body": {"n": ["1"]}})", R"({"n": 1})"));
  CHECK_FALSE(passes(R"({"body": {"n": [300]}})", R"({"n": 300.0})"));
  CHECK(passes(R"({"body": {"ok": [true]}})", R"({"ok": true})"));
  CHECK(passes(R"({"body": {"v": [null]}})", R"({"v": null})"));
  CHECK_FALSE(passes(R"({"body": {"v": [null]}})", R"({"v": ""})"));
  CHECK(passes(R"({"body": {"v": [""]}})", R"({"v": ""})"));
}

TEST_CASE("filters: the comparison rules", "[stack][event_filter]") {
  CHECK(passes(R"({"body": {"r": [{"prefix": "us-"}]}})", R"({"r": "us-east-1"})"));
  CHECK_FALSE(passes(R"({"body": {"r": [{"prefix": "us-"}]}})", R"({"r": "eu-west-1"})"));
  CHECK(passes(R"({"body": {"f": [{"suffix": ".png"}]}})", R"({"f": "cat.png"})"));
  CHECK(passes(R"({"body": {"f": [{"suffix": {"equals-ignore-case": ".PNG"}}]}})", R"({"f": "cat.png"})"));
  CHECK(passes(R"({"body": {"n": [{"equals-ignore-case": "alice"}]}})", R"({"n": "ALICE"})"));
  CHECK(passes(R"({"body": {"w": [{"anything-but": ["Raining", "Snow"]}]}})", R"({"w": "Sunny"})"));
  CHECK_FALSE(passes(R"({"body": {"w": [{"anything-but": ["Raining", "Snow"]}]}})", R"({"w": "Snow"})"));
  CHECK_FALSE(passes(R"({"body": {"w": [{"anything-but": "Raining"}]}})", R"({})"));  // a missing field
  CHECK(passes(R"({"body": {"p": [{"numeric": [">", 10, "<=", 20]}]}})", R"({"p": 20})"));
  CHECK_FALSE(passes(R"({"body": {"p": [{"numeric": [">", 10, "<=", 20]}]}})", R"({"p": 10})"));
  CHECK_FALSE(passes(R"({"body": {"p": [{"numeric": [">", 10]}]}})", R"({"p": "11"})"));  // numbers only
  CHECK(passes(R"({"body": {"p": [{"numeric": ["=", 1.5]}]}})", R"({"p": 1.5})"));
  CHECK(passes(R"({"body": {"id": [{"exists": true}]}})", R"({"id": 0})"));
  CHECK_FALSE(passes(R"({"body": {"id": [{"exists": true}]}})", R"({"id": {"x": 1}})"));  // leaves only
  CHECK(passes(R"({"body": {"id": [{"exists": false}]}})", R"({"other": 1})"));
  CHECK_FALSE(passes(R"({"body": {"id": [{"exists": false}]}})", R"({"id": 1})"));
  // $or: any alternative, ANDed with the fields beside it
  const std::string alt = R"({"body": {"a": [1]}, "$or": [{"body": {"b": [2]}}, {"body": {"c": [3]}}]})";
  CHECK(passes(alt, R"({"a": 1, "c": 3})"));
  CHECK_FALSE(passes(alt, R"({"a": 1, "d": 4})"));
  CHECK_FALSE(passes(alt, R"({"a": 0, "b": 2})"));
}

TEST_CASE("filters: plain-text and JSON bodies", "[stack][event_filter]") {
  // rules on the body itself are for plain-text messages; a JSON pattern for JSON ones; a
  // mismatch drops the message (AWS)
  CHECK(passes(R"({"body": ["ping"]})", "ping"));
  CHECK(passes(R"({"body": [{"prefix": "Result: "}]})", "Result: 42"));
  CHECK_FALSE(passes(R"({"body": [{"prefix": "{"}]})", R"({"kind": "order"})"));
  CHECK_FALSE(passes(R"({"body": {"kind": ["order"]}})", "kind=order"));
  // several filters: any may match; none at all lets everything through
  SqsFilters two({R"({"body": ["ping"]})", R"({"body": {"kind": ["order"]}})"});
  CHECK(two.passes("ping"));
  CHECK(two.passes(R"({"kind": "order"})"));
  CHECK_FALSE(two.passes("pong"));
  CHECK(SqsFilters({}).passes("anything"));
  CHECK(SqsFilters({}).empty());
}

TEST_CASE("filters: what AWS refuses, and where", "[stack][event_filter]") {
  CHECK(sqs_filter_problem("not json") == "the pattern is not valid JSON");
  CHECK(sqs_filter_problem("{}").find("expected a JSON object with at least one field") != std::string::npos);
  CHECK(sqs_filter_problem(R"({"eventSource": ["aws:sqs"]})").starts_with("eventSource: SQS event sources filter on the message body only"));
  CHECK(sqs_filter_problem(R"({"body": {"a": {"b": "x"}}})").starts_with("body.a.b: a field's values are given as a list"));
  CHECK(sqs_filter_problem(R"({"body": {"a": [["x"]]}})").starts_with("body.a[0]: a rule array holds values"));
  CHECK(sqs_filter_problem(R"({"body": {"a": [{"prefix": "x", "suffix": "y"}]}})").starts_with("body.a[0]: a rule is an object with exactly one of"));
  CHECK(sqs_filter_problem(R"({"body": {"a": [{"cidr": "10.0.0.0/8"}]}})").starts_with("body.a[0].cidr: 'cidr' is an EventBridge rule"));
  CHECK(sqs_filter_problem(R"({"body": {"a": [{"numeric": ["=", 1, "<", 2]}]}})").starts_with("body.a[0].numeric: expected"));
  CHECK(sqs_filter_problem(R"({"body": {"a": [{"numeric": [">", 5, "<", 2]}]}})").starts_with("body.a[0].numeric: expected"));
  CHECK(sqs_filter_problem(R"({"body": {"a": [{"anything-but": []}]}})").starts_with("body.a[0].anything-but: expected"));
  CHECK(sqs_filter_problem(R"({"$or": [{"body": ["x"]}]})").starts_with("$or: $or takes a list of at least two patterns"));
  CHECK(sqs_filter_problem(R"({"$or": [{"body": ["x"]}, {"attributes": {"a": ["y"]}}]})").starts_with("$or[1].attributes: SQS event sources filter on the message body only"));
  CHECK(sqs_filter_problem(R"({"body": {"a": [{"wat": 1}]}})").starts_with("body.a[0].wat: unknown rule 'wat'"));
  CHECK(sqs_filter_problem("{\"body\": [\"" + std::string(4100, 'x') + "\"]}").find("AWS takes at most 4096") != std::string::npos);
}
