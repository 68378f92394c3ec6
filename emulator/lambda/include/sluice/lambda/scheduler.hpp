// Schedules of the stack (EventBridge scheduled rules): fires each enabled one
// at its rate(...) or cron(...) times, invoking its function asynchronously
// (InvocationType Event) with the "Scheduled Event" or the constant input,
// and fires any one on demand. Its clock can be moved for tests: a different
// start time, a speed (schedule seconds per real second; 0 freezes it) and
// explicit advances. Thread-safe: every method may be called from any thread.
#pragma once

#include "sluice/stack/model.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::lambda {

class LambdaService;

struct ScheduleClock {
  std::optional<std::chrono::system_clock::time_point> start;  // schedule time at start(); default: the real time
  double speed = 1.0;  // schedule seconds per real second; 0 = a fixed clock that only advance()/set_time() move
};

// One firing of a schedule and what came of it.
struct Firing {
  std::string schedule;
  std::string function;  // as invoked: "name" or "name:qualifier"
  std::chrono::system_clock::time_point time;  // the scheduled time (the event's "time")
  std::string event;                           // the payload sent
  bool on_demand = false;                      // fire() rather than the clock
  std::string error;           // not invoked: unknown schedule, or the service refused (code: message)
  unsigned status = 0;         // 202 for timed firings (queued), 200 for on-demand ones
  std::string request_id;
  std::string executed_version;  // on demand
  bool function_error = false;   // on demand: the function failed
  std::string error_type;        // on demand, when it failed: e.g. Runtime.ExitError (empty: Unhandled)
  std::string payload;           // on demand: what the function returned
  bool cold_start = false;
  double duration_ms = 0;
};

class Scheduler {
 public:
  Scheduler(boost::asio::any_io_executor ex, LambdaService& service, const stack::Stack& stack,
            ScheduleClock clock = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Starts firing on time (rates count from here, as a rule's do from its creation).
  void start();
  // New schedules start counting now; unchanged ones keep their times; removed ones stop.
  void reload(const stack::Stack& stack);
  void stop();

  // Fires one now, synchronously (RequestResponse), so the caller gets the function's answer;
  // disabled schedules fire too. `done` runs on the executor.
  void fire(const std::string& name, std::function<void(const Firing&)> done);
  // Every firing, timed or on demand (for the serve log).
  void on_firing(std::function<void(const Firing&)> listener);

  // The schedule clock.
  std::chrono::system_clock::time_point now() const;
  void set_time(std::chrono::system_clock::time_point t);  // fires what became due, if running
  void advance(std::chrono::system_clock::duration d);     // likewise
  void set_speed(double speed);

  std::vector<std::string> names() const;
  // Next time a schedule fires on its own (nullopt: disabled, unknown, not running, or never again).
  std::optional<std::chrono::system_clock::time_point> next_time(const std::string& name) const;
  // The payload a firing at `time` would send: the constant input, or the Scheduled Event.
  std::optional<std::string> event_for(const std::string& name, std::chrono::system_clock::time_point time) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The EventBridge "Scheduled Event" for a rule of this stack.
std::string scheduled_event(const stack::Stack& stack, const std::string& schedule,
                            std::chrono::system_clock::time_point time);
// arn:aws:events:REGION:ACCOUNT:rule/STACK-SCHEDULE
std::string schedule_rule_arn(const stack::Stack& stack, const std::string& schedule);

}  // namespace sluice::lambda
