#include "sluice/app/app.hpp"

#include "sluice/app/schedules.hpp"

#include "sluice/common/await_all.hpp"
#include "sluice/common/log.hpp"
#include "sluice/common/util.hpp"
#include "sluice/gateway/gateway.hpp"
#include "sluice/gateway/invoke_api.hpp"
#include "sluice/lambda/code_watch.hpp"
#include "sluice/lambda/console_log.hpp"
#include "sluice/lambda/event_sources.hpp"
#include "sluice/lambda/service.hpp"
#include "sluice/runtime/environment.hpp"
#include "sluice/stack/loader.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <unistd.h>

namespace sluice::app {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Keeps every function's log lines (bounded) for logs(), and passes them on to
// the console when there is one.
class CaptureSink : public runtime::LogSink {
 public:
  CaptureSink(std::shared_ptr<lambda::ConsoleLogSink> console, std::size_t per_function)
      : console_(std::move(console)), per_function_(per_function) {}

  void write(const runtime::LogLine& line) override {
    if (per_function_ > 0) {
      std::lock_guard lk(mu_);
      auto& q = lines_[std::string(line.function)];
      q.push_back(LogEntry{std::string(line.version), std::string(line.request_id), std::string(line.text), line.platform});
      while (q.size() > per_function_) q.pop_front();
    }
    if (console_) console_->write(line);
  }
  bool accepting() const override { return console_ ? console_->accepting() : true; }

  void write_text(std::string text, bool access) {
    if (access && per_function_ > 0) {
      std::lock_guard lk(mu_);
      access_.push_back(text);
      while (access_.size() > per_function_) access_.pop_front();
    }
    if (console_) console_->write_text(std::move(text));
  }
  std::vector<LogEntry> lines(const std::string& function) const {
    std::lock_guard lk(mu_);
    auto it = lines_.find(function);
    if (it == lines_.end()) return {};
    return {it->second.begin(), it->second.end()};
  }
  std::vector<std::string> access() const {
    std::lock_guard lk(mu_);
    return {access_.begin(), access_.end()};
  }
  void flush() {
    if (console_) console_->flush();
  }

 private:
  std::shared_ptr<lambda::ConsoleLogSink> console_;
  std::size_t per_function_;
  mutable std::mutex mu_;
  std::map<std::string, std::deque<LogEntry>> lines_;
  std::deque<std::string> access_;
};

stack::Stack load_or_throw(const fs::path& file, std::string* warnings) {
  auto result = stack::load_file(file);
  std::string report = stack::format_report(result, file);
  if (!result.ok()) {
    std::vector<std::string> problems;
    for (const auto& line : split(report, '\n'))
      if (line.find(": error: ") != std::string_view::npos || line.find(": warning: ") != std::string_view::npos)
        problems.emplace_back(line);  // not the "N errors, M warnings" summary
    throw StackError(report, std::move(problems));
  }
  if (warnings) *warnings = result.problems.empty() ? std::string() : report;
  return std::move(*result.stack);
}

void write_endpoints(const fs::path& target, const std::string& text) {
  fs::path tmp = target;
  tmp += ".tmp";
  {
    std::ofstream out(tmp);
    out << text << "\n";
  }
  fs::rename(tmp, target);
}

}  // namespace

std::string interpreter_problem(const std::string& runtime, const std::filesystem::path& path) {
  std::error_code ec;
  auto st = std::filesystem::status(path, ec);
  const std::string what = "the interpreter given for " + runtime + ", " + path.string() + ", ";
  if (ec || !std::filesystem::exists(st)) return what + "does not exist";
  if (!std::filesystem::is_regular_file(st)) return what + "is not a file";
  if (::access(path.c_str(), X_OK) != 0) return what + "is not executable";
  return "";
}

