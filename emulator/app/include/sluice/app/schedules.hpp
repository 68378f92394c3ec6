// Schedules in a running engine: the line a firing logs, its JSON form, and the
// POST /sluice/schedules/NAME/trigger route of the Invoke API (what
// `sluice trigger schedule NAME --endpoint URL` calls).
#pragma once

#include "sluice/lambda/scheduler.hpp"

#include <string>

namespace sluice::gateway {
class InvokeApi;
}

namespace sluice::app {

// "[schedule NAME] fired at TIME -> FUNCTION (request ID)"
std::string describe_firing(const lambda::Firing& f);
// {"schedule", "function", "time", "requestId", "executedVersion", "functionError", "payload", "event"}
std::string firing_json(const lambda::Firing& f);
// scheduler == nullptr: schedules are disabled (the route answers 409 saying so).
void install_schedule_route(gateway::InvokeApi& invoke_api, lambda::Scheduler* scheduler);

}  // namespace sluice::app
