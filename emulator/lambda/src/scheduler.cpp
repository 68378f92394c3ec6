// The scheduler: one timer for the earliest due schedule, on the service's
// executor; firings go through LambdaService::invoke like any other caller.
#include "sluice/lambda/scheduler.hpp"

#include "sluice/common/log.hpp"
#include "sluice/common/util.hpp"
#include "sluice/lambda/service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <mutex>

namespace sluice::lambda {

namespace asio = boost::asio;
using sys_clock = std::chrono::system_clock;
using std::chrono::sys_seconds;

namespace {

sys_seconds to_seconds(sys_clock::time_point t) { return std::chrono::floor<std::chrono::seconds>(t); }

auto logger() {
  static auto l = log::get("schedules");
  return l;
}

}  // namespace

std::string schedule_rule_arn(const stack::Stack& stack, const std::string& schedule) {
  std::string rule = stack.name.empty() ? schedule : stack.name + "-" + schedule;
  return "arn:aws:events:" + stack.region + ":" + stack.account_id + ":rule/" + rule;
}

std::string scheduled_event(const stack::Stack& stack, const std::string& schedule, sys_clock::time_point time) {
  nlohmann::ordered_json ev = nlohmann::ordered_json::object();
  ev["version"] = "0";
  ev["id"] = new_uuid();
  ev["detail-type"] = "Scheduled Event";
  ev["source"] = "aws.events";
  ev["account"] = stack.account_id;
  ev["time"] = stack::iso_utc(to_seconds(time));
  ev["region"] = stack.region;
  ev["resources"] = nlohmann::ordered_json::array({schedule_rule_arn(stack, schedule)});
  ev["detail"] = nlohmann::ordered_json::object();
  return ev.dump();
}

struct Scheduler::Impl : std::enable_shared_from_this<Impl> {
  struct Entry {
    stack::ScheduleSpec spec;
    sys_seconds anchor;              // rates count from here
    std::optional<sys_seconds> next;  // when running and enabled
  };

  Impl(asio::any_io_executor e, LambdaService& s, const stack::Stack& st, ScheduleClock c)
      : ex(e), service(s), timer(e), clock(c) {
    set_stack(st);
    origin_schedule = clock.start.value_or(sys_clock::now());
    origin_real = std::chrono::steady_clock::now();
  }

  asio::any_io_executor ex;
  LambdaService& service;
  asio::steady_timer timer;
  mutable std::mutex mu;  // guards everything below
  stack::Stack meta;      // name, region, account (schedules live in `entries`)
  std::map<std::string, Entry> entries;
  ScheduleClock clock;
  sys_clock::time_point origin_schedule;
  std::chrono::steady_clock::time_point origin_real;
  bool running = false;
  std::vector<std::function<void(const Firing&)>> listeners;

  void set_stack(const stack::Stack& st) {
    meta.name = st.name;
    meta.region = st.region;
    meta.account_id = st.account_id;
    std::map<std::string, Entry> fresh;
    sys_seconds t = to_seconds(now_locked());
    for (const auto& [name, spec] : st.schedules) {
      Entry e{spec, t, std::nullopt};
      auto old = entries.find(name);
      if (old != entries.end() && old->second.spec.expression.text == spec.expression.text) e.anchor = old->second.anchor;
      fresh.emplace(name, std::move(e));
    }
    entries = std::move(fresh);
  }

  sys_clock::time_point now_locked() const {
    if (origin_schedule == sys_clock::time_point{}) return sys_clock::now();
    auto real = std::chrono::steady_clock::now() - origin_real;
    return origin_schedule + std::chrono::duration_cast<sys_clock::duration>(real * clock.speed);
  }

  // Moves the schedule clock to `t` from this real instant on.
  void rebase_locked(sys_clock::time_point t) {
    origin_schedule = t;
    origin_real = std::chrono::steady_clock::now();
  }

  void recompute_locked() {
    sys_seconds t = to_seconds(now_locked());
    for (auto& [name, e] : entries)
      e.next = running && e.spec.enabled ? stack::next_fire_time(e.spec.expression, e.anchor, t) : std::nullopt;
  }

