// Loading a stack file: the public entry points, the top level of the schema,
// the checks that span sections, and the report. The sections themselves are
// read in functions.cpp, apis.cpp, routes.cpp, authorizers.cpp, usage_plans.cpp.
#include "sluice/stack/loader.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "schema.hpp"
#include "sluice/common/hash.hpp"
#include "sluice/common/util.hpp"

namespace sluice::stack {

// ---- small public helpers ----------------------------------------------------

const std::vector<std::string>& reserved_environment_names() {
  static const std::vector<std::string> names{
      "_HANDLER",
      "_X_AMZN_TRACE_ID",
      "AWS_DEFAULT_REGION",
      "AWS_REGION",
      "AWS_EXECUTION_ENV",
      "AWS_LAMBDA_FUNCTION_NAME",
      "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
      "AWS_LAMBDA_FUNCTION_VERSION",
      "AWS_LAMBDA_INITIALIZATION_TYPE",
      "AWS_LAMBDA_LOG_GROUP_NAME",
      "AWS_LAMBDA_LOG_STREAM_NAME",
      "AWS_ACCESS_KEY",
      "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN",
      "AWS_LAMBDA_RUNTIME_API",
      "LAMBDA_TASK_ROOT",
      "LAMBDA_RUNTIME_DIR",
  };
  return names;
}

std::optional<RuntimeId> parse_runtime(const std::string& id) {
  const auto& ids = detail::supported_runtimes();
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) return std::nullopt;
  RuntimeId r;
  r.id = id;
  if (starts_with(id, "python")) {
    r.family = RuntimeFamily::python;
    r.major = 3;
    r.minor = std::stoi(id.substr(std::string("python3.").size()));
  } else if (starts_with(id, "nodejs")) {
    r.family = RuntimeFamily::node;
    r.major = std::stoi(id.substr(std::string("nodejs").size()));
  } else {
    r.family = RuntimeFamily::provided;
  }
  return r;
}

std::string stable_id(const std::string& seed, std::size_t length) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  out.reserve(length);
  for (std::uint32_t block = 0; out.size() < length; ++block) {
    std::string digest = sha256(seed + "#" + std::to_string(block));
    for (unsigned char c : digest) {
      if (c >= 252) continue;  // 252 = 7 * 36: keeps every character equally likely
      out.push_back(alphabet[c % 36]);
      if (out.size() == length) break;
    }
  }
  return out;
}

namespace detail {

const std::vector<std::string>& supported_runtimes() {
  static const std::vector<std::string> ids{
      "python3.9",  "python3.10", "python3.11", "python3.12", "python3.13",   "python3.14",      "nodejs18.x",
      "nodejs20.x", "nodejs22.x", "nodejs24.x", "provided",   "provided.al2", "provided.al2023",
  };
  return ids;
}

std::optional<Stack> Loader::load(const detail::NodeP& root) {
  stack_.base_dir = base_;
  if (!root || root->kind == Node::Kind::null) {
    c_.error("", 0,
             "the file is empty; a stack file is a mapping with at least 'name:' (and usually "
             "'functions:' and 'apis:')");
    return std::nullopt;
  }
  View top{root.get(), "", root->line ? root->line : 1};
  auto f = c_.fields(
      top, {"name", "region", "account_id", "defaults", "packages", "functions", "apis", "api_keys", "usage_plans",
            "schedules", "event_sources"},
      "a mapping at the top level (name:, functions:, apis:, ...)");
  if (!f) return std::nullopt;

  if (auto v = f->get("name")) {
    if (auto s = c_.string(*v, "a stack name")) {
      if (valid_stack_name(*s)) {
        stack_.name = *s;
        name_ok_ = true;
      } else {
        c_.error(*v, "stack name " + sluice::quoted(*s) +
                         " must start with a letter and hold only letters, digits and hyphens, at most 64 characters");
      }
    }
  } else {
    c_.missing(top, "name", "the stack name (letters, digits, hyphens) prefixes every AWS resource on deploy");
  }
  if (auto v = f->get("region")) {
    if (auto s = c_.string(*v, "an AWS region such as us-east-1")) {
      if (valid_region(*s))
        stack_.region = *s;
      else
        c_.error(*v, "expected an AWS region such as \"us-east-1\" or \"eu-west-3\", found " + sluice::quoted(*s));
    }
  }
  if (auto v = f->get("account_id")) {
    // A plain 123456789012 is read as written, so leading zeros survive.
    if (v->scalar() && v->text().size() == 12 && chars_in(v->text(), digit_char))
      stack_.account_id = v->text();
    else
      c_.error(*v, "expected a 12-digit AWS account id such as \"123456789012\", found " + Checker::found(*v));
  }
  if (auto v = f->get("defaults")) read_defaults(*v);
  if (auto v = f->get("packages")) read_packages(*v);
  if (auto v = f->get("functions")) read_functions(*v);
  if (auto v = f->get("apis")) read_apis(*v);
  if (auto v = f->get("api_keys")) read_api_keys(*v);
  if (auto v = f->get("usage_plans")) read_usage_plans(*v);
  if (auto v = f->get("schedules")) read_schedules(*v);
  if (auto v = f->get("event_sources")) read_event_sources(*v);
  if (!c_.stopped()) cross_checks();
  if (c_.errors() > 0) return std::nullopt;
  return std::move(stack_);
}

// ---- checks across sections --------------------------------------------------------

void Loader::cross_checks() {
  std::map<int, std::string> ports;
  std::vector<std::string> in_file_order = keys_of(stack_.apis);
  std::stable_sort(in_file_order.begin(), in_file_order.end(),
                   [&](const std::string& a, const std::string& b) { return api_lines_[a] < api_lines_[b]; });
  for (const auto& name : in_file_order) {
    const ApiSpec& api = stack_.apis[name];
    if (!api.port) continue;
    auto [it, inserted] = ports.emplace(*api.port, name);
    if (!inserted)
      c_.error(detail::join_path(detail::join_path("apis", name), "port"), api_lines_[name],
               "port " + std::to_string(*api.port) + " is already used by API " + squoted(it->second));
  }
  // A route that requires a key behind a stage no usage plan covers answers 403 to everyone.
  std::set<std::pair<std::string, std::string>> planned;
  for (const auto& [pname, plan] : stack_.usage_plans)
    if (!plan.keys.empty())
      for (const auto& s : plan.stages) planned.insert(s);
  for (const auto& [name, api] : stack_.apis) {
    if (api.type != ApiType::rest) continue;
    for (const auto& route : api.routes) {
      if (!route.api_key_required) continue;
      if (api.api_key_source == "AUTHORIZER" && (route.authorizer.empty() || route.authorizer == "none" ||
                                                 !api.authorizers.count(route.authorizer))) {
        if (auto at = route_views_.find(name + "/" + route.key); at != route_views_.end())
          c_.warning(at->second, "the route requires an API key and the API takes keys from its authorizers "
                                 "(api_key_source: AUTHORIZER), but the route has no authorizer; every request "
                                 "there will get 403 Forbidden");
        continue;
      }
      std::vector<std::string> uncovered;
      for (const auto& [sname, stage] : api.stages)
        if (!planned.count({name, sname})) uncovered.push_back(sname);
      if (uncovered.empty()) continue;
      auto at = route_views_.find(name + "/" + route.key);
      if (at == route_views_.end()) continue;
      c_.warning(at->second, "the route requires an API key, but no usage plan with keys covers stage" +
                                 std::string(uncovered.size() > 1 ? "s " : " ") + list_words(uncovered) +
                                 "; every request there will get 403 Forbidden");
    }
  }
}

}  // namespace detail

