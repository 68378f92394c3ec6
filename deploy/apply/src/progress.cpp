#include "progress.hpp"

#include <cstdio>
#include <unistd.h>

namespace sluice::deploy {

Progress::Progress() : tty_(::isatty(2) == 1) {}

void Progress::line(const std::string& text) const {
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
}

std::string human_bytes(std::size_t n) {
  char buf[32];
  if (n >= 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f MB", n / (1024.0 * 1024.0));
  else if (n >= 1024) std::snprintf(buf, sizeof buf, "%.1f kB", n / 1024.0);
  else std::snprintf(buf, sizeof buf, "%zu B", n);
  return buf;
}

void Progress::upload(const std::string& what, std::size_t sent, std::size_t total) {
  if (!tty_ || total == 0) return;
  int percent = static_cast<int>(sent * 100 / total);
  if (percent == last_percent_) return;
  last_percent_ = percent;
  constexpr int width = 30;
  int filled = percent * width / 100;
  std::string bar(filled, '#');
  bar.append(width - filled, ' ');
  std::fprintf(stderr, "\r  uploading %s [%s] %3d%% %s / %s", what.c_str(), bar.c_str(), percent,
               human_bytes(sent).c_str(), human_bytes(total).c_str());
  std::fflush(stderr);
}

void Progress::upload_done(const std::string& what, std::size_t total) {
  if (tty_ && last_percent_ >= 0) std::fprintf(stderr, "\r\033[K");
  last_percent_ = -1;
  line("  uploaded " + what + " (" + human_bytes(total) + ")");
}

}  // namespace sluice::deploy
