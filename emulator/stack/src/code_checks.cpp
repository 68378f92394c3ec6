#include "code_checks.hpp"

#include <cctype>
#include <system_error>

#include "sluice/common/util.hpp"

namespace sluice::stack::detail {

namespace {

bool module_segment_ok(const std::string& s) {
  if (s.empty() || s == "." || s == "..") return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '_' || c == '-')) return false;
  return true;
}

// Python 3 identifiers may be non-ASCII (PEP 3131): any byte of a UTF-8 sequence is taken,
// and the interpreter has the last word at init (Runtime.HandlerNotFound, as on AWS).
bool python_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '_' || c >= 0x80)) return false;
  return true;
}

// AWS's Node.js client looks each part of the export path up as a property name
// (module["my-handler"]), so any non-empty name without a space is one; an export that is
// not there is its init error (Runtime.HandlerNotFound), not a refused stack.
bool js_export_name(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (std::isspace(c) || std::iscntrl(c)) return false;
  return true;
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// Python: "a.b.c.func" or "dir/mod.func" -> module path segments and function name.
struct PythonHandler {
  std::vector<std::string> module;
  std::string function;
};

std::optional<PythonHandler> split_python(const std::string& handler) {
  auto dot = handler.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == handler.size()) return std::nullopt;
  PythonHandler h;
  h.function = handler.substr(dot + 1);
  std::string mod = handler.substr(0, dot);
  std::string cur;
  for (char c : mod) {
    if (c == '.' || c == '/') {
      h.module.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  h.module.push_back(cur);
  return h;
}

// Node: "dir/file.export.nested" -> module path "dir/file" and export path "export.nested".
struct NodeHandler {
  std::vector<std::string> dirs;
  std::string file;
  std::vector<std::string> exports;
};

std::optional<NodeHandler> split_node(const std::string& handler) {
  NodeHandler h;
  auto slash = handler.rfind('/');
  std::string base = slash == std::string::npos ? handler : handler.substr(slash + 1);
  if (slash != std::string::npos) h.dirs = split(handler.substr(0, slash), '/');
  auto dot = base.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == base.size()) return std::nullopt;
  h.file = base.substr(0, dot);
  h.exports = split(base.substr(dot + 1), '.');
  return h;
}

std::string join_segments(const std::vector<std::string>& segs) { return join(segs, "/"); }

}  // namespace

std::optional<std::string> handler_format_error(const std::string& handler, RuntimeFamily family) {
  if (family == RuntimeFamily::provided) return std::nullopt;  // passed to the bootstrap as _HANDLER, any text
  if (handler.empty()) return "the handler is empty";
  for (unsigned char c : handler)
    if (std::isspace(c)) return "handler " + sluice::quoted(handler) + " contains whitespace";
  if (family == RuntimeFamily::python) {
    auto h = split_python(handler);
    if (!h)
      return "handler " + sluice::quoted(handler) +
             " must be MODULE.FUNCTION, e.g. \"app.handler\" for def handler() in app.py, or "
             "\"pkg.mod.handler\" for pkg/mod.py";
    for (const auto& seg : h->module)
      if (!module_segment_ok(seg))
        return "handler " + sluice::quoted(handler) +
               " has an invalid module path (each part must be letters, digits, "
               "'_' or '-', separated by '.' or '/')";
    if (!python_identifier(h->function))
      return "handler " + sluice::quoted(handler) + ": " + sluice::quoted(h->function) +
             " is not a Python function name";
    return std::nullopt;
  }
  auto h = split_node(handler);
  if (!h)
    return "handler " + sluice::quoted(handler) +
           " must be FILE.EXPORT, e.g. \"index.handler\" for exports.handler in index.js (or index.mjs), or "
           "\"src/app.handler\"";
  for (const auto& d : h->dirs)
    if (!module_segment_ok(d))
      return "handler " + sluice::quoted(handler) +
             " has an invalid directory part (letters, digits, '_' or '-' "
             "separated by '/'; no '..')";
  if (!module_segment_ok(h->file)) return "handler " + sluice::quoted(handler) + " has an invalid file name";
  for (const auto& e : h->exports)
    if (!js_export_name(e))
      return "handler " + sluice::quoted(handler) + ": " + sluice::quoted(e) +
             " is not an export name (a property name without spaces)";
  return std::nullopt;
}

// What Python's import finds for module path `rel` under `root`: a source file, a package, a
// sourceless .pyc, or a compiled extension (NAME.so, NAME.abi3.so, NAME.cpython-312-x86_64-linux-gnu.so,
// as Cython and Nuitka build them).
bool python_module_exists(const fs::path& root, const std::string& rel) {
  if (is_file(root / (rel + ".py")) || is_file(root / rel / "__init__.py") || is_file(root / (rel + ".pyc")) ||
      is_file(root / rel / "__init__.pyc"))
    return true;
  fs::path dir = (root / rel).parent_path();
  std::string stem = (root / rel).filename().string() + ".";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() >= stem.size() + 2 && name.compare(0, stem.size(), stem) == 0 &&
        name.compare(name.size() - 3, 3, ".so") == 0 && is_file(it->path()))
      return true;
  }
  return false;
}

