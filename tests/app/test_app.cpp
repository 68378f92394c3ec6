// sluice/app/app.hpp: the embeddable engine with a real Python handler — loading
// errors, start and stop, invocations from several threads, records, logs,
// schedules on a fixed clock, reload.
#include "sluice/app/app.hpp"

#include <catch2/catch.hpp>

#include "../test_support.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <thread>

using namespace sluice;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

const char* stack_text = R"yaml(name: apptest
defaults: {runtime: python3.11}
functions:
  echo: {code: fn/, handler: h.echo, aliases: {live: $LATEST}}
  slow: {code: fn/, handler: h.slow}
  boom: {code: fn/, handler: h.boom}
apis:
  web: {type: http, routes: {GET /e: echo}}
schedules:
  tick: {function: echo, expression: "rate(1 minute)", input: {tick: true}}
)yaml";

struct Project {
  test_support::TempDir dir;
  Project() {
    write(dir / "fn" / "h.py",
          "import time\n"
          "def echo(event, context):\n    print('echo called')\n    return {'event': event}\n"
          "def slow(event, context):\n    time.sleep(0.4)\n    return 'done'\n"
          "def boom(event, context):\n    raise KeyError('nope')\n");
    write(dir / "sluice.yaml", stack_text);
  }
  app::AppOptions options() const {
    app::AppOptions o;
    o.stack_path = dir / "sluice.yaml";
    o.lambda_port = 0;
    o.api_port = 0;
    o.drain_timeout = 2s;
    return o;
  }
};

}  // namespace

TEST_CASE("a broken stack file throws StackError with every problem") {
  Project p;
  write(p.dir / "bad.yaml", "name: bad\nfunctions:\n  a: {runtime: python3.11, code: nowhere/, handler: h.x, memory: 1}\n");
  auto o = p.options();
  o.stack_path = p.dir / "bad.yaml";
  try {
    app::App a(o);
    FAIL("no exception");
  } catch (const app::StackError& e) {
    REQUIRE(e.problems().size() >= 2);
    CHECK(std::string(e.what()).find("functions.a.memory") != std::string::npos);
    CHECK(std::string(e.what()).find("functions.a.code") != std::string::npos);
  }
  o.stack_path = p.dir / "missing.yaml";
  CHECK_THROWS_AS(app::App(o), app::StackError);
}

TEST_CASE("invocations from several threads, records and logs") {
  Project p;
  app::App a(p.options());
  CHECK_THROWS_AS(a.invoke("echo", "{}"), app::EngineError);  // not started yet
  a.start();
  auto e = a.endpoints();
  REQUIRE(e.apis.size() == 1);
  CHECK(e.apis[0].name == "web");
  CHECK(e.functions == 3);
  auto printed = json::parse(a.endpoints_json());
  CHECK(printed["lambda"] == e.lambda);
  CHECK(printed["apis"]["web"]["stages"] == json::array({"$default"}));

  auto first = a.invoke("echo", R"({"n": 1})");
  CHECK(first.cold_start);
  CHECK(json::parse(first.payload)["event"]["n"] == 1);
  CHECK(first.log_tail.find("echo called") != std::string::npos);
  auto second = a.invoke("echo", "{}", "live");
  CHECK_FALSE(second.cold_start);
  auto failed = a.invoke("boom", "{}");
  CHECK(failed.function_error);
  CHECK(failed.error_type == "KeyError");
  try {
    a.invoke("nope", "{}");
    FAIL("no exception");
  } catch (const app::EngineError& err) {
    CHECK(err.code() == "ResourceNotFoundException");
  }

  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back([&a] { a.invoke("slow", "{}"); });
  for (auto& t : threads) t.join();

  auto recs = a.records();
  REQUIRE(recs.size() == 6);
  CHECK(recs[0].function == "echo");
  CHECK(recs[0].cold_start);
  CHECK(recs[0].init_duration_ms.has_value());
  CHECK(recs[0].source == "python");
  CHECK(recs[1].qualifier == "live");
  CHECK(recs[1].version == "$LATEST");
  CHECK(recs[2].status == "function_error");
  CHECK(recs[2].error_type == "KeyError");
  int slow_cold = 0;
  for (std::size_t i = 3; i < 6; ++i) slow_cold += recs[i].cold_start ? 1 : 0;
  CHECK(slow_cold == 3);  // concurrent: one environment each

  bool started = false, report = false;
  for (const auto& l : a.logs("echo")) {
    if (l.request_id == first.request_id && l.text.rfind("START RequestId:", 0) == 0) started = true;
    if (l.request_id == first.request_id && l.text.rfind("REPORT RequestId:", 0) == 0) report = l.platform;
  }
  CHECK(started);
  CHECK(report);

  a.clear_records();
  CHECK(a.records().empty());
  a.stop();
  a.stop();
  CHECK_FALSE(a.running());
  CHECK_THROWS_AS(a.invoke("echo", "{}"), app::EngineError);
}

TEST_CASE("schedules: triggered now, and fired on a fixed clock") {
  Project p;
  auto o = p.options();
  o.schedule_clock = std::chrono::system_clock::time_point(std::chrono::sys_days(std::chrono::year(2030) / 1 / 1));
  o.schedule_speed = 0;
  app::App a(o);
  a.start();
  CHECK(a.schedules() == std::vector<std::string>{"tick"});
  auto t = a.trigger("tick");
  CHECK(t.function == "echo");
  CHECK(json::parse(t.payload)["event"]["tick"] == true);
  CHECK_THROWS_AS(a.trigger("tock"), app::EngineError);
  CHECK(*a.next_schedule_time("tick") == *o.schedule_clock + 1min);

  a.advance_schedule_clock(60s);
  std::vector<lambda::InvocationRecord> recs;
  for (int i = 0; i < 200; ++i) {
    recs = a.records();
    if (recs.size() >= 2) break;
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].source == "schedule tick");
  CHECK(recs[0].invocation_type == "RequestResponse");
  CHECK(recs[1].source == "schedule tick");
  CHECK(recs[1].invocation_type == "Event");

  // A big step fires every time it passed, in order: ten minutes of rate(1 minute) are ten firings.
  a.advance_schedule_clock(10min);
  for (int i = 0; i < 400; ++i) {
    recs = a.records();
    if (recs.size() >= 12) break;
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(recs.size() == 12);
  CHECK(*a.next_schedule_time("tick") == *o.schedule_clock + 12min);
}

TEST_CASE("reload applies a valid edit and refuses a broken one; a busy port is an EngineError") {
  Project p;
  auto o = p.options();
  o.watch = false;
  app::App a(o);
  a.start();
  CHECK_THROWS_AS(a.invoke("late", "{}"), app::EngineError);
  write(p.dir / "sluice.yaml",
        std::string(stack_text).replace(std::string(stack_text).find("functions:\n"), 11,
                                        "functions:\n  late: {code: fn/, handler: h.echo}\n"));
  a.reload();
  CHECK_FALSE(a.invoke("late", "{}").function_error);
  write(p.dir / "sluice.yaml", "name: x\nfunctions: 3\n");
  CHECK_THROWS_AS(a.reload(), app::StackError);
  CHECK_FALSE(a.invoke("late", "{}").function_error);

  write(p.dir / "sluice.yaml", stack_text);
  auto busy = p.options();
  busy.lambda_port = std::stoi(a.endpoints().lambda.substr(a.endpoints().lambda.rfind(':') + 1));
  app::App b(busy);
  CHECK_THROWS_AS(b.start(), app::EngineError);
}
