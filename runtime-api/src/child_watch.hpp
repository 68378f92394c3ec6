#pragma once
#include <sys/types.h>

#include <functional>

namespace sluice::runtime {
// on_exit receives the wait status; called on the io thread.
void watch_child(pid_t pid, std::function<void(int)> on_exit);
void unwatch_child(pid_t pid);
}  // namespace sluice::runtime
