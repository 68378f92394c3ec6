// What a deploy tells its user, on stderr: a line per step, a bar for uploads (on a
// terminal only; plain lines otherwise, so CI logs stay readable).
#pragma once

#include <cstddef>
#include <string>

namespace sluice::deploy {

class Progress {
 public:
  Progress();
  void line(const std::string& text) const;
  // Upload progress: called with bytes sent and total; draws a bar on a terminal.
  void upload(const std::string& what, std::size_t sent, std::size_t total);
  void upload_done(const std::string& what, std::size_t total);
  bool tty() const { return tty_; }

 private:
  bool tty_ = false;
  mutable int last_percent_ = -1;
};

std::string human_bytes(std::size_t n);

}  // namespace sluice::deploy
