#include "sluice/app/schedules.hpp"

#include "sluice/common/util.hpp"
#include "sluice/gateway/invoke_api.hpp"
#include "sluice/stack/schedule.hpp"

#include <nlohmann/json.hpp>

#include <optional>

namespace sluice::app {

using json = nlohmann::json;

namespace {

// "/sluice/schedules/NAME/trigger" -> NAME
std::optional<std::string> trigger_route(const std::string& path) {
  const std::string prefix = "/sluice/schedules/", suffix = "/trigger";
  if (!starts_with(path, prefix) || !ends_with(path, suffix) || path.size() <= prefix.size() + suffix.size())
    return std::nullopt;
  return url_decode(path.substr(prefix.size(), path.size() - prefix.size() - suffix.size()));
}

}  // namespace

std::string describe_firing(const lambda::Firing& f) {
  std::string when = stack::iso_utc(std::chrono::floor<std::chrono::seconds>(f.time));
  std::string head = "[schedule " + f.schedule + "] " + (f.on_demand ? "triggered" : "fired") + " at " + when;
  if (!f.error.empty()) return head + ": " + f.error;
  head += " -> " + f.function + " (request " + f.request_id + ")";
  if (f.on_demand) head += f.function_error ? " failed" : " succeeded";
  return head;
}

std::string firing_json(const lambda::Firing& f) {
  json out = {{"schedule", f.schedule},
              {"function", f.function},
              {"time", stack::iso_utc(std::chrono::floor<std::chrono::seconds>(f.time))},
              {"requestId", f.request_id},
              {"executedVersion", f.executed_version},
              {"functionError", f.function_error ? json("Unhandled") : json(nullptr)},
              {"payload", f.payload}};
  json ev = json::parse(f.event, nullptr, false);
  out["event"] = ev.is_discarded() ? json(f.event) : ev;
  return out.dump();
}

void install_schedule_route(gateway::InvokeApi& invoke_api, lambda::Scheduler* scheduler) {
  invoke_api.set_admin_handler([scheduler](const std::string& method, const std::string& path,
                                           gateway::InvokeApi::Reply reply) {
    auto name = trigger_route(path);
    if (!name) return false;
    if (method != "POST") {
      reply(405, json{{"message", "use POST to trigger a schedule"}}.dump());
      return true;
    }
    if (!scheduler) {
      reply(409, json{{"message", "schedules are disabled (sluice serve --no-schedules)"}}.dump());
      return true;
    }
    scheduler->fire(*name, [reply](const lambda::Firing& f) {
      if (!f.error.empty()) {
        reply(f.function.empty() ? 404 : 500, json{{"message", f.error}}.dump());
        return;
      }
      reply(200, firing_json(f));
    });
    return true;
  });
}

}  // namespace sluice::app