std::string endpoints_json(const Endpoints& e) {
  json apis = json::object();
  for (const auto& a : e.apis) apis[a.name] = {{"type", a.type}, {"url", a.url}, {"stages", a.stages}};
  json out{{"lambda", e.lambda}, {"apis", apis}};
  if (!e.urls.empty()) {
    json urls = json::object();
    for (const auto& u : e.urls) urls[u.function] = u.url;
    out["urls"] = urls;
  }
  return out.dump();
}

struct App::Impl {
  AppOptions options;
  fs::path file;
  std::optional<stack::Stack> initial;
  std::string warnings;
  lambda::ServiceOptions service_options;

  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::shared_ptr<CaptureSink> sink;
  std::unique_ptr<lambda::LambdaService> service;
  std::unique_ptr<gateway::InvokeApi> invoke_api;
  std::unique_ptr<gateway::Gateway> gw;
  std::unique_ptr<lambda::Scheduler> scheduler;
  std::unique_ptr<lambda::EventSources> event_sources;
  std::unique_ptr<lambda::CodeWatch> stack_watch;
  std::unique_ptr<asio::signal_set> signals;
  unsigned short lambda_port = 0;
  std::thread thread;
  std::atomic<bool> engine_running{false};
  bool started = false, stopped = false;
  std::optional<std::vector<lambda::InvocationRecord>> final_records;  // kept by stop()
  std::atomic<bool> stopping{false};
  std::mutex mu;  // endpoints cache, start/stop
  Endpoints cached;

  Endpoints compute_endpoints() {
    Endpoints e;
    e.lambda = "http://" + options.host + ":" + std::to_string(lambda_port);
    e.functions = service->stack().functions.size();
    e.region = service->stack().region;
    for (const auto& api : gw->endpoints())
      e.apis.push_back(ApiInfo{api.name, api.type == stack::ApiType::rest ? "rest" : "http", api.url, api.stages});
    for (const auto& u : gw->url_endpoints()) e.urls.push_back(UrlInfo{u.function, u.url, u.auth_type, u.invoke_mode});
    return e;
  }

  void refresh_endpoints() {
    auto e = compute_endpoints();
    std::lock_guard lk(mu);
    cached = e;
    if (options.endpoints_file) write_endpoints(*options.endpoints_file, json::parse(app::endpoints_json(e)).dump(2));
  }

  asio::awaitable<void> drain_and_stop() {
    stack_watch.reset();
    if (scheduler) scheduler->stop();
    if (event_sources) event_sources->stop();
    // Every server stops accepting and the service drains at the same time: once the drain
    // timeout has passed the service stops its handlers, the invocations still running end with
    // an error, and the servers get a moment more to write those answers before they close.
    const auto server_deadline = options.drain_timeout + std::chrono::milliseconds(1500);
    std::vector<asio::awaitable<void>> stops;
    stops.push_back(gw->drain(server_deadline));
    stops.push_back(invoke_api->drain(server_deadline));
    stops.push_back(service->shutdown(options.drain_timeout));
    auto all = await_all(ioc.get_executor(), std::move(stops));  // named: no temporaries in co_await (GCC 12)
    co_await std::move(all);
    work.reset();
    ioc.stop();
  }

  int signal_count = 0;
  void arm_signals() {
    signals->async_wait([this](boost::system::error_code ec, int sig) {
      if (ec) return;
      auto logger = log::get("serve");
      if (++signal_count > 1) {
        logger->warn("second signal: stopping every handler now");
        service->stop_all();
        ioc.stop();
        return;
      }
      logger->info("{}: draining in-flight requests (up to {} s), then stopping handlers",
                   sig == SIGINT ? "interrupt" : "terminate", options.drain_timeout.count() / 1000);
      stopping = true;
      asio::co_spawn(ioc, drain_and_stop(), asio::detached);
      arm_signals();
    });
  }

