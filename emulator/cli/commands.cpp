// invoke, publish and serve: each loads the validated stack, builds the Lambda
// service on one io_context, and drives it.
#include "cli.hpp"
#include "schedules.hpp"

#include "sluice/app/app.hpp"
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
  o.sandbox = !a.has("no-sandbox");
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
    fs::path path = fs::absolute(spec.substr(eq + 1));
    if (auto problem = app::interpreter_problem(spec.substr(0, eq), path); !problem.empty())
      throw std::runtime_error("--interpreter " + spec + ": " + problem);
    o.interpreters[spec.substr(0, eq)] = path;
  }
  if (auto f = a.get("log-format")) {
    if (*f != "Text" && *f != "JSON") throw std::runtime_error("--log-format is Text or JSON, got " + sluice::quoted(*f));
    o.log_format = *f;
  }
  if (auto f = a.get("env-vars")) o.env_overrides = lambda::load_env_overrides(*f);
  if (a.get("debug-port") || a.get("debug-args") || a.get("debug-function")) {
    if (!a.get("debug-port") && !a.get("debug-args"))
      throw std::runtime_error("--debug-function needs --debug-port PORT (or --debug-args)");
    o.debug.port = int_option(a, "debug-port", 0, 1, 65535);
    if (auto d = a.get("debug-args")) o.debug.args = lambda::split_args(*d);
    if (auto f = a.get("debug-function")) {
      o.debug.function = *f;
    } else if (a.command == "invoke" && !a.positionals.empty()) {
      o.debug.function = a.positionals[0].substr(0, a.positionals[0].find(':'));
    }  // serve: the App picks the stack's only function, or asks for --debug-function
  }
  return o;
}

