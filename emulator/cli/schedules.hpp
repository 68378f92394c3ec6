// Schedules in `sluice serve` (timed firings, the admin trigger route) and the
// `sluice trigger schedule` command.
#pragma once

#include "cli.hpp"
#include "sluice/lambda/scheduler.hpp"
#include "sluice/lambda/service.hpp"
#include "sluice/stack/model.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <string>

namespace sluice::gateway {
class InvokeApi;
}

namespace sluice::cli {

// Shared with commands.cpp: the validated stack (the report printed on failure) and
// the service options of serve / invoke.
std::optional<stack::Stack> load_stack(const std::filesystem::path& file);
lambda::ServiceOptions service_options(const Args& a, const stack::Stack& st);

// The scheduler of `serve`, started (unless --no-schedules) with the clock options
// (--schedule-clock, --schedule-speed), logging one line per firing, and the
// POST /sluice/schedules/NAME/trigger route on the Invoke API. nullptr with --no-schedules
// (the route then answers 409 saying so).
std::unique_ptr<lambda::Scheduler> start_schedules(const Args& a, boost::asio::any_io_executor ex,
                                                   lambda::LambdaService& service, const stack::Stack& stack,
                                                   gateway::InvokeApi& invoke_api,
                                                   std::function<void(const std::string&)> log_line);

}  // namespace sluice::cli