  // Requirements files are for deploy (a layer built by pip for Lambda's platform): the engine
  // has no package index to install from. Said once per file, at start and when a reload adds one.
  std::set<fs::path> requirements_warned;
  void warn_requirements(const stack::Stack& st) {
    std::map<fs::path, std::vector<std::string>> users;
    for (const auto& [name, f] : st.functions)
      if (f.requirements && !requirements_warned.count(*f.requirements)) users[*f.requirements].push_back(name);
    for (const auto& [req, fns] : users) {
      requirements_warned.insert(req);
      std::error_code ec;
      auto rel = fs::relative(req, st.base_dir, ec);
      std::string shown = ec || rel.empty() ? req.string() : rel.string();
      std::string msg = "requirements " + shown + " (" + join(fns, ", ") +
                        ") are not installed by sluice serve: deploy builds them into a layer; locally the packages "
                        "must be importable by the Python that runs the handlers (pip install -r " + shown +
                        " in its environment)";
      if (options.log_output) log::get("serve")->warn("{}", msg);
      else sink->write_text("[sluice] " + msg, false);
    }
  }

  // sluice's own messages about the stack: stderr beside its other messages when there is a
  // console (serve), else the captured log (the Python package reads it there).
  void say(const std::string& msg, bool problem) {
    if (!options.log_output) return sink->write_text("[sluice] " + msg, false);
    if (problem) log::get("serve")->error("{}", msg);
    else log::get("serve")->info("{}", msg);
  }

  void on_stack_change() {
    auto result = stack::load_file(file);
    if (!result.ok()) {
      std::string report = stack::format_report(result, file);
      say(file.filename().string() + " changed but is not valid; still serving the previous version:\n" + report, true);
      return;
    }
    if (auto problems = try_apply(*result.stack); !problems.empty()) {
      say(file.filename().string() + " changed but " + not_applied(problems), true);
      return;
    }
    say("reloaded " + file.filename().string(), false);
    warn_requirements(*result.stack);
  }

  // Applies `st` unless what only trying can tell stops it (a port it names that cannot be
  // listened on); those problems, or none when applied.
  std::vector<std::string> try_apply(const stack::Stack& st) {
    auto problems = gw->reload_problems(st);
    if (problems.empty()) apply(st);
    return problems;
  }
  static std::string not_applied(const std::vector<std::string>& problems) {
    return "cannot be applied; still serving the previous version:\n  " + join(problems, "\n  ");
  }

  void apply(const stack::Stack& st) {
    service->reload(st);
    gw->reload(st);
    if (scheduler) scheduler->reload(st);
    if (event_sources) event_sources->reload(st);
    refresh_endpoints();
  }

  // Reads `items` on the engine thread until `pending` is 0 or `wait` has passed (work whose
  // records are still to come: REPORT lines, async events, deliveries), `step` apart.
  template <typename T>
  std::vector<T> settled(std::chrono::milliseconds wait, std::chrono::milliseconds step,
                         std::function<std::size_t()> pending, std::function<std::vector<T>()> items) {
    auto until = std::chrono::steady_clock::now() + wait;
    while (true) {
      auto [left, out] = call<std::pair<std::size_t, std::vector<T>>>(
          [&]() -> asio::awaitable<std::pair<std::size_t, std::vector<T>>> { co_return std::make_pair(pending(), items()); });
      if (left == 0 || std::chrono::steady_clock::now() >= until) return out;
      std::this_thread::sleep_for(step);
    }
  }

  // Runs fn on the engine thread and waits for its result; fails when the engine stops meanwhile.
  template <typename T>
  T call(std::function<asio::awaitable<T>()> fn) {
    if (std::this_thread::get_id() == thread.get_id())
      throw EngineError("sluice: this call would wait for the engine thread from the engine thread itself");
    if (!engine_running) throw EngineError("the sluice app is not running (it has been stopped, or never started)");
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    asio::co_spawn(
        ioc,
        [fn = std::move(fn), promise]() -> asio::awaitable<void> {
          try {
            promise->set_value(co_await fn());
          } catch (...) {
            promise->set_exception(std::current_exception());
          }
        },
        asio::detached);
    while (future.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
      if (!engine_running) throw EngineError("the sluice app stopped before the call finished");
      if (options.while_waiting) options.while_waiting();
    }
    return future.get();
  }
};