std::optional<std::string> python_handler_file_error(const std::string& handler, const fs::path& code_dir,
                                                     const std::vector<fs::path>& layers, const RuntimeId& runtime) {
  auto h = split_python(handler);
  if (!h) return std::nullopt;  // reported by handler_format_error
  std::string rel = join_segments(h->module);
  std::vector<fs::path> roots{code_dir};
  // Layers are extracted into /opt in order, later ones on top: search the last first.
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    roots.push_back(*it / "python");
    roots.push_back(*it / "python" / "lib" /
                    ("python" + std::to_string(runtime.major) + "." + std::to_string(runtime.minor)) / "site-packages");
  }
  for (const auto& root : roots)
    if (python_module_exists(root, rel)) return std::nullopt;
  std::string msg = "handler " + sluice::quoted(handler) + " needs " + rel + ".py or " + rel +
                    "/__init__.py (or a compiled " + rel + ".*.so or " + rel + ".pyc) in the code directory " +
                    code_dir.string();
  if (!layers.empty()) msg += " or in a layer's python/ directory";
  msg += "; not found";
  return msg;
}

namespace {

// What require() finds for a bare name at `base` (the lookups of node's module resolution): a
// file, as is or with .js, .json or .node, or a folder with a package.json or an index file.
bool node_resolvable(const fs::path& base) {
  if (is_file(base)) return true;
  for (const char* ext : {".js", ".json", ".node"})
    if (is_file(fs::path(base.string() + ext))) return true;
  std::error_code ec;
  if (!fs::is_directory(base, ec)) return false;
  for (const char* f : {"package.json", "index.js", "index.json", "index.node"})
    if (is_file(base / f)) return true;
  return false;
}

}  // namespace

std::optional<std::string> node_handler_file_error(const std::string& handler, const fs::path& code_dir,
                                                   const std::vector<fs::path>& layers, const RuntimeId& runtime) {
  auto h = split_node(handler);
  if (!h) return std::nullopt;
  std::vector<std::string> segs = h->dirs;
  segs.push_back(h->file);
  std::string rel = join_segments(segs);
  // AWS's runtime client (UserFunction.js) tries, under the task root: the path itself if it
  // exists (a file, or a folder that require() loads: its index.js, its package.json's main),
  // then FILE.js, FILE.mjs, FILE.cjs ...
  std::error_code ec;
  if (fs::exists(code_dir / rel, ec)) return std::nullopt;
  for (const char* ext : {".js", ".mjs", ".cjs"})
    if (is_file(code_dir / (rel + ext))) return std::nullopt;
  // ... and last require.resolve(FILE, {paths: [task root, handler folder]}): node_modules from
  // the handler's folder up to the task root, then NODE_PATH (the layers' nodejs/nodeNN/node_modules
  // and nodejs/node_modules, then the task root itself).
  for (std::size_t n = h->dirs.size() + 1; n-- > 0;) {
    fs::path dir = code_dir;
    for (std::size_t i = 0; i < n; ++i) dir /= h->dirs[i];
    if (node_resolvable(dir / "node_modules" / h->file)) return std::nullopt;
  }
  for (const auto& layer : layers)
    if (node_resolvable(layer / "nodejs" / ("node" + std::to_string(runtime.major)) / "node_modules" / h->file) ||
        node_resolvable(layer / "nodejs" / "node_modules" / h->file))
      return std::nullopt;
  if (node_resolvable(code_dir / h->file)) return std::nullopt;
  std::string msg = "handler " + sluice::quoted(handler) + " needs " + rel + ".js, " + rel + ".mjs or " + rel +
                    ".cjs in the code directory " + code_dir.string() + " (or what require() finds for " +
                    sluice::quoted(h->file) + ": a folder " + rel + "/ with an index.js or package.json, a package in " +
                    "node_modules";
  if (!layers.empty()) msg += " or in a layer's nodejs/node_modules";
  msg += "); none exists";
  return msg;
}

std::optional<std::string> bootstrap_error(const fs::path& code_dir, const std::vector<fs::path>& layers,
                                           const RuntimeId& runtime) {
  auto check = [](const fs::path& p) -> int {  // 0 missing, 1 ok, 2 not executable, 3 not a file
    std::error_code ec;
    auto st = fs::status(p, ec);
    if (ec || !fs::exists(st)) return 0;
    if (!fs::is_regular_file(st)) return 3;
    auto perms = st.permissions();
    using fs::perms;
    bool x = (perms & (perms::owner_exec | perms::group_exec | perms::others_exec)) != perms::none;
    return x ? 1 : 2;
  };
  // AWS runs /var/task/bootstrap when it exists, else /opt/bootstrap (the layers, last on top).
  std::vector<std::pair<fs::path, std::string>> places{{code_dir / "bootstrap", "the code directory"}};
  for (auto it = layers.rbegin(); it != layers.rend(); ++it)
    places.emplace_back(*it / "bootstrap", "layer " + it->string());
  for (const auto& [p, where] : places) {
    int r = check(p);
    if (r == 0) continue;
    if (r == 1) return std::nullopt;
    if (r == 2)
      return "runtime " + runtime.id + " runs " + p.string() + " (in " + where +
             "), but that file is not executable; run chmod +x on it";
    return "runtime " + runtime.id + " needs " + p.string() + " (in " + where +
           ") to be an executable file, "
           "but it is not a regular file";
  }
  std::string msg = "runtime " + runtime.id + " needs an executable file named 'bootstrap' in the code directory " +
                    code_dir.string();
  if (!layers.empty()) msg += " or at the root of one of its layers";
  msg += "; none found";
  return msg;
}

}  // namespace sluice::stack::detail
