#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::cli {

int run(int argc, char** argv);

// Parsed command line: positionals and --options (flags have an empty value).
struct Args {
  std::string command;
  std::vector<std::string> positionals;
  std::multimap<std::string, std::string> options;

  bool has(const std::string& name) const { return options.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;
  std::vector<std::string> all(const std::string& name) const;
};

// Options that take a value; anything else starting with -- is a flag.
Args parse_args(int argc, char** argv, const std::vector<std::string>& valued);

// ./sluice.yaml, else sluice.yml or sluice.json in the current directory.
std::filesystem::path default_stack_path();

int cmd_validate(const Args& a);
int cmd_invoke(const Args& a);
int cmd_publish(const Args& a);
int cmd_serve(const Args& a);
int cmd_generate_event(const Args& a);  // generate_event.cpp
int cmd_trigger(const Args& a);         // schedules.cpp

}  // namespace sluice::cli
