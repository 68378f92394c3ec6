#include "sluice/lambda/versions.hpp"

#include "sluice/common/hash.hpp"
#include "sluice/common/util.hpp"
#include "sluice/stack/loader.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace sluice::lambda {

namespace fs = std::filesystem;
using json = nlohmann::json;

bool ignored_path(const fs::path& rel) {
  for (const auto& part : rel) {
    std::string p = part.string();
    if (p == "__pycache__" || p == ".git" || p == ".sluice" || p == ".hg" || p == ".svn" || p == ".DS_Store" ||
        p == ".pytest_cache" || p == ".mypy_cache")
      return true;
  }
  std::string name = rel.filename().string();
  if (name.empty()) return false;
  if (ends_with(name, ".pyc") || ends_with(name, ".pyo") || ends_with(name, ".swp") || ends_with(name, ".swx") ||
      ends_with(name, ".swo") || ends_with(name, "~") || starts_with(name, ".#") || name == "4913")
    return true;
  return false;
}

VersionConfig latest_config(const stack::FunctionSpec& fn) {
  VersionConfig c;
  c.function = fn.name;
  c.version = "$LATEST";
  c.runtime = fn.runtime;
  c.handler = fn.handler;
  c.code_dir = fn.code_dir;
  c.layers = fn.layers;
  c.memory_mb = fn.memory_mb;
  c.timeout_s = fn.timeout_s;
  c.ephemeral_mb = fn.ephemeral_mb;
  c.environment = fn.environment;
  c.description = fn.description;
  c.logging = fn.logging;
  return c;
}

VersionStore::VersionStore(fs::path state_dir) : dir_(std::move(state_dir)) {}

namespace {

bool skip_rel(const fs::path& rel) { return ignored_path(rel); }

json config_json(const stack::FunctionSpec& fn) {
  json j{{"runtime", fn.runtime.id},     {"handler", fn.handler},       {"memory", fn.memory_mb},
         {"timeout", fn.timeout_s},      {"environment", fn.environment}, {"layers", fn.layers.size()}};
  // Only when set, so that versions published before these existed keep their fingerprint.
  if (fn.ephemeral_mb != 512) j["ephemeral_storage"] = fn.ephemeral_mb;
  if (fn.logging)
    j["logging"] = json{{"format", fn.logging->format},
                        {"application_log_level", fn.logging->application_log_level},
                        {"system_log_level", fn.logging->system_log_level}};
  return j;
}

void copy_tree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (auto it = fs::recursive_directory_iterator(from, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    fs::path rel = fs::relative(it->path(), from);
    if (ignored_path(rel)) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    fs::path dest = to / rel;
    if (it->is_directory()) {
      fs::create_directories(dest);
    } else if (it->is_regular_file()) {
      fs::create_directories(dest.parent_path());
      fs::copy_file(it->path(), dest, fs::copy_options::overwrite_existing);
      fs::permissions(dest, fs::status(it->path()).permissions());
    }
  }
}

int version_number(const std::string& s) {
  try {
    return std::stoi(s);
  } catch (...) {
    return 0;
  }
}

}  // namespace

std::string VersionStore::fingerprint(const stack::FunctionSpec& fn) {
  std::string all = hash_tree(fn.code_dir, skip_rel);
  for (const auto& l : fn.layers) all += ":" + hash_tree(l, skip_rel);
  all += ":" + config_json(fn).dump();
  return hex(sha256(all));
}

std::vector<std::string> VersionStore::list(const std::string& function) const {
  std::vector<std::string> out;
  fs::path base = dir_ / "functions" / function / "versions";
  std::error_code ec;
  if (!fs::is_directory(base, ec)) return out;
  for (const auto& e : fs::directory_iterator(base, ec)) {
    std::string n = e.path().filename().string();
    if (version_number(n) > 0 && fs::exists(e.path() / "config.json")) out.push_back(n);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return version_number(a) < version_number(b); });
  return out;
}

