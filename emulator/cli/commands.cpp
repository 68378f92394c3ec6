// invoke, publish and serve: each loads the validated stack, builds the Lambda
// service on one io_context, and drives it.
#include "cli.hpp"
#include "schedules.hpp"

#include "sluice/common/log.hpp"
#include "sluice/common/util.hpp"
#include "sluice/gateway/gateway.hpp"
#include "sluice/gateway/invoke_api.hpp"
#include "sluice/lambda/code_watch.hpp"
#include "sluice/lambda/console_log.hpp"
#include "sluice/lambda/service.hpp"
#include "sluice/runtime/environment.hpp"
#include "sluice/stack/loader.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

namespace sluice::cli {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using json = nlohmann::json;

std::optional<stack::Stack> load_stack(const fs::path& file) {
  auto result = stack::load_file(file);
  std::string report = stack::format_report(result, file);
  if (!result.ok()) {
    std::fputs(report.c_str(), stderr);
    return std::nullopt;
  }
  if (!result.problems.empty()) std::fputs(report.c_str(), stderr);
  return std::move(result.stack);
}

namespace {

std::chrono::milliseconds seconds_option(const Args& a, const std::string& name, std::chrono::milliseconds def) {
  auto v = a.get(name);
  if (!v) return def;
  try {
    double s = std::stod(*v);
    if (s < 0 || !std::isfinite(s)) throw std::invalid_argument("negative");
    return std::chrono::milliseconds(static_cast<long long>(s * 1000));
  } catch (...) {
    throw std::runtime_error("--" + name + " expects a number of seconds, got " + sluice::quoted(*v));
  }
}

int int_option(const Args& a, const std::string& name, int def, int lo, int hi) {
  auto v = a.get(name);
  if (!v) return def;
  try {
    std::size_t used = 0;
    int n = std::stoi(*v, &used);
    if (used != v->size() || n < lo || n > hi) throw std::invalid_argument("range");
    return n;
  } catch (...) {
    throw std::runtime_error("--" + name + " expects an integer from " + std::to_string(lo) + " to " +
                             std::to_string(hi) + ", got " + sluice::quoted(*v));
  }
}

}  // namespace

lambda::ServiceOptions service_options(const Args& a, const stack::Stack& st) {
  lambda::ServiceOptions o;
  o.state_dir = a.get("state-dir") ? fs::absolute(*a.get("state-dir")) : st.base_dir / ".sluice";
  o.bootstrap_dir = runtime::default_bootstrap_dir();
  o.freeze = !a.has("no-freeze");
  if (auto d = a.get("freeze-delay")) {
    auto ms = seconds_option(a, "freeze-delay", {});
    o.freeze_delay = std::chrono::duration_cast<std::chrono::microseconds>(ms);
  }
  o.watch_code = !a.has("no-watch");
  o.idle_timeout = seconds_option(a, "idle-timeout", o.idle_timeout);
  o.init_timeout = seconds_option(a, "init-timeout", o.init_timeout);
  o.account_concurrency = int_option(a, "account-concurrency", o.account_concurrency, 1, 100000);
  if (auto d = a.get("async-retry-delays")) {
    o.async_retry_delays.clear();
    for (const auto& part : split(*d, ',')) {
      try {
        o.async_retry_delays.push_back(std::chrono::milliseconds(static_cast<long long>(std::stod(part) * 1000)));
      } catch (...) {
        throw std::runtime_error("--async-retry-delays expects seconds separated by commas, e.g. 60,120; got " +
                                 sluice::quoted(*d));
      }
    }
  }
  for (const auto& spec : a.all("interpreter")) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || !stack::parse_runtime(spec.substr(0, eq)))
      throw std::runtime_error("--interpreter expects RUNTIME=PATH with a supported runtime, e.g. "
                               "python3.12=/usr/bin/python3.12; got " + sluice::quoted(spec));
    o.interpreters[spec.substr(0, eq)] = fs::absolute(spec.substr(eq + 1));
  }
  if (auto f = a.get("log-format")) {
    if (*f != "Text" && *f != "JSON") throw std::runtime_error("--log-format is Text or JSON, got " + sluice::quoted(*f));
    o.log_format = *f;
  }
  return o;
}

