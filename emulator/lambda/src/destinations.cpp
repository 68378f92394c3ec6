#include "sluice/lambda/destinations.hpp"

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

// arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE
struct Arn {
  std::string service, region, account, resource;
};
Arn split_arn(const std::string& arn) {
  Arn a;
  std::size_t pos = 0;
  std::string parts[5];
  for (auto& p : parts) {
    auto colon = arn.find(':', pos);
    if (colon == std::string::npos) return a;
    p = arn.substr(pos, colon - pos);
    pos = colon + 1;
  }
  a.service = parts[2];
  a.region = parts[3];
  a.account = parts[4];
  a.resource = arn.substr(pos);
  return a;
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

std::string destination_endpoint(const std::string& service) {
  // The SDKs' service-specific variable: the service id upper-cased (EventBridge's is
  // EVENTBRIDGE, not EVENTS).
  std::string id = service == "events" ? "EVENTBRIDGE" : service;
  for (auto& c : id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string specific = env(("AWS_ENDPOINT_URL_" + id).c_str());
  if (!specific.empty()) return strip_slash(specific);
  return strip_slash(env("AWS_ENDPOINT_URL"));
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
  bool busy = false;
  std::thread worker;
  std::map<std::string, std::unique_ptr<aws::Client>> clients;  // by region + endpoint

  aws::Client& client(const std::string& region, const std::string& endpoint) {
    auto& c = clients[region + " " + endpoint];
    if (!c) {
      aws::ClientOptions o;
      o.region = region;
      o.endpoint_url = endpoint;
      o.connect_timeout = std::chrono::milliseconds(3000);
      o.read_timeout = std::chrono::milliseconds(5000);
      o.max_attempts = 2;  // sluice waits for the delivery under way when it stops
      c = std::make_unique<aws::Client>(std::move(o));  // may throw CredentialsError
    }
    return *c;
  }

  // Returns the message id (or what identifies the delivery); throws on failure.
  std::string deliver(const Message& it) {
    Arn a = split_arn(it.arn);
    std::string endpoint = destination_endpoint(a.service);
    std::string region = a.region.empty() ? std::string() : a.region;
    if (region.empty()) {  // S3 ARNs name no region: the function's
      Arn fa = split_arn(it.function_arn);
      region = fa.region;
    }
    aws::Client& c = client(region, endpoint);
    aws::Request r;
    r.method = "POST";
    r.service = a.service;
    r.path = "/";
    if (a.service == "sqs") {
      r.headers.emplace_back("content-type", "application/x-amz-json-1.0");
      r.headers.emplace_back("x-amz-target", "AmazonSQS.SendMessage");
      ojson body{{"QueueUrl", endpoint + "/" + a.account + "/" + a.resource}, {"MessageBody", it.body}};
      for (const auto& [name, type, value] : it.attributes)
        body["MessageAttributes"][name] = {{"DataType", type}, {"StringValue", value}};
      r.body = body.dump();
      auto res = c.call(r);
      auto j = ojson::parse(res.body, nullptr, false);
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
      r.headers.emplace_back("content-type", "application/x-amz-json-1.1");
      r.headers.emplace_back("x-amz-target", "AWSEvents.PutEvents");
      ojson entry{{"Source", "lambda"},
                  {"DetailType", std::string("Lambda Function Invocation Result - ") + (it.success ? "Success" : "Failure")},
                  {"Detail", it.body},
                  {"EventBusName", it.arn},
                  {"Resources", ojson::array({it.arn, it.function_arn})}};
      r.body = ojson{{"Entries", ojson::array({entry})}}.dump();
      auto res = c.call(r);
      auto j = ojson::parse(res.body, nullptr, false);
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
    Arn fa = split_arn(it.function_arn);
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
        if (queue.empty()) return;
        if (stopping) return;  // sluice is stopping: what is left is not sent
        it = std::move(queue.front());
        queue.pop_front();
        busy = true;
      }
      std::string state = "delivered", detail;
      try {
        detail = deliver(it.msg);
      } catch (const aws::ServiceError& e) {
        state = "failed";
        detail = e.code.empty() ? std::string(e.what()) : e.code + ": " + e.message;
      } catch (const std::exception& e) {
        state = "failed";
        detail = e.what();
      }
      if (it.done) it.done(state, detail);
      std::lock_guard lk(m);
      busy = false;
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

std::size_t RemoteDestinations::pending() const {
  std::lock_guard lk(impl_->m);
  return impl_->queue.size() + (impl_->busy ? 1 : 0);
}

}  // namespace sluice::lambda
