#include "child_watch.hpp"

#include "sluice/runtime/environment.hpp"

#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <optional>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace sluice::runtime {
namespace {

// Lives as long as the io_context it belongs to, so the SIGCHLD handler never
// outlives the loop that runs it.
class ChildWatchService : public boost::asio::execution_context::service {
 public:
  using key_type = ChildWatchService;
  static boost::asio::execution_context::id id;

  explicit ChildWatchService(boost::asio::execution_context& ctx) : service(ctx) {}

  void start(boost::asio::any_io_executor ex) {
    if (signals_) return;
    executor_ = ex;
    signals_.emplace(ex, SIGCHLD);
    // Freezing and thawing an environment would otherwise raise SIGCHLD twice
    // per invocation; only exits matter here.
    struct sigaction sa {};
    if (::sigaction(SIGCHLD, nullptr, &sa) == 0) {
      sa.sa_flags |= SA_NOCLDSTOP;
      ::sigaction(SIGCHLD, &sa, nullptr);
    }
    arm();
  }
  void shutdown() override {
    if (signals_) {
      boost::system::error_code ignored;
      signals_->cancel(ignored);
    }
    signals_.reset();
    watchers_.clear();
  }

  void watch(pid_t pid, std::function<void(int, long)> fn) {
    int status = 0;
    struct rusage ru {};
    if (::wait4(pid, &status, WNOHANG, &ru) == pid) {
      // Already gone: deliver asynchronously so callers never see re-entrancy.
      boost::asio::post(executor_, [fn = std::move(fn), status, rss = ru.ru_maxrss] { fn(status, rss); });
      return;
    }
    watchers_[pid] = std::move(fn);
  }
  void unwatch(pid_t pid) { watchers_.erase(pid); }

 private:
  void arm() {
    signals_->async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      reap();
      if (signals_) arm();
    });
  }
  void reap() {
    // SIGCHLD also fires on every freeze and thaw; most of the time nothing exited.
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
    std::vector<std::tuple<std::function<void(int, long)>, int, long>> done;
    for (auto it = watchers_.begin(); it != watchers_.end();) {
      int status = 0;
      struct rusage ru {};
      if (::wait4(it->first, &status, WNOHANG, &ru) == it->first) {
        done.emplace_back(std::move(it->second), status, ru.ru_maxrss);
        it = watchers_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [fn, status, rss] : done) fn(status, rss);
  }

  boost::asio::any_io_executor executor_;
  std::optional<boost::asio::signal_set> signals_;
  std::unordered_map<pid_t, std::function<void(int, long)>> watchers_;
};

boost::asio::execution_context::id ChildWatchService::id;

}  // namespace

void install_child_watch(boost::asio::any_io_executor ex) {
  auto& svc = boost::asio::use_service<ChildWatchService>(boost::asio::query(ex, boost::asio::execution::context));
  svc.start(ex);
}

// Per io_context, so that several engines in one process (the Python package
// runs a fresh one per test when asked) each see their own children exit.
void watch_child(boost::asio::any_io_executor ex, pid_t pid, std::function<void(int, long)> on_exit) {
  auto& ctx = boost::asio::query(ex, boost::asio::execution::context);
  if (boost::asio::has_service<ChildWatchService>(ctx))
    boost::asio::use_service<ChildWatchService>(ctx).watch(pid, std::move(on_exit));
}

void unwatch_child(boost::asio::any_io_executor ex, pid_t pid) {
  auto& ctx = boost::asio::query(ex, boost::asio::execution::context);
  if (boost::asio::has_service<ChildWatchService>(ctx)) boost::asio::use_service<ChildWatchService>(ctx).unwatch(pid);
}

}  // namespace sluice::runtime
