// Schedule expressions (rate and six-field cron): parsing, AWS's rules, next
// fire times; and the `schedules:` section of the stack file.
#include <catch2/catch.hpp>

#include "sluice/stack/schedule.hpp"
#include "stack_test_support.hpp"

using namespace sluice::stack;
using std::chrono::sys_seconds;

namespace {

ScheduleExpression parse_ok(const std::string& text) {
  auto r = parse_schedule_expression(text);
  if (auto err = std::get_if<std::string>(&r)) FAIL("expected " << text << " to parse, got: " << *err);
  return std::get<ScheduleExpression>(r);
}

std::string parse_error(const std::string& text) {
  auto r = parse_schedule_expression(text);
  if (std::holds_alternative<ScheduleExpression>(r)) FAIL("expected " << text << " to be refused");
  return std::get<std::string>(r);
}

sys_seconds at(const std::string& iso) {
  auto t = parse_iso_utc(iso);
  REQUIRE(t);
  return *t;
}

std::string next(const std::string& expr, const std::string& after) {
  auto t = next_cron_time(parse_ok(expr).cron, at(after));
  return t ? iso_utc(*t) : "never";
}

// The next n firings after `after`.
std::vector<std::string> series(const std::string& expr, const std::string& after, int n) {
  auto e = parse_ok(expr);
  std::vector<std::string> out;
  auto t = at(after);
  for (int i = 0; i < n; ++i) {
    auto nx = next_cron_time(e.cron, t);
    if (!nx) break;
    out.push_back(iso_utc(*nx));
    t = *nx;
  }
  return out;
}

}  // namespace

TEST_CASE("rate expressions: singular for 1, plural above, minutes hours days", "[schedule]") {
  CHECK(parse_ok("rate(1 minute)").rate == std::chrono::minutes(1));
  CHECK(parse_ok("rate(5 minutes)").rate == std::chrono::minutes(5));
  CHECK(parse_ok("rate(1 hour)").rate == std::chrono::minutes(60));
  CHECK(parse_ok("rate(12 hours)").rate == std::chrono::minutes(720));
  CHECK(parse_ok("rate(1 day)").rate == std::chrono::minutes(1440));
  CHECK(parse_ok("rate(7 days)").rate == std::chrono::minutes(7 * 1440));
  CHECK(parse_ok("  rate(2 days) ").kind == ScheduleExpression::Kind::rate);

  CHECK_THAT(parse_error("rate(1 minutes)"), Catch::Contains("a value of 1 takes the singular unit") &&
                                                 Catch::Contains("rate(1 minute)"));
  CHECK_THAT(parse_error("rate(5 minute)"), Catch::Contains("a value above 1 takes the plural unit") &&
                                                Catch::Contains("rate(5 minutes)"));
  CHECK_THAT(parse_error("rate(1 days)"), Catch::Contains("rate(1 day)"));
  CHECK_THAT(parse_error("rate(0 minutes)"), Catch::Contains("the value must be a positive whole number, found '0'"));
  CHECK_THAT(parse_error("rate(-1 minutes)"), Catch::Contains("positive whole number"));
  CHECK_THAT(parse_error("rate(1.5 hours)"), Catch::Contains("positive whole number"));
  CHECK_THAT(parse_error("rate(5 seconds)"),
             Catch::Contains("unknown unit 'seconds'; allowed: minute, minutes, hour, hours, day, days"));
  CHECK_THAT(parse_error("rate(5)"), Catch::Contains("needs a value and a unit"));
  CHECK_THAT(parse_error("rate()"), Catch::Contains("needs a value and a unit"));
  CHECK_THAT(parse_error("rate(5 minutes"), Catch::Contains("expected rate(value unit)"));
  CHECK_THAT(parse_error("every 5 minutes"), Catch::Contains("expected rate(value unit)") &&
                                                 Catch::Contains("found \"every 5 minutes\""));
  CHECK_THAT(parse_error(""), Catch::Contains("found nothing"));
  CHECK_THAT(parse_error("at(2030-01-01T00:00:00)"), Catch::Contains("EventBridge Scheduler"));
}