  // A clock moved by set_time()/advance() fires every time that became due, up to this many per
  // schedule and move (a year of rate(1 minute) would be half a million invocations).
  static constexpr int max_catch_up = 10'000;

  // Fires whatever is due, then waits for the next one. `catch_up`: the clock was moved on
  // purpose (a test's advance), and every period it passed fires, in order; otherwise a late
  // timer fires a schedule once for the periods it missed, as a late rule would.
  void tick(bool catch_up = false) {
    std::vector<std::pair<sys_seconds, std::string>> due;
    {
      std::lock_guard lock(mu);
      if (!running) return;
      sys_seconds t = to_seconds(now_locked());
      for (auto& [name, e] : entries) {
        int fired = 0;
        while (e.next && *e.next <= t) {
          due.emplace_back(*e.next, name);
          bool capped = catch_up && ++fired == max_catch_up;
          if (capped)
            logger()->warn("schedule {}: the clock moved past more than {} of its times; the rest are skipped", name,
                           max_catch_up);
          // Once (a late timer) or past the cap: on to the first time after now.
          if (!catch_up || capped) {
            e.next = stack::next_fire_time(e.spec.expression, e.anchor, t);
            break;
          }
          e.next = stack::next_fire_time(e.spec.expression, e.anchor, *e.next);
        }
      }
    }
    std::stable_sort(due.begin(), due.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [at, name] : due) launch(name, at, false, nullptr);
    arm();
  }

  void arm() {
    std::lock_guard lock(mu);
    timer.cancel();
    if (!running || clock.speed <= 0) return;
    std::optional<sys_seconds> earliest;
    for (const auto& [name, e] : entries)
      if (e.next && (!earliest || *e.next < *earliest)) earliest = e.next;
    if (!earliest) return;
    auto wait = std::chrono::duration<double>(*earliest - now_locked()) / clock.speed;
    if (wait.count() < 0) wait = wait.zero();
    // Long waits are cut short so a clock change or reload never leaves a stale timer for long.
    if (wait > std::chrono::hours(1)) wait = std::chrono::hours(1);
    timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(wait) +
                        std::chrono::milliseconds(1));
    timer.async_wait([w = weak_from_this()](boost::system::error_code ec) {
      if (ec) return;
      if (auto self = w.lock()) self->tick();
    });
  }

  void launch(const std::string& name, sys_clock::time_point at, bool on_demand,
              std::function<void(const Firing&)> done) {
    Firing f;
    f.schedule = name;
    f.time = at;
    f.on_demand = on_demand;
    stack::ScheduleSpec spec;
    std::vector<std::function<void(const Firing&)>> notify;
    {
      std::lock_guard lock(mu);
      notify = listeners;
      auto it = entries.find(name);
      if (it == entries.end()) {
        std::vector<std::string> names;
        for (const auto& [n, e] : entries) names.push_back(n);
        f.error = "no schedule named " + sluice::quoted(name) +
                  (names.empty() ? std::string(" (the stack has no schedules)") : "; schedules: " + join(names, ", "));
      } else {
        spec = it->second.spec;
        f.function = spec.function + (spec.qualifier.empty() ? "" : ":" + spec.qualifier);
        f.event = spec.input ? *spec.input : scheduled_event(meta, name, at);
      }
    }
    if (!f.error.empty()) {
      for (auto& l : notify) l(f);
      if (done) done(f);
      return;
    }
    InvokeRequest req;
    req.function = spec.function;
    req.qualifier = spec.qualifier;
    req.payload = f.event;
    req.type = on_demand ? InvocationType::request_response : InvocationType::event;
    req.source = "schedule " + name;
    asio::co_spawn(
        ex,
        [self = shared_from_this(), req = std::move(req), f = std::move(f), done = std::move(done),
         notify = std::move(notify)]() mutable -> asio::awaitable<void> {
          InvokeResponse res = co_await self->service.invoke(std::move(req));
          if (res.error) {
            f.error = res.error->code + ": " + res.error->message;
          } else {
            f.status = res.status;
            f.request_id = res.request_id;
            f.executed_version = res.executed_version;
            f.function_error = res.function_error;
            f.error_type = res.error_type;
            f.payload = std::move(res.payload);
            f.cold_start = res.cold_start;
            f.duration_ms = res.duration_ms;
          }
          for (auto& l : notify) l(f);
          if (done) done(f);
        },
        asio::detached);
  }
};

