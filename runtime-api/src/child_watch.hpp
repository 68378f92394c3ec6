#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <sys/types.h>

#include <functional>

namespace sluice::runtime {
// on_exit receives the wait status and the child's peak resident memory in KiB (ru_maxrss:
// the process itself, read as it is reaped, when /proc no longer has it); called on the io thread.
void watch_child(boost::asio::any_io_executor ex, pid_t pid, std::function<void(int, long)> on_exit);
void unwatch_child(boost::asio::any_io_executor ex, pid_t pid);
}  // namespace sluice::runtime
