#include "state.hpp"

#include <nlohmann/json.hpp>

namespace sluice::deploy {

std::string lock_holder(const std::string& lock_body) {
  auto j = nlohmann::json::parse(lock_body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "an unknown holder (unreadable lock object)";
  std::string out = j.value("holder", std::string("an unknown holder"));
  if (j.contains("since") && j["since"].is_string()) out += " since " + j["since"].get<std::string>();
  return out;
}

}  // namespace sluice::deploy