namespace {

std::string read_event(const Args& a) {
  auto ev = a.get("event");
  if (!ev) return "{}";
  if (*ev == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::error_code ec;
  if (fs::is_directory(*ev, ec)) throw std::runtime_error("the event file " + sluice::quoted(*ev) + " is a directory");
  std::ifstream in(*ev, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read the event file " + sluice::quoted(*ev));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

int cmd_invoke(const Args& a) {
  fs::path file = a.get("stack") ? fs::path(*a.get("stack")) : default_stack_path();
  auto st = load_stack(file);
  if (!st) return 2;
  // As `sam local invoke`: the function may be left out when the stack has only one.
  std::string target = a.positionals.empty() ? std::string() : a.positionals[0];
  if (target.empty()) {
    if (st->functions.size() != 1) {
      std::string names;
      for (const auto& [name, fn] : st->functions) names += (names.empty() ? "" : ", ") + name;
      throw std::runtime_error("invoke needs a function name when the stack has " +
                               (st->functions.empty() ? std::string("no functions")
                                                      : std::to_string(st->functions.size()) + " functions (" + names + ")") +
                               ": sluice invoke FUNCTION[:QUALIFIER]");
    }
    target = st->functions.begin()->first;
  }
  std::string payload = read_event(a);
  auto opts = service_options(a, *st);
  opts.watch_code = false;
  if ((opts.debug.port != 0 || !opts.debug.args.empty()) && opts.debug.function.empty()) opts.debug.function = target;

  asio::io_context ioc;
  auto sink = std::make_shared<lambda::ConsoleLogSink>(stderr, lambda::ConsoleLogSink::Style::raw);
  lambda::LambdaService service(ioc.get_executor(), std::move(*st), opts, sink);
  int rc = 0;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        lambda::InvokeRequest req;
        req.function = target;
        req.payload = std::move(payload);
        req.tail = true;  // wait for END/REPORT so the log is complete
        req.source = "cli";
        auto res = co_await service.invoke(std::move(req));
        if (res.error) {
          std::fprintf(stderr, "sluice: %s: %s\n", res.error->code.c_str(), res.error->message.c_str());
          rc = 2;
        } else if (res.stream) {
          std::function<void(std::string_view)> print = [](std::string_view chunk) {
            std::fwrite(chunk.data(), 1, chunk.size(), stdout);
            std::fflush(stdout);
          };
          co_await lambda::read_stream(*res.stream, print);  // no temporaries in co_await (GCC 12)
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

int cmd_serve(const Args& a) {
  app::AppOptions o;
  o.stack_path = fs::absolute(a.positionals.empty() ? default_stack_path() : fs::path(a.positionals[0]));
  o.host = a.get("host").value_or("127.0.0.1");
  o.lambda_port = int_option(a, "lambda-port", 3001, 0, 65535);
  o.api_port = int_option(a, "port", 3000, 0, 65535);
  o.drain_timeout = seconds_option(a, "drain-timeout", std::chrono::seconds(30));
  if (a.get("integration-timeout")) o.integration_timeout = seconds_option(a, "integration-timeout", {});
  if (a.get("client-timeout")) o.client_timeout = seconds_option(a, "client-timeout", {});
  if (auto t = a.get("account-throttle")) {
    // RATE,BURST as an account's raised "Throttle rate" / "Throttle burst" quotas.
    auto parts = split(*t, ',');
    try {
      std::size_t u1 = 0, u2 = 0;
      double rate = parts.size() == 2 ? std::stod(parts[0], &u1) : -1;
      int burst = parts.size() == 2 ? std::stoi(parts[1], &u2) : -1;
      if (parts.size() != 2 || u1 != parts[0].size() || u2 != parts[1].size() || !std::isfinite(rate) || rate <= 0 ||
          burst < 1)
        throw std::invalid_argument("range");
      o.account_throttle = std::make_pair(rate, burst);
    } catch (...) {
      throw std::runtime_error("--account-throttle expects RATE,BURST (requests per second, bucket size), e.g. "
                               "50000,25000; got " + sluice::quoted(*t));
    }
  }
  if (auto f = a.get("endpoints-file")) {
    o.endpoints_file = fs::absolute(*f);
    // Found out now rather than after start-up, when the first write of the file would fail.
    std::error_code ec;
    auto dir = o.endpoints_file->parent_path();
    if (!fs::is_directory(dir, ec))
      throw std::runtime_error("--endpoints-file " + sluice::quoted(*f) + ": the directory " +
                               sluice::quoted(dir.string()) + " does not exist");
    if (fs::is_directory(*o.endpoints_file, ec))
      throw std::runtime_error("--endpoints-file " + sluice::quoted(*f) + " is a directory");
  }
  // The Lambda service flags, parsed as invoke parses them.
  stack::Stack where;
  where.base_dir = o.stack_path.parent_path();
  auto so = service_options(a, where);
  o.state_dir = so.state_dir;
  o.freeze = so.freeze;
  o.sandbox = so.sandbox;
  o.freeze_delay = so.freeze_delay;
  o.watch = so.watch_code;
  o.idle_timeout = so.idle_timeout;
  o.init_timeout = so.init_timeout;
  o.account_concurrency = so.account_concurrency;
  o.async_retry_delays = so.async_retry_delays;
  o.interpreters = so.interpreters;
  o.log_format = so.log_format;
  o.env_overrides = so.env_overrides;
  o.debug = so.debug;
  o.log_output = stdout;
  o.captured_lines_per_function = 0;  // nobody reads logs() in serve
  o.handle_signals = true;
  o.schedules = !a.has("no-schedules");
  o.event_sources = !a.has("no-event-sources");
  auto clock = clock_options(a);
  o.schedule_clock = clock.start;
  o.schedule_speed = clock.speed;
  auto logger = log::get("serve");
  const fs::path state_dir = o.state_dir, stack_path = o.stack_path;
  o.on_started = [&logger, state_dir, stack_path](const app::Endpoints& e) {
    write_serve_marker(state_dir, stack_path, e.lambda);  // for `sluice trigger` without --endpoint
    std::printf("%s\n", app::endpoints_json(e).c_str());
    std::fflush(stdout);
    logger->info("Lambda Invoke API on {} ({} function{})", e.lambda, e.functions, e.functions == 1 ? "" : "s");
    for (const auto& api : e.apis)
      logger->info("API {} ({}) on {} — stages: {}", api.name, api.type == "rest" ? "REST" : "HTTP", api.url,
                   join(api.stages, ", "));
    for (const auto& u : e.urls)
      logger->info("Function URL of {} on {} ({}, {})", u.function, u.url, u.auth_type, u.invoke_mode);
    logger->info("Ctrl-C to stop");
  };

  std::unique_ptr<app::App> server;
  try {
    server = std::make_unique<app::App>(std::move(o));  // loads and validates the stack file
  } catch (const app::StackError& e) {
    std::fputs(e.what(), stderr);
    return 1;
  }
  if (!server->warnings().empty()) std::fputs(server->warnings().c_str(), stderr);
  server->start();
  server->wait();
  server->stop();
  remove_serve_marker(state_dir);
  return 0;
}

}  // namespace sluice::cli
