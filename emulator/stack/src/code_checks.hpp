// Checks that a function's code is really there before anything starts: the
// handler names a file that exists, a custom runtime has an executable
// bootstrap. Each returns a message for the user, or nothing when fine.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "sluice/stack/model.hpp"

namespace sluice::stack::detail {

// The handler string's shape for the runtime family ("app.handler", "dir/file.export").
std::optional<std::string> handler_format_error(const std::string& handler, RuntimeFamily family);

// The handler's module file, searched in the code directory and the layers (python: python/...;
// node: what require() finds there, as AWS's runtime client resolves it).
std::optional<std::string> python_handler_file_error(const std::string& handler, const fs::path& code_dir,
                                                     const std::vector<fs::path>& layers, const RuntimeId& runtime);
std::optional<std::string> node_handler_file_error(const std::string& handler, const fs::path& code_dir,
                                                   const std::vector<fs::path>& layers, const RuntimeId& runtime);

// provided* runtimes: an executable `bootstrap` in the code directory or at the root of a layer.
std::optional<std::string> bootstrap_error(const fs::path& code_dir, const std::vector<fs::path>& layers,
                                           const RuntimeId& runtime);

}  // namespace sluice::stack::detail