namespace {

std::string read_event(const Args& a) {
  auto ev = a.get("event");
  if (!ev) return "{}";
  if (*ev == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::ifstream in(*ev, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read the event file " + sluice::quoted(*ev));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

int cmd_invoke(const Args& a) {
  if (a.positionals.empty()) throw std::runtime_error("invoke needs a function name: sluice invoke FUNCTION[:QUALIFIER]");
  fs::path file = a.get("stack") ? fs::path(*a.get("stack")) : default_stack_path();
  auto st = load_stack(file);
  if (!st) return 2;
  std::string payload = read_event(a);
  auto opts = service_options(a, *st);
  opts.watch_code = false;

  asio::io_context ioc;
  auto sink = std::make_shared<lambda::ConsoleLogSink>(stderr, lambda::ConsoleLogSink::Style::raw);
  lambda::LambdaService service(ioc.get_executor(), std::move(*st), opts, sink);
  int rc = 0;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        lambda::InvokeRequest req;
        req.function = a.positionals[0];
        req.payload = std::move(payload);
        req.tail = true;  // wait for END/REPORT so the log is complete
        req.source = "cli";
        auto res = co_await service.invoke(std::move(req));
        if (res.error) {
          std::fprintf(stderr, "sluice: %s: %s\n", res.error->code.c_str(), res.error->message.c_str());
          rc = 2;
        } else if (res.stream) {
          bool done = false;
          asio::steady_timer wake(ioc, std::chrono::steady_clock::time_point::max());
          res.stream->consume(
              [](std::string_view chunk) {
                std::fwrite(chunk.data(), 1, chunk.size(), stdout);
                std::fflush(stdout);
                return true;
              },
              [&] {
                done = true;
                wake.cancel();
              });
          while (!done) {
            wake.expires_at(std::chrono::steady_clock::time_point::max());
            co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
          }
          if (!res.stream->error_type().empty()) {
            std::fprintf(stdout, "%s", res.stream->error_body().c_str());
            rc = 1;
          }
          std::fputc('\n', stdout);
        } else {
          std::fwrite(res.payload.data(), 1, res.payload.size(), stdout);
          std::fputc('\n', stdout);
          rc = res.function_error ? 1 : 0;
        }
        std::fflush(stdout);
        co_await service.shutdown(std::chrono::seconds(5));
        ioc.stop();
      },
      asio::detached);
  ioc.run();
  sink->flush();
  return rc;
}

int cmd_publish(const Args& a) {
  if (a.positionals.empty()) throw std::runtime_error("publish needs a function name: sluice publish FUNCTION");
  fs::path file = a.get("stack") ? fs::path(*a.get("stack")) : default_stack_path();
  auto st = load_stack(file);
  if (!st) return 2;
  auto opts = service_options(a, *st);
  const std::string& name = a.positionals[0];
  auto it = st->functions.find(name);
  if (it == st->functions.end()) {
    std::fprintf(stderr, "sluice: no function named %s in %s\n", sluice::quoted(name).c_str(), file.string().c_str());
    return 2;
  }
  lambda::VersionStore store(opts.state_dir);
  auto pub = store.publish(it->second, a.get("description").value_or(""));
  json out = {{"FunctionName", name},
              {"Version", pub.config.version},
              {"CodeSha256", pub.config.code_sha256},
              {"Created", pub.created}};
  std::printf("%s\n", out.dump().c_str());
  if (!pub.created)
    std::fprintf(stderr, "sluice: %s is unchanged since version %s; no new version was made\n", name.c_str(),
                 pub.config.version.c_str());
  return 0;
}

namespace {

json endpoints_json(const std::string& host, unsigned short lambda_port, const gateway::Gateway& gw) {
  json apis = json::object();
  for (const auto& e : gw.endpoints())
    apis[e.name] = {{"type", e.type == stack::ApiType::rest ? "rest" : "http"}, {"url", e.url}, {"stages", e.stages}};
  return json{{"lambda", "http://" + host + ":" + std::to_string(lambda_port)}, {"apis", apis}};
}

void write_endpoints(const fs::path& target, const json& endpoints) {
  fs::path tmp = target;
  tmp += ".tmp";
  {
    std::ofstream out(tmp);
    out << endpoints.dump(2) << "\n";
  }
  fs::rename(tmp, target);
}

// Requirements files are for deploy (a layer built by pip for Lambda's platform): serve has no
// package index to install from. Said once per file, at start and when a reload adds one.
void warn_requirements(const stack::Stack& st, std::set<fs::path>& warned, const std::function<void(const std::string&)>& say) {
  std::map<fs::path, std::vector<std::string>> users;
  for (const auto& [name, f] : st.functions)
    if (f.requirements && !warned.count(*f.requirements)) users[*f.requirements].push_back(name);
  for (const auto& [file, fns] : users) {
    warned.insert(file);
    std::error_code ec;
    auto rel = fs::relative(file, st.base_dir, ec);
    std::string shown = ec || rel.empty() ? file.string() : rel.string();
    say("requirements " + shown + " (" + join(fns, ", ") +
        ") are not installed by sluice serve: deploy builds them into a layer; locally the packages must be "
        "importable by the Python that runs the handlers (pip install -r " + shown + " in its environment)");
  }
}

}  // namespace

int cmd_serve(const Args& a) {
  fs::path file = fs::absolute(a.positionals.empty() ? default_stack_path() : fs::path(a.positionals[0]));
  auto st = load_stack(file);
  if (!st) return 1;
  auto opts = service_options(a, *st);
  std::string host = a.get("host").value_or("127.0.0.1");
  int lambda_port = int_option(a, "lambda-port", 3001, 0, 65535);
  int api_port = int_option(a, "port", 3000, 0, 65535);
  auto drain = seconds_option(a, "drain-timeout", std::chrono::seconds(30));
  auto logger = log::get("serve");

  asio::io_context ioc;
  auto sink = std::make_shared<lambda::ConsoleLogSink>(stdout, lambda::ConsoleLogSink::Style::tagged);
  lambda::LambdaService service(ioc.get_executor(), *st, opts, sink);
  gateway::InvokeApi invoke_api(ioc.get_executor(), service);
  unsigned short port = invoke_api.listen(host, static_cast<unsigned short>(lambda_port));
  invoke_api.start();

  gateway::GatewayOptions gopts;
  gopts.host = host;
  gopts.base_port = static_cast<unsigned short>(api_port);
  gopts.reserved_ports = {port};
  if (auto t = a.get("integration-timeout")) gopts.timeout_ms = static_cast<int>(seconds_option(a, "integration-timeout", {}).count());
  if (auto t = a.get("client-timeout")) {
    // A request must arrive whole within this; an idle keep-alive connection is closed after it too.
    gopts.read_timeout = seconds_option(a, "client-timeout", gopts.read_timeout);
    gopts.idle_timeout = gopts.read_timeout;
  }
  gateway::Gateway gw(ioc.get_executor(), service, gopts, [sink](const std::string& line) { sink->write_text(line); });
  gw.start(*st);
  auto scheduler = start_schedules(a, ioc.get_executor(), service, *st, invoke_api,
                                   [sink](const std::string& line) { sink->write_text(line); });

  auto endpoints = endpoints_json(host, port, gw);
  std::printf("%s\n", endpoints.dump().c_str());
  std::fflush(stdout);
  std::optional<fs::path> endpoints_file;
  if (auto f = a.get("endpoints-file")) {
    endpoints_file = fs::absolute(*f);
    write_endpoints(*endpoints_file, endpoints);
  }
  logger->info("Lambda Invoke API on http://{}:{} ({} function{})", host, port, service.stack().functions.size(),
               service.stack().functions.size() == 1 ? "" : "s");
  for (const auto& e : gw.endpoints())
    logger->info("API {} ({}) on {} — stages: {}", e.name, e.type == stack::ApiType::rest ? "REST" : "HTTP", e.url,
                 join(e.stages, ", "));
  std::set<fs::path> requirements_warned;
  warn_requirements(*st, requirements_warned, [&](const std::string& m) { logger->warn("{}", m); });
  logger->info("Ctrl-C to stop");

  // Editing the stack file reloads it; an invalid edit keeps what is running.
  std::unique_ptr<lambda::CodeWatch> stack_watch;
  if (!a.has("no-watch")) {
    stack_watch = std::make_unique<lambda::CodeWatch>(ioc.get_executor(), [&](const std::vector<fs::path>&) {
      auto result = stack::load_file(file);
      if (!result.ok()) {
        std::string report = stack::format_report(result, file);
        sink->write_text("[sluice] " + file.filename().string() +
                         " changed but is not valid; still serving the previous version:\n" + report);
        return;
      }
      service.reload(*result.stack);
      gw.reload(*result.stack);
      if (scheduler) scheduler->reload(*result.stack);
      auto fresh = endpoints_json(host, port, gw);
      if (endpoints_file) write_endpoints(*endpoints_file, fresh);
      sink->write_text("[sluice] reloaded " + file.filename().string());
      warn_requirements(*result.stack, requirements_warned, [&](const std::string& m) { logger->warn("{}", m); });
    });
    stack_watch->watch_file(file);
  }

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  int stops = 0;
  std::function<void()> arm;
  arm = [&] {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (++stops > 1) {
        logger->warn("second signal: stopping every handler now");
        service.stop_all();
        ioc.stop();
        return;
      }
      logger->info("{}: draining in-flight requests (up to {} s), then stopping handlers",
                   sig == SIGINT ? "interrupt" : "terminate", drain.count() / 1000);
      asio::co_spawn(
          ioc,
          [&]() -> asio::awaitable<void> {
            stack_watch.reset();
            if (scheduler) scheduler->stop();
            co_await gw.drain(drain);
            co_await invoke_api.drain(drain);
            co_await service.shutdown(drain);
            ioc.stop();
          },
          asio::detached);
      arm();
    });
  };
  arm();
  ioc.run();
  service.stop_all();
  sink->flush();
  return 0;
}

}  // namespace sluice::cli
