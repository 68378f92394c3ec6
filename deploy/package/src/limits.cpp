// Lambda's deployment package quotas, checked before anything is uploaded.
#include "sluice/package/package.hpp"

#include <cstdio>

namespace sluice::package {

std::string format_mb(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

bool needs_s3(const Archive& archive) { return archive.bytes.size() > kDirectUploadLimit; }

void check_limits(const std::string& function, const Archive& code, const std::vector<const Archive*>& layers) {
  const std::string who = "function " + function + ": ";
  if (layers.size() > kMaxLayers)
    throw LimitError(who + std::to_string(layers.size()) + " layers; Lambda allows " + std::to_string(kMaxLayers));
  std::uint64_t total = code.unzipped_size;
  for (const Archive* layer : layers)
    if (layer) total += layer->unzipped_size;
  if (total <= kUnzippedLimit) return;
  std::string size = format_mb(total);
  // 250.04 MB prints as "250.0 MB": give the bytes so the message does not look self-contradictory.
  if (size == format_mb(kUnzippedLimit)) size += " (" + std::to_string(total) + " bytes)";
  std::string msg = who + size + " unzipped";
  if (!layers.empty())
    msg += " with its " + std::to_string(layers.size()) + (layers.size() == 1 ? " layer" : " layers");
  msg += "; Lambda allows " + std::to_string(kUnzippedLimit / (1024 * 1024)) + " MB";
  throw LimitError(msg);
}

}  // namespace sluice::package
