// Running several coroutines at once and waiting for all of them (shutdown's drains).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <memory>
#include <vector>

namespace sluice {

// Starts every task on `ex` at once and returns when all have ended; an exception one of them
// threw is not passed on (each task's own error handling applies). For a single-threaded
// executor, as sluice's engine runs on.
inline boost::asio::awaitable<void> await_all(boost::asio::any_io_executor ex,
                                              std::vector<boost::asio::awaitable<void>> tasks) {
  struct State {
    std::size_t pending;
    boost::asio::steady_timer wake;
  };
  auto state = std::make_shared<State>(State{tasks.size(), boost::asio::steady_timer(ex)});
  state->wake.expires_at(boost::asio::steady_timer::time_point::max());
  for (auto& task : tasks)
    boost::asio::co_spawn(ex, std::move(task), [state](std::exception_ptr) {
      if (--state->pending == 0) state->wake.cancel();
    });
  while (state->pending > 0) co_await state->wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
}

}  // namespace sluice
