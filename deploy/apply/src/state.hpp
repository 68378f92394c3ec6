// Where deploy keeps its records in the deployment bucket, and the lock of a stage.
#pragma once

#include <stdexcept>
#include <string>

namespace sluice::deploy {

// The stage is being deployed by someone else, past the lock timeout.
struct LockError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline std::string state_current_key(const std::string& stage) { return "state/" + stage + "/current.json"; }
inline std::string state_history_key(const std::string& stage, const std::string& stamp) {
  return "state/" + stage + "/history/" + stamp + ".json";
}
inline std::string state_lock_key(const std::string& stage) { return "state/" + stage + "/lock"; }

// "alice@build-7 pid 4242 since 2026-11-21T08:00:00.000Z" from a lock object's body.
std::string lock_holder(const std::string& lock_body);

}  // namespace sluice::deploy
