// EventBridge schedule expressions: rate(value unit) and the six-field
// cron(Minutes Hours Day-of-month Month Day-of-week Year), with AWS's rules
// and wildcards (? L W # , - * /), always in UTC. Parsing and next-fire-time
// computation are pure functions so they can be tested without clocks.
#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace sluice::stack {

struct CronFields {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;       // 1..31 (day-of-month values, ranges, lists)
  std::bitset<13> months;     // 1..12
  std::bitset<8> weekdays;    // 1..7, 1 = Sunday (AWS's numbering)
  std::bitset<230> years;     // 1970..2199, index = year - 1970
  bool day_of_month_any = false;  // '?' in day-of-month: days come from day-of-week
  bool last_day = false;          // L in day-of-month
  bool last_weekday = false;      // LW in day-of-month: the last Monday-to-Friday day
  int nearest_weekday = 0;        // NW in day-of-month: the weekday nearest day N, within the month
  int last_of_weekday = 0;        // dL in day-of-week: the last weekday d of the month (1..7)
  int nth_weekday = 0, nth = 0;   // d#n in day-of-week: the n-th weekday d of the month
};

struct ScheduleExpression {
  enum class Kind { rate, cron };
  Kind kind = Kind::rate;
  std::string text;  // as written, e.g. "rate(5 minutes)"
  std::chrono::minutes rate{0};
  CronFields cron;
};

// The expression, or a message saying what is wrong and what is allowed.
std::variant<ScheduleExpression, std::string> parse_schedule_expression(std::string_view text);

// The first minute strictly after `after` that the cron expression selects, or
// nullopt when there is none (a year range in the past, 30 FEB, ...).
std::optional<std::chrono::sys_seconds> next_cron_time(const CronFields& cron, std::chrono::sys_seconds after);

// Next firing of any schedule expression. Rates count from `anchor` (when the
// schedule was created or loaded, as on AWS): anchor + k * rate, the first one after `after`.
std::optional<std::chrono::sys_seconds> next_fire_time(const ScheduleExpression& expr, std::chrono::sys_seconds anchor,
                                                       std::chrono::sys_seconds after);

// "2024-03-01T09:00:00Z"
std::string iso_utc(std::chrono::sys_seconds t);
// Parses "2024-03-01T09:00:00Z" (also "2024-03-01T09:00Z", "2024-03-01 09:00:00"); nullopt otherwise.
std::optional<std::chrono::sys_seconds> parse_iso_utc(std::string_view text);

}  // namespace sluice::stack
