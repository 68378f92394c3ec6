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

// Thrown when a tree cannot be packaged (missing directory, dangling symlink, symlink
// loop, unreadable file, special file); the message names the path.
struct PackageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The fixed choices that make the bytes reproducible (deploy/README.md, "Packaging").
constexpr std::uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01, the earliest DOS date
constexpr std::uint16_t kDosTime = 0;                        // 00:00:00
constexpr std::uint32_t kDeflateLevel = 6;                   // zlib's default level, stated explicitly
constexpr std::uint32_t kExecutableMode = 0755;
constexpr std::uint32_t kRegularMode = 0644;

// Zips every file under `dir` (symlinks followed, .sluice/, __pycache__/ and .git/ left out).
// `prefix` puts the tree under a folder in the zip (layers: "python/", "nodejs/").
// Files only (no directory entries, as SAM and `aws cloudformation package` do), sorted by
// path bytes, mode 0755 for any file with an execute bit and 0644 otherwise.
// Throws PackageError (a std::runtime_error) naming the path when the tree cannot be zipped.
Archive zip_directory(const fs::path& dir, const std::string& prefix = "");

// Sizes, count and hashes of an existing zip (e.g. a cached layer).
Archive describe_zip(std::string bytes);

// One entry of a zip as libzip reads it: for tests, tools and diagnostics.
struct ZipEntry {
  std::string name;
  std::uint64_t size = 0;
  std::uint64_t compressed_size = 0;
  std::int32_t compression = 0;  // ZIP_CM_*: 8 = deflate, 0 = stored
  std::uint8_t opsys = 0;        // 3 = Unix
  std::uint32_t mode = 0;        // Unix mode from the external attributes (with S_IFREG)
};
std::vector<ZipEntry> list_zip(const std::string& bytes);

// Lambda's limits: 50 MB zipped for a direct upload (larger goes through S3: not an error),
// 250 MB unzipped including layers. Throws LimitError naming the function and the sizes.
struct LimitError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
constexpr std::uint64_t kDirectUploadLimit = 50ull * 1024 * 1024;
constexpr std::uint64_t kUnzippedLimit = 250ull * 1024 * 1024;
constexpr std::size_t kMaxLayers = 5;
void check_limits(const std::string& function, const Archive& code, const std::vector<const Archive*>& layers);

// Larger than a direct upload allows: the caller puts the zip in S3 and points Lambda at it.
bool needs_s3(const Archive& archive);

// "262.4 MB": bytes in MiB with one decimal, as the limit messages print them.
std::string format_mb(std::uint64_t bytes);

// A Python requirements file turned into a layer for Lambda's platform:
// pip install --platform manylinux2014_x86_64 --only-binary=:all: --python-version X.Y
// --target <tmp>/python -r requirements.txt, then zipped. Throws std::runtime_error with
// pip's own message when it fails.
// `python_version` is "3.12" (or a runtime name, "python3.12"). The layer is cached under
// <requirements dir>/.sluice/layers, keyed by the requirements file's bytes, the Python
// version, the platform and the extra arguments: an unchanged file is not rebuilt.
Archive build_requirements_layer(const fs::path& requirements, const std::string& python_version,
                                 const std::vector<std::string>& extra_pip_args = {});

struct RequirementsOptions {
  fs::path cache_dir;                            // empty: <requirements dir>/.sluice/layers
  std::string platform = "manylinux2014_x86_64"; // Lambda's x86_64 platform (arm64: manylinux2014_aarch64)
  std::string python = "python3";                // interpreter whose pip does the install
  std::vector<std::string> extra_pip_args;       // e.g. --no-index --find-links DIR
};

struct LayerBuild {
  Archive archive;
  bool from_cache = false;
  fs::path zip_path;  // the cached zip
};
LayerBuild build_python_layer(const fs::path& requirements, const std::string& python_version,
                              const RequirementsOptions& options);

}  // namespace sluice::package
