#include "sluice/lambda/console_log.hpp"

namespace sluice::lambda {

ConsoleLogSink::ConsoleLogSink(std::FILE* out, Style style, std::size_t max_queued_bytes)
    : out_(out), style_(style), max_bytes_(max_queued_bytes), thread_([this] { run(); }) {}

ConsoleLogSink::~ConsoleLogSink() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ConsoleLogSink::write(const runtime::LogLine& line) {
  // One log record may hold several lines joined with \r (how runtimes keep a
  // traceback in one CloudWatch event); on a terminal each gets its own line.
  std::string prefix;
  if (style_ == Style::tagged) {
    prefix.push_back('[');
    prefix.append(line.function);
    if (line.version != "$LATEST") {
      prefix.push_back(':');
      prefix.append(line.version);
    }
    if (!line.request_id.empty()) {
      prefix.push_back(' ');
      prefix.append(line.request_id.substr(0, 8));
    }
    prefix += "] ";
  }
  std::string text;
  text.reserve(line.text.size() + prefix.size() + 1);
  std::size_t start = 0;
  while (true) {
    auto cr = line.text.find('\r', start);
    text += prefix;
    if (cr == std::string_view::npos) {
      text.append(line.text.substr(start));
      text.push_back('\n');
      break;
    }
    text.append(line.text.substr(start, cr - start));
    text.push_back('\n');
    start = cr + 1;
  }
  enqueue(std::move(text));
}

// The writer wakes on its own every few milliseconds; waking it for every line
// cost a futex call and two context switches per line under load.
void ConsoleLogSink::enqueue(std::string text) {
  bool wake;
  {
    std::lock_guard lk(mu_);
    queued_bytes_ += text.size();
    queue_.push_back(std::move(text));
    wake = queued_bytes_ > 256 * 1024;
  }
  if (wake) cv_.notify_one();
}

void ConsoleLogSink::write_text(std::string line) {
  line.push_back('\n');
  enqueue(std::move(line));
}

bool ConsoleLogSink::accepting() const {
  std::lock_guard lk(mu_);
  return queued_bytes_ < max_bytes_;
}

void ConsoleLogSink::flush() {
  std::unique_lock lk(mu_);
  cv_.notify_one();
  drained_.wait(lk, [&] { return queue_.empty() && !writing_; });
  std::fflush(out_);
}

void ConsoleLogSink::run() {
  std::unique_lock lk(mu_);
  while (true) {
    cv_.wait_for(lk, std::chrono::milliseconds(10), [&] { return stop_ || queued_bytes_ > 256 * 1024; });
    if (queue_.empty() && !stop_) continue;
    if (queue_.empty() && stop_) break;
    std::deque<std::string> batch;
    batch.swap(queue_);
    writing_ = true;
    lk.unlock();
    std::size_t bytes = 0;
    for (auto& s : batch) {
      std::fwrite(s.data(), 1, s.size(), out_);
      bytes += s.size();
    }
    std::fflush(out_);
    lk.lock();
    queued_bytes_ -= bytes;
    writing_ = false;
    if (queue_.empty()) drained_.notify_all();
  }
  drained_.notify_all();
}

}  // namespace sluice::lambda
