// Published versions: immutable snapshots of a function's code, layers and
// configuration, kept under the state directory (.sluice/ next to the stack).
#pragma once

#include "sluice/stack/model.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::lambda {

struct VersionConfig {
  std::string function;
  std::string version;  // "$LATEST" or "N"
  stack::RuntimeId runtime;
  std::string handler;
  std::filesystem::path code_dir;
  std::filesystem::path opt_dir;  // snapshot of merged layers ("" when none)
  std::vector<std::filesystem::path> layers;  // $LATEST only: live layer directories
  int memory_mb = 128;
  int timeout_s = 3;
  int ephemeral_mb = 512;
  std::map<std::string, std::string> environment;
  std::string description;
  std::optional<stack::LoggingSpec> logging;
  std::string code_sha256;  // base64 of the digest, as AWS shows CodeSha256
  std::string published_at;
};

VersionConfig latest_config(const stack::FunctionSpec& fn);

class VersionStore {
 public:
  explicit VersionStore(std::filesystem::path state_dir);

  // Snapshot $LATEST. Unchanged code and configuration return the existing
  // newest version (created=false), as PublishVersion does on AWS.
  struct Published {
    VersionConfig config;
    bool created = false;
  };
  Published publish(const stack::FunctionSpec& fn, const std::string& description = "");

  std::optional<VersionConfig> get(const std::string& function, const std::string& version) const;
  std::vector<std::string> list(const std::string& function) const;  // ascending
  const std::filesystem::path& state_dir() const { return dir_; }

  // Digest over code and layers plus the configuration that a version freezes.
  static std::string fingerprint(const stack::FunctionSpec& fn);

 private:
  std::filesystem::path dir_;
};

// Files that never count as code changes: bytecode caches, VCS data, editor swap files.
bool ignored_path(const std::filesystem::path& relative);

// Builds the directory that stands in for /opt from the layers, in order
// (later layers win), using symlinks; returns the single layer itself when there is one.
std::filesystem::path merge_layers(const std::vector<std::filesystem::path>& layers,
                                   const std::filesystem::path& target);

}  // namespace sluice::lambda
