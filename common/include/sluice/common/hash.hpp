#pragma once
#include <filesystem>
#include <string>
#include <string_view>

namespace sluice {

// Raw 32-byte digest.
std::string sha256(std::string_view data);
std::string hex(std::string_view bytes);
std::string hmac_sha256(std::string_view key, std::string_view data);

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