namespace {

std::string read_whole(const fs::path& file, std::string& error) {
  std::error_code ec;
  auto st = fs::status(file, ec);
  if (ec || !fs::exists(st)) {
    error = "cannot read the stack file: it does not exist";
    return {};
  }
  if (fs::is_directory(st)) {
    error = "cannot read the stack file: it is a directory (expected a file such as sluice.yaml)";
    return {};
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = "cannot read the stack file: permission denied or unreadable";
    return {};
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    error = "cannot read the stack file: read error";
    return {};
  }
  return ss.str();
}

fs::path absolute_canonical(const fs::path& p) {
  std::error_code ec;
  fs::path abs = fs::absolute(p, ec);
  if (ec) abs = p;
  fs::path canon = fs::weakly_canonical(abs, ec);
  return ec ? abs.lexically_normal() : canon;
}

}  // namespace

LoadResult load_text(const std::string& text, const fs::path& source_name, const fs::path& base_dir) {
  LoadResult result;
  try {
    fs::path base = absolute_canonical(base_dir.empty() ? fs::path(".") : base_dir);
    auto doc = detail::parse_document(text);
    result.problems = std::move(doc.problems);
    bool tree_errors = false;
    for (const auto& p : result.problems) tree_errors = tree_errors || !p.warning;
    if (!doc.root && tree_errors) return result;
    detail::Loader loader(result.problems, base);
    auto stack = loader.load(doc.root);
    if (stack && !tree_errors) {
      std::string src = source_name.string();
      if (src.empty())
        stack->source = base / "<text>";
      else if (src.front() == '<' || source_name.is_absolute())
        stack->source = source_name;
      else
        stack->source = absolute_canonical(base / source_name);
      result.stack = std::move(stack);
    }
  } catch (const std::exception& e) {
    result.stack.reset();
    Problem p;
    p.message = std::string("internal error while reading the stack: ") + e.what();
    result.problems.push_back(std::move(p));
  } catch (...) {
    result.stack.reset();
    Problem p;
    p.message = "internal error while reading the stack";
    result.problems.push_back(std::move(p));
  }
  return result;
}

LoadResult load_file(const fs::path& file) {
  try {
    std::string error;
    std::string text = read_whole(file, error);
    if (!error.empty()) {
      LoadResult r;
      Problem p;
      p.message = error;
      r.problems.push_back(std::move(p));
      return r;
    }
    fs::path abs = absolute_canonical(file);
    auto result = load_text(text, abs, abs.parent_path());
    if (result.stack) result.stack->source = abs;
    return result;
  } catch (...) {
    LoadResult r;
    Problem p;
    p.message = "internal error while reading the stack file";
    r.problems.push_back(std::move(p));
    return r;
  }
}

std::string format_report(const LoadResult& result, const fs::path& file) {
  std::vector<const Problem*> sorted;
  for (const auto& p : result.problems) sorted.push_back(&p);
  // File order reads best; problems without a line (the file as a whole) come first.
  std::stable_sort(sorted.begin(), sorted.end(), [](const Problem* a, const Problem* b) { return a->line < b->line; });
  std::string out;
  std::size_t errors = 0, warnings = 0;
  for (const Problem* p : sorted) {
    (p->warning ? warnings : errors)++;
    out += file.string();
    if (p->line > 0) out += ":" + std::to_string(p->line);
    out += p->warning ? ": warning: " : ": error: ";
    if (!p->path.empty()) out += p->path + ": ";
    out += p->message;
    out += "\n";
  }
  out += std::to_string(errors) + (errors == 1 ? " error, " : " errors, ") + std::to_string(warnings) +
         (warnings == 1 ? " warning" : " warnings") + "\n";
  return out;
}

}  // namespace sluice::stack
