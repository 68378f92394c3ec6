// Local-only settings of `serve` and `invoke` that no stack file holds: environment variable
// overrides (an env-vars file in SAM CLI's format) and the function being debugged.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace sluice::lambda {

// {"Parameters": {"NAME": "value"}, "FUNCTION": {"NAME": "value"}}: values for environment
// variables the stack declares; a function's own entries win over "Parameters".
struct EnvOverrides {
  std::map<std::string, std::string> all;                                   // "Parameters"
  std::map<std::string, std::map<std::string, std::string>> per_function;  // by function name
  bool empty() const { return all.empty() && per_function.empty(); }
};

// Parses the text of an env-vars file; `source` names it in errors. Throws std::runtime_error
// saying what is wrong and where (the JSON error's line and column, the key of a bad value).
EnvOverrides parse_env_overrides(const std::string& text, const std::string& source);
EnvOverrides load_env_overrides(const std::filesystem::path& file);

// The variables `declared` (a function's environment in the stack) after the overrides for
// `function`; variables the stack does not declare are not added (as SAM CLI).
std::map<std::string, std::string> apply_env_overrides(const EnvOverrides& o, const std::string& function,
                                                       std::map<std::string, std::string> declared);

// One function started under a debugger: its runtime process waits for a debugger on `port`
// (Node.js: --inspect-brk; Python: debugpy), or gets `args` instead of those flags. While it is
// debugged the function runs in one environment at a time, never frozen, with no timeouts.
struct DebugOptions {
  std::string function;  // "" = nothing is debugged
  int port = 0;          // 0 = no debugger port (args alone)
  std::vector<std::string> args;
  bool active() const { return !function.empty(); }
};

// Splits a --debug-args value into arguments: blanks separate them, single or double quotes
// keep blanks inside one. Throws std::runtime_error on an unclosed quote.
std::vector<std::string> split_args(const std::string& text);

}  // namespace sluice::lambda