Scheduler::Scheduler(asio::any_io_executor ex, LambdaService& service, const stack::Stack& stack, ScheduleClock clock)
    : impl_(std::make_shared<Impl>(ex, service, stack, clock)) {}

Scheduler::~Scheduler() {
  std::lock_guard lock(impl_->mu);
  impl_->running = false;
  impl_->timer.cancel();
}

void Scheduler::start() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->running = true;
    // Rates count from the start; reload keeps these anchors for unchanged schedules.
    auto t = to_seconds(impl_->now_locked());
    for (auto& [name, e] : impl_->entries) e.anchor = t;
    impl_->recompute_locked();
  }
  asio::post(impl_->ex, [w = std::weak_ptr<Impl>(impl_)] {
    if (auto self = w.lock()) self->arm();
  });
}

void Scheduler::reload(const stack::Stack& stack) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->set_stack(stack);
    impl_->recompute_locked();
  }
  asio::post(impl_->ex, [w = std::weak_ptr<Impl>(impl_)] {
    if (auto self = w.lock()) self->arm();
  });
}

void Scheduler::stop() {
  std::lock_guard lock(impl_->mu);
  impl_->running = false;
  impl_->recompute_locked();
  asio::post(impl_->ex, [w = std::weak_ptr<Impl>(impl_)] {
    if (auto self = w.lock()) self->timer.cancel();
  });
}

void Scheduler::fire(const std::string& name, std::function<void(const Firing&)> done) {
  asio::post(impl_->ex, [self = impl_, name, done = std::move(done)]() mutable {
    sys_clock::time_point t;
    {
      std::lock_guard lock(self->mu);
      t = self->now_locked();
    }
    self->launch(name, t, true, std::move(done));
  });
}

void Scheduler::on_firing(std::function<void(const Firing&)> listener) {
  std::lock_guard lock(impl_->mu);
  impl_->listeners.push_back(std::move(listener));
}

sys_clock::time_point Scheduler::now() const {
  std::lock_guard lock(impl_->mu);
  return impl_->now_locked();
}

void Scheduler::set_time(sys_clock::time_point t) {
  {
    std::lock_guard lock(impl_->mu);
    bool backwards = t < impl_->now_locked();
    impl_->rebase_locked(t);
    if (backwards) impl_->recompute_locked();
  }
  asio::post(impl_->ex, [w = std::weak_ptr<Impl>(impl_)] {
    if (auto self = w.lock()) self->tick(true);
  });
}

void Scheduler::advance(sys_clock::duration d) { set_time(now() + d); }

void Scheduler::set_speed(double speed) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->rebase_locked(impl_->now_locked());
    impl_->clock.speed = speed < 0 ? 0 : speed;
  }
  asio::post(impl_->ex, [w = std::weak_ptr<Impl>(impl_)] {
    if (auto self = w.lock()) self->arm();
  });
}

std::vector<std::string> Scheduler::names() const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& [n, e] : impl_->entries) out.push_back(n);
  return out;
}

std::optional<sys_clock::time_point> Scheduler::next_time(const std::string& name) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->entries.find(name);
  if (it == impl_->entries.end() || !it->second.next) return std::nullopt;
  return sys_clock::time_point(*it->second.next);
}

std::optional<std::string> Scheduler::event_for(const std::string& name, sys_clock::time_point time) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->entries.find(name);
  if (it == impl_->entries.end()) return std::nullopt;
  if (it->second.spec.input) return *it->second.spec.input;
  return scheduled_event(impl_->meta, name, time);
}

}  // namespace sluice::lambda
