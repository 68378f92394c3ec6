#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace sluice {

// Raw 32-byte digest.
std::string sha256(std::string_view data);
// Raw 16-byte digest (SQS's checksums; nothing secret).
std::string md5(std::string_view data);
std::string hex(std::string_view bytes);
std::string hmac_sha256(std::string_view key, std::string_view data);

// A cheap, stable 64-bit hash for ids derived from names (not for security): FNV-1a's
// xor-multiply, but from the offset 1469598103934665603, the published basis
// (14695981039346656037) less its last digit, as sluice's derived ids (API ids, runtime
// version hashes) have always been made; a different basis would change every one of them.
std::uint64_t name_hash_64(std::string_view data);

// Incremental SHA-256 for hashing whole directory trees without loading them.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  std::string final();  // raw digest
 private:
  void* ctx_;
};

// Stable digest of a directory: relative paths, the executable bit and contents,
// in sorted order. Paths for which skip(relative) is true are left out.
std::string hash_tree(const std::filesystem::path& root, bool (*skip)(const std::filesystem::path&) = nullptr);

}  // namespace sluice
