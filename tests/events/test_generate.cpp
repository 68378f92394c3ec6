// generate_event: every kind's shape, --set, the errors; the scheduled event of a stack.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>

#include "sluice/common/util.hpp"
#include "sluice/events/generate.hpp"
#include "sluice/lambda/scheduler.hpp"

using json = nlohmann::json;
using sluice::events::generate_event;
using Sets = std::vector<std::pair<std::string, std::string>>;

namespace {

json gen(const std::string& source, const std::string& kind, const Sets& sets = {}) {
  return json::parse(generate_event(source, kind, sets));
}

std::string error_of(const std::string& source, const std::string& kind, const Sets& sets = {}) {
  try {
    generate_event(source, kind, sets);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  FAIL("expected " << source << " " << kind << " to be refused");
  return "";
}

std::string gunzip(const std::string& in) {
  z_stream zs{};
  REQUIRE(inflateInit2(&zs, 15 + 16) == Z_OK);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(inflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

const std::regex uuid_re("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
const std::regex iso_ms_re(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");

}  // namespace

TEST_CASE("the catalogue lists every kind with its keys", "[events]") {
  std::vector<std::string> names;
  for (const auto& k : sluice::events::event_kinds()) {
    names.push_back(k.source + " " + k.kind);
    CHECK_FALSE(k.description.empty());
    CHECK(std::find(k.settable.begin(), k.settable.end(), "region") != k.settable.end());
  }
  for (const char* want : {"apigateway aws-proxy", "apigateway http-api", "apigateway authorizer-token",
                           "apigateway authorizer-request", "lambda function-url", "lambda destination",
                           "sqs receive-message", "sns notification", "s3 put",
                           "dynamodb update", "eventbridge scheduled-event", "cloudwatch scheduled-event",
                           "cloudwatch logs"})
    CHECK(std::find(names.begin(), names.end(), want) != names.end());
}

TEST_CASE("REST proxy events are the gateway's payload 1.0", "[events]") {
  auto ev = gen("apigateway", "aws-proxy");
  for (const char* key : {"resource", "path", "httpMethod", "headers", "multiValueHeaders", "queryStringParameters",
                          "multiValueQueryStringParameters", "pathParameters", "stageVariables", "requestContext",
                          "body", "isBase64Encoded"})
    CHECK(ev.contains(key));
  CHECK(ev["resource"] == "/{proxy+}");
  CHECK(ev["path"] == "/hello");
  CHECK(ev["httpMethod"] == "GET");
  CHECK(ev["body"].is_null());
  CHECK(ev["queryStringParameters"].is_null());
  const auto& rc = ev["requestContext"];
  CHECK(rc["stage"] == "prod");
  CHECK(rc["path"] == "/prod/hello");
  CHECK(rc["accountId"] == "123456789012");
  CHECK(std::regex_match(rc["requestId"].get<std::string>(), uuid_re));
  CHECK(rc["domainName"] == rc["apiId"].get<std::string>() + ".execute-api.us-east-1.amazonaws.com");
  CHECK(ev["headers"]["X-Forwarded-Proto"] == "https");
  CHECK(ev["headers"]["X-Forwarded-Port"] == "443");
  CHECK(ev["multiValueHeaders"]["X-Forwarded-Proto"] == json::array({"https"}));

  ev = gen("apigateway", "aws-proxy",
           {{"method", "delete"}, {"path", "/movies/7"}, {"resource", "/movies/{id}"}, {"stage", "beta"},
            {"body", "hello"}, {"base64", "true"}, {"header.X-Custom", "1"}, {"query.tag", "a"}, {"query.tag", "b"},
            {"stage_variable.env", "beta"}, {"api_id", "abc123defg"}, {"request_id", "r-1"},
            {"region", "eu-west-3"}, {"account", "111122223333"}});
  CHECK(ev["httpMethod"] == "DELETE");
  CHECK(ev["pathParameters"] == json{{"id", "7"}});
  CHECK(ev["requestContext"]["resourcePath"] == "/movies/{id}");
  CHECK(ev["requestContext"]["path"] == "/beta/movies/7");
  CHECK(ev["requestContext"]["requestId"] == "r-1");
  CHECK(ev["requestContext"]["apiId"] == "abc123defg");
  CHECK(ev["requestContext"]["accountId"] == "111122223333");
  CHECK(ev["requestContext"]["domainName"] == "abc123defg.execute-api.eu-west-3.amazonaws.com");
  CHECK(ev["body"] == sluice::base64_encode("hello"));
  CHECK(ev["isBase64Encoded"] == true);
  CHECK(ev["headers"]["X-Custom"] == "1");
  CHECK(ev["queryStringParameters"] == json{{"tag", "b"}});
  CHECK(ev["multiValueQueryStringParameters"] == json{{"tag", {"a", "b"}}});
  CHECK(ev["stageVariables"] == json{{"env", "beta"}});

  CHECK_THAT(error_of("apigateway", "aws-proxy", {{"path", "/a"}, {"resource", "/b/{id}"}}),
             Catch::Contains("does not match the resource"));
  CHECK_THAT(error_of("apigateway", "aws-proxy", {{"method", "FETCH"}}),
             Catch::Contains("--set method=\"FETCH\" for apigateway aws-proxy: expected one of GET, POST"));
  CHECK_THAT(error_of("apigateway", "aws-proxy", {{"path", "movies"}}), Catch::Contains("starting with '/'"));
  CHECK_THAT(error_of("apigateway", "aws-proxy", {{"path", "/a?b=1"}}), Catch::Contains("query.NAME"));
  CHECK_THAT(error_of("apigateway", "aws-proxy", {{"header.bad name", "1"}}), Catch::Contains("not a valid header name"));
}

TEST_CASE("HTTP API events are payload 2.0", "[events]") {
  auto ev = gen("apigateway", "http-api", {{"method", "POST"}, {"path", "/items/3"}, {"route", "/items/{id}"},
                                           {"body", "{}"}, {"header.Cookie", "a=1; b=2"}, {"query.x", "1"}});
  CHECK(ev["version"] == "2.0");
  CHECK(ev["routeKey"] == "POST /items/{id}");
  CHECK(ev["rawPath"] == "/items/3");
  CHECK(ev["rawQueryString"] == "x=1");
  CHECK(ev["cookies"] == json::array({"a=1", "b=2"}));
  CHECK(ev["pathParameters"] == json{{"id", "3"}});
  CHECK(ev["requestContext"]["http"]["method"] == "POST");
  CHECK(ev["requestContext"]["stage"] == "$default");
  CHECK(ev["headers"]["x-forwarded-proto"] == "https");
  CHECK(ev["body"] == "{}");
  ev = gen("apigateway", "http-api", {{"route", "$default"}, {"stage", "v1"}, {"path", "/any/thing"}});
  CHECK(ev["routeKey"] == "$default");
  CHECK(ev["rawPath"] == "/v1/any/thing");
}

TEST_CASE("authorizer events", "[events]") {
  auto ev = gen("apigateway", "authorizer-token",
                {{"token", "Bearer abc"}, {"api_id", "a1b2c3d4e5"}, {"path", "/movies"}, {"method", "POST"}});
  CHECK(ev == json{{"type", "TOKEN"},
                   {"authorizationToken", "Bearer abc"},
                   {"methodArn", "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/POST/movies"}});
  ev = gen("apigateway", "authorizer-request", {{"header.X-User", "ann"}, {"query.q", "1"}, {"path", "/m/1"},
                                                {"resource", "/m/{id}"}});
  CHECK(ev["type"] == "REQUEST");
  CHECK(ev["resource"] == "/m/{id}");
  CHECK(ev["pathParameters"] == json{{"id", "1"}});
  CHECK(ev["headers"]["X-User"] == "ann");
  CHECK(ev["queryStringParameters"] == json{{"q", "1"}});
  CHECK(ev["requestContext"]["resourcePath"] == "/m/{id}");
}

TEST_CASE("SQS messages", "[events]") {
  auto ev = gen("sqs", "receive-message", {{"body", "hi"}, {"queue", "orders"}, {"count", "3"}});
  REQUIRE(ev["Records"].size() == 3);
  const auto& r = ev["Records"][0];
  CHECK(r["body"] == "hi");
  CHECK(r["md5OfBody"] == "49f68a5c8493ec2c0bf489821c21fc3b");
  CHECK(r["eventSource"] == "aws:sqs");
  CHECK(r["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:orders");
  CHECK(r["awsRegion"] == "us-east-1");
  CHECK(std::regex_match(r["messageId"].get<std::string>(), uuid_re));
  CHECK(r["messageId"] != ev["Records"][1]["messageId"]);
  CHECK(r["attributes"]["ApproximateReceiveCount"] == "1");
  CHECK(r["attributes"]["SentTimestamp"].is_string());
  CHECK(r["messageAttributes"] == json::object());
  CHECK(r["md5OfMessageAttributes"].is_null());
  CHECK_FALSE(r["attributes"].contains("MessageGroupId"));
  auto fifo = gen("sqs", "receive-message", {{"queue", "jobs.fifo"}});
  CHECK(fifo["Records"][0]["attributes"]["MessageGroupId"] == "group-1");
  CHECK(fifo["Records"][0]["attributes"].contains("SequenceNumber"));
  CHECK_THAT(error_of("sqs", "receive-message", {{"count", "0"}}), Catch::Contains("from 1 to 10000"));
  CHECK_THAT(error_of("sqs", "receive-message", {{"group_id", "g"}}), Catch::Contains("FIFO"));
}

TEST_CASE("SNS, S3 and DynamoDB records", "[events]") {
  auto sns = gen("sns", "notification", {{"message", "m"}, {"topic", "alerts"}});
  const auto& r = sns["Records"][0];
  CHECK(r["EventSource"] == "aws:sns");
  CHECK(r["EventVersion"] == "1.0");
  CHECK(sluice::starts_with(r["EventSubscriptionArn"].get<std::string>(), "arn:aws:sns:us-east-1:123456789012:alerts:"));
  CHECK(r["Sns"]["Type"] == "Notification");
  CHECK(r["Sns"]["Message"] == "m");
  CHECK(r["Sns"]["Subject"].is_null());
  CHECK(r["Sns"]["TopicArn"] == "arn:aws:sns:us-east-1:123456789012:alerts");
  CHECK(std::regex_match(r["Sns"]["Timestamp"].get<std::string>(), iso_ms_re));
  CHECK(gen("sns", "notification", {{"subject", "S"}})["Records"][0]["Sns"]["Subject"] == "S");

  auto s3 = gen("s3", "put", {{"bucket", "photos"}, {"key", "a b/c+d.jpg"}, {"size", "12"}, {"etag", "e1"}});
  const auto& o = s3["Records"][0];
  CHECK(o["eventSource"] == "aws:s3");
  CHECK(o["eventName"] == "ObjectCreated:Put");
  CHECK(o["eventVersion"] == "2.1");
  CHECK(o["s3"]["bucket"]["name"] == "photos");
  CHECK(o["s3"]["bucket"]["arn"] == "arn:aws:s3:::photos");
  CHECK(o["s3"]["object"]["key"] == "a+b/c%2Bd.jpg");  // as S3 encodes keys in events
  CHECK(o["s3"]["object"]["size"] == 12);
  CHECK(o["s3"]["object"]["eTag"] == "e1");
  CHECK_THAT(error_of("s3", "put", {{"size", "-1"}}), Catch::Contains("--set size"));

  auto db = gen("dynamodb", "update", {{"table", "movies"}, {"keys", R"({"id": {"N": "5"}})"},
                                       {"new_image", R"({"title": "Heat", "tags": ["a"], "ok": true})"}});
  const auto& d = db["Records"][0];
  CHECK(d["eventName"] == "MODIFY");
  CHECK(d["eventSource"] == "aws:dynamodb");
  CHECK(d["dynamodb"]["Keys"] == json{{"id", {{"N", "5"}}}});  // typed values pass through
  CHECK(d["dynamodb"]["NewImage"]["title"] == json{{"S", "Heat"}});
  CHECK(d["dynamodb"]["NewImage"]["tags"] == json{{"L", {{{"S", "a"}}}}});
  CHECK(d["dynamodb"]["NewImage"]["ok"] == json{{"BOOL", true}});
  CHECK(d["dynamodb"]["NewImage"]["id"] == json{{"N", "5"}});
  CHECK(d["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES");
  CHECK(sluice::starts_with(d["eventSourceARN"].get<std::string>(),
                            "arn:aws:dynamodb:us-east-1:123456789012:table/movies/stream/"));
  CHECK_THAT(error_of("dynamodb", "update", {{"keys", "[1]"}}), Catch::Contains("expected a JSON object"));
  CHECK_THAT(error_of("dynamodb", "update", {{"new_image", "{oops"}}), Catch::Contains("expected JSON text"));
}

TEST_CASE("scheduled events and CloudWatch Logs", "[events]") {
  auto ev = gen("eventbridge", "scheduled-event",
                {{"rule", "nightly"}, {"time", "2030-01-02T03:04:05Z"}, {"detail", R"({"a":1})"}, {"id", "x-1"}});
  CHECK(ev == json{{"version", "0"},
                   {"id", "x-1"},
                   {"detail-type", "Scheduled Event"},
                   {"source", "aws.events"},
                   {"account", "123456789012"},
                   {"time", "2030-01-02T03:04:05Z"},
                   {"region", "us-east-1"},
                   {"resources", {"arn:aws:events:us-east-1:123456789012:rule/nightly"}},
                   {"detail", {{"a", 1}}}});
  CHECK(gen("cloudwatch", "scheduled-event")["detail-type"] == "Scheduled Event");
  CHECK_THAT(error_of("eventbridge", "scheduled-event", {{"time", "noon"}}), Catch::Contains("a UTC time"));

  auto logs = gen("cloudwatch", "logs", {{"group", "/g"}, {"stream", "s"}, {"message", "one"}, {"message", "two"},
                                         {"account", "999988887777"}});
  auto data = json::parse(gunzip(*sluice::base64_decode(logs["awslogs"]["data"].get<std::string>())));
  CHECK(data["messageType"] == "DATA_MESSAGE");
  CHECK(data["owner"] == "999988887777");
  CHECK(data["logGroup"] == "/g");
  CHECK(data["logStream"] == "s");
  REQUIRE(data["logEvents"].size() == 2);
  CHECK(data["logEvents"][0]["message"] == "one");
  CHECK(data["logEvents"][1]["message"] == "two");
  CHECK(data["logEvents"][0]["id"].is_string());
  CHECK(data["logEvents"][0]["timestamp"].is_number());
}

TEST_CASE("unknown sources, kinds and keys name what is valid", "[events]") {
  CHECK(error_of("sqss", "receive-message") ==
        "unknown event source 'sqss'; did you mean 'sqs'? Sources: apigateway, lambda, sqs, sns, s3, dynamodb, eventbridge, "
        "cloudwatch");
  CHECK(error_of("kinesis", "x") ==
        "unknown event source 'kinesis'; sources: apigateway, lambda, sqs, sns, s3, dynamodb, eventbridge, cloudwatch");
  CHECK(error_of("apigateway", "proxy") ==
        "unknown kind 'proxy' for source apigateway; kinds of apigateway: aws-proxy, http-api, authorizer-token, "
        "authorizer-request");
  CHECK(error_of("s3", "put", {{"bucket_name", "x"}}) ==
        "unknown key 'bucket_name' for s3 put; did you mean 'bucket'? Keys: bucket, key, size, etag, region, account");
  CHECK_THAT(error_of("sqs", "receive-message", {{"header.X", "1"}}), Catch::Contains("unknown key 'header.X'"));
}

TEST_CASE("a stack's scheduled event", "[events][scheduler]") {
  sluice::stack::Stack st;
  st.name = "watchlist";
  st.region = "eu-west-3";
  st.account_id = "111122223333";
  auto t = std::chrono::system_clock::time_point(*sluice::stack::parse_iso_utc("2030-01-01T09:00:00Z"));
  auto ev = json::parse(sluice::lambda::scheduled_event(st, "refresh", t));
  CHECK(ev["version"] == "0");
  CHECK(std::regex_match(ev["id"].get<std::string>(), uuid_re));
  CHECK(ev["detail-type"] == "Scheduled Event");
  CHECK(ev["source"] == "aws.events");
  CHECK(ev["account"] == "111122223333");
  CHECK(ev["time"] == "2030-01-01T09:00:00Z");
  CHECK(ev["region"] == "eu-west-3");
  CHECK(ev["resources"] == json::array({"arn:aws:events:eu-west-3:111122223333:rule/watchlist-refresh"}));
  CHECK(ev["detail"] == json::object());
}

TEST_CASE("lambda destination: the invocation record of each condition", "[events]") {
  auto ok = gen("lambda", "destination", {{"function", "orders"}, {"event", "{\"id\": 7}"}});
  auto ordered = nlohmann::ordered_json::parse(generate_event("lambda", "destination", {}));
  std::vector<std::string> keys;
  for (auto it = ordered.begin(); it != ordered.end(); ++it) keys.push_back(it.key());
  CHECK(keys == std::vector<std::string>{"version", "timestamp", "requestContext", "requestPayload", "responseContext",
                                         "responsePayload"});
  CHECK(ok["requestContext"]["condition"] == "Success");
  CHECK(ok["requestContext"]["approximateInvokeCount"] == 1);
  CHECK(ok["requestContext"]["functionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:orders:$LATEST");
  CHECK(ok["requestPayload"]["id"] == 7);
  CHECK_FALSE(ok["responseContext"].contains("functionError"));
  CHECK(std::regex_match(ok["timestamp"].get<std::string>(), iso_ms_re));
  auto failed = gen("lambda", "destination", {{"condition", "RetriesExhausted"}});
  CHECK(failed["requestContext"]["approximateInvokeCount"] == 3);
  CHECK(failed["responseContext"]["functionError"] == "Unhandled");
  CHECK(failed["responsePayload"]["requestId"] == failed["requestContext"]["requestId"]);
  auto zero = gen("lambda", "destination", {{"condition", "ZeroReservedConcurrency"}});
  CHECK(zero["requestContext"]["approximateInvokeCount"] == 0);
  CHECK_FALSE(zero.contains("responseContext"));
  CHECK_FALSE(zero.contains("responsePayload"));
  CHECK(error_of("lambda", "destination", {{"condition", "Failure"}}).find("expected Success, RetriesExhausted") !=
        std::string::npos);
}