std::optional<VersionConfig> VersionStore::get(const std::string& function, const std::string& version) const {
  fs::path vdir = dir_ / "functions" / function / "versions" / version;
  std::ifstream in(vdir / "config.json");
  if (!in) return std::nullopt;
  json j = json::parse(in, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  VersionConfig c;
  c.function = function;
  c.version = version;
  auto rt = stack::parse_runtime(j.value("runtime", ""));
  if (!rt) return std::nullopt;
  c.runtime = *rt;
  c.handler = j.value("handler", "");
  c.code_dir = vdir / "code";
  if (j.value("has_layers", false)) c.opt_dir = vdir / "opt";
  c.memory_mb = j.value("memory", 128);
  c.timeout_s = j.value("timeout", 3);
  c.ephemeral_mb = j.value("ephemeral_storage", 512);
  if (j.contains("environment") && j["environment"].is_object())
    c.environment = j["environment"].get<std::map<std::string, std::string>>();
  c.description = j.value("description", "");
  if (j.contains("logging") && j["logging"].is_object()) {
    const auto& l = j["logging"];
    c.logging = stack::LoggingSpec{l.value("format", "Text"), l.value("application_log_level", ""),
                                   l.value("system_log_level", "")};
  }
  c.code_sha256 = j.value("code_sha256", "");
  c.published_at = j.value("published_at", "");
  return c;
}

VersionStore::Published VersionStore::publish(const stack::FunctionSpec& fn, const std::string& description) {
  std::string fp = fingerprint(fn);
  auto versions = list(fn.name);
  if (!versions.empty()) {
    fs::path last = dir_ / "functions" / fn.name / "versions" / versions.back() / "config.json";
    std::ifstream in(last);
    json j = json::parse(in, nullptr, false);
    if (j.is_object() && j.value("fingerprint", "") == fp) {
      return Published{*get(fn.name, versions.back()), false};
    }
  }
  int next = versions.empty() ? 1 : version_number(versions.back()) + 1;
  fs::path base = dir_ / "functions" / fn.name / "versions";
  fs::create_directories(base);
  fs::path tmp = base / (".tmp-" + random_hex(8));
  copy_tree(fn.code_dir, tmp / "code");
  bool has_layers = !fn.layers.empty();
  // Layers are copied in order; a later layer's file replaces an earlier one's, as in /opt.
  for (const auto& layer : fn.layers) copy_tree(layer, tmp / "opt");

  json cfg = config_json(fn);
  cfg.erase("layers");
  cfg["has_layers"] = has_layers;
  cfg["version"] = std::to_string(next);
  cfg["description"] = description.empty() ? fn.description : description;
  cfg["fingerprint"] = fp;
  cfg["code_sha256"] = base64_encode(sha256(hash_tree(tmp / "code")));
  cfg["published_at"] = iso8601_ms();
  {
    std::ofstream out(tmp / "config.json");
    out << cfg.dump(2) << "\n";
  }
  fs::rename(tmp, base / std::to_string(next));
  return Published{*get(fn.name, std::to_string(next)), true};
}

fs::path merge_layers(const std::vector<fs::path>& layers, const fs::path& target) {
  if (layers.empty()) return {};
  if (layers.size() == 1) return layers.front();
  std::error_code ec;
  fs::remove_all(target, ec);
  fs::create_directories(target);
  for (const auto& layer : layers) {
    for (auto it = fs::recursive_directory_iterator(layer, fs::directory_options::follow_directory_symlink, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      fs::path rel = fs::relative(it->path(), layer);
      fs::path dest = target / rel;
      if (it->is_directory()) {
        if (fs::is_symlink(dest)) fs::remove(dest);
        fs::create_directories(dest);
      } else {
        fs::remove(dest, ec);
        fs::create_symlink(it->path(), dest, ec);
      }
    }
  }
  return target;
}

}  // namespace sluice::lambda