TEST_CASE("rates fire every period from their anchor", "[schedule]") {
  auto e = parse_ok("rate(5 minutes)");
  auto anchor = at("2024-01-01T10:00:30Z");
  CHECK(iso_utc(*next_fire_time(e, anchor, anchor)) == "2024-01-01T10:05:30Z");
  CHECK(iso_utc(*next_fire_time(e, anchor, at("2024-01-01T10:05:29Z"))) == "2024-01-01T10:05:30Z");
  CHECK(iso_utc(*next_fire_time(e, anchor, at("2024-01-01T10:05:30Z"))) == "2024-01-01T10:10:30Z");
  CHECK(iso_utc(*next_fire_time(e, anchor, at("2024-01-01T09:00:00Z"))) == "2024-01-01T10:05:30Z");
  CHECK(iso_utc(*next_fire_time(e, anchor, at("2024-01-02T10:00:31Z"))) == "2024-01-02T10:05:30Z");
}

TEST_CASE("cron: the six fields and AWS's rules", "[schedule]") {
  auto e = parse_ok("cron(0 12 * * ? *)");
  CHECK(e.kind == ScheduleExpression::Kind::cron);
  CHECK(e.text == "cron(0 12 * * ? *)");
  parse_ok("cron(15 10 ? * 6L 2022-2030)");
  parse_ok("cron(0/15 8-17 ? * MON-FRI *)");
  parse_ok("cron(*/5 * * * ? *)");
  parse_ok("cron(0 8 1W * ? *)");
  parse_ok("cron(0 8 LW * ? *)");
  parse_ok("cron(0 8 L * ? *)");
  parse_ok("cron(0 8 ? * 2#1 *)");
  parse_ok("cron(0 8 ? * mon#3 *)");
  parse_ok("cron(0 18 ? * SUN,SAT *)");
  parse_ok("cron(0 0 1,15 jan-jun ? 2030)");

  CHECK_THAT(parse_error("cron(0 12 * * *)"), Catch::Contains("has 5 fields; EventBridge takes six: Minutes Hours "
                                                              "Day-of-month Month Day-of-week Year") &&
                                                  Catch::Contains("the Year field is required"));
  CHECK_THAT(parse_error("cron(0 12 * * ? * *)"), Catch::Contains("has 7 fields"));
  CHECK_THAT(parse_error("cron(0 12 * * MON *)"),
             Catch::Contains("one of Day-of-month and Day-of-week must be '?' (found '*' and 'MON')"));
  CHECK_THAT(parse_error("cron(0 12 ? * ? *)"), Catch::Contains("cannot both be '?'"));
  CHECK_THAT(parse_error("cron(60 12 * * ? *)"), Catch::Contains("Minutes field: 60 is out of range; allowed: 0-59"));
  CHECK_THAT(parse_error("cron(0 24 * * ? *)"), Catch::Contains("Hours field: 24 is out of range; allowed: 0-23"));
  CHECK_THAT(parse_error("cron(0 12 32 * ? *)"), Catch::Contains("Day-of-month field: 32 is out of range; allowed: 1-31"));
  CHECK_THAT(parse_error("cron(0 12 0 * ? *)"), Catch::Contains("Day-of-month field: 0 is out of range"));
  CHECK_THAT(parse_error("cron(0 12 * 13 ? *)"), Catch::Contains("Month field: 13 is out of range; allowed: 1-12 or JAN-DEC"));
  CHECK_THAT(parse_error("cron(0 12 * FOO ? *)"), Catch::Contains("Month field: 'FOO' is not a valid value"));
  CHECK_THAT(parse_error("cron(0 12 ? * 8 *)"), Catch::Contains("Day-of-week field: 8 is out of range; allowed: 1-7 or SUN-SAT"));
  CHECK_THAT(parse_error("cron(0 12 * * ? 1969)"), Catch::Contains("Year field: 1969 is out of range; allowed: 1970-2199"));
  CHECK_THAT(parse_error("cron(0 12 * * ? 2200)"), Catch::Contains("Year field: 2200 is out of range"));
  CHECK_THAT(parse_error("cron(? 12 * * ? *)"), Catch::Contains("Minutes field: '?' is only allowed in Day-of-month and Day-of-week"));
  CHECK_THAT(parse_error("cron(0 17-8 * * ? *)"), Catch::Contains("the range '17-8' runs backwards"));
  CHECK_THAT(parse_error("cron(0/0 * * * ? *)"), Catch::Contains("the increment in '0/0' must be a whole number of at least 1"));
  CHECK_THAT(parse_error("cron(0,,5 * * * ? *)"), Catch::Contains("Minutes field: empty item"));
  CHECK_THAT(parse_error("cron(0 8 ? * 2#6 *)"), Catch::Contains("the number after # must be 1 to 5"));
  CHECK_THAT(parse_error("cron(0 8 ? * 3#1,6#3 *)"), Catch::Contains("with # the field holds one expression only"));
  CHECK_THAT(parse_error("cron(0 8 ? * 9#1 *)"), Catch::Contains("Day-of-week field: 9 is out of range"));
  CHECK_THAT(parse_error("cron(0 8 32W * ? *)"), Catch::Contains("W takes a single day from 1 to 31"));
  CHECK_THAT(parse_error("cron(0 8 1,2W * ? *)"), Catch::Contains("W takes a single day"));
  CHECK_THAT(parse_error("cron(0 8 ? * 15W *)"), Catch::Contains("W belongs to Day-of-month"));
  CHECK_THAT(parse_error("cron(0 8 2#1 * ? *)"), Catch::Contains("# belongs to Day-of-week"));
}

