// A Python requirements file turned into a Lambda layer: pip installs wheels built for
// Lambda's platform and Python version (never the build machine's), into python/, which
// Lambda puts on sys.path from /opt/python.
#include "digest.hpp"
#include "sluice/package/package.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace sluice::package {

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw PackageError("cannot read " + p.string() + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file_atomically(const fs::path& p, const std::string& bytes) {
  const fs::path tmp = p.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw PackageError("cannot write " + tmp.string() + ": " + std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw PackageError("cannot write " + p.string() + ": " + ec.message());
  }
}

// "3.12" or "python3.12" -> "3.12"
std::string python_version_of(const std::string& given) {
  std::string v = given.rfind("python", 0) == 0 ? given.substr(6) : given;
  const auto dot = v.find('.');
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 3 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
  };
  if (dot == std::string::npos || !digits(v.substr(0, dot)) || !digits(v.substr(dot + 1)))
    throw PackageError("Python version '" + given + "' is not of the form 3.12 (or python3.12)");
  return v;
}

struct RunResult {
  int spawn_error = 0;  // errno when the program could not be started
  int status = 0;       // waitpid status
};

RunResult run(const std::vector<std::string>& argv, const fs::path& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  RunResult r;
  pid_t pid = -1;
  r.spawn_error = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (r.spawn_error != 0) return r;
  while (::waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
  }
  return r;
}

// pip's own explanation: its ERROR lines, else the end of what it printed.
std::string pip_message(const std::string& output) {
  std::istringstream in(output);
  std::string line, errors;
  std::vector<std::string> all;
  while (std::getline(in, line)) {
    if (line.rfind("ERROR:", 0) == 0) errors += line + "\n";
    all.push_back(line);
  }
  if (!errors.empty()) return errors;
  std::string tail;
  for (std::size_t i = all.size() > 20 ? all.size() - 20 : 0; i < all.size(); ++i) tail += all[i] + "\n";
  return tail;
}

struct RemoveOnExit {
  fs::path path;
  ~RemoveOnExit() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

LayerBuild build_python_layer(const fs::path& requirements, const std::string& python_version,
                              const RequirementsOptions& options) {
  const std::string version = python_version_of(python_version);
  std::error_code ec;
  if (!fs::is_regular_file(requirements, ec))
    throw PackageError("requirements file " + requirements.string() + " does not exist");
  const fs::path reqs = fs::absolute(requirements);
  const std::string contents = read_file(reqs);

  // The layer depends on exactly these; the file's own path does not matter.
  std::string key_material = "sluice python layer 1\n" + version + "\n" + options.platform + "\n";
  for (const auto& a : options.extra_pip_args) key_material += a + "\n";
  key_material += '\0' + contents;
  const std::string key = detail::sha256_hex(key_material);

  const fs::path cache = options.cache_dir.empty() ? reqs.parent_path() / ".sluice" / "layers" : options.cache_dir;
  LayerBuild out;
  out.zip_path = cache / ("python" + version + "-" + options.platform + "-" + key.substr(0, 32) + ".zip");
  if (fs::is_regular_file(out.zip_path, ec)) {
    try {
      out.archive = describe_zip(read_file(out.zip_path));
      out.from_cache = true;
      return out;
    } catch (const PackageError&) {
      fs::remove(out.zip_path, ec);  // a damaged cache entry is rebuilt
    }
  }

  fs::create_directories(cache, ec);
  if (ec) throw PackageError("cannot create the layer cache " + cache.string() + ": " + ec.message());
  RemoveOnExit work{cache / ("build-" + key.substr(0, 16) + "-" + std::to_string(::getpid()))};
  fs::remove_all(work.path, ec);
  const fs::path target = work.path / "python";
  fs::create_directories(target, ec);
  if (ec) throw PackageError("cannot create " + target.string() + ": " + ec.message());

  std::vector<std::string> argv{options.python, "-m", "pip", "install",
                                "--disable-pip-version-check", "--no-input", "--no-compile",
                                "--platform", options.platform, "--implementation", "cp",
                                "--python-version", version, "--only-binary=:all:",
                                "--target", target.string(), "-r", reqs.string()};
  argv.insert(argv.end(), options.extra_pip_args.begin(), options.extra_pip_args.end());
  const fs::path log = work.path / "pip.log";
  const RunResult r = run(argv, log);
  const std::string what = "cannot build the requirements layer from " + requirements.string() + " for Python " +
                           version + " on " + options.platform;
  if (r.spawn_error != 0)
    throw PackageError(what + ": cannot run " + options.python + ": " + std::strerror(r.spawn_error));
  if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
    std::string output;
    try {
      output = read_file(log);
    } catch (const PackageError&) {
    }
    std::string msg = what + ": pip failed";
    msg += WIFEXITED(r.status) ? " (exit status " + std::to_string(WEXITSTATUS(r.status)) + ")" : " (killed by a signal)";
    msg += ":\n" + pip_message(output);
    if (output.find("No matching distribution") != std::string::npos)
      msg += "Only wheels for " + options.platform + " and Python " + version +
             " (or pure-Python wheels) can be used: a package published only as source cannot be installed for Lambda's platform.\n";
    if (output.find("No module named pip") != std::string::npos)
      msg += options.python + " has no pip module: install pip for it.\n";
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    throw PackageError(msg);
  }
  fs::remove(log, ec);

  bool empty = true;
  for (auto it = fs::directory_iterator(target, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) empty = false;
  if (empty) throw PackageError(what + ": pip installed nothing (does the file list any package?)");
  out.archive = zip_directory(target, "python/");
  write_file_atomically(out.zip_path, out.archive.bytes);
  return out;
}

Archive build_requirements_layer(const fs::path& requirements, const std::string& python_version,
                                 const std::vector<std::string>& extra_pip_args) {
  RequirementsOptions options;
  options.extra_pip_args = extra_pip_args;
  return build_python_layer(requirements, python_version, options).archive;
}

}  // namespace sluice::package
