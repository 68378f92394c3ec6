#include "ids.hpp"

#include "sluice/common/hash.hpp"

#include <cstdint>

namespace sluice::gateway {

std::string resource_style_id(std::string_view seed) {
  std::uint64_t h = name_hash_64(seed);
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out(6, '0');
  for (auto& c : out) {
    c = digits[h % 36];
    h /= 36;
  }
  return out;
}

}  // namespace sluice::gateway