TEST_CASE("cron next times: plain fields, lists, ranges, increments, names", "[schedule]") {
  CHECK(next("cron(0 12 * * ? *)", "2024-03-01T11:59:59Z") == "2024-03-01T12:00:00Z");
  CHECK(next("cron(0 12 * * ? *)", "2024-03-01T12:00:00Z") == "2024-03-02T12:00:00Z");
  CHECK(next("cron(0 12 * * ? *)", "2024-12-31T12:00:00Z") == "2025-01-01T12:00:00Z");
  CHECK(next("cron(* * * * ? *)", "2024-03-01T11:59:30Z") == "2024-03-01T12:00:00Z");
  CHECK(next("cron(* * * * ? *)", "2024-03-01T12:00:00Z") == "2024-03-01T12:01:00Z");
  CHECK(series("cron(0/15 * * * ? *)", "2024-03-01T10:50:00Z", 4) ==
        std::vector<std::string>{"2024-03-01T11:00:00Z", "2024-03-01T11:15:00Z", "2024-03-01T11:30:00Z",
                                 "2024-03-01T11:45:00Z"});
  CHECK(series("cron(5/20 * * * ? *)", "2024-03-01T10:50:00Z", 3) ==
        std::vector<std::string>{"2024-03-01T11:05:00Z", "2024-03-01T11:25:00Z", "2024-03-01T11:45:00Z"});
  CHECK(series("cron(*/30 9-10 * * ? *)", "2024-03-01T00:00:00Z", 5) ==
        std::vector<std::string>{"2024-03-01T09:00:00Z", "2024-03-01T09:30:00Z", "2024-03-01T10:00:00Z",
                                 "2024-03-01T10:30:00Z", "2024-03-02T09:00:00Z"});
  // 2024-03-01 is a Friday: MON-FRI skips the weekend
  CHECK(series("cron(0 8 ? * MON-FRI *)", "2024-03-01T09:00:00Z", 2) ==
        std::vector<std::string>{"2024-03-04T08:00:00Z", "2024-03-05T08:00:00Z"});
  CHECK(next("cron(0 18 ? * SUN,SAT *)", "2024-03-01T00:00:00Z") == "2024-03-02T18:00:00Z");
  CHECK(next("cron(0 18 ? * 1 *)", "2024-03-01T00:00:00Z") == "2024-03-03T18:00:00Z");  // 1 = Sunday
  CHECK(next("cron(0 0 1,15 * ? *)", "2024-03-01T00:00:00Z") == "2024-03-15T00:00:00Z");
  CHECK(next("cron(0 0 1 JUL ? *)", "2024-03-01T00:00:00Z") == "2024-07-01T00:00:00Z");
  CHECK(next("cron(0 0 29 FEB ? *)", "2024-03-01T00:00:00Z") == "2028-02-29T00:00:00Z");  // leap years only
  CHECK(next("cron(0 0 31 * ? *)", "2024-04-01T00:00:00Z") == "2024-05-31T00:00:00Z");   // April has 30
}

