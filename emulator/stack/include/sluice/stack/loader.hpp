// Loading and validating a stack file. Validation runs once, on load, for
// local runs and deploy alike, and reports every problem at once.
#pragma once

#include "sluice/stack/model.hpp"

#include <optional>
#include <string>
#include <vector>

namespace sluice::stack {

struct Problem {
  std::string path;     // "functions.list-movies.timeout"; "" for the file itself
  std::string message;  // what was found and what is allowed
  int line = 0;         // 1-based line in the source file, 0 when unknown
  bool warning = false; // warnings never make a load fail
};

struct LoadResult {
  std::optional<Stack> stack;  // set when there is no error (warnings allowed)
  std::vector<Problem> problems;
  bool ok() const { return stack.has_value(); }
};

// Reads YAML or JSON (by content, not extension). Never throws.
LoadResult load_file(const fs::path& file);
// Same, from text; base_dir resolves relative paths.
LoadResult load_text(const std::string& text, const fs::path& source_name, const fs::path& base_dir);

// The report a user reads: one problem per line, "file:line: path: message".
std::string format_report(const LoadResult& result, const fs::path& file);

// Names of environment variables AWS reserves (refused in `environment`).
const std::vector<std::string>& reserved_environment_names();

// Resolves the runtime id ("python3.12") to a family and version; nullopt if unsupported.
std::optional<RuntimeId> parse_runtime(const std::string& id);

// The stable pseudo-random 10-character id AWS-style resources get (apiId, key id).
std::string stable_id(const std::string& seed, std::size_t length = 10);

}  // namespace sluice::stack