App::App(AppOptions options) : impl_(std::make_unique<Impl>()) {
  auto& d = *impl_;
  d.options = std::move(options);
  d.file = fs::absolute(d.options.stack_path.empty() ? fs::path("sluice.yaml") : d.options.stack_path);
  d.initial = load_or_throw(d.file, &d.warnings);

  auto& o = d.service_options;
  o.state_dir = d.options.state_dir.empty() ? d.initial->base_dir / ".sluice" : fs::absolute(d.options.state_dir);
  o.bootstrap_dir = runtime::default_bootstrap_dir();
  o.freeze = d.options.freeze;
  o.sandbox = d.options.sandbox;
  if (d.options.freeze_delay) o.freeze_delay = *d.options.freeze_delay;
  o.watch_code = d.options.watch;
  if (d.options.idle_timeout) o.idle_timeout = *d.options.idle_timeout;
  if (d.options.init_timeout) o.init_timeout = *d.options.init_timeout;
  if (d.options.account_concurrency) o.account_concurrency = *d.options.account_concurrency;
  if (d.options.async_retry_delays) o.async_retry_delays = *d.options.async_retry_delays;
  o.interpreters = d.options.interpreters;
  o.log_format = d.options.log_format;
  o.env_overrides = d.options.env_overrides;
  o.debug = d.options.debug;
  if (o.debug.function.empty() && (o.debug.port != 0 || !o.debug.args.empty())) {
    // A debugger port belongs to one function: the stack's only one, or the one named.
    if (d.initial->functions.size() != 1) {
      std::string names;
      for (const auto& [n, f] : d.initial->functions) names += (names.empty() ? "" : ", ") + n;
      throw EngineError("a debugger port belongs to one function: name it with --debug-function (debug_function=) "
                        "among " + names);
    }
    o.debug.function = d.initial->functions.begin()->first;
  }
  d.options.debug.function = o.debug.function;
}

App::~App() {
  try {
    stop();
  } catch (...) {
  }
}

const std::string& App::warnings() const { return impl_->warnings; }

