// Events of the services that invoke functions: SQS, SNS, S3, DynamoDB
// Streams, EventBridge schedules and CloudWatch Logs subscriptions, in the
// shapes AWS documents for each (field order included).
#include "kinds.hpp"

#include "sluice/lambda/destinations.hpp"
#include "sluice/common/util.hpp"

#include <algorithm>
#include <random>

namespace sluice::events::detail {

namespace {

using clock = std::chrono::system_clock;

std::string arn(const Settings& s, const std::string& service, const std::string& resource) {
  return "arn:aws:" + service + ":" + s.region() + ":" + s.account() + ":" + resource;
}

bool simple_name(const std::string& n, const std::string& extra) {
  return !n.empty() && n.size() <= 256 && std::all_of(n.begin(), n.end(), [&](unsigned char c) {
           return std::isalnum(c) || extra.find(static_cast<char>(c)) != std::string::npos;
         });
}

std::string digits(std::size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int> d(0, 9);
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>('0' + d(rng)));
  if (!out.empty() && out[0] == '0') out[0] = '1';
  return out;
}

std::string to_upper_hex(std::string h) {
  for (auto& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return h;
}

// S3 event keys are URL-encoded with '+' for spaces.
std::string s3_key_encode(const std::string& key) {
  std::string out;
  for (unsigned char c : key) {
    if (std::isalnum(c) || std::string_view("-_.~/!*'()").find(static_cast<char>(c)) != std::string_view::npos) {
      out.push_back(static_cast<char>(c));
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      static const char* hexd = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(hexd[c >> 4]);
      out.push_back(hexd[c & 15]);
    }
  }
  return out;
}

// Plain JSON to DynamoDB attribute values; already-typed values ({"S": "x"}) pass through.
bool is_typed_value(const ojson& v) {
  static const std::vector<std::string> types{"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"};
  return v.is_object() && v.size() == 1 &&
         std::find(types.begin(), types.end(), v.begin().key()) != types.end();
}

ojson attribute(const ojson& v) {
  if (v.is_string()) return {{"S", v}};
  if (v.is_boolean()) return {{"BOOL", v}};
  if (v.is_null()) return {{"NULL", true}};
  if (v.is_number()) return {{"N", v.dump()}};
  if (v.is_array()) {
    ojson l = ojson::array();
    for (const auto& i : v) l.push_back(attribute(i));
    return {{"L", l}};
  }
  ojson m = ojson::object();
  for (const auto& [k, i] : v.items()) m[k] = attribute(i);
  return {{"M", m}};
}

ojson item(const ojson& plain_or_typed) {
  bool typed = !plain_or_typed.empty();
  for (const auto& [k, v] : plain_or_typed.items()) typed = typed && is_typed_value(v);
  if (typed) return plain_or_typed;
  ojson out = ojson::object();
  for (const auto& [k, v] : plain_or_typed.items()) out[k] = attribute(v);
  return out;
}

}  // namespace

// The record of an asynchronous invocation, made by the Lambda service's own builder.
ojson lambda_destination(const Settings& s) {
  std::string fn = s.get("function", "my-function");
  if (!simple_name(fn, "-_") || fn.size() > 64) s.bad("function", "expected a function name: letters, digits, '-', '_'");
  std::string q = s.get("qualifier", "$LATEST");
  lambda::AsyncOutcome o;
  o.condition = s.get("condition", "Success");
  static const std::vector<std::string> conditions{"Success", "RetriesExhausted", "EventAgeExceeded",
                                                   "ZeroReservedConcurrency"};
  if (std::find(conditions.begin(), conditions.end(), o.condition) == conditions.end())
    s.bad("condition", "expected Success, RetriesExhausted, EventAgeExceeded or ZeroReservedConcurrency");
  o.request_id = s.get("request_id", new_uuid());
  o.function_arn = "arn:aws:lambda:" + s.region() + ":" + s.account() + ":function:" + fn + ":" + q;
  o.request_payload = s.json_value("event", ojson::object(), false).dump();
  const bool success = o.condition == "Success", zero = o.condition == "ZeroReservedConcurrency";
  o.attempts = static_cast<int>(s.integer("attempts", success ? 1 : zero ? 0 : o.condition == "EventAgeExceeded" ? 1 : 3,
                                          zero ? 0 : 1, zero ? 0 : 3));
  o.ran = !zero;
  o.executed_version = s.get("version", "$LATEST");
  o.function_error = !success;
  ojson fallback = success ? ojson{{"statusCode", 200}, {"body", "ok"}}
                           : ojson{{"errorMessage", "something went wrong"},
                                   {"errorType", "Exception"},
                                   {"requestId", o.request_id},
                                   {"stackTrace", ojson::array({"  File \"/var/task/app.py\", line 3, in handler\n"})}};
  o.response_payload = s.json_value("response", fallback, false).dump();
  return ojson::parse(lambda::invocation_record(o));
}

ojson sqs_receive_message(const Settings& s) {
  std::string queue = s.get("queue", "my-queue");
  if (!simple_name(queue, "-_.") || queue.size() > 80)
    s.bad("queue", "expected a queue name of up to 80 letters, digits, '-' or '_' (a FIFO queue ends in .fifo)");
  bool fifo = ends_with(queue, ".fifo");
  if (s.has("group_id") && !fifo) s.bad("group_id", "message groups belong to FIFO queues: name the queue NAME.fifo");
  long long count = s.integer("count", 1, 1, 10000);
  std::string body = s.get("body", "Hello from SQS!");
  auto now = clock::now();
  ojson records = ojson::array();
  std::string sender = "AIDA" + random_alnum(17, true);
  for (long long i = 0; i < count; ++i) {
    auto sent = now - std::chrono::milliseconds(50 + 7 * (count - i));
    ojson attributes = {{"ApproximateReceiveCount", "1"},
                        {"SentTimestamp", std::to_string(epoch_ms(sent))},
                        {"SenderId", sender},
                        {"ApproximateFirstReceiveTimestamp", std::to_string(epoch_ms(sent + std::chrono::milliseconds(3)))}};
    if (fifo) {
      attributes["SequenceNumber"] = "1" + digits(19);
      attributes["MessageGroupId"] = s.get("group_id", "group-1");
      attributes["MessageDeduplicationId"] = md5_hex(body + std::to_string(i));
    }
    ojson r = ojson::object();
    r["messageId"] = new_uuid();
    r["receiptHandle"] = "AQEB" + random_alnum(120) + "==";
    r["body"] = body;
    r["attributes"] = attributes;
    r["messageAttributes"] = ojson::object();
    r["md5OfMessageAttributes"] = nullptr;  // none (AWS-recorded events say null then)
    r["md5OfBody"] = md5_hex(body);
    r["eventSource"] = "aws:sqs";
    r["eventSourceARN"] = arn(s, "sqs", queue);
    r["awsRegion"] = s.region();
    records.push_back(std::move(r));
  }
  return {{"Records", records}};
}

ojson sns_notification(const Settings& s) {
  std::string topic = s.get("topic", "my-topic");
  if (!simple_name(topic, "-_.") || topic.size() > 256)
    s.bad("topic", "expected a topic name of up to 256 letters, digits, '-' or '_'");
  std::string topic_arn = arn(s, "sns", topic);
  std::string subscription = topic_arn + ":" + new_uuid();
  std::string cert = random_hex(32);
  ojson sns = ojson::object();
  sns["Type"] = "Notification";
  sns["MessageId"] = new_uuid();
  sns["TopicArn"] = topic_arn;
  if (s.has("subject")) sns["Subject"] = s.get("subject", "");
  else sns["Subject"] = nullptr;
  sns["Message"] = s.get("message", "Hello from SNS!");
  sns["Timestamp"] = iso_ms(clock::now());
  sns["SignatureVersion"] = "1";
  sns["Signature"] = base64_encode(random_alnum(256));
  sns["SigningCertUrl"] = "https://sns." + s.region() + ".amazonaws.com/SimpleNotificationService-" + cert + ".pem";
  sns["UnsubscribeUrl"] = "https://sns." + s.region() +
                          ".amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + subscription;
  sns["MessageAttributes"] = ojson::object();
  ojson r = ojson::object();
  r["EventSource"] = "aws:sns";
  r["EventVersion"] = "1.0";
  r["EventSubscriptionArn"] = subscription;
  r["Sns"] = std::move(sns);
  return {{"Records", ojson::array({r})}};
}

ojson s3_put(const Settings& s) {
  std::string bucket = s.get("bucket", "my-bucket");
  if (!simple_name(bucket, "-.") || bucket.size() < 3 || bucket.size() > 63)
    s.bad("bucket", "expected a bucket name of 3 to 63 lower-case letters, digits, '-' or '.'");
  std::string key = s.get("key", "uploads/photo.jpg");
  if (key.empty() || key.size() > 1024) s.bad("key", "expected an object key of 1 to 1024 characters");
  long long size = s.integer("size", 1024, 0, 5LL * 1024 * 1024 * 1024 * 1024);
  std::string etag = s.get("etag", md5_hex(key + std::to_string(size)));
  ojson r = ojson::object();
  r["eventVersion"] = "2.1";
  r["eventSource"] = "aws:s3";
  r["awsRegion"] = s.region();
  r["eventTime"] = iso_ms(clock::now());
  r["eventName"] = "ObjectCreated:Put";
  r["userIdentity"] = {{"principalId", "AWS:AIDA" + random_alnum(17, true)}};
  r["requestParameters"] = {{"sourceIPAddress", "198.51.100.7"}};
  r["responseElements"] = {{"x-amz-request-id", to_upper_hex(random_hex(16))},
                           {"x-amz-id-2", base64_encode(random_alnum(56))}};
  ojson s3 = ojson::object();
  s3["s3SchemaVersion"] = "1.0";
  s3["configurationId"] = new_uuid();
  s3["bucket"] = {{"name", bucket},
                  {"ownerIdentity", {{"principalId", random_alnum(14, true)}}},
                  {"arn", "arn:aws:s3:::" + bucket}};
  s3["object"] = {{"key", s3_key_encode(key)},
                  {"size", size},
                  {"eTag", etag},
                  {"sequencer", to_upper_hex(random_hex(18))}};
  r["s3"] = std::move(s3);
  return {{"Records", ojson::array({r})}};
}

ojson dynamodb_update(const Settings& s) {
  std::string table = s.get("table", "my-table");
  if (!simple_name(table, "-_.") || table.size() < 3 || table.size() > 255)
    s.bad("table", "expected a table name of 3 to 255 letters, digits, '-', '_' or '.'");
  ojson keys = item(s.json_value("keys", ojson{{"id", "101"}}, true));
  ojson new_image = s.json_value("new_image", ojson::object(), true);
  ojson old_image = s.json_value("old_image", ojson::object(), true);
  ojson new_typed = item(new_image.empty() ? ojson{{"message", "This item has changed"}} : new_image);
  ojson old_typed = item(old_image.empty() ? ojson{{"message", "New item!"}} : old_image);
  // Images hold the key attributes too.
  for (const auto& [k, v] : keys.items()) {
    if (!new_typed.contains(k)) new_typed[k] = v;
    if (!old_typed.contains(k)) old_typed[k] = v;
  }
  auto now = clock::now();
  std::string stream_label = iso_ms(now - std::chrono::hours(24 * 30));
  stream_label.pop_back();  // 2024-01-01T00:00:00.000 (no Z), as stream ARNs show it
  ojson db = ojson::object();
  db["ApproximateCreationDateTime"] = epoch_ms(now) / 1000;
  db["Keys"] = keys;
  db["NewImage"] = new_typed;
  db["OldImage"] = old_typed;
  db["SequenceNumber"] = digits(21);
  db["SizeBytes"] = static_cast<long long>(keys.dump().size() + new_typed.dump().size() + old_typed.dump().size()) / 2;
  db["StreamViewType"] = "NEW_AND_OLD_IMAGES";
  ojson r = ojson::object();
  r["eventID"] = random_hex(32);
  r["eventName"] = "MODIFY";
  r["eventVersion"] = "1.1";
  r["eventSource"] = "aws:dynamodb";
  r["awsRegion"] = s.region();
  r["dynamodb"] = std::move(db);
  r["eventSourceARN"] = arn(s, "dynamodb", "table/" + table + "/stream/" + stream_label);
  return {{"Records", ojson::array({r})}};
}

ojson eventbridge_scheduled(const Settings& s) {
  std::string rule = s.get("rule", "my-schedule");
  if (!simple_name(rule, "-_.") || rule.size() > 64)
    s.bad("rule", "expected a rule name of up to 64 letters, digits, '.', '-' or '_'");
  ojson ev = ojson::object();
  ev["version"] = "0";
  ev["id"] = s.get("id", new_uuid());
  ev["detail-type"] = "Scheduled Event";
  ev["source"] = "aws.events";
  ev["account"] = s.account();
  ev["time"] = iso_s(s.time("time"));
  ev["region"] = s.region();
  ev["resources"] = ojson::array({arn(s, "events", "rule/" + rule)});
  ev["detail"] = s.json_value("detail", ojson::object(), true);
  return ev;
}

ojson cloudwatch_logs(const Settings& s) {
  std::string group = s.get("group", "/aws/lambda/my-function");
  if (group.empty() || group.size() > 512) s.bad("group", "expected a log group name of 1 to 512 characters");
  auto now = clock::now();
  std::string stream = s.get("stream", ymd_slashes(now) + "/[$LATEST]" + random_hex(32));
  if (stream.empty() || stream.size() > 512) s.bad("stream", "expected a log stream name of 1 to 512 characters");
  std::vector<std::string> messages = s.messages;
  if (messages.empty()) messages = {"Hello from CloudWatch Logs!"};
  ojson log_events = ojson::array();
  std::string base_id = digits(56);
  for (std::size_t i = 0; i < messages.size(); ++i) {
    std::string id = base_id;
    id.back() = static_cast<char>('0' + (id.back() - '0' + i) % 10);
    log_events.push_back({{"id", id},
                          {"timestamp", epoch_ms(now) - static_cast<long long>(messages.size() - i)},
                          {"message", messages[i]}});
  }
  ojson data = ojson::object();
  data["messageType"] = "DATA_MESSAGE";
  data["owner"] = s.account();
  data["logGroup"] = group;
  data["logStream"] = stream;
  data["subscriptionFilters"] = ojson::array({s.get("filter", "my-subscription-filter")});
  data["logEvents"] = std::move(log_events);
  return {{"awslogs", {{"data", base64_encode(gzip(data.dump()))}}}};
}

}  // namespace sluice::events::detail
