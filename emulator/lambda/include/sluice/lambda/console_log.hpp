// Where Lambda log lines go: a terminal or file, written by a background
// thread so that a slow console never stalls the io thread. When its queue is
// full the sink stops accepting and environments stop reading handler output,
// so a handler that floods stdout is slowed down instead of losing lines.
#pragma once

#include "sluice/runtime/types.hpp"

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace sluice::lambda {

class ConsoleLogSink : public runtime::LogSink {
 public:
  enum class Style {
    tagged,  // "[function 1a2b3c4d] line" (serve)
    raw,     // the line as AWS logs it (invoke)
  };
  ConsoleLogSink(std::FILE* out, Style style, std::size_t max_queued_bytes = 8 * 1024 * 1024);
  ~ConsoleLogSink() override;

  void write(const runtime::LogLine& line) override;
  // A line of sluice's own output (access log, reload notices), written in order with the rest.
  void write_text(std::string line);
  bool accepting() const override;
  void flush();  // waits until everything queued is written

 private:
  void run();
  void enqueue(std::string text);
  std::FILE* out_;
  Style style_;
  std::size_t max_bytes_;
  mutable std::mutex mu_;
  std::condition_variable cv_, drained_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sluice::lambda
