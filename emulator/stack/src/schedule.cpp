// Schedule expressions as EventBridge reads them (rate and six-field cron).
#include "sluice/stack/schedule.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <vector>

namespace sluice::stack {

namespace {

using namespace std::chrono;

std::string_view trim_view(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::vector<std::string> split_on(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct FieldSpec {
  const char* name;  // "Minutes"
  int lo, hi;
  const char* const* names = nullptr;  // JAN..DEC or SUN..SAT, mapped to lo..
  int name_count = 0;
};

const char* const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
const char* const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

const FieldSpec minutes_field{"Minutes", 0, 59};
const FieldSpec hours_field{"Hours", 0, 23};
const FieldSpec dom_field{"Day-of-month", 1, 31};
const FieldSpec month_field{"Month", 1, 12, month_names, 12};
const FieldSpec dow_field{"Day-of-week", 1, 7, day_names, 7};
const FieldSpec year_field{"Year", 1970, 2199};

std::string allowed_values(const FieldSpec& f) {
  std::string s = std::to_string(f.lo) + "-" + std::to_string(f.hi);
  if (f.names) s += std::string(" or ") + f.names[0] + "-" + f.names[f.name_count - 1];
  return s;
}

// One value: a number or a name. Sets `error` when it is neither or out of range.
std::optional<int> value_of(const FieldSpec& f, const std::string& text, std::string& error) {
  if (all_digits(text)) {
    int v = std::stoi(text);
    if (v < f.lo || v > f.hi) {
      error = std::string(f.name) + " field: " + text + " is out of range; allowed: " + allowed_values(f);
      return std::nullopt;
    }
    return v;
  }
  if (f.names) {
    std::string u = upper(text);
    for (int i = 0; i < f.name_count; ++i)
      if (u == f.names[i]) return f.lo + i;
  }
  error = std::string(f.name) + " field: '" + text + "' is not a valid value; allowed: " + allowed_values(f);
  return std::nullopt;
}

// A list of items: *, a, a-b, with an optional /n increment. Sets bits lo..hi in `out`.
bool parse_list(const FieldSpec& f, const std::string& text, std::vector<bool>& out, std::string& error) {
  out.assign(static_cast<std::size_t>(f.hi + 1), false);
  for (const auto& item : split_on(text, ',')) {
    if (item.empty()) {
      error = std::string(f.name) + " field: empty item in '" + text + "'";
      return false;
    }
    std::string range = item;
    int step = 1;
    if (auto slash = item.find('/'); slash != std::string::npos) {
      range = item.substr(0, slash);
      std::string inc = item.substr(slash + 1);
      if (!all_digits(inc) || std::stoi(inc) < 1) {
        error = std::string(f.name) + " field: the increment in '" + item + "' must be a whole number of at least 1";
        return false;
      }
      step = std::stoi(inc);
    }
    int a = f.lo, b = f.hi;
    if (range == "*") {
    } else if (auto dash = range.find('-'); dash != std::string::npos && dash > 0) {
      auto lo = value_of(f, range.substr(0, dash), error);
      if (!lo) return false;
      auto hi = value_of(f, range.substr(dash + 1), error);
      if (!hi) return false;
      if (*hi < *lo) {
        error = std::string(f.name) + " field: the range '" + range + "' runs backwards; write the smaller value first";
        return false;
      }
      a = *lo;
      b = *hi;
    } else {
      auto v = value_of(f, range, error);
      if (!v) return false;
      a = *v;
      // "5/15" means from 5 every 15 up to the end of the range.
      b = item.find('/') != std::string::npos ? f.hi : *v;
    }
    for (int v = a; v <= b; v += step) out[static_cast<std::size_t>(v)] = true;
  }
  return true;
}

template <std::size_t N>
void copy_bits(const std::vector<bool>& in, std::bitset<N>& out, int offset = 0) {
  for (std::size_t i = 0; i < in.size(); ++i)
    if (in[i] && i >= static_cast<std::size_t>(offset)) out.set(i - static_cast<std::size_t>(offset));
}

std::variant<ScheduleExpression, std::string> parse_rate(std::string_view inner, const std::string& text) {
  auto w = words(inner);
  const std::string usage = "; write rate(value unit) with a unit of minute(s), hour(s) or day(s), e.g. rate(5 minutes)";
  if (w.size() != 2) return "rate expression " + text + " needs a value and a unit" + usage;
  if (!all_digits(w[0]) || std::stoll(w[0]) < 1)
    return "rate expression " + text + ": the value must be a positive whole number, found '" + w[0] + "'" + usage;
  long long value = std::stoll(w[0]);
  const std::string& unit = w[1];
  long long per = 0;
  bool plural = false;
  if (unit == "minute" || unit == "minutes") per = 1, plural = unit == "minutes";
  else if (unit == "hour" || unit == "hours") per = 60, plural = unit == "hours";
  else if (unit == "day" || unit == "days") per = 1440, plural = unit == "days";
  else
    return "rate expression " + text + ": unknown unit '" + unit + "'; allowed: minute, minutes, hour, hours, day, days";
  std::string singular = plural ? unit.substr(0, unit.size() - 1) : unit;
  if (value == 1 && plural)
    return "rate expression " + text + ": a value of 1 takes the singular unit, as EventBridge requires: rate(1 " +
           singular + ")";
  if (value > 1 && !plural)
    return "rate expression " + text + ": a value above 1 takes the plural unit, as EventBridge requires: rate(" +
           w[0] + " " + singular + "s)";
  if (value * per > 100LL * 366 * 1440)
    return "rate expression " + text + " is longer than 100 years";
  ScheduleExpression e;
  e.kind = ScheduleExpression::Kind::rate;
  e.text = text;
  e.rate = minutes(value * per);
  return e;
}

std::variant<ScheduleExpression, std::string> parse_cron(std::string_view inner, const std::string& text) {
  auto w = words(inner);
  if (w.size() != 6) {
    std::string msg = "cron expression " + text + " has " + std::to_string(w.size()) + " field" +
                      (w.size() == 1 ? "" : "s") +
                      "; EventBridge takes six: Minutes Hours Day-of-month Month Day-of-week Year, e.g. "
                      "cron(0 12 * * ? *)";
    if (w.size() == 5) msg += " (the Year field is required: use * for every year)";
    return msg;
  }
  ScheduleExpression e;
  e.kind = ScheduleExpression::Kind::cron;
  e.text = text;
  CronFields& c = e.cron;
  std::string error;
  auto fail = [&]() -> std::variant<ScheduleExpression, std::string> {
    return "cron expression " + text + ": " + error;
  };
  std::vector<bool> bits;

  if (w[0] == "?" || w[1] == "?" || w[3] == "?" || w[5] == "?") {
    const char* which = w[0] == "?" ? "Minutes" : w[1] == "?" ? "Hours" : w[3] == "?" ? "Month" : "Year";
    error = std::string(which) + " field: '?' is only allowed in Day-of-month and Day-of-week";
    return fail();
  }
  if (!parse_list(minutes_field, w[0], bits, error)) return fail();
  copy_bits(bits, c.minutes);
  if (!parse_list(hours_field, w[1], bits, error)) return fail();
  copy_bits(bits, c.hours);
  if (!parse_list(month_field, w[3], bits, error)) return fail();
  copy_bits(bits, c.months);
  if (!parse_list(year_field, w[5], bits, error)) return fail();
  copy_bits(bits, c.years, 1970);

  const std::string& dom = w[2];
  const std::string& dow = w[4];
  if (dom == "?" && dow == "?") {
    error = "Day-of-month and Day-of-week cannot both be '?': set one of them (use * for every day)";
    return fail();
  }
  if (dom != "?" && dow != "?") {
    error = "one of Day-of-month and Day-of-week must be '?' (found '" + dom + "' and '" + dow +
            "'), e.g. cron(0 12 * * ? *) or cron(0 12 ? * MON-FRI *)";
    return fail();
  }
  if (dow == "?") {
    std::string u = upper(dom);
    if (u == "L") {
      c.last_day = true;
    } else if (u == "LW") {
      c.last_weekday = true;
    } else if (u.size() > 1 && u.back() == 'W') {
      std::string n = u.substr(0, u.size() - 1);
      if (!all_digits(n) || std::stoi(n) < 1 || std::stoi(n) > 31) {
        error = "Day-of-month field: W takes a single day from 1 to 31 (e.g. 15W, the weekday nearest the 15th), "
                "found '" + dom + "'";
        return fail();
      }
      c.nearest_weekday = std::stoi(n);
    } else if (u.find('L') != std::string::npos || u.find('W') != std::string::npos || u.find('#') != std::string::npos) {
      error = "Day-of-month field: '" + dom +
              "' is not valid; L (last day), LW (last weekday) and NW (weekday nearest day N) stand alone, "
              "# belongs to Day-of-week";
      return fail();
    } else {
      if (!parse_list(dom_field, dom, bits, error)) return fail();
      copy_bits(bits, c.days);
    }
  } else {
    c.day_of_month_any = true;
    std::string u = upper(dow);
    if (u == "L") {
      c.weekdays.set(7);  // L alone is the last day of the week, Saturday
    } else if (u.find('#') != std::string::npos && u.find(',') != std::string::npos) {
      error = "Day-of-week field: with # the field holds one expression only (e.g. 3#2, the second Tuesday); '" +
              dow + "' holds a list";
      return fail();
    } else if (auto hash = u.find('#'); hash != std::string::npos) {
      auto d = value_of(dow_field, u.substr(0, hash), error);
      if (!d) return fail();
      std::string n = u.substr(hash + 1);
      if (!all_digits(n) || std::stoi(n) < 1 || std::stoi(n) > 5) {
        error = "Day-of-week field: in '" + dow + "' the number after # must be 1 to 5 (the n-th such day of the month)";
        return fail();
      }
      c.nth_weekday = *d;
      c.nth = std::stoi(n);
    } else if (u.size() > 1 && u.back() == 'L') {
      auto d = value_of(dow_field, u.substr(0, u.size() - 1), error);
      if (!d) return fail();
      c.last_of_weekday = *d;
    } else if (u.find('W') != std::string::npos && u.find("WED") == std::string::npos) {
      error = "Day-of-week field: W belongs to Day-of-month (e.g. 15W), found '" + dow + "'";
      return fail();
    } else {
      if (!parse_list(dow_field, dow, bits, error)) return fail();
      copy_bits(bits, c.weekdays);
    }
  }
  return e;
}

int days_in_month(int y, unsigned m) {
  return static_cast<int>(static_cast<unsigned>((year{y} / month{m} / last).day()));
}

// 1 = Sunday .. 7 = Saturday
int weekday_of(int y, unsigned m, int d) {
  return static_cast<int>(weekday{sys_days{year{y} / month{m} / day{static_cast<unsigned>(d)}}}.c_encoding()) + 1;
}

bool day_matches(const CronFields& c, int y, unsigned m, int d) {
  int dim = days_in_month(y, m);
  if (c.day_of_month_any) {
    int wd = weekday_of(y, m, d);
    if (c.last_of_weekday) return wd == c.last_of_weekday && d + 7 > dim;
    if (c.nth_weekday) return wd == c.nth_weekday && (d - 1) / 7 + 1 == c.nth;
    return c.weekdays.test(static_cast<std::size_t>(wd));
  }
  if (c.last_day) return d == dim;
  if (c.last_weekday) {
    int last = dim, wd = weekday_of(y, m, dim);
    if (wd == 7) last = dim - 1;
    if (wd == 1) last = dim - 2;
    return d == last;
  }
  if (c.nearest_weekday) {
    int n = c.nearest_weekday;
    if (n > dim) return false;
    int wd = weekday_of(y, m, n), target = n;
    if (wd == 7) target = n > 1 ? n - 1 : n + 2;    // Saturday: the Friday before, unless that leaves the month
    if (wd == 1) target = n < dim ? n + 1 : n - 2;  // Sunday: the Monday after, unless that leaves the month
    return d == target;
  }
  return c.days.test(static_cast<std::size_t>(d));
}

}  // namespace

std::variant<ScheduleExpression, std::string> parse_schedule_expression(std::string_view raw) {
  std::string_view t = trim_view(raw);
  std::string text(t);
  auto shown = text.size() > 80 ? text.substr(0, 77) + "..." : text;
  const std::string allowed =
      "expected rate(value unit), e.g. rate(5 minutes), or cron(Minutes Hours Day-of-month Month Day-of-week Year), "
      "e.g. cron(0 12 * * ? *)";
  if (t.empty()) return allowed + ", found nothing";
  if (t.size() > 256) return "schedule expression is longer than 256 characters";
  if (t.back() != ')') return allowed + ", found \"" + shown + "\"";
  if (t.substr(0, 5) == "rate(") return parse_rate(t.substr(5, t.size() - 6), text);
  if (t.substr(0, 5) == "cron(") return parse_cron(t.substr(5, t.size() - 6), text);
  if (t.substr(0, 3) == "at(")
    return "one-time at(...) schedules belong to EventBridge Scheduler, not to scheduled rules; " + allowed;
  return allowed + ", found \"" + shown + "\"";
}

std::optional<sys_seconds> next_cron_time(const CronFields& c, sys_seconds after) {
  sys_seconds start = floor<minutes>(after) + minutes(1);
  sys_days day_point = floor<days>(start);
  auto tod = start - sys_seconds(day_point);
  int h0 = static_cast<int>(duration_cast<hours>(tod).count());
  int m0 = static_cast<int>(duration_cast<minutes>(tod).count() % 60);
  year_month_day ymd{day_point};
  int y = static_cast<int>(ymd.year());
  unsigned m = static_cast<unsigned>(ymd.month());
  int d = static_cast<int>(static_cast<unsigned>(ymd.day()));
  if (y < 1970) y = 1970, m = 1, d = 1, h0 = 0, m0 = 0;
  while (y <= 2199) {
    if (!c.years.test(static_cast<std::size_t>(y - 1970))) {
      ++y, m = 1, d = 1, h0 = 0, m0 = 0;
      continue;
    }
    if (!c.months.test(m)) {
      if (++m > 12) ++y, m = 1;
      d = 1, h0 = 0, m0 = 0;
      continue;
    }
    if (day_matches(c, y, m, d)) {
      for (int h = h0; h < 24; ++h) {
        if (!c.hours.test(static_cast<std::size_t>(h))) continue;
        for (int mi = (h == h0 ? m0 : 0); mi < 60; ++mi)
          if (c.minutes.test(static_cast<std::size_t>(mi)))
            return sys_seconds(sys_days{year{y} / month{m} / day{static_cast<unsigned>(d)}}) + hours(h) + minutes(mi);
      }
    }
    h0 = 0, m0 = 0;
    if (++d > days_in_month(y, m)) {
      d = 1;
      if (++m > 12) ++y, m = 1;
    }
  }
  return std::nullopt;
}

std::optional<sys_seconds> next_fire_time(const ScheduleExpression& expr, sys_seconds anchor, sys_seconds after) {
  if (expr.kind == ScheduleExpression::Kind::cron) return next_cron_time(expr.cron, after);
  if (expr.rate.count() <= 0) return std::nullopt;
  auto period = duration_cast<seconds>(expr.rate);
  if (after < anchor) return anchor + period;
  auto k = (after - anchor) / period + 1;
  return anchor + k * period;
}

std::string iso_utc(sys_seconds t) {
  std::time_t tt = static_cast<std::time_t>(t.time_since_epoch().count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<sys_seconds> parse_iso_utc(std::string_view text) {
  std::string s(trim_view(text));
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  char sep = 0;
  int used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &sec, &used) == 7) {
  } else if (sec = 0, std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &used) == 6) {
  } else {
    return std::nullopt;
  }
  std::string rest = s.substr(static_cast<std::size_t>(used));
  if (!(rest.empty() || rest == "Z" || rest == "z" || rest == "+00:00")) return std::nullopt;
  if (sep != 'T' && sep != ' ') return std::nullopt;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 59 || h < 0 || mi < 0 || sec < 0) return std::nullopt;
  return sys_seconds(sys_days{ymd}) + hours(h) + minutes(mi) + seconds(sec);
}

}  // namespace sluice::stack