void App::start() {
  auto& d = *impl_;
  std::lock_guard lk(d.mu);
  if (d.started) throw EngineError("the sluice app has already been started");
  d.started = true;
  std::shared_ptr<lambda::ConsoleLogSink> console;
  if (d.options.log_output)
    console = std::make_shared<lambda::ConsoleLogSink>(d.options.log_output, lambda::ConsoleLogSink::Style::tagged);
  d.sink = std::make_shared<CaptureSink>(console, d.options.captured_lines_per_function);
  d.service = std::make_unique<lambda::LambdaService>(d.ioc.get_executor(), *d.initial, d.service_options, d.sink);
  try {
    d.invoke_api = std::make_unique<gateway::InvokeApi>(d.ioc.get_executor(), *d.service);
    d.lambda_port = d.invoke_api->listen(d.options.host, static_cast<unsigned short>(d.options.lambda_port));
    d.invoke_api->start();

    gateway::GatewayOptions gopts;
    gopts.host = d.options.host;
    gopts.base_port = static_cast<unsigned short>(d.options.api_port);
    gopts.reserved_ports = {d.lambda_port};
    if (d.options.integration_timeout) gopts.timeout_ms = static_cast<int>(d.options.integration_timeout->count());
    gopts.untimed_function = d.options.debug.function;
    if (d.options.account_throttle) {
      gopts.account_rate = d.options.account_throttle->first;
      gopts.account_burst = d.options.account_throttle->second;
    }
    if (d.options.client_timeout) {
      // A request must arrive whole within this; an idle keep-alive connection is closed after it too.
      gopts.read_timeout = *d.options.client_timeout;
      gopts.idle_timeout = gopts.read_timeout;
    }
    std::weak_ptr<CaptureSink> ws = d.sink;
    d.gw = std::make_unique<gateway::Gateway>(d.ioc.get_executor(), *d.service, gopts, [ws](const std::string& line) {
      if (auto s = ws.lock()) s->write_text(line, true);
    });
    d.gw->start(*d.initial);

    lambda::ScheduleClock clock;
    clock.start = d.options.schedule_clock;
    clock.speed = d.options.schedule_speed;
    d.scheduler = std::make_unique<lambda::Scheduler>(d.ioc.get_executor(), *d.service, *d.initial, clock);
    d.scheduler->on_firing([ws](const lambda::Firing& f) {
      if (auto s = ws.lock()) s->write_text(describe_firing(f), false);
    });
    if (d.options.schedules) {
      d.scheduler->start();
      if (d.options.log_output) {
        auto logger = log::get("serve");
        for (const auto& [name, spec] : d.initial->schedules) {
          auto next = d.scheduler->next_time(name);
          logger->info("schedule {}: {} -> {}{}, {}", name, spec.expression.text, spec.function,
                       spec.qualifier.empty() ? "" : ":" + spec.qualifier,
                       !spec.enabled ? std::string("disabled (fires only when triggered)")
                       : next        ? "next at " + stack::iso_utc(std::chrono::floor<std::chrono::seconds>(*next))
                                     : std::string("never fires again"));
        }
      }
    }
    install_schedule_route(*d.invoke_api, d.options.schedules ? d.scheduler.get() : nullptr);
    d.event_sources = std::make_unique<lambda::EventSources>(d.ioc.get_executor(), *d.service, *d.initial);
    if (d.options.event_sources) d.event_sources->start();
  } catch (const std::exception& e) {
    d.service->stop_all();
    throw EngineError(e.what());
  }
  d.cached = d.compute_endpoints();
  d.warn_requirements(*d.initial);
  if (d.options.on_started) d.options.on_started(d.cached);
  if (d.options.endpoints_file) write_endpoints(*d.options.endpoints_file, json::parse(app::endpoints_json(d.cached)).dump(2));

  if (d.options.watch) {
    d.stack_watch = std::make_unique<lambda::CodeWatch>(d.ioc.get_executor(),
                                                        [&d](const std::vector<fs::path>&) { d.on_stack_change(); });
    d.stack_watch->watch_file(d.file);
  }
  if (d.options.handle_signals) {
    d.signals = std::make_unique<asio::signal_set>(d.ioc, SIGINT, SIGTERM);
    d.arm_signals();
  }
  d.work.emplace(d.ioc.get_executor());
  d.engine_running = true;
  d.thread = std::thread([&d] {
    try {
      d.ioc.run();
    } catch (const std::exception& e) {
      log::get("serve")->error("engine stopped: {}", e.what());
    }
    d.engine_running = false;
  });
}

void App::wait() {
  auto& d = *impl_;
  if (d.thread.joinable() && std::this_thread::get_id() != d.thread.get_id()) d.thread.join();
}

void App::stop() {
  auto& d = *impl_;
  {
    std::lock_guard lk(d.mu);
    if (!d.started || d.stopped) return;
    d.stopped = true;
  }
  if (d.engine_running && !d.stopping) {
    d.stopping = true;
    asio::post(d.ioc, [&d] { asio::co_spawn(d.ioc, d.drain_and_stop(), asio::detached); });
  }
  wait();
  d.engine_running = false;
  if (d.service) d.service->stop_all();
  if (d.sink) d.sink->flush();
  // What happened stays readable after the stop (a test asserts after its `with` block).
  if (d.service) d.final_records = d.service->records();
  // Components go before the io_context they were built on.
  d.signals.reset();
  d.stack_watch.reset();
  d.scheduler.reset();
  d.event_sources.reset();
  d.gw.reset();
  d.invoke_api.reset();
  d.service.reset();
}

bool App::running() const { return impl_->engine_running; }

Endpoints App::endpoints() const {
  std::lock_guard lk(impl_->mu);
  return impl_->cached;
}

