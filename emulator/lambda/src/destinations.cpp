#include "sluice/lambda/destinations.hpp"

#include "aws_calls.hpp"
#include "sluice/aws/client.hpp"
#include "sluice/aws/errors.hpp"
#include "sluice/common/util.hpp"

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <ctime>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace sluice::lambda {

using ojson = nlohmann::ordered_json;

namespace {

// A payload as the record carries it: parsed JSON in its own key order, else its text.
ojson embedded(const std::string& text) {
  auto parsed = ojson::parse(text, nullptr, false);
  if (parsed.is_discarded()) return text;
  return parsed;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string strip_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

std::string invocation_record(const AsyncOutcome& o) {
  ojson r;
  r["version"] = "1.0";
  r["timestamp"] = iso8601_ms(o.time);
  r["requestContext"] = {{"requestId", o.request_id},
                         {"functionArn", o.function_arn},
                         {"condition", o.condition},
                         {"approximateInvokeCount", o.attempts}};
  r["requestPayload"] = embedded(o.request_payload);
  if (o.ran) {
    ojson ctx{{"statusCode", o.status_code}, {"executedVersion", o.executed_version}};
    if (o.function_error) ctx["functionError"] = "Unhandled";
    r["responseContext"] = std::move(ctx);
    r["responsePayload"] = o.response_payload.empty() ? ojson(nullptr) : embedded(o.response_payload);
  }
  return r.dump();
}

std::string error_message(const std::string& payload) {
  auto j = ojson::parse(payload, nullptr, false);
  if (j.is_object() && j.contains("errorMessage") && j["errorMessage"].is_string())
    return j["errorMessage"].get<std::string>();
  return payload;
}

namespace detail {

std::unique_ptr<aws::Client> service_client(const std::string& region, const std::string& endpoint,
                                            std::chrono::milliseconds read_timeout, int max_attempts) {
  aws::ClientOptions o;
  o.region = region;
  o.endpoint_url = endpoint;
  o.connect_timeout = std::chrono::milliseconds(3000);
  o.read_timeout = read_timeout;
  o.max_attempts = max_attempts;
  return std::make_unique<aws::Client>(std::move(o));
}

std::string json_call(aws::Client& client, const std::string& service, const std::string& target,
                      const std::string& json_version, std::string body) {
  aws::Request r;
  r.method = "POST";
  r.service = service;
  r.path = "/";
  r.headers.emplace_back("content-type", "application/x-amz-json-" + json_version);
  r.headers.emplace_back("x-amz-target", target);
  r.body = std::move(body);
  return client.call(r).body;
}

std::string failure_text(const std::exception& e) {
  if (auto se = dynamic_cast<const aws::ServiceError*>(&e); se && !se->code.empty()) return se->code + ": " + se->message;
  return e.what();
}

}  // namespace detail

namespace {

// The SDKs' service-specific variable: the service id upper-cased (EventBridge's is
// EVENTBRIDGE, not EVENTS).
std::string endpoint_variable(const std::string& service) {
  std::string id = service == "events" ? "EVENTBRIDGE" : service;
  for (auto& c : id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return "AWS_ENDPOINT_URL_" + id;
}

}  // namespace

std::string destination_endpoint(const std::string& service) {
  std::string specific = env(endpoint_variable(service).c_str());
  if (!specific.empty()) return strip_slash(specific);
  return strip_slash(env("AWS_ENDPOINT_URL"));
}

std::string endpoint_hint(const std::string& service) {
  return "set " + endpoint_variable(service) + " or AWS_ENDPOINT_URL: LocalStack, moto, or AWS's own endpoint";
}

struct RemoteDestinations::Impl {
  struct Item {
    Message msg;
    Done done;
  };
  mutable std::mutex m;
  std::condition_variable cv;
  std::deque<Item> queue;
  bool stopping = false;
  std::thread worker;
  std::map<std::string, std::unique_ptr<aws::Client>> clients;  // by region + endpoint

  aws::Client& client(const std::string& region, const std::string& endpoint) {
    auto& c = clients[region + " " + endpoint];
    // Two attempts, 5 s each at most: sluice waits for the delivery under way when it stops.
    if (!c) c = detail::service_client(region, endpoint, std::chrono::milliseconds(5000), 2);
    return *c;
  }

  // Returns the message id (or what identifies the delivery); throws on failure.
  std::string deliver(const Message& it) {
    Arn a = parse_arn(it.arn).value_or(Arn{});
    std::string endpoint = destination_endpoint(a.service);
    // S3 ARNs name no region: the function's.
    std::string region = a.region.empty() ? parse_arn(it.function_arn).value_or(Arn{}).region : a.region;
    aws::Client& c = client(region, endpoint);
    aws::Request r;
    r.method = "POST";
    r.service = a.service;
    r.path = "/";
    if (a.service == "sqs") {
      ojson body{{"QueueUrl", endpoint + "/" + a.account + "/" + a.resource}, {"MessageBody", it.body}};
      for (const auto& [name, type, value] : it.attributes)
        body["MessageAttributes"][name] = {{"DataType", type}, {"StringValue", value}};
      auto j = ojson::parse(detail::json_call(c, "sqs", "AmazonSQS.SendMessage", "1.0", body.dump()), nullptr, false);
      return j.is_object() ? j.value("MessageId", std::string()) : std::string();
    }
    if (a.service == "sns") {
      r.headers.emplace_back("content-type", "application/x-www-form-urlencoded; charset=utf-8");
      r.body = "Action=Publish&Version=2010-03-31&TopicArn=" + url_encode(it.arn) + "&Message=" + url_encode(it.body);
      int n = 0;
      for (const auto& [name, type, value] : it.attributes) {
        std::string entry = "&MessageAttributes.entry." + std::to_string(++n);
        r.body += entry + ".Name=" + url_encode(name) + entry + ".Value.DataType=" + url_encode(type) + entry +
                  ".Value.StringValue=" + url_encode(value);
      }
      auto res = c.call(r);
      return aws::xml_text(res.body, "MessageId");
    }
    if (a.service == "events") {
      ojson entry{{"Source", "lambda"},
                  {"DetailType", std::string("Lambda Function Invocation Result - ") + (it.success ? "Success" : "Failure")},
                  {"Detail", it.body},
                  {"EventBusName", it.arn},
                  {"Resources", ojson::array({it.arn, it.function_arn})}};
      auto j = ojson::parse(detail::json_call(c, "events", "AWSEvents.PutEvents", "1.1",
                                              ojson{{"Entries", ojson::array({entry})}}.dump()),
                            nullptr, false);
      if (j.is_object() && j.value("FailedEntryCount", 0) > 0) {
        const auto& e = j["Entries"][0];
        throw std::runtime_error("PutEvents refused the entry: " + e.value("ErrorCode", std::string()) + ": " +
                                 e.value("ErrorMessage", std::string()));
      }
      return j.is_object() && j.contains("Entries") && j["Entries"].size() == 1
                 ? j["Entries"][0].value("EventId", std::string())
                 : std::string();
    }
    if (a.service == "lambda") {
      r.path = "/2015-03-31/functions/" + it.arn + "/invocations";
      r.headers.emplace_back("x-amz-invocation-type", "Event");
      r.headers.emplace_back("content-type", "application/json");
      r.body = it.body;
      auto res = c.call(r);
      return res.header("x-amzn-requestid");
    }
    if (a.service == "s3") {
      r.method = "PUT";
      r.path = "/" + a.resource + "/" + s3_key(it);
      r.headers.emplace_back("content-type", "application/json");
      r.body = it.body;
      c.call(r);
      return r.path.substr(1);
    }
    throw std::runtime_error("unsupported destination service " + a.service);
  }

  // aws/lambda/async/FUNCTION/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-UUID
  static std::string s3_key(const Message& it) {
    Arn fa = parse_arn(it.function_arn).value_or(Arn{});
    std::string fn = fa.resource.substr(fa.resource.find(':') + 1);
    if (auto colon = fn.find(':'); colon != std::string::npos) fn = fn.substr(0, colon);
    std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char day[16], stamp[32];
    std::strftime(day, sizeof day, "%Y/%m/%d", &tm);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H.%M.%S", &tm);
    return "aws/lambda/async/" + fn + "/" + day + "/" + stamp + "-" + new_uuid();
  }

  void run() {
    for (;;) {
      Item it;
      {
        std::unique_lock lk(m);
        cv.wait(lk, [&] { return stopping || !queue.empty(); });
        if (stopping) return;  // sluice is stopping: what is left is not sent
        it = std::move(queue.front());
        queue.pop_front();
      }
      std::string state = "delivered", detail;
      try {
        detail = deliver(it.msg);
      } catch (const std::exception& e) {
        state = "failed";
        detail = detail::failure_text(e);
      }
      if (it.done) it.done(state, detail);
    }
  }
};

RemoteDestinations::RemoteDestinations() : impl_(std::make_unique<Impl>()) {
  impl_->worker = std::thread([this] { impl_->run(); });
}

RemoteDestinations::~RemoteDestinations() {
  {
    std::lock_guard lk(impl_->m);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
}

void RemoteDestinations::send(Message message, Done done) {
  {
    std::lock_guard lk(impl_->m);
    impl_->queue.push_back(Impl::Item{std::move(message), std::move(done)});
  }
  impl_->cv.notify_one();
}

}  // namespace sluice::lambda
