// sluice generate-event SOURCE KIND [--set key=value ...]: prints a sample
// event, as `sam local generate-event` does.
#include "cli.hpp"

#include "sluice/events/generate.hpp"
#include "sluice/stack/loader.hpp"

#include <cstdio>
#include <stdexcept>

namespace sluice::cli {

namespace {

void print_sources(FILE* out) {
  std::fputs("usage: sluice generate-event SOURCE KIND [--set key=value ...] [--stack STACK]\n\n", out);
  std::fputs("Prints a sample event a function receives from an AWS service. Kinds:\n", out);
  for (const auto& k : events::event_kinds())
    std::fprintf(out, "  %-12s %-20s %s\n", k.source.c_str(), k.kind.c_str(), k.description.c_str());
  std::fputs("\n`sluice generate-event SOURCE --help` lists the keys --set takes for each kind.\n"
             "Region and account come from --set region=/account=, else from the stack file when one is\n"
             "found (--stack, ./sluice.yaml), else us-east-1 and 123456789012.\n",
             out);
}

void print_kinds(FILE* out, const std::string& source) {
  std::fprintf(out, "usage: sluice generate-event %s KIND [--set key=value ...]\n\nKinds of %s:\n", source.c_str(),
               source.c_str());
  for (const auto& k : events::event_kinds()) {
    if (k.source != source) continue;
    std::fprintf(out, "  %-20s %s\n  %-20s --set keys: ", k.kind.c_str(), k.description.c_str(), "");
    for (std::size_t i = 0; i < k.settable.size(); ++i)
      std::fprintf(out, "%s%s", i ? ", " : "", k.settable[i].c_str());
    std::fputs("\n", out);
  }
}

bool known_source(const std::string& source) {
  for (const auto& k : events::event_kinds())
    if (k.source == source) return true;
  return false;
}

}  // namespace

int cmd_generate_event(const Args& a) {
  if (a.positionals.empty()) {
    print_sources(a.has("help") ? stdout : stderr);
    return a.has("help") ? 0 : 2;
  }
  const std::string& source = a.positionals[0];
  if (a.has("help") || a.positionals.size() == 1) {
    if (!known_source(source)) {
      // Let the library word the error (nearest name, the list).
      try {
        events::generate_event(source, "", {});
      } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "sluice generate-event: %s\n", e.what());
      }
      return 2;
    }
    print_kinds(a.has("help") ? stdout : stderr, source);
    return a.has("help") ? 0 : 2;
  }
  if (a.positionals.size() > 2) {
    std::fprintf(stderr, "sluice generate-event: too many arguments; usage: sluice generate-event SOURCE KIND "
                         "[--set key=value ...]\n");
    return 2;
  }
  std::vector<std::pair<std::string, std::string>> sets;
  bool region_set = false, account_set = false;
  for (const auto& kv : a.all("set")) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "sluice generate-event: --set expects key=value, got \"%s\"\n", kv.c_str());
      return 2;
    }
    std::string key = kv.substr(0, eq);
    region_set = region_set || key == "region";
    account_set = account_set || key == "account";
    sets.emplace_back(key, kv.substr(eq + 1));
  }
  // The stack's region and account, when there is a stack around.
  std::filesystem::path file = a.get("stack") ? std::filesystem::path(*a.get("stack")) : default_stack_path();
  if ((!region_set || !account_set) && std::filesystem::exists(file)) {
    auto result = stack::load_file(file);
    if (result.ok()) {
      std::vector<std::pair<std::string, std::string>> from_stack;
      if (!region_set) from_stack.emplace_back("region", result.stack->region);
      if (!account_set) from_stack.emplace_back("account", result.stack->account_id);
      sets.insert(sets.begin(), from_stack.begin(), from_stack.end());
    } else if (a.get("stack")) {
      std::fputs(stack::format_report(result, file).c_str(), stderr);
      return 2;
    }
  }
  try {
    std::string ev = events::generate_event(source, a.positionals[1], sets);
    std::printf("%s\n", ev.c_str());
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "sluice generate-event: %s\n", e.what());
    return 2;
  }
  return 0;
}

}  // namespace sluice::cli
