// The Scheduler's clock: a stopped clock moved by advance()/set_time(), a fast
// clock, on-demand firings, reloads. The schedules target a function the
// service does not have, so firings end in ResourceNotFoundException without
// starting any process, and the Firing records show when and what was sent.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "sluice/lambda/scheduler.hpp"
#include "sluice/lambda/service.hpp"

using namespace sluice;
using std::chrono::system_clock;

namespace {

class NullSink : public runtime::LogSink {
 public:
  void write(const runtime::LogLine&) override {}
};

system_clock::time_point at(const std::string& iso) {
  return system_clock::time_point(*stack::parse_iso_utc(iso));
}

stack::ScheduleSpec schedule(const std::string& name, const std::string& expr) {
  stack::ScheduleSpec s;
  s.name = name;
  s.function = "ghost";
  s.expression = std::get<stack::ScheduleExpression>(stack::parse_schedule_expression(expr));
  return s;
}

struct Rig {
  boost::asio::io_context ioc;
  stack::Stack st;
  std::unique_ptr<lambda::LambdaService> service;
  std::vector<lambda::Firing> firings;

  Rig() {
    st.name = "rig";
    st.schedules["every-5"] = schedule("every-5", "rate(5 minutes)");
    st.schedules["nine"] = schedule("nine", "cron(0 9 * * ? *)");
    auto off = schedule("off", "rate(1 minute)");
    off.enabled = false;
    st.schedules["off"] = off;
    lambda::ServiceOptions o;
    o.state_dir = std::filesystem::temp_directory_path() / "sluice-scheduler-test";
    o.watch_code = false;
    service = std::make_unique<lambda::LambdaService>(ioc.get_executor(), st, o, std::make_shared<NullSink>());
  }
  // Runs the loop for a while of real time.
  void run_for(std::chrono::milliseconds d) {
    boost::asio::steady_timer t(ioc, d);
    t.async_wait([this](auto) { ioc.stop(); });
    ioc.restart();
    ioc.run();
  }
  std::vector<std::string> names_fired() const {
    std::vector<std::string> out;
    for (const auto& f : firings) out.push_back(f.schedule + "@" + stack::iso_utc(std::chrono::floor<std::chrono::seconds>(f.time)));
    return out;
  }
};

}  // namespace

TEST_CASE("a stopped clock fires only when moved", "[scheduler]") {
  Rig rig;
  lambda::ScheduleClock clock;
  clock.start = at("2030-01-01T08:58:00Z");
  clock.speed = 0;
  lambda::Scheduler sched(rig.ioc.get_executor(), *rig.service, rig.st, clock);
  sched.on_firing([&](const lambda::Firing& f) { rig.firings.push_back(f); });
  sched.start();
  CHECK(sched.now() == at("2030-01-01T08:58:00Z"));
  CHECK(sched.next_time("every-5") == at("2030-01-01T09:03:00Z"));
  CHECK(sched.next_time("nine") == at("2030-01-01T09:00:00Z"));
  CHECK_FALSE(sched.next_time("off"));
  rig.run_for(std::chrono::milliseconds(100));
  CHECK(rig.firings.empty());

  sched.advance(std::chrono::minutes(2));  // 09:00: nine is due
  rig.run_for(std::chrono::milliseconds(100));
  REQUIRE(rig.names_fired() == std::vector<std::string>{"nine@2030-01-01T09:00:00Z"});
  const auto& f = rig.firings[0];
  CHECK_FALSE(f.on_demand);
  CHECK(f.function == "ghost");
  CHECK_THAT(f.error, Catch::Contains("ResourceNotFoundException"));
  auto ev = nlohmann::json::parse(f.event);
  CHECK(ev["time"] == "2030-01-01T09:00:00Z");
  CHECK(ev["resources"][0] == "arn:aws:events:us-east-1:123456789012:rule/rig-nine");
  CHECK(sched.next_time("nine") == at("2030-01-02T09:00:00Z"));

  // Moving the clock over many periods fires each of them, in order, as a serve running through
  // that hour would; then it counts on from the anchor.
  rig.firings.clear();
  sched.set_time(at("2030-01-01T10:00:30Z"));
  rig.run_for(std::chrono::milliseconds(200));
  std::vector<std::string> expected;
  for (int m = 3; m < 60; m += 5) expected.push_back("every-5@2030-01-01T09:" + std::string(m < 10 ? "0" : "") +
                                                      std::to_string(m) + ":00Z");
  CHECK(rig.names_fired() == expected);
  CHECK(sched.next_time("every-5") == at("2030-01-01T10:03:00Z"));

  // Back in time: next times are computed again from there.
  sched.set_time(at("2030-01-01T08:00:00Z"));
  rig.run_for(std::chrono::milliseconds(50));
  CHECK(sched.next_time("nine") == at("2030-01-01T09:00:00Z"));
}

TEST_CASE("on-demand firings, unknown names, a fast clock, reloads", "[scheduler]") {
  Rig rig;
  lambda::ScheduleClock clock;
  clock.start = at("2030-01-01T08:59:59Z");
  clock.speed = 0;
  lambda::Scheduler sched(rig.ioc.get_executor(), *rig.service, rig.st, clock);
  sched.on_firing([&](const lambda::Firing& f) { rig.firings.push_back(f); });
  sched.start();

  std::optional<lambda::Firing> got;
  sched.fire("off", [&](const lambda::Firing& f) { got = f; });  // disabled ones fire on demand
  rig.run_for(std::chrono::milliseconds(100));
  REQUIRE(got);
  CHECK(got->on_demand);
  CHECK(got->schedule == "off");
  CHECK(nlohmann::json::parse(got->event)["detail-type"] == "Scheduled Event");

  got.reset();
  sched.fire("nope", [&](const lambda::Firing& f) { got = f; });
  rig.run_for(std::chrono::milliseconds(50));
  REQUIRE(got);
  CHECK(got->error == "no schedule named \"nope\"; schedules: every-5, nine, off");
  CHECK(got->function.empty());

  // speed 600: one real second is ten schedule minutes
  rig.firings.clear();
  sched.set_speed(600);
  rig.run_for(std::chrono::milliseconds(1500));
  auto fired = rig.names_fired();
  CHECK(std::find(fired.begin(), fired.end(), "nine@2030-01-01T09:00:00Z") != fired.end());
  CHECK(std::find(fired.begin(), fired.end(), "every-5@2030-01-01T09:04:59Z") != fired.end());
  sched.set_speed(0);

  // Reload: a changed expression starts counting now; a removed schedule stops.
  auto st2 = rig.st;
  st2.schedules.erase("nine");
  st2.schedules["every-5"] = schedule("every-5", "rate(10 minutes)");
  auto before = sched.now();
  sched.reload(st2);
  CHECK_FALSE(sched.next_time("nine"));
  auto next = sched.next_time("every-5");
  REQUIRE(next);
  CHECK(*next - std::chrono::floor<std::chrono::seconds>(before) >= std::chrono::minutes(9));
  CHECK(sched.names() == std::vector<std::string>{"every-5", "off"});
  CHECK(sched.event_for("off", at("2030-01-01T00:00:00Z")));
  CHECK_FALSE(sched.event_for("nine", at("2030-01-01T00:00:00Z")));
  sched.stop();
  CHECK_FALSE(sched.next_time("every-5"));
}
