#include "digest.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

namespace sluice::package::detail {
namespace {
std::string raw(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}
}  // namespace

std::string sha256_hex(std::string_view data) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw(data)) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string sha256_base64(std::string_view data) {
  const std::string d = raw(data);
  unsigned char out[64];
  const int n = EVP_EncodeBlock(out, reinterpret_cast<const unsigned char*>(d.data()), static_cast<int>(d.size()));
  return std::string(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
}
}  // namespace sluice::package::detail
