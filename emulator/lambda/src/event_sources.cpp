#include "sluice/lambda/event_sources.hpp"

#include "aws_calls.hpp"
#include "sluice/aws/client.hpp"
#include "sluice/common/hash.hpp"
#include "sluice/common/log.hpp"
#include "sluice/common/util.hpp"
#include "sluice/lambda/destinations.hpp"
#include "sluice/lambda/service.hpp"
#include "sluice/stack/event_filter.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <list>
#include <mutex>
#include <set>
#include <thread>

namespace sluice::lambda {

namespace asio = boost::asio;
using ojson = nlohmann::ordered_json;

namespace {

auto logger() {
  static auto l = log::get("lambda");
  return l;
}

}  // namespace

// SQS's MD5OfMessageAttributes: the attributes in name order, each as its name, data type and
// value with 4-byte big-endian lengths and a transport byte (1 string or number, 2 binary)
// before the value; null without attributes.
static ojson message_attributes_md5(const ojson& attributes) {
  if (!attributes.is_object() || attributes.empty()) return nullptr;
  std::vector<std::string> names;
  for (const auto& [name, a] : attributes.items()) names.push_back(name);
  std::sort(names.begin(), names.end());
  std::string buf;
  auto put = [&buf](std::string_view s) {
    auto n = static_cast<std::uint32_t>(s.size());
    for (int shift = 24; shift >= 0; shift -= 8) buf.push_back(static_cast<char>((n >> shift) & 0xff));
    buf.append(s);
  };
  for (const auto& name : names) {
    const ojson& a = attributes[name];
    put(name);
    std::string type = a.value("DataType", std::string("String"));
    put(type);
    if (a.contains("BinaryValue") && a["BinaryValue"].is_string()) {
      buf.push_back(2);
      put(base64_decode(a["BinaryValue"].get<std::string>()).value_or(""));
    } else {
      buf.push_back(1);
      put(a.value("StringValue", std::string()));
    }
  }
  return hex(md5(buf));
}

std::string sqs_event(const std::string& messages_json, const std::string& queue_arn) {
  auto messages = ojson::parse(messages_json, nullptr, false);
  ojson records = ojson::array();
  if (!messages.is_array()) return ojson{{"Records", records}}.dump();
  const std::string region = parse_arn(queue_arn).value_or(Arn{}).region;
  for (const auto& m : messages) {
    ojson attributes = ojson::object();
    const ojson& have = m.contains("Attributes") && m["Attributes"].is_object() ? m["Attributes"] : ojson::object();
    // The order of AWS's events; then whatever else SQS returned (AWSTraceHeader, FIFO fields).
    for (const char* k : {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"})
      if (have.contains(k)) attributes[k] = have[k];
    for (const auto& [k, v] : have.items())
      if (!attributes.contains(k)) attributes[k] = v;
    ojson message_attributes = ojson::object();
    if (m.contains("MessageAttributes") && m["MessageAttributes"].is_object())
      for (const auto& [name, a] : m["MessageAttributes"].items()) {
        ojson out = ojson::object();
        if (a.contains("StringValue")) out["stringValue"] = a["StringValue"];
        if (a.contains("BinaryValue")) out["binaryValue"] = a["BinaryValue"];
        out["stringListValues"] = ojson::array();
        out["binaryListValues"] = ojson::array();
        out["dataType"] = a.value("DataType", std::string("String"));
        message_attributes[name] = std::move(out);
      }
    ojson r = ojson::object();
    r["messageId"] = m.value("MessageId", std::string());
    r["receiptHandle"] = m.value("ReceiptHandle", std::string());
    r["body"] = m.value("Body", std::string());
    r["attributes"] = std::move(attributes);
    r["messageAttributes"] = std::move(message_attributes);
    r["md5OfMessageAttributes"] = message_attributes_md5(m.contains("MessageAttributes") ? m["MessageAttributes"] : ojson());
    r["md5OfBody"] = m.value("MD5OfBody", std::string());
    r["eventSource"] = "aws:sqs";
    r["eventSourceARN"] = queue_arn;
    r["awsRegion"] = region;
    records.push_back(std::move(r));
  }
  return ojson{{"Records", records}}.dump();
}

namespace {

// Lambda's scaling of an SQS mapping (AWS): five concurrent batches to start with; while messages
// keep coming, up to 300 more a minute (one every 200 ms), up to 1,000; back to five when traffic
// is low (here: a poller added by scaling leaves after three empty one-second polls).
constexpr int kStartingBatches = 5;
constexpr int kMaxBatches = 1000;
constexpr auto kScaleStep = std::chrono::milliseconds(200);
constexpr int kRetireAfterEmptyPolls = 3;

// One SQS call in the JSON protocol; an answer that is not JSON reads as {}.
ojson sqs_call(aws::Client& client, const char* action, const ojson& body) {
  auto j = ojson::parse(detail::json_call(client, "sqs", std::string("AmazonSQS.") + action, "1.0", body.dump()),
                        nullptr, false);
  return j.is_discarded() ? ojson::object() : j;
}

}  // namespace

struct EventSources::Impl {
  asio::any_io_executor ex;
  LambdaService& service;
  stack::Stack stack;
  struct Poller {
    stack::EventSourceSpec spec;
    int function_timeout_s = 3;  // AWS refuses a mapping whose queue hides messages for less
    std::atomic<bool> stop{false};
    std::thread thread;
    std::atomic<int> in_flight{0};     // pollers invoking the function now
    std::atomic<bool> backlog{false};  // the latest receive got messages
    std::mutex problem_mu;
    std::string last_problem;  // logged once until something else goes wrong (or right)
    // Logs a problem (unless it is the one logged last) and waits five seconds.
    void problem(const std::string& what) {
      {
        std::lock_guard<std::mutex> lock(problem_mu);
        if (what != last_problem) logger()->warn("event source {}: {}", spec.name, what);
        last_problem = what;
      }
      for (int i = 0; i < 50 && !stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    void solved() {
      std::lock_guard<std::mutex> lock(problem_mu);
      last_problem.clear();
    }
  };
  std::vector<std::unique_ptr<Poller>> pollers;
  bool started = false;

  Impl(asio::any_io_executor e, LambdaService& s, const stack::Stack& st) : ex(e), service(s), stack(st) {}

  void start_one(const stack::EventSourceSpec& spec) {
    if (!spec.enabled) {
      logger()->info("event source {}: disabled, {} is not polled", spec.name, spec.queue_arn);
      return;
    }
    auto p = std::make_unique<Poller>();
    p->spec = spec;
    if (auto f = stack.functions.find(spec.function); f != stack.functions.end()) p->function_timeout_s = f->second.timeout_s;
    Poller* raw = p.get();
    p->thread = std::thread([this, raw] { poll(*raw); });
    pollers.push_back(std::move(p));
  }

  void start_all() {
    for (const auto& [name, spec] : stack.event_sources) start_one(spec);
  }

  // An edit of the stack file: pollers of unchanged mappings go on (no pause of the engine
  // thread); changed and removed ones stop (within about a second), new ones start.
  void reload_changed() {
    std::vector<std::unique_ptr<Poller>> keep, gone;
    for (auto& p : pollers) {
      auto it = stack.event_sources.find(p->spec.name);
      (it != stack.event_sources.end() && it->second == p->spec ? keep : gone).push_back(std::move(p));
    }
    for (auto& p : gone) p->stop = true;
    for (auto& p : gone)
      if (p->thread.joinable()) p->thread.join();
    pollers = std::move(keep);
    for (const auto& [name, spec] : stack.event_sources) {
      bool running = false;
      for (const auto& p : pollers) running = running || p->spec.name == name;
      if (!running) start_one(spec);
    }
  }

  void stop_all() {
    for (auto& p : pollers) p->stop = true;
    for (auto& p : pollers)
      if (p->thread.joinable()) p->thread.join();
    pollers.clear();
  }

  // Invokes on the service's executor and waits; nullopt when stopped meanwhile.
  std::optional<InvokeResponse> invoke(Poller& p, std::string event) {
    InvokeRequest req;
    req.function = p.spec.function;
    req.qualifier = p.spec.qualifier;
    req.payload = std::move(event);
    req.source = "sqs " + p.spec.name;
    auto done = std::make_shared<std::promise<InvokeResponse>>();
    auto result = done->get_future();
    LambdaService* svc = &service;
    asio::co_spawn(
        ex,
        [svc, req = std::move(req), done]() mutable -> asio::awaitable<void> {
          auto res = co_await svc->invoke(std::move(req));
          done->set_value(std::move(res));
        },
        asio::detached);
    while (result.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready)
      if (p.stop) return std::nullopt;
    return result.get();
  }

  void poll(Poller& p) {
    const auto& spec = p.spec;
    const Arn q = parse_arn(spec.queue_arn).value_or(Arn{});  // checked on load
    std::string endpoint = destination_endpoint("sqs");
    if (endpoint.empty()) {
      logger()->warn("event source {}: not polling {}: no SQS endpoint ({})", spec.name, spec.queue_arn,
                     endpoint_hint("sqs"));
      return;
    }
    std::unique_ptr<aws::Client> client;
    try {
      client = detail::service_client(q.region, endpoint, std::chrono::milliseconds(10000), 1);
    } catch (const std::exception& e) {
      logger()->warn("event source {}: not polling {}: {}", spec.name, spec.queue_arn, e.what());
      return;
    }
    const std::string queue_url = endpoint + "/" + q.account + "/" + q.resource;
    // Lambda starts with five concurrent batches (five pollers, five invocations at a time), or
    // the mapping's maximum concurrency when that is lower.
    const int workers = spec.max_concurrency > 0 ? std::min(spec.max_concurrency, kStartingBatches) : kStartingBatches;
    logger()->info("event source {}: polling {} for {}{} ({} pollers, batches of up to {}{}{})", spec.name,
                   spec.queue_arn, spec.function, spec.qualifier.empty() ? "" : ":" + spec.qualifier, workers,
                   spec.batch_size,
                   spec.batching_window_s ? ", gathered for up to " + std::to_string(spec.batching_window_s) + " s" : "",
                   spec.filters.empty() ? "" : ", " + std::to_string(spec.filters.size()) + " filter(s)");
    // AWS refuses to create a mapping on a queue whose visibility timeout is shorter than the
    // function's timeout (a message would come back while the function still works on it).
    // Checked before the first poll, and again every few seconds until the queue is right.
    while (!p.stop) {
      try {
        auto got = sqs_call(*client, "GetQueueAttributes",
                            ojson{{"QueueUrl", queue_url}, {"AttributeNames", {"VisibilityTimeout"}}});
        int visibility = 30;
        if (got.contains("Attributes") && got["Attributes"].contains("VisibilityTimeout"))
          visibility = std::atoi(got["Attributes"]["VisibilityTimeout"].get<std::string>().c_str());
        if (visibility >= p.function_timeout_s) break;
        p.problem("not polling " + spec.queue_arn + ": AWS refuses this mapping (InvalidParameterValueException: "
                  "Queue visibility timeout: " + std::to_string(visibility) + " seconds is less than Function "
                  "timeout: " + std::to_string(p.function_timeout_s) + " seconds); raise the queue's "
                  "VisibilityTimeout (AWS recommends six times the function's timeout) or lower the function's "
                  "timeout");
      } catch (const std::exception& e) {
        p.problem("GetQueueAttributes on " + queue_url + " failed: " + detail::failure_text(e));
      }
    }
    p.solved();
    struct Worker {
      std::thread thread;
      std::atomic<bool> done{false};
    };
    std::list<Worker> pollers;  // a list: a worker stays where it is while its thread runs
    auto add = [&](bool scaled) {
      Worker& w = pollers.emplace_back();
      w.thread = std::thread([this, &p, q, endpoint, queue_url, scaled, &w] {
        batches(p, q, endpoint, queue_url, scaled);
        w.done = true;
      });
    };
    for (int i = 0; i < workers; ++i) add(false);
    // Scaling: while every poller is busy with the function and the queue still gives messages,
    // one more poller each step, up to the maximum concurrency (or Lambda's 1,000).
    const int cap = spec.max_concurrency > 0 ? spec.max_concurrency : kMaxBatches;
    std::size_t most = pollers.size();
    while (!p.stop) {
      for (int i = 0; i < 4 && !p.stop; ++i) std::this_thread::sleep_for(kScaleStep / 4);
      for (auto it = pollers.begin(); it != pollers.end();) {
        if (it->done) {
          it->thread.join();
          it = pollers.erase(it);
        } else {
          ++it;
        }
      }
      const int running = static_cast<int>(pollers.size());
      if (!p.stop && running < cap && p.in_flight.load() >= running && p.backlog.load()) {
        add(true);
        if (pollers.size() > most && pollers.size() % 5 == 0)
          logger()->info("event source {}: {} pollers (every poller busy and messages waiting)", spec.name,
                         pollers.size());
        most = std::max(most, pollers.size());
      }
    }
    for (auto& w : pollers) w.thread.join();
  }

  // One poller: receives a batch, invokes the function, deletes what it processed; until stopped,
  // or (a poller added by scaling) until the queue has been empty for a few polls.
  void batches(Poller& p, const Arn& q, const std::string& endpoint, const std::string& queue_url, bool scaled) {
    const auto& spec = p.spec;
    std::unique_ptr<aws::Client> client;
    try {
      client = detail::service_client(q.region, endpoint, std::chrono::milliseconds(10000), 1);
    } catch (const std::exception& e) {
      p.problem("cannot poll " + spec.queue_arn + ": " + e.what());
      return;
    }
    auto call = [&](const char* action, const ojson& body) { return sqs_call(*client, action, body); };
    // Deletes messages, ten at a time: those the function processed, and those no filter matched.
    auto delete_messages = [&](const std::vector<const ojson*>& messages) {
      ojson entries = ojson::array();
      auto flush = [&] {
        if (entries.empty()) return;
        try {
          auto out = call("DeleteMessageBatch", ojson{{"QueueUrl", queue_url}, {"Entries", entries}});
          if (out.contains("Failed") && out["Failed"].is_array() && !out["Failed"].empty())
            logger()->warn("event source {}: {} message(s) could not be deleted: {}", spec.name, out["Failed"].size(),
                           out["Failed"].dump());
        } catch (const std::exception& e) {
          logger()->warn("event source {}: DeleteMessageBatch failed: {}", spec.name, detail::failure_text(e));
        }
        entries = ojson::array();
      };
      int n = 0;
      for (const ojson* m : messages) {
        entries.push_back({{"Id", "m" + std::to_string(n++)}, {"ReceiptHandle", m->value("ReceiptHandle", std::string())}});
        if (entries.size() == 10) flush();
      }
      flush();
    };
    const stack::SqsFilters filters(spec.filters);
    int empty_polls = 0;
    while (!p.stop) {
      // A batch: up to batch_size messages, gathered for up to the batching window.
      ojson batch = ojson::array();
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(spec.batching_window_s);
      bool failed = false;
      while (!p.stop && static_cast<int>(batch.size()) < spec.batch_size) {
        int want = std::min(10, spec.batch_size - static_cast<int>(batch.size()));
        ojson body{{"QueueUrl", queue_url},
                   {"MaxNumberOfMessages", want},
                   {"WaitTimeSeconds", 1},
                   {"AttributeNames", {"All"}},
                   {"MessageSystemAttributeNames", {"All"}},
                   {"MessageAttributeNames", {"All"}}};
        try {
          auto got = call("ReceiveMessage", body);
          p.solved();
          // Filters apply to each message as it comes (AWS): one that matches none is deleted
          // from the queue and never counts toward the batch.
          ojson dropped = ojson::array();
          const bool some = got.contains("Messages") && got["Messages"].is_array() && !got["Messages"].empty();
          p.backlog = some;
          empty_polls = some ? 0 : empty_polls + 1;
          if (scaled && !some && batch.empty() && empty_polls >= kRetireAfterEmptyPolls) return;  // scaled down
          if (some)
            for (auto& m : got["Messages"]) {
              static const std::string no_body;
              // A reference either way: the body is not copied.
              const std::string& body =
                  m.contains("Body") && m["Body"].is_string() ? m["Body"].get_ref<const std::string&>() : no_body;
              (filters.passes(body) ? batch : dropped).push_back(std::move(m));
            }
          if (!dropped.empty()) {
            std::vector<const ojson*> gone;
            for (const auto& m : dropped) gone.push_back(&m);
            logger()->info("event source {}: {} message(s) matched none of its filters; deleted from the queue, as "
                           "AWS does",
                           spec.name, dropped.size());
            delete_messages(gone);
          }
        } catch (const std::exception& e) {
          p.problem("ReceiveMessage on " + queue_url + " failed: " + detail::failure_text(e));
          failed = true;
          break;
        }
        if (!batch.empty() && std::chrono::steady_clock::now() >= until) break;
      }
      if (failed || batch.empty() || p.stop) continue;
      p.in_flight++;
      auto res = invoke(p, sqs_event(batch.dump(), spec.queue_arn));
      p.in_flight--;
      if (!res) break;
      std::set<std::string> keep;  // message ids left in the queue (to come back after the visibility timeout)
      if (res->error) {
        logger()->warn("event source {}: {} message(s) not processed ({}: {}); they return to the queue after its "
                       "visibility timeout",
                       spec.name, batch.size(), res->error->code, res->error->message);
        continue;
      }
      if (res->function_error) {
        logger()->warn("event source {}: the function failed on a batch of {} ({}); the messages return to the queue "
                       "after its visibility timeout",
                       spec.name, batch.size(), res->error_type.empty() ? "Unhandled" : res->error_type);
        continue;
      }
      if (spec.report_batch_item_failures) {
        // {"batchItemFailures": [{"itemIdentifier": MESSAGE_ID}, ...]}: those stay; an
        // identifier that is empty or not in the batch fails the whole batch (as on AWS).
        auto answer = ojson::parse(res->payload, nullptr, false);
        std::set<std::string> ids;
        for (const auto& m : batch) ids.insert(m.value("MessageId", std::string()));
        bool whole = false;
        if (answer.is_object() && answer.contains("batchItemFailures") && answer["batchItemFailures"].is_array()) {
          for (const auto& f : answer["batchItemFailures"]) {
            std::string id = f.is_object() && f.contains("itemIdentifier") && f["itemIdentifier"].is_string()
                                 ? f["itemIdentifier"].get<std::string>()
                                 : std::string();
            if (id.empty() || !ids.count(id)) whole = true;
            keep.insert(id);
          }
        }
        if (whole) {
          logger()->warn("event source {}: batchItemFailures names an item that is not in the batch; the whole "
                         "batch of {} returns to the queue",
                         spec.name, batch.size());
          continue;
        }
        if (!keep.empty())
          logger()->info("event source {}: {} of {} message(s) reported as failed stay in the queue", spec.name,
                         keep.size(), batch.size());
      }
      // Delete what succeeded.
      std::vector<const ojson*> done;
      for (const auto& m : batch)
        if (!keep.count(m.value("MessageId", std::string()))) done.push_back(&m);
      delete_messages(done);
    }
  }
};

EventSources::EventSources(asio::any_io_executor ex, LambdaService& service, const stack::Stack& stack)
    : impl_(std::make_unique<Impl>(ex, service, stack)) {}

EventSources::~EventSources() { stop(); }

void EventSources::start() {
  impl_->started = true;
  impl_->start_all();
}

void EventSources::reload(const stack::Stack& stack) {
  impl_->stack = stack;
  if (!impl_->started) return;
  impl_->reload_changed();
}

void EventSources::stop() {
  impl_->started = false;
  impl_->stop_all();
}

}  // namespace sluice::lambda