std::string App::endpoints_json() const { return app::endpoints_json(endpoints()); }

InvokeResult App::invoke(const std::string& function, const std::string& payload, const std::string& qualifier,
                         const std::string& source) {
  auto& d = *impl_;
  auto result = d.call<InvokeResult>([&d, function, payload, qualifier, source]() -> asio::awaitable<InvokeResult> {
    lambda::InvokeRequest req;
    req.function = function;
    req.qualifier = qualifier;
    req.payload = payload;
    req.tail = true;  // wait for END/REPORT: the log tail and the record are then complete
    req.source = source;
    auto res = co_await d.service->invoke(std::move(req));
    if (res.error) throw EngineError(res.error->code + ": " + res.error->message, res.error->code);
    InvokeResult out;
    out.function_error = res.function_error;
    out.error_type = res.error_type;
    out.executed_version = res.executed_version;
    out.request_id = res.request_id;
    out.duration_ms = res.duration_ms;
    out.cold_start = res.cold_start;
    out.content_type = res.content_type;
    if (auto tail = base64_decode(res.log_result)) out.log_tail = *tail;
    if (res.stream) {
      std::string body;
      std::function<void(std::string_view)> append = [&body](std::string_view chunk) { body.append(chunk); };
      co_await lambda::read_stream(*res.stream, append);  // no temporaries in co_await (GCC 12)
      out.content_type = res.stream->content_type();
      if (!res.stream->error_type().empty()) {
        out.function_error = true;
        out.error_type = res.stream->error_type();
        body += res.stream->error_body();
      }
      out.payload = std::move(body);
    } else {
      out.payload = std::move(res.payload);
    }
    co_return out;
  });
  // The invocation's lines are echoed (echo_logs) before the call returns, so that what the
  // caller does next, a failing assertion with pytest capturing, comes after them.
  if (d.sink && d.options.log_output) d.sink->flush();
  return result;
}

std::string App::invoke_async(const std::string& function, const std::string& payload, const std::string& qualifier,
                              const std::string& source) {
  auto& d = *impl_;
  return d.call<std::string>([&d, function, payload, qualifier, source]() -> asio::awaitable<std::string> {
    lambda::InvokeRequest req;
    req.function = function;
    req.qualifier = qualifier;
    req.payload = payload;
    req.type = lambda::InvocationType::event;
    req.source = source;
    auto res = co_await d.service->invoke(std::move(req));
    if (res.error) throw EngineError(res.error->code + ": " + res.error->message, res.error->code);
    co_return res.request_id;
  });
}

Published App::publish(const std::string& function, const std::string& description) {
  auto& d = *impl_;
  return d.call<Published>([&d, function, description]() -> asio::awaitable<Published> {
    try {
      auto pub = d.service->publish(function, description);
      co_return Published{function, pub.config.version, pub.config.code_sha256, pub.created};
    } catch (const EngineError&) {
      throw;
    } catch (const std::exception& e) {
      throw EngineError(e.what(), "ResourceNotFoundException");
    }
  });
}

std::vector<lambda::InvocationRecord> App::records() {
  auto& d = *impl_;
  if (d.final_records) return *d.final_records;
  // An invocation that has answered has its REPORT a moment later; wait for it (briefly).
  return d.settled<lambda::InvocationRecord>(
      std::chrono::seconds(2), std::chrono::milliseconds(5), [&d] { return d.service->records_pending(); },
      [&d] { return d.service->records(); });
}

std::vector<lambda::DestinationDelivery> App::destinations(std::chrono::milliseconds wait) {
  auto& d = *impl_;
  return d.settled<lambda::DestinationDelivery>(
      wait, std::chrono::milliseconds(10),
      [&d] { return d.service->destinations_pending() + d.service->queued_events(); },
      [&d] { return d.service->destinations(); });
}

void App::clear_records() {
  auto& d = *impl_;
  d.call<bool>([&d]() -> asio::awaitable<bool> {
    d.service->clear_records();
    co_return true;
  });
}

