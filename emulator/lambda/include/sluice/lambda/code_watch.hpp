// Watches directory trees (code, layers, the stack file) with inotify so that
// an edit retires the environments running the old code before the next request.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

namespace sluice::lambda {

class CodeWatch {
 public:
  // on_change receives the watched roots under which something changed.
  using Callback = std::function<void(const std::vector<std::filesystem::path>& roots)>;
  CodeWatch(boost::asio::any_io_executor ex, Callback on_change);
  ~CodeWatch();

  void watch_tree(const std::filesystem::path& root);
  void watch_file(const std::filesystem::path& file);  // a single file (watches its directory)
  void clear();
  // Handles events already queued by the kernel, synchronously. Called before
  // serving $LATEST so that a save that completed is never missed.
  void poll();
  bool active() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::lambda
