// Ids API Gateway makes up at random (resourceId, deploymentId), made stable
// here so that one resource shows the same id in every event of a run.
#pragma once

#include <string>
#include <string_view>

namespace sluice::gateway {

std::string resource_style_id(std::string_view seed);

}  // namespace sluice::gateway
