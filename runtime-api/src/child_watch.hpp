#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <sys/types.h>

#include <functional>

namespace sluice::runtime {
// on_exit receives the wait status; called on the io thread.
void watch_child(boost::asio::any_io_executor ex, pid_t pid, std::function<void(int)> on_exit);
void unwatch_child(boost::asio::any_io_executor ex, pid_t pid);
}  // namespace sluice::runtime
