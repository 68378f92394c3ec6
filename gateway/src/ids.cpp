#include "ids.hpp"

#include <cstdint>

namespace sluice::gateway {

std::string resource_style_id(std::string_view seed) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : seed) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out(6, '0');
  for (auto& c : out) {
    c = digits[h % 36];
    h /= 36;
  }
  return out;
}

}  // namespace sluice::gateway
