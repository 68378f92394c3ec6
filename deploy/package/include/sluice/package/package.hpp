// Deterministic deployment packages: one zip per package or function, same bytes for
// the same input (sorted entries, fixed timestamps, executable bits kept), with
// Lambda's size limits checked before any upload.
// Contract shared by deploy/package (implementation) and deploy/ (callers).
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::package {

namespace fs = std::filesystem;

struct Archive {
  std::string bytes;      // the zip
  std::string sha256_hex; // of bytes: the S3 key uses it, so unchanged code is not uploaded again
  std::string sha256_b64; // Lambda's CodeSha256
  std::uint64_t unzipped_size = 0;
  std::size_t files = 0;
};

// Zips every file under `dir` (symlinks followed, .sluice/, __pycache__/ and .git/ left out).
// `prefix` puts the tree under a folder in the zip (layers: "python/", "nodejs/").
Archive zip_directory(const fs::path& dir, const std::string& prefix = "");

// Lambda's limits: 50 MB zipped for a direct upload (larger goes through S3: not an error),
// 250 MB unzipped including layers. Throws LimitError naming the function and the sizes.
struct LimitError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
constexpr std::uint64_t kDirectUploadLimit = 50ull * 1024 * 1024;
constexpr std::uint64_t kUnzippedLimit = 250ull * 1024 * 1024;
void check_limits(const std::string& function, const Archive& code, const std::vector<const Archive*>& layers);

// A Python requirements file turned into a layer for Lambda's platform:
// pip install --platform manylinux2014_x86_64 --only-binary=:all: --python-version X.Y
// --target <tmp>/python -r requirements.txt, then zipped. Throws std::runtime_error with
// pip's own message when it fails.
Archive build_requirements_layer(const fs::path& requirements, const std::string& python_version,
                                 const std::vector<std::string>& extra_pip_args = {});

}  // namespace sluice::package