TEST_CASE("cron next times: the year field", "[schedule]") {
  CHECK(next("cron(0 9 1 1 ? 2030)", "2024-06-01T00:00:00Z") == "2030-01-01T09:00:00Z");
  CHECK(next("cron(0 9 1 1 ? 2030)", "2030-01-01T09:00:00Z") == "never");
  CHECK(next("cron(0 9 * * ? 2020-2022)", "2024-01-01T00:00:00Z") == "never");
  CHECK(next("cron(0 0 1 1 ? 2025/5)", "2024-01-01T00:00:00Z") == "2025-01-01T00:00:00Z");
  CHECK(next("cron(0 0 1 1 ? 2025/5)", "2025-01-01T00:00:00Z") == "2030-01-01T00:00:00Z");
  CHECK(next("cron(59 23 31 12 ? 2199)", "2024-01-01T00:00:00Z") == "2199-12-31T23:59:00Z");
  CHECK(next("cron(0 0 30 FEB ? *)", "2024-01-01T00:00:00Z") == "never");
}

TEST_CASE("cron next times: L, W, LW, # and dL", "[schedule]") {
  CHECK(series("cron(0 0 L * ? *)", "2024-01-15T00:00:00Z", 3) ==
        std::vector<std::string>{"2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z"});
  CHECK(next("cron(0 0 L FEB ? 2023)", "2023-01-01T00:00:00Z") == "2023-02-28T00:00:00Z");
  // LW: last weekday. 2024-03-31 is a Sunday -> Friday the 29th; 2024-08-31 a Saturday -> the 30th
  CHECK(next("cron(0 0 LW * ? *)", "2024-03-01T00:00:00Z") == "2024-03-29T00:00:00Z");
  CHECK(next("cron(0 0 LW * ? *)", "2024-08-01T00:00:00Z") == "2024-08-30T00:00:00Z");
  CHECK(next("cron(0 0 LW * ? *)", "2024-07-01T00:00:00Z") == "2024-07-31T00:00:00Z");  // a Wednesday
  // W: nearest weekday. 2024-06-15 is a Saturday -> Friday 14th; 2024-09-15 a Sunday -> Monday 16th
  CHECK(next("cron(0 0 15W * ? *)", "2024-06-01T00:00:00Z") == "2024-06-14T00:00:00Z");
  CHECK(next("cron(0 0 15W * ? *)", "2024-09-01T00:00:00Z") == "2024-09-16T00:00:00Z");
  CHECK(next("cron(0 0 15W * ? *)", "2024-05-01T00:00:00Z") == "2024-05-15T00:00:00Z");  // a Wednesday
  // 1W never leaves the month: 2024-06-01 is a Saturday -> Monday the 3rd
  CHECK(next("cron(0 0 1W * ? *)", "2024-05-31T12:00:00Z") == "2024-06-03T00:00:00Z");
  // 31W on a Sunday (2024-03-31) -> Friday the 29th, not April 1st
  CHECK(next("cron(0 0 31W * ? *)", "2024-03-01T00:00:00Z") == "2024-03-29T00:00:00Z");
  // 31W skips months without a 31st
  CHECK(next("cron(0 0 31W * ? *)", "2024-04-01T00:00:00Z") == "2024-05-31T00:00:00Z");
  // #: the n-th weekday. 2#1 = first Monday; 6#3 = third Friday
  CHECK(next("cron(0 9 ? * 2#1 *)", "2024-03-01T00:00:00Z") == "2024-03-04T09:00:00Z");
  CHECK(next("cron(0 9 ? * FRI#3 *)", "2024-03-01T00:00:00Z") == "2024-03-15T09:00:00Z");
  CHECK(series("cron(0 9 ? * 5#5 *)", "2024-01-01T00:00:00Z", 2) ==  // months with a fifth Thursday
        std::vector<std::string>{"2024-02-29T09:00:00Z", "2024-05-30T09:00:00Z"});
  // dL: the last such weekday. 6L = last Friday
  CHECK(next("cron(0 9 ? * 6L *)", "2024-03-01T00:00:00Z") == "2024-03-29T09:00:00Z");
  CHECK(next("cron(0 9 ? * 6L *)", "2024-03-29T09:00:00Z") == "2024-04-26T09:00:00Z");
  CHECK(next("cron(15 10 ? * 6L 2022-2023)", "2023-12-01T00:00:00Z") == "2023-12-29T10:15:00Z");
  CHECK(next("cron(15 10 ? * 6L 2022-2023)", "2023-12-29T10:15:00Z") == "never");
  // L alone in Day-of-week: Saturday
  CHECK(next("cron(0 9 ? * L *)", "2024-03-01T00:00:00Z") == "2024-03-02T09:00:00Z");
}