std::vector<LogEntry> App::logs(const std::string& function) {
  if (!impl_->sink) return {};
  return impl_->sink->lines(function);
}

std::vector<std::string> App::access_log() {
  if (!impl_->sink) return {};
  return impl_->sink->access();
}

void App::reload() {
  auto& d = *impl_;
  auto st = load_or_throw(d.file, &d.warnings);
  auto problems = d.call<std::vector<std::string>>([&d, st = std::move(st)]() -> asio::awaitable<std::vector<std::string>> {
    auto found = d.try_apply(st);
    if (found.empty()) {
      // With the watcher off, nothing else would notice code edits: an explicit reload takes them.
      if (!d.options.watch) d.service->refresh_code("reloaded without the code watcher");
    }
    co_return found;
  });
  if (!problems.empty())
    throw StackError(d.file.filename().string() + " " + Impl::not_applied(problems), problems);
}

Triggered App::trigger(const std::string& schedule) {
  auto& d = *impl_;
  auto f = d.call<lambda::Firing>([&d, schedule]() -> asio::awaitable<lambda::Firing> {
    auto out = std::make_shared<lambda::Firing>();
    // Named, not a temporary inside co_await (GCC 12 may destroy such temporaries twice).
    auto initiate = [&d, &schedule, out](auto handler) {
      auto h = std::make_shared<decltype(handler)>(std::move(handler));
      d.scheduler->fire(schedule, [h, out](const lambda::Firing& f) {
        *out = f;
        std::move(*h)();
      });
    };
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(initiate, asio::use_awaitable);
    co_return *out;
  });
  if (!f.error.empty()) throw EngineError(f.error, f.function.empty() ? "ScheduleNotFound" : "");
  Triggered t;
  t.schedule = f.schedule;
  t.function = f.function;
  t.time = f.time;
  t.event = f.event;
  t.request_id = f.request_id;
  t.executed_version = f.executed_version;
  t.payload = f.payload;
  t.function_error = f.function_error;
  t.error_type = f.error_type;
  t.cold_start = f.cold_start;
  t.duration_ms = f.duration_ms;
  return t;
}

std::chrono::system_clock::time_point App::schedule_time() {
  if (!impl_->scheduler) throw EngineError("the sluice app is not running");
  return impl_->scheduler->now();
}
void App::set_schedule_time(std::chrono::system_clock::time_point t) {
  auto& d = *impl_;
  d.call<bool>([&d, t]() -> asio::awaitable<bool> {
    d.scheduler->set_time(t);
    co_return true;
  });
}
void App::advance_schedule_clock(std::chrono::milliseconds by) {
  auto& d = *impl_;
  d.call<bool>([&d, by]() -> asio::awaitable<bool> {
    d.scheduler->advance(by);
    co_return true;
  });
}
std::optional<std::chrono::system_clock::time_point> App::next_schedule_time(const std::string& schedule) {
  auto& d = *impl_;
  return d.call<std::optional<std::chrono::system_clock::time_point>>(
      [&d, schedule]() -> asio::awaitable<std::optional<std::chrono::system_clock::time_point>> {
        co_return d.scheduler->next_time(schedule);
      });
}
std::vector<std::string> App::schedules() {
  auto& d = *impl_;
  return d.call<std::vector<std::string>>([&d]() -> asio::awaitable<std::vector<std::string>> {
    co_return d.scheduler->names();
  });
}

std::vector<std::string> App::functions() {
  auto& d = *impl_;
  return d.call<std::vector<std::string>>([&d]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> out;
    for (const auto& [name, fn] : d.service->stack().functions) out.push_back(name);
    co_return out;
  });
}

void App::run_on_engine(std::function<void()> fn) {
  auto& d = *impl_;
  d.call<bool>([fn = std::move(fn)]() -> asio::awaitable<bool> {
    fn();
    co_return true;
  });
}

}  // namespace sluice::app
