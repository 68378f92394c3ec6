// The schedule options of `sluice serve` and the `sluice trigger schedule` command
// (the engine runs the scheduler and its trigger route: sluice/app/schedules.hpp).
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

// --schedule-clock and --schedule-speed (serve, trigger).
lambda::ScheduleClock clock_options(const Args& a);

// The marker a running `sluice serve` keeps in its state directory (STATE/serve.json: pid,
// stack file, Lambda URL), through which `sluice trigger` finds the serve of the same stack.
void write_serve_marker(const std::filesystem::path& state_dir, const std::filesystem::path& stack,
                        const std::string& lambda_url);
// Removes it if it still names this process.
void remove_serve_marker(const std::filesystem::path& state_dir);

}  // namespace sluice::cli