TEST_CASE("iso times", "[schedule]") {
  CHECK(iso_utc(at("2024-03-01T09:00:00Z")) == "2024-03-01T09:00:00Z");
  CHECK(iso_utc(at("2024-03-01T09:00Z")) == "2024-03-01T09:00:00Z");
  CHECK(iso_utc(at("2024-03-01 09:00:05")) == "2024-03-01T09:00:05Z");
  CHECK_FALSE(parse_iso_utc("2024-02-30T00:00:00Z"));
  CHECK_FALSE(parse_iso_utc("2024-03-01T09:00:00+02:00"));
  CHECK_FALSE(parse_iso_utc("tomorrow"));
}

TEST_CASE("schedules in the stack file", "[schedule][loader]") {
  using namespace stack_test;
  const std::string functions = R"(name: timers
functions:
  hello: {runtime: nodejs20.x, code: code/node-app, handler: index.handler, aliases: {live: $LATEST}}
)";
  auto r = load(functions + R"Y(schedules:
  refresh-cache: {function: hello, qualifier: live, expression: "rate(5 minutes)", input: {refresh: true, n: 2}}
  nightly: {function: "hello:live", expression: "cron(0 3 * * ? *)", enabled: false, description: nightly job}
  raw: {function: hello, expression: "rate(1 day)", input: '{"a": [1, 2]}'}
)Y");
  INFO(report(r));
  REQUIRE(r.ok());
  const auto& s = r.stack->schedules;
  REQUIRE(s.size() == 3);
  CHECK(s.at("refresh-cache").function == "hello");
  CHECK(s.at("refresh-cache").qualifier == "live");
  CHECK(s.at("refresh-cache").expression.rate == std::chrono::minutes(5));
  CHECK(*s.at("refresh-cache").input == R"({"n":2,"refresh":true})");
  CHECK(s.at("refresh-cache").enabled);
  CHECK(s.at("nightly").qualifier == "live");
  CHECK_FALSE(s.at("nightly").enabled);
  CHECK(s.at("nightly").description == "nightly job");
  CHECK(s.at("nightly").expression.kind == ScheduleExpression::Kind::cron);
  CHECK_FALSE(s.at("nightly").input);
  CHECK(*s.at("raw").input == R"({"a":[1,2]})");

  auto bad = load(functions + R"Y(schedules:
  a: {function: hello, expression: "rate(1 minutes)"}
  b: {function: helo, expression: "rate(1 hour)"}
  c: {function: "hello:live", qualifier: live, expression: "rate(1 hour)"}
  d: {function: hello, qualifier: dead, expression: "rate(1 hour)"}
  e: {function: hello, expresion: "rate(1 hour)"}
  f: {function: hello, expression: "rate(1 hour)", enabled: "yes"}
  g: {function: hello, expression: "rate(1 hour)", input: "not json"}
  h: {function: hello, expression: "rate(1 hour)", input: }
  "bad name!": {function: hello, expression: "rate(1 hour)"}
  j: {function: hello, expression: [rate(1 hour)]}
  k: "rate(1 hour)"
)Y");
  REQUIRE_FALSE(bad.ok());
  REQUIRE_ERROR(bad, "schedules.a.expression", "a value of 1 takes the singular unit", 0);
  REQUIRE_ERROR(bad, "schedules.b.function", "unknown function \"helo\"; did you mean 'hello'?", 0);
  REQUIRE_ERROR(bad, "schedules.c.function", "the qualifier is given twice", 0);
  REQUIRE_ERROR(bad, "schedules.d.qualifier", "qualifier \"dead\" is not $LATEST, a version number or an alias", 0);
  REQUIRE_ERROR(bad, "schedules.e.expresion", "unknown key 'expresion'; did you mean 'expression'?", 0);
  REQUIRE_ERROR(bad, "schedules.e", "missing required key 'expression'", 0);
  REQUIRE_ERROR(bad, "schedules.f.enabled", "expected true or false", 0);
  REQUIRE_ERROR(bad, "schedules.g.input", "which is not valid JSON", 0);
  REQUIRE_ERROR(bad, "schedules.h.input", "input is empty", 0);
  REQUIRE_ERROR(bad, "schedules[\"bad name!\"]", "must be 1 to 64 letters, digits, '.', '-' or '_'", 0);
  REQUIRE_ERROR(bad, "schedules.j.expression", "expected rate(value unit) or cron(", 0);
  REQUIRE_ERROR(bad, "schedules.k", "expected a mapping {function, expression", 0);
  // The line of each problem is reported.
  REQUIRE_ERROR(bad, "schedules.a.expression", "", 5);
}
