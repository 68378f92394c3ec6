#include "sluice/lambda/service.hpp"

#include "sluice/common/log.hpp"
#include "sluice/common/process.hpp"
#include "sluice/common/util.hpp"
#include "sluice/lambda/code_watch.hpp"
#include "sluice/lambda/destinations.hpp"
#include "sluice/lambda/function_ref.hpp"
#include "sluice/lambda/payload_check.hpp"
#include "sluice/runtime/environment.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cctype>
#include <unistd.h>
#include <cstdio>
#include <deque>
#include <mutex>
#include <random>
#include <set>

namespace sluice::lambda {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using mono = std::chrono::steady_clock;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_sync_payload = 6 * 1024 * 1024;  // 6,291,456
constexpr std::size_t max_async_payload = 1024 * 1024;     // 1 MB since 2025

auto logger() {
  static auto l = log::get("lambda");
  return l;
}

ServiceError not_found(const std::string& arn) {
  return ServiceError{404, "ResourceNotFoundException", "Function not found: " + arn, "", "User"};
}

ServiceError throttled(const std::string& reason) {
  return ServiceError{429, "TooManyRequestsException", "Rate Exceeded.", reason, "User"};
}

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  return std::string(trim(out));
}

fs::path which(const std::string& exe) {
  const char* path = std::getenv("PATH");
  if (!path) return {};
  for (const auto& dir : split(path, ':')) {
    if (dir.empty()) continue;
    fs::path cand = fs::path(dir) / exe;
    if (::access(cand.c_str(), X_OK) == 0 && fs::is_regular_file(cand)) return cand;
  }
  return {};
}

runtime::RuntimeKind kind_of(stack::RuntimeFamily f) {
  switch (f) {
    case stack::RuntimeFamily::python: return runtime::RuntimeKind::python;
    case stack::RuntimeFamily::node: return runtime::RuntimeKind::node;
    case stack::RuntimeFamily::provided: return runtime::RuntimeKind::provided;
  }
  return runtime::RuntimeKind::provided;
}

std::string runtime_label(const stack::RuntimeId& rt) {
  switch (rt.family) {
    case stack::RuntimeFamily::python:
      return "python:" + std::to_string(rt.major) + "." + std::to_string(rt.minor) + ".local";
    case stack::RuntimeFamily::node: return "nodejs:" + std::to_string(rt.major) + ".local";
    case stack::RuntimeFamily::provided: {
      auto dot = rt.id.find('.');
      return "provided:" + (dot == std::string::npos ? std::string("al1") : rt.id.substr(dot + 1)) + ".local";
    }
  }
  return rt.id;
}

}  // namespace

namespace {

// Runs a candidate interpreter once to learn where it really lives (version
// managers put slow shell shims on PATH) and which version it is.
std::optional<std::pair<fs::path, std::string>> probe_interpreter(const fs::path& candidate, stack::RuntimeFamily f) {
  std::string q = "'" + candidate.string() + "'";
  std::string out = f == stack::RuntimeFamily::python
                        ? run_capture(q + " -c 'import sys; print(sys.executable); print(\"%d.%d.%d\" % sys.version_info[:3])' 2>/dev/null")
                        : run_capture(q + " -e 'console.log(process.execPath); console.log(process.versions.node)' 2>/dev/null");
  auto lines = split(out, '\n');
  if (lines.size() < 2 || lines[0].empty() || lines[1].empty()) return std::nullopt;
  fs::path real = std::string(trim(lines[0]));
  if (::access(real.c_str(), X_OK) != 0) return std::nullopt;
  return std::make_pair(real, std::string(trim(lines[1])));
}

// The flags AWS's Node.js runtimes start node with, less --expose-gc. The two
// module switches keep an ES module in a .js file without "type": "module"
// failing as it does on AWS; node accepts them from 20.17 on. --expose-gc (and
// any other V8 flag, such as --max-semi-space-size) changes V8's flag hash, so
// node rejects the code cache of its own built-in modules and compiles them
// from source: measured here, require('node:net') alone goes from 3 ms to 12 ms.
// The bootstrap installs a global gc() that turns the flag on at first call.
std::vector<std::string> node_flags(const std::string& version) {
  std::vector<std::string> flags{"--max-http-header-size", "81920"};
  auto parts = split(version, '.');
  int major = 0, minor = 0;
  try {
    if (parts.size() >= 2) {
      major = std::stoi(parts[0]);
      minor = std::stoi(parts[1]);
    }
  } catch (...) {
  }
  if (major > 20 || (major == 20 && minor >= 17)) {
    flags.push_back("--no-experimental-require-module");
    flags.push_back("--no-experimental-detect-module");
  }
  return flags;
}

}  // namespace

Interpreter find_interpreter(const stack::RuntimeId& rt, const std::map<std::string, fs::path>& overrides) {
  Interpreter out;
  if (rt.family == stack::RuntimeFamily::provided) return out;
  std::vector<fs::path> candidates;
  if (auto it = overrides.find(rt.id); it != overrides.end()) {
    candidates.push_back(it->second);
  } else if (rt.family == stack::RuntimeFamily::python) {
    for (const auto& name : {"python" + std::to_string(rt.major) + "." + std::to_string(rt.minor), std::string("python3")})
      if (auto p = which(name); !p.empty()) candidates.push_back(p);
  } else {
    if (auto p = which("node"); !p.empty()) candidates.push_back(p);
  }
  for (const auto& c : candidates) {
    auto found = probe_interpreter(c, rt.family);
    if (!found) continue;
    out.path = found->first;
    out.version = found->second;
    break;
  }
  if (out.path.empty()) return out;
  if (rt.family == stack::RuntimeFamily::python) {
    std::string want = std::to_string(rt.major) + "." + std::to_string(rt.minor) + ".";
    if (!starts_with(out.version + ".", want))
      out.note = rt.id + ": no working python" + std::to_string(rt.major) + "." + std::to_string(rt.minor) +
                 " on PATH; using " + out.path.string() + " (Python " + out.version + ")";
  } else if (!starts_with(out.version, std::to_string(rt.major) + ".")) {
    out.note = rt.id + ": using " + out.path.string() + " (Node.js " + out.version + ")";
  }
  return out;
}

struct LambdaService::Impl : std::enable_shared_from_this<Impl> {
  struct Job;
  struct Entry {
    std::shared_ptr<runtime::Environment> env;
    std::string function, version;
    bool busy = false;
    std::shared_ptr<Job> job;
  };
  struct Job {
    VersionConfig config;
    runtime::Invocation inv;
    bool want_report = false;
    bool cold = false;
    bool have_result = false, have_report = false, completed = false;
    runtime::InvocationResult result;
    std::optional<runtime::InvocationReport> report;
    std::optional<ServiceError> error;
    std::function<void()> done;
    std::shared_ptr<Entry> entry;
    std::unique_ptr<asio::steady_timer> handoff;
    // for the invocation record
    std::string source, qualifier, invocation_type = "RequestResponse";
    std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
    mono::time_point started_mono = mono::now();
    bool recorded = false, awaiting_record = false;
  };
  struct Pool {
    std::vector<std::shared_ptr<Entry>> entries;
    std::deque<std::shared_ptr<Job>> waiters;  // jobs waiting for a finishing environment
  };
  struct FnState {
    int busy = 0;
    FunctionStats stats;
    bool opt_dirty = true;
    fs::path merged_opt;
    bool links_dirty = true;   // look for links the sandbox would break (see link_leaving)
    std::string outside_link;  // "" or the first such link: the function runs without the sandbox
    std::deque<std::shared_ptr<Job>> debug_queue;  // debugged: jobs waiting for its one environment
  };

  Impl(asio::any_io_executor ex_, stack::Stack st, ServiceOptions opts, std::shared_ptr<runtime::LogSink> sink)
      : ex(ex_),
        stack(std::move(st)),
        options(std::move(opts)),
        logs(std::move(sink)),
        versions(options.state_dir),
        reap_timer(ex_),
        rng(std::random_device{}()) {}

  asio::any_io_executor ex;
  stack::Stack stack;
  ServiceOptions options;
  std::shared_ptr<runtime::LogSink> logs;
  VersionStore versions;
  std::unique_ptr<CodeWatch> watch;
  asio::steady_timer reap_timer;
  std::mt19937_64 rng;

  std::map<std::pair<std::string, std::string>, Pool> pools;
  std::map<std::string, FnState> fns;
  std::map<std::string, Interpreter> interpreters;
  int account_busy = 0;
  std::size_t jobs_in_flight = 0;
  std::size_t async_pending = 0;
  bool shutting_down = false;
  std::deque<InvocationRecord> records;
  std::size_t records_pending = 0;

  void init() {
    runtime::install_child_watch(ex);
    if (options.sandbox) {
      if (const auto& why = proc::sandbox_unavailable(); !why.empty()) {
        logger()->warn("functions see this machine's paths instead of Lambda's /var/task, /opt and /var/runtime: {} "
                       "(--no-sandbox asks for that without this warning)",
                       why);
        options.sandbox = false;
      }
    }
    resolve_interpreters();
    check_env_overrides();
    setup_debugging();
    if (options.watch_code) {
      watch = std::make_unique<CodeWatch>(ex, [w = weak_from_this()](const std::vector<fs::path>& roots) {
        if (auto self = w.lock()) self->on_code_change(roots);
      });
      setup_watches();
    }
    schedule_reap();
  }

  void resolve_interpreters() {
    for (const auto& [name, fn] : stack.functions) {
      if (fn.runtime.family == stack::RuntimeFamily::provided || interpreters.count(fn.runtime.id)) continue;
      auto in = find_interpreter(fn.runtime, options.interpreters);
      if (in.path.empty())
        logger()->warn("{}: no interpreter found for runtime {} (functions using it will fail with "
                       "Runtime.InvalidEntrypoint; pass --interpreter {}=/path/to/interpreter)",
                       name, fn.runtime.id, fn.runtime.id);
      else if (!in.note.empty())
        logger()->warn("{}", in.note);
      if (options.sandbox && hidden_by_sandbox(in.path))
        logger()->warn("{}: the {} interpreter {} lives where Lambda's layers go: functions using it see this "
                       "machine's paths instead of /var/task and /opt",
                       name, fn.runtime.id, in.path.string());
      interpreters[fn.runtime.id] = in;
    }
  }

  // --env-vars: keys that name no function, variables no function declares (ignored, as SAM CLI).
  void check_env_overrides() {
    const auto& o = options.env_overrides;
    for (const auto& [fn, vars] : o.per_function) {
      auto it = stack.functions.find(fn);
      if (it == stack.functions.end()) {
        logger()->warn("env-vars: {} is not a function of the stack (functions: {}); its variables are ignored", fn,
                       function_names());
        continue;
      }
      for (const auto& [name, v] : vars)
        if (!it->second.environment.count(name))
          logger()->warn("env-vars: {}.{} is ignored: the stack does not declare {} in {}'s environment (only "
                         "declared variables are overridden, so that a test cannot rely on one the deployed "
                         "function would not have)",
                         fn, name, name, fn);
    }
    for (const auto& [name, v] : o.all) {
      bool declared = false;
      for (const auto& [fn, def] : stack.functions) declared = declared || def.environment.count(name) > 0;
      if (!declared)
        logger()->warn("env-vars: Parameters.{} is ignored: no function of the stack declares {} in its environment",
                       name, name);
    }
  }

  std::string function_names() const {
    std::string out;
    for (const auto& [fn, def] : stack.functions) out += (out.empty() ? "" : ", ") + fn;
    return out;
  }

  // --debug-port / --debug-args: the debugger flags of the debugged function's runtime. Throws
  // std::runtime_error when that function cannot be debugged so.
  std::vector<std::string> debug_args;
  void setup_debugging() {
    const auto& d = options.debug;
    if (!d.active()) return;
    auto it = stack.functions.find(d.function);
    if (it == stack.functions.end())
      throw std::runtime_error("--debug-function: no function named " + sluice::quoted(d.function) +
                               " in the stack (functions: " + function_names() + ")");
    const auto& fn = it->second;
    std::string port = std::to_string(d.port);
    std::string where;
    if (!d.args.empty()) {
      debug_args = d.args;
      where = "with the debugger flags " + join(d.args, " ");
    } else if (fn.runtime.family == stack::RuntimeFamily::node) {
      debug_args = {"--inspect-brk=127.0.0.1:" + port};
      where = "under the Node.js inspector on 127.0.0.1:" + port + " (ws://, chrome://inspect, VS Code \"attach\"), "
              "paused before the runtime's first line until a debugger attaches";
    } else if (fn.runtime.family == stack::RuntimeFamily::python) {
      auto in = interpreters.find(fn.runtime.id);
      std::string interp = in == interpreters.end() ? std::string{} : in->second.path.string();
      if (interp.empty()) throw std::runtime_error("--debug-port: no interpreter for " + fn.runtime.id + " to debug " + d.function + " with");
      std::string cmd = "'" + interp + "' -c 'import debugpy' 2>/dev/null && echo ok";
      if (run_capture(cmd) != "ok")
        throw std::runtime_error("--debug-port: " + d.function + " runs on " + interp +
                                 ", which cannot import debugpy (Debian: apt-get install python3-debugpy; otherwise "
                                 "pip install debugpy into that interpreter), or name another debugger's flags with "
                                 "--debug-args");
      // frozen_modules=off: with the frozen standard modules of 3.11+ breakpoints in them can be missed.
      debug_args = {"-Xfrozen_modules=off", "-m", "debugpy", "--listen", "127.0.0.1:" + port, "--wait-for-client"};
      where = "under debugpy on 127.0.0.1:" + port + " (VS Code \"attach\", any DAP client), waiting for a "
              "debugger before the runtime starts";
    } else {
      throw std::runtime_error("--debug-port: " + d.function + " uses a custom runtime (" + fn.runtime.id +
                               "), whose bootstrap sluice starts as it is: name the command that runs it under your "
                               "debugger with --debug-args, e.g. --debug-args \"dlv exec --headless --listen=127.0.0.1:" +
                               port + " --api-version=2 --\"");
    }
    logger()->info("debugging {}: its runtime starts {}; one environment at a time (other calls wait for it), never "
                   "frozen, no init or invocation timeout",
                   d.function, where);
  }

  bool debugged(const std::string& function) const { return options.debug.active() && options.debug.function == function; }

  // A symbolic link under dir that works here but not in the sandbox, where dir is /var/task
  // or /opt: a relative one leading out of dir, or an absolute one into what the sandbox puts
  // in place of the host's (/opt, /var/task, /var/runtime; the rest of /var is the host's).
  // "" when none ("node_modules/x -> ../../y" otherwise).
  static std::string link_leaving(const fs::path& dir) {
    std::error_code ec;
    fs::path root = fs::weakly_canonical(dir, ec);
    if (ec) return {};
    std::size_t seen = 0;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator() && ++seen < 200000; it.increment(ec)) {
      std::error_code lec;
      if (!it->is_symlink(lec)) continue;
      fs::path target = fs::read_symlink(it->path(), lec);
      if (lec) continue;
      bool leaves = false;
      if (target.is_relative()) {
        fs::path to = (it->path().parent_path() / target).lexically_normal();
        auto rel = to.lexically_relative(root);
        leaves = rel.empty() || *rel.begin() == "..";
      } else {
        leaves = replaced_by_sandbox(target.lexically_normal().string());
      }
      if (leaves) return it->path().lexically_relative(root).string() + " -> " + target.string();
    }
    return {};
  }

  // A path the sandbox shows something else at: /opt, /var/task, /var/runtime and below.
  static bool replaced_by_sandbox(const std::string& p) {
    for (const char* root : {"/opt", "/var/task", "/var/runtime"})
      if (p == root || starts_with(p, std::string(root) + "/")) return true;
    return false;
  }

  // An interpreter the sandbox's /opt or /var/task would hide from its own process.
  static bool hidden_by_sandbox(const fs::path& interpreter) {
    std::error_code ec;
    fs::path real = fs::weakly_canonical(interpreter, ec);
    return replaced_by_sandbox((ec ? interpreter : real).string());
  }

  void setup_watches() {
    if (!watch) return;
    watch->clear();
    std::set<fs::path> roots;
    for (const auto& [name, fn] : stack.functions) {
      roots.insert(fn.code_dir);
      for (const auto& l : fn.layers) roots.insert(l);
    }
    for (const auto& r : roots) watch->watch_tree(r);
  }

  static bool under(const fs::path& p, const fs::path& root) {
    auto rs = root.string(), ps = p.string();
    return ps == rs || starts_with(ps, rs + "/");
  }

  void on_code_change(const std::vector<fs::path>& roots) {
    for (const auto& [name, fn] : stack.functions) {
      bool code = false, layer = false;
      for (const auto& r : roots) {
        if (under(r, fn.code_dir) || under(fn.code_dir, r)) code = true;
        for (const auto& l : fn.layers)
          if (under(r, l) || under(l, r)) layer = true;
      }
      if (code || layer) code_changed(name, layer, "code changed");
    }
  }

  // A function's code (and with `layers`, its layers' too) changed: what was derived from it is
  // worked out again, and $LATEST's environments are retired.
  void code_changed(const std::string& name, bool layers, const std::string& why) {
    if (layers) fns[name].opt_dirty = true;
    fns[name].links_dirty = true;
    retire_latest(name, why);
  }

  void retire_latest(const std::string& function, const std::string& why) {
    auto it = pools.find({function, "$LATEST"});
    if (it == pools.end()) return;
    int n = 0;
    for (auto& e : it->second.entries) {
      if (e->env->retiring() || e->env->state() == runtime::EnvState::dead) continue;
      e->env->retire(why);
      ++n;
    }
    if (n) logger()->info("{}: {}; retiring {} environment{} of $LATEST", function, why, n, n == 1 ? "" : "s");
  }

  void schedule_reap() {
    auto every = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(200), options.idle_timeout / 10);
    every = std::min<std::chrono::milliseconds>(every, std::chrono::seconds(5));
    reap_timer.expires_after(every);
    reap_timer.async_wait([w = weak_from_this()](boost::system::error_code ec) {
      auto self = w.lock();
      if (!self || ec) return;
      self->reap_idle();
      self->schedule_reap();
    });
  }

  void reap_idle() {
    auto now = mono::now();
    for (auto& [key, pool] : pools)
      for (auto& e : pool.entries)
        if (!e->busy && e->env->state() == runtime::EnvState::idle && now - e->env->idle_since() > options.idle_timeout)
          e->env->stop("idle for " + std::to_string(options.idle_timeout.count() / 1000) + " s");
  }

  // ------------------------------------------------------------ resolution

  struct Resolved {
    std::optional<ServiceError> error;
    VersionConfig config;
    std::string invoked_arn;
  };

  Resolved resolve(const FunctionRef& ref) {
    Resolved r;
    std::string region = stack.region, account = stack.account_id;
    std::string arn_unq = function_arn(region, account, ref.name);
    // An ARN of another region is refused as Lambda refuses it; one of another account names a
    // function that does not exist here.
    if (!ref.region.empty() && ref.region != region) {
      r.error = ServiceError{404, "ResourceNotFoundException",
                             "Functions from '" + ref.region + "' are not reachable in this region ('" + region + "')",
                             "", "User"};
      return r;
    }
    auto fit = stack.functions.find(ref.name);
    if (fit == stack.functions.end() || (!ref.account.empty() && ref.account != account)) {
      // Unqualified: the message names $LATEST (AWS-recorded test_invoke_exceptions, 2025).
      r.error = not_found(function_arn(region, ref.account.empty() ? account : ref.account, ref.name,
                                       ref.qualifier.empty() ? "$LATEST" : ref.qualifier));
      return r;
    }
    const auto& fn = fit->second;
    r.invoked_arn = function_arn(region, account, ref.name, ref.qualifier);
    std::string q = ref.qualifier;
    if (q.empty() || q == "$LATEST") {
      r.config = latest_config(fn);
      return r;
    }
    std::string version = q;
    if (!is_version_number(q)) {
      auto ait = fn.aliases.find(q);
      if (ait == fn.aliases.end()) {
        r.error = not_found(r.invoked_arn);
        return r;
      }
      const auto& alias = ait->second;
      version = alias.version;
      if (alias.additional) {
        std::uniform_real_distribution<double> dist(0.0, 1.0);
        if (dist(rng) < alias.additional->second) version = alias.additional->first;
      }
      if (version == "$LATEST") {
        r.config = latest_config(fn);
        return r;
      }
    }
    auto cfg = versions.get(ref.name, version);
    if (!cfg) {
      if (version != q)
        logger()->warn("{}: alias {} points at version {}, which has not been published here (sluice publish {})",
                       ref.name, q, version, ref.name);
      r.error = not_found(function_arn(region, account, ref.name, version == q ? q : q));
      return r;
    }
    r.config = *cfg;
    return r;
  }

  // ------------------------------------------------------------ environments

  runtime::EnvironmentSpec env_spec(const VersionConfig& c) {
    runtime::EnvironmentSpec s;
    s.function_name = c.function;
    s.version = c.version;
    s.kind = kind_of(c.runtime.family);
    s.runtime_id = c.runtime.id;
    s.handler = c.handler;
    s.code_dir = c.code_dir;
    if (c.version == "$LATEST") {
      auto& st = fns[c.function];
      if (st.opt_dirty) {
        st.merged_opt = merge_layers(c.layers, options.state_dir / "opt" / c.function);
        st.opt_dirty = false;
      }
      s.opt_dir = st.merged_opt;
      if (c.layers.size() > 1) s.layers = c.layers;
    } else {
      s.opt_dir = c.opt_dir;
    }
    s.memory_mb = c.memory_mb;
    s.timeout_s = c.timeout_s;
    s.user_env = options.env_overrides.empty() ? c.environment
                                               : apply_env_overrides(options.env_overrides, c.function, c.environment);
    s.region = stack.region;
    s.account_id = stack.account_id;
    if (auto it = interpreters.find(c.runtime.id); it != interpreters.end()) {
      s.interpreter = it->second.path;
      if (c.runtime.family == stack::RuntimeFamily::node) s.interpreter_args = node_flags(it->second.version);
    }
    s.bootstrap_dir = options.bootstrap_dir;
    s.freeze = options.freeze;
    if (debugged(c.function)) {
      s.freeze = false;  // a frozen process would stop answering its debugger
      s.debugging = true;
      s.debug_args = debug_args;
    }
    s.sandbox = options.sandbox && !hidden_by_sandbox(s.interpreter);
    if (s.sandbox && c.version == "$LATEST") {
      auto& st = fns[c.function];
      if (st.links_dirty) {
        std::string was = st.outside_link;
        st.outside_link = link_leaving(c.code_dir);
        for (const auto& l : c.layers)
          if (st.outside_link.empty()) st.outside_link = link_leaving(l);
        st.links_dirty = false;
        if (!st.outside_link.empty() && st.outside_link != was)
          logger()->warn("{}: the symbolic link {} leads out of its directory, which Lambda's file system cannot "
                         "show (deploy puts what it leads to in the zip): the function sees this machine's paths",
                         c.function, st.outside_link);
      }
      if (!st.outside_link.empty()) s.sandbox = false;
    }
    if (s.sandbox) s.tmp_mb = c.ephemeral_mb;
    s.project_dir = stack.base_dir;
    s.freeze_delay = options.freeze_delay;
    s.init_timeout = options.init_timeout;
    // The function's logging configuration; --log-format overrides every function's format.
    // The levels only apply to JSON logs (AWS: INFO for both unless set).
    if (c.logging || !options.log_format.empty()) {
      stack::LoggingSpec lg = c.logging.value_or(stack::LoggingSpec{});
      if (!options.log_format.empty()) lg.format = options.log_format;
      s.log_format = lg.format;
      if (lg.format == "JSON") {
        s.log_level = lg.application_level();
        s.system_log_level = lg.system_level();
      }
    }
    s.runtime_version = runtime_label(c.runtime);
    return s;
  }

  std::shared_ptr<Entry> create_entry(const VersionConfig& c) {
    auto entry = std::make_shared<Entry>();
    entry->function = c.function;
    entry->version = c.version;
    std::weak_ptr<Entry> we = entry;
    std::weak_ptr<Impl> wi = weak_from_this();
    runtime::EnvironmentEvents ev;
    ev.on_idle = [wi, we] {
      auto self = wi.lock();
      auto e = we.lock();
      if (self && e) self->on_env_idle(e);
    };
    ev.on_dead = [wi, we](const std::string& reason) {
      auto self = wi.lock();
      auto e = we.lock();
      if (self && e) self->on_env_dead(e, reason);
    };
    entry->env = std::make_shared<runtime::Environment>(ex, env_spec(c), logs, std::move(ev));
    pools[{c.function, c.version}].entries.push_back(entry);
    fns[c.function].stats.cold_starts++;
    return entry;
  }

  void mark_busy(const std::shared_ptr<Entry>& e) {
    if (e->busy) return;
    e->busy = true;
    fns[e->function].busy++;
    account_busy++;
  }
  void mark_free(const std::shared_ptr<Entry>& e) {
    if (!e->busy) return;
    e->busy = false;
    fns[e->function].busy--;
    account_busy--;
  }

  void on_env_idle(const std::shared_ptr<Entry>& e) {
    e->job.reset();
    auto& pool = pools[{e->function, e->version}];
    // A caller waiting for this version takes the environment at once: no freeze, no cold start.
    while (!pool.waiters.empty()) {
      auto job = pool.waiters.front();
      pool.waiters.pop_front();
      if (job->completed || job->entry) continue;
      if (job->handoff) job->handoff->cancel();
      run_on(e, job);
      return;
    }
    if (auto job = next_debug_job(e->function)) {
      if (job->config.version == e->version && !shutting_down) {
        run_on(e, job);
        return;
      }
      // Another version of the debugged function: this environment makes way (its port).
      fns[e->function].debug_queue.push_front(job);
      mark_free(e);
      e->env->stop("another version of the function being debugged was called");
      return;
    }
    mark_free(e);
    if (shutting_down) e->env->stop("sluice is shutting down");
  }

  // The first call still waiting for the debugged function's environment (taken off the queue).
  std::shared_ptr<Job> next_debug_job(const std::string& function) {
    if (!debugged(function)) return nullptr;
    auto& q = fns[function].debug_queue;
    while (!q.empty()) {
      auto job = q.front();
      q.pop_front();
      if (!job->completed && !job->entry) return job;
    }
    return nullptr;
  }

  void on_env_dead(const std::shared_ptr<Entry>& e, const std::string& reason) {
    mark_free(e);
    auto key = std::make_pair(e->function, e->version);
    auto& pool = pools[key];
    pool.entries.erase(std::remove(pool.entries.begin(), pool.entries.end(), e), pool.entries.end());
    logger()->debug("{}:{} environment {} ended: {}", e->function, e->version, e->env->id(), reason);
    if (e->job && (!e->job->completed || !e->job->recorded)) {
      auto job = e->job;
      e->job.reset();
      job->have_report = true;  // there will be no report now
      maybe_complete(job);
    }
    // The debugged function's next caller gets the environment (a new one) now.
    if (auto job = next_debug_job(e->function)) place(job, false);
    // Jobs waiting for a finishing environment of this pool try again.
    if (!pool.waiters.empty()) {
      auto waiters = std::move(pool.waiters);
      pool.waiters.clear();
      for (auto& job : waiters)
        if (!job->completed && !job->entry) {
          if (job->handoff) job->handoff->cancel();
          place(job, false);
        }
    }
    // Keep the environment object alive until its own callbacks have unwound.
    asio::post(ex, [e] {});
  }

  // One record per attempt, once its outcome and its REPORT (or the environment's end) are known.
  void maybe_record(const std::shared_ptr<Job>& job) {
    if (job->recorded) return;
    if (!job->error && !(job->have_result && job->have_report)) {
      if (job->have_result && !job->awaiting_record) {
        job->awaiting_record = true;
        records_pending++;
      }
      return;
    }
    job->recorded = true;
    if (job->awaiting_record) records_pending--;
    InvocationRecord r;
    r.function = job->config.function;
    r.qualifier = job->qualifier;
    r.request_id = job->inv.request_id;
    r.source = job->source;
    r.invocation_type = job->invocation_type;
    r.started = job->started;
    if (job->error) {
      r.status = job->error->status == 429 ? "throttled" : "error";
      r.error_type = job->error->code;
    } else {
      r.version = job->config.version;
      r.cold_start = job->cold;
      if (job->result.function_error) {
        r.status = "function_error";
        r.error_type = job->result.error_type.empty() ? "Unhandled" : job->result.error_type;
      } else {
        r.status = "success";
      }
      if (job->report) {
        r.duration_ms = job->report->duration_ms;
        r.init_duration_ms = job->report->init_duration_ms;
        r.max_memory_used_mb = job->report->max_memory_used_mb;
      } else {
        r.duration_ms = std::chrono::duration<double, std::milli>(mono::now() - job->started_mono).count();
      }
    }
    records.push_back(std::move(r));
    while (records.size() > LambdaService::max_records) records.pop_front();
  }

  void maybe_complete(const std::shared_ptr<Job>& job) {
    maybe_record(job);
    if (job->completed) return;
    if (!job->error && !(job->have_result && (!job->want_report || job->have_report))) return;
    job->completed = true;
    jobs_in_flight--;
    auto done = std::move(job->done);
    if (done) asio::post(ex, std::move(done));
  }

  void run_on(const std::shared_ptr<Entry>& e, const std::shared_ptr<Job>& job) {
    mark_busy(e);
    e->job = job;
    job->entry = e;
    fns[e->function].stats.invocations++;
    std::weak_ptr<Job> wj = job;
    auto self = shared_from_this();
    e->env->invoke(
        job->inv,
        [self, job](runtime::InvocationResult r) {
          job->result = std::move(r);
          job->have_result = true;
          self->maybe_complete(job);
        },
        [self, job](const runtime::InvocationReport& rep) {
          job->report = rep;
          job->have_report = true;
          self->maybe_complete(job);
        });
  }

  // An idle environment that is not being retired: the next call may have it.
  static bool takes_work(const Entry& e) {
    return !e.busy && !e.env->retiring() && e.env->state() == runtime::EnvState::idle;
  }

  // The debugged function has one environment at a time (its debugger port): the job takes it
  // when it is idle (true: place() goes on and finds it), or waits for it (false). With none
  // left, place() goes on to a cold start.
  bool place_debugged(const std::shared_ptr<Job>& job) {
    const auto& c = job->config;
    std::shared_ptr<Entry> other;
    for (auto& [key, pool] : pools) {
      if (key.first != c.function) continue;
      for (auto& e : pool.entries) {
        if (e->env->state() == runtime::EnvState::dead) continue;
        if (takes_work(*e) && key.second == c.version) return true;
        other = e;
      }
    }
    if (!other) return true;
    auto& q = fns[c.function].debug_queue;
    q.push_back(job);
    if (q.size() == 1 && takes_work(*other))
      other->env->stop("another version of the function being debugged was called");
    logger()->debug("{}: call {} waits for the debugged function's environment", c.function, job->inv.request_id);
    return false;
  }

  // Finds an environment for the job: a warm idle one, a finishing one (short
  // hand-off wait), or a cold start within the concurrency limits.
  void place(const std::shared_ptr<Job>& job, bool allow_wait) {
    const auto& c = job->config;
    if (c.version == "$LATEST" && watch) watch->poll();
    if (shutting_down) {
      fail(job, ServiceError{503, "ServiceException", "sluice is shutting down", "", "Service"});
      return;
    }
    if (debugged(c.function) && !place_debugged(job)) return;
    auto& pool = pools[{c.function, c.version}];
    auto fit = stack.functions.find(c.function);
    int reserved = -1;  // -1: no reserved concurrency
    if (fit != stack.functions.end() && fit->second.reserved_concurrency) reserved = *fit->second.reserved_concurrency;

    // Most recently used idle environment first; the others age out.
    std::shared_ptr<Entry> best;
    for (auto& e : pool.entries) {
      if (!takes_work(*e)) continue;
      if (!best || e->env->idle_since() > best->env->idle_since()) best = e;
    }
    auto& fs_ = fns[c.function];
    if (best) {
      if (reserved >= 0 && fs_.busy >= reserved) {
        fail(job, throttled("ReservedFunctionConcurrentInvocationLimitExceeded"));
        return;
      }
      run_on(best, job);
      return;
    }
    if (allow_wait && options.handoff_window.count() > 0) {
      bool finishing = false;
      for (auto& e : pool.entries)
        if (e->busy && !e->env->retiring() && e->env->state() == runtime::EnvState::response_sent &&
            !e->env->waiting_for_extensions())  // extensions at work may take long: start another
          finishing = true;
      if (finishing) {
        job->handoff = std::make_unique<asio::steady_timer>(ex, options.handoff_window);
        pool.waiters.push_back(job);
        std::weak_ptr<Impl> wi = weak_from_this();
        job->handoff->async_wait([wi, job](boost::system::error_code ec) {
          auto self = wi.lock();
          if (!self || job->completed || job->entry) return;
          auto& p = self->pools[{job->config.function, job->config.version}];
          p.waiters.erase(std::remove(p.waiters.begin(), p.waiters.end(), job), p.waiters.end());
          self->place(job, false);
        });
        return;
      }
    }
    if (reserved >= 0 && fs_.busy >= reserved) {
      fail(job, throttled("ReservedFunctionConcurrentInvocationLimitExceeded"));
      return;
    }
    if (account_busy >= options.account_concurrency) {
      fail(job, throttled("ConcurrentInvocationLimitExceeded"));
      return;
    }
    auto interp = interpreters.find(c.runtime.id);
    if (c.runtime.family != stack::RuntimeFamily::provided &&
        (interp == interpreters.end() || interp->second.path.empty())) {
      job->result.outcome = runtime::Outcome::spawn_failed;
      job->result.function_error = true;
      job->result.error_type = "Runtime.InvalidEntrypoint";
      job->result.payload = runtime::platform_error(
          "Runtime.InvalidEntrypoint", "RequestId: " + job->inv.request_id + " Error: no interpreter for runtime " +
                                           c.runtime.id + " was found on PATH (use --interpreter " + c.runtime.id +
                                           "=/path/to/interpreter)");
      job->have_result = job->have_report = true;
      maybe_complete(job);
      return;
    }
    auto entry = create_entry(c);
    job->cold = true;
    run_on(entry, job);
    entry->env->start();
  }

  void fail(const std::shared_ptr<Job>& job, ServiceError err) {
    job->error = std::move(err);
    maybe_complete(job);
  }

  std::shared_ptr<Job> new_job(const VersionConfig& config, const runtime::Invocation& inv, bool want_report) {
    auto job = std::make_shared<Job>();
    job->config = config;
    job->inv = inv;
    job->want_report = want_report;
    return job;
  }

  // Places the job and completes when it has its result (and report, if asked for).
  asio::awaitable<void> run_job(std::shared_ptr<Job> job) {
    jobs_in_flight++;
    return asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [this, job](auto handler) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          job->done = [h] { std::move(*h)(); };
          place(job, true);
        },
        asio::use_awaitable);
  }

  // ------------------------------------------------------------ invoke

  asio::awaitable<InvokeResponse> invoke(InvokeRequest req) {
    auto self = shared_from_this();
    InvokeResponse res;
    res.request_id = req.request_id.empty() ? new_uuid() : req.request_id;
    if (shutting_down) {
      res.error = ServiceError{503, "ServiceException", "sluice is shutting down", "", "Service"};
      co_return res;
    }
    auto parsed = parse_function_ref(req.function, req.qualifier);
    if (parsed.error) {
      res.error = ServiceError{400, parsed.error->code, parsed.error->message, "", "User"};
      co_return res;
    }
    const auto& ref = *parsed.ref;
    res.function_name = ref.name;
    std::size_t limit = req.type == InvocationType::event ? max_async_payload : max_sync_payload;
    if (req.payload.size() > limit) {
      // Each in AWS's words (observed: ASFHyP3/hyp3#2241 for Event, when the limit was 256 KB).
      res.error = ServiceError{413, "RequestEntityTooLargeException",
                               req.type == InvocationType::event
                                   ? std::to_string(req.payload.size()) +
                                         " byte payload is too large for the Event invocation type (limit " +
                                         std::to_string(limit) + " bytes)"
                                   : "Request must be smaller than " + std::to_string(limit) +
                                         " bytes for the InvokeFunction operation",
                               "", "User"};
      co_return res;
    }
    if (req.payload.empty()) req.payload = "{}";
    if (req.payload_must_be_json) {
      if (auto err = check_json_payload(req.payload)) {
        res.error = ServiceError{400, "InvalidRequestContentException",
                                 "Could not parse request body into json: Could not parse payload into json: " + *err,
                                 "", "User"};
        co_return res;
      }
    }
    std::string client_context;
    if (!req.client_context_b64.empty()) {
      auto decoded = base64_decode(req.client_context_b64);
      if (!decoded || req.client_context_b64.size() > 3583 || check_json_payload(*decoded)) {
        res.error = ServiceError{400, "InvalidRequestContentException",
                                 "Client context must be a valid Base64-encoded JSON object.", "", "User"};
        co_return res;
      }
      client_context = *decoded;
    }
    auto resolved = resolve(ref);
    if (resolved.error) {
      res.error = resolved.error;
      co_return res;
    }
    res.executed_version = resolved.config.version;
    if (req.type == InvocationType::dry_run) {
      res.status = 204;
      res.executed_version.clear();
      co_return res;
    }

    runtime::Invocation inv;
    inv.request_id = res.request_id;
    inv.payload = std::move(req.payload);
    inv.invoked_arn = resolved.invoked_arn;
    inv.trace_id = req.trace_header.find("Root=") != std::string::npos ? req.trace_header : new_trace_id();
    // "Lambda passes the ClientContext object to your function for synchronous invocations only."
    if (req.type != InvocationType::event) inv.client_context = client_context;
    inv.cognito_identity = req.cognito_identity;
    inv.tenant_id = req.tenant_id;
    res.trace_id = inv.trace_id;

    if (req.type == InvocationType::event) {
      res.status = 202;
      res.executed_version.clear();
      async_pending++;
      asio::co_spawn(ex, run_async(resolved.config, std::move(inv), ref, req.source), asio::detached);
      co_return res;
    }

    auto job = new_job(resolved.config, inv, req.tail);
    job->source = req.source;
    job->qualifier = ref.qualifier;
    co_await run_job(job);
    if (job->error) {
      res.error = job->error;
      co_return res;
    }
    auto& r = job->result;
    res.cold_start = job->cold;
    res.function_error = r.function_error;
    res.error_type = r.error_type;
    res.payload = std::move(r.payload);
    res.content_type = r.content_type;
    res.stream = r.stream;
    if (job->report) {
      res.duration_ms = job->report->duration_ms;
      if (req.tail) res.log_result = base64_encode(job->report->log_tail);
    }
    co_return res;
  }

  asio::awaitable<void> run_async(VersionConfig config, runtime::Invocation inv, FunctionRef ref, std::string source) {
    auto self = shared_from_this();
    auto fit = stack.functions.find(ref.name);
    stack::AsyncSpec spec = fit != stack.functions.end() ? fit->second.async : stack::AsyncSpec{};
    auto started = mono::now();
    auto max_age = std::chrono::seconds(spec.max_event_age_s);
    int failures = 0;
    auto backoff = std::chrono::milliseconds(1000);
    asio::steady_timer timer(ex);
    std::string last_error;
    AsyncOutcome out;
    out.request_id = inv.request_id;
    out.function_arn = ref.qualifier.empty() ? inv.invoked_arn + ":$LATEST" : inv.invoked_arn;
    out.request_payload = inv.payload;
    out.condition = "RetriesExhausted";
    // Reserved concurrency 0: the event goes to the on-failure destination untried (AWS).
    bool zero = fit != stack.functions.end() && fit->second.reserved_concurrency == 0;
    if (zero) {
      out.condition = "ZeroReservedConcurrency";
      last_error = "reserved concurrency is 0";
    }
    while (!shutting_down && !zero) {
      // Each attempt re-resolves an alias, as the service does for every delivery.
      auto job = new_job(config, inv, false);
      job->source = source;
      job->qualifier = ref.qualifier;
      job->invocation_type = "Event";
      co_await run_job(job);
      if (job->error) {
        last_error = job->error->code;
        if (job->error->status != 429) break;
        // Throttled: requeued with exponential back-off until the event is too old.
        if (mono::now() - started + backoff > max_age) {
          out.condition = "EventAgeExceeded";
          break;
        }
        timer.expires_after(backoff);
        co_await timer.async_wait(nothrow);
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::minutes(5));
        continue;
      }
      out.attempts++;
      out.ran = true;
      out.executed_version = job->config.version;
      out.function_error = job->result.function_error;
      out.response_payload = std::move(job->result.payload);
      if (!job->result.function_error) {
        async_pending--;
        out.condition = "Success";
        out.time = std::chrono::system_clock::now();  // the record is made as the invocation ends
        if (spec.on_success) send_to_destination(ref, out, *spec.on_success, "on_success");
        co_return;
      }
      last_error = job->result.error_type.empty() ? "Unhandled" : job->result.error_type;
      if (failures >= spec.max_retry_attempts) break;
      auto delay = failures < static_cast<int>(options.async_retry_delays.size())
                       ? options.async_retry_delays[failures]
                       : options.async_retry_delays.empty() ? std::chrono::milliseconds(0)
                                                           : options.async_retry_delays.back();
      ++failures;
      if (mono::now() - started + delay > max_age) {
        out.condition = "EventAgeExceeded";
        break;
      }
      timer.expires_after(delay);
      co_await timer.async_wait(nothrow);
    }
    async_pending--;
    std::string why = shutting_down ? "sluice stopped before it was delivered"
                      : zero        ? "not run: the function's reserved concurrency is 0"
                                    : "discarded after " + std::to_string(out.attempts) + " attempt" +
                                   (out.attempts == 1 ? "" : "s") + " (" + last_error + ")";
    if (!shutting_down && spec.on_failure) why += "; its record goes to " + spec.on_failure->text();
    if (!shutting_down && spec.dead_letter) why += "; the event goes to " + spec.dead_letter->text();
    logger()->warn("{}: asynchronous event {} {}", ref.name, inv.request_id, why);
    if (shutting_down) co_return;
    out.time = std::chrono::system_clock::now();  // after the last attempt, not when the event came
    if (spec.on_failure) send_to_destination(ref, out, *spec.on_failure, "on_failure");
    if (spec.dead_letter) send_to_dead_letter(ref, out, *spec.dead_letter);
  }

  // ------------------------------------------------------------ destinations

  // Deliveries finish on the service's executor (functions of the stack) or on the sender's
  // thread (ARNs): the book is shared with that thread and guarded by its own mutex.
  struct DeliveryBook {
    mutable std::mutex m;
    std::deque<std::shared_ptr<DestinationDelivery>> list;
    std::size_t pending = 0;
  };
  std::shared_ptr<DeliveryBook> book = std::make_shared<DeliveryBook>();
  std::unique_ptr<RemoteDestinations> remote;

  static void finish_delivery(DeliveryBook& book, const std::shared_ptr<DestinationDelivery>& d, std::string state,
                              std::string detail) {
    {
      std::lock_guard lk(book.m);
      d->state = std::move(state);
      d->detail = std::move(detail);
      if (book.pending) book.pending--;
    }
    if (d->state == "delivered")
      logger()->info("{}: {} record of {} ({}) delivered to {}{}", d->function, d->kind, d->request_id, d->condition,
                     d->destination, d->detail.empty() ? "" : " (" + d->detail + ")");
    else
      logger()->warn("{}: {} record of {} ({}) not delivered to {}: {}{}", d->function, d->kind, d->request_id,
                     d->condition, d->destination, d->detail,
                     d->record.size() <= 4096 ? "; the record: " + d->record
                                              : "; the record starts: " + d->record.substr(0, 4096));
  }

  std::shared_ptr<DestinationDelivery> new_delivery(const FunctionRef& ref, const AsyncOutcome& out,
                                                    const stack::DestinationSpec& dest, const char* kind,
                                                    std::string body) {
    auto d = std::make_shared<DestinationDelivery>();
    d->function = ref.name;
    d->request_id = out.request_id;
    d->condition = out.condition;
    d->kind = kind;
    d->destination = dest.text();
    d->record = std::move(body);
    std::lock_guard lk(book->m);
    book->list.push_back(d);
    if (book->list.size() > LambdaService::max_records) book->list.pop_front();
    book->pending++;
    return d;
  }

  // A dead-letter queue gets the event itself, with what went wrong in message attributes
  // (as recorded from AWS: RequestID, ErrorCode "200" as a Number, ErrorMessage = the first
  // KB of the error's message).
  void send_to_dead_letter(const FunctionRef& ref, const AsyncOutcome& out, const stack::DestinationSpec& dest) {
    auto d = new_delivery(ref, out, dest, "dead_letter", out.request_payload);
    RemoteDestinations::Message m;
    m.arn = dest.arn;
    m.body = out.request_payload;
    m.function_arn = out.function_arn;
    m.attributes.push_back({"RequestID", "String", out.request_id});
    if (out.ran) {
      std::string message = error_message(out.response_payload);
      m.attributes.push_back({"ErrorCode", "Number", std::to_string(out.status_code)});
      m.attributes.push_back({"ErrorMessage", "String", message.substr(0, 1024)});
    } else {  // never ran: reserved concurrency 0, or throttled until the event was too old
      m.attributes.push_back({"ErrorCode", "Number", "429"});
      m.attributes.push_back({"ErrorMessage", "String",
                              out.condition == "ZeroReservedConcurrency"
                                  ? "Function not invoked: its reserved concurrency is 0"
                                  : "Function not invoked: throttled until the event was older than its maximum age"});
    }
    send_remote(d, dest, std::move(m));
  }

  void send_to_destination(const FunctionRef& ref, const AsyncOutcome& out, const stack::DestinationSpec& dest,
                           const char* kind) {
    auto d = new_delivery(ref, out, dest, kind, invocation_record(out));
    if (!dest.function.empty()) {
      // A function of the stack: invoked asynchronously with the record as its event. Without
      // a qualifier it runs under the alias the event came through when it has one of that
      // name (deploy points it at the same stage's alias), else $LATEST.
      InvokeRequest req;
      req.function = dest.function;
      req.qualifier = dest.qualifier;
      if (req.qualifier.empty() && !ref.qualifier.empty()) {
        auto dit = stack.functions.find(dest.function);
        if (dit != stack.functions.end() && dit->second.aliases.count(ref.qualifier)) req.qualifier = ref.qualifier;
      }
      req.payload = d->record;
      req.type = InvocationType::event;
      req.source = std::string(kind) + " destination of " + ref.name;
      asio::co_spawn(
          ex,
          [self = shared_from_this(), req = std::move(req), d]() mutable -> asio::awaitable<void> {
            auto res = co_await self->invoke(std::move(req));
            if (res.error)
              finish_delivery(*self->book, d, "failed", res.error->code + ": " + res.error->message);
            else
              finish_delivery(*self->book, d, "delivered", "request id " + res.request_id);
          },
          asio::detached);
      return;
    }
    RemoteDestinations::Message m;
    m.arn = dest.arn;
    m.body = d->record;
    m.success = out.condition == "Success";
    m.function_arn = out.function_arn;
    send_remote(d, dest, std::move(m));
  }

  void send_remote(const std::shared_ptr<DestinationDelivery>& d, const stack::DestinationSpec& dest,
                   RemoteDestinations::Message m) {
    if (destination_endpoint(dest.service).empty()) {
      finish_delivery(*book, d, "not_sent", "no endpoint to send it to (" + endpoint_hint(dest.service) + ")");
      return;
    }
    if (!remote) remote = std::make_unique<RemoteDestinations>();
    remote->send(std::move(m), [b = book, d](const std::string& state, const std::string& detail) {
      finish_delivery(*b, d, state, detail);  // on the sender's thread
    });
  }

  // ------------------------------------------------------------ lifecycle

  asio::awaitable<void> shutdown(std::chrono::milliseconds deadline) {
    auto self = shared_from_this();
    shutting_down = true;
    reap_timer.cancel();
    asio::steady_timer t(ex);
    auto until = mono::now() + deadline;
    while (jobs_in_flight > 0 && mono::now() < until) {
      t.expires_after(std::chrono::milliseconds(10));
      co_await t.async_wait(nothrow);
    }
    stop_all();
    // Give processes their grace period to leave (extensions 2 s after a SHUTDOWN event), then return.
    auto hard = mono::now() + std::chrono::milliseconds(2500);
    while ((live_envs() > 0 || runtime::extensions_shutting_down() > 0) && mono::now() < hard) {
      t.expires_after(std::chrono::milliseconds(10));
      co_await t.async_wait(nothrow);
    }
  }

  std::size_t live_envs() const {
    std::size_t n = 0;
    for (auto& [k, p] : pools)
      for (auto& e : p.entries)
        if (e->env->state() != runtime::EnvState::dead) ++n;
    return n;
  }

  void stop_all() {
    shutting_down = true;
    reap_timer.cancel();
    for (auto& [k, p] : pools)
      for (auto& e : std::vector<std::shared_ptr<Entry>>(p.entries)) e->env->stop("sluice is shutting down");
  }

  void reload(stack::Stack next) {
    for (const auto& [name, fn] : stack.functions) {
      auto nit = next.functions.find(name);
      if (nit == next.functions.end()) {
        for (auto& [key, pool] : pools)
          if (key.first == name)
            for (auto& e : pool.entries) e->env->retire("function removed from the stack");
        continue;
      }
      const auto& n = nit->second;
      bool changed = n.runtime.id != fn.runtime.id || n.handler != fn.handler || n.code_dir != fn.code_dir ||
                     n.memory_mb != fn.memory_mb || n.timeout_s != fn.timeout_s || n.ephemeral_mb != fn.ephemeral_mb ||
                     n.environment != fn.environment || n.layers != fn.layers;
      if (changed) {
        fns[name].opt_dirty = true;
        fns[name].links_dirty = true;
        retire_latest(name, "configuration changed");
      }
    }
    stack = std::move(next);
    resolve_interpreters();
    setup_watches();
  }
};

LambdaService::LambdaService(asio::any_io_executor ex, stack::Stack stack, ServiceOptions options,
                             std::shared_ptr<runtime::LogSink> logs)
    : impl_(std::make_shared<Impl>(ex, std::move(stack), std::move(options), std::move(logs))) {
  impl_->init();
}

LambdaService::~LambdaService() {
  if (impl_) impl_->stop_all();
}

asio::awaitable<InvokeResponse> LambdaService::invoke(InvokeRequest req) { return impl_->invoke(std::move(req)); }

VersionStore::Published LambdaService::publish(const std::string& function, const std::string& description) {
  auto it = impl_->stack.functions.find(function);
  if (it == impl_->stack.functions.end())
    throw std::runtime_error("Function not found: " +
                             function_arn(impl_->stack.region, impl_->stack.account_id, function));
  return impl_->versions.publish(it->second, description);
}

void LambdaService::reload(stack::Stack stack) { impl_->reload(std::move(stack)); }
void LambdaService::refresh_code(const std::string& why) {
  for (const auto& [name, fn] : impl_->stack.functions) impl_->code_changed(name, true, why);
}
const stack::Stack& LambdaService::stack() const { return impl_->stack; }
VersionStore& LambdaService::versions() { return impl_->versions; }
asio::awaitable<void> LambdaService::shutdown(std::chrono::milliseconds deadline) {
  return impl_->shutdown(deadline);
}
void LambdaService::stop_all() { impl_->stop_all(); }

FunctionStats LambdaService::stats(const std::string& function) const {
  FunctionStats s;
  auto it = impl_->fns.find(function);
  if (it != impl_->fns.end()) s = it->second.stats;
  for (auto& [key, pool] : impl_->pools)
    if (key.first == function)
      for (auto& e : pool.entries) {
        s.environments++;
        if (e->busy) s.busy++;
      }
  return s;
}

std::size_t LambdaService::in_flight() const { return impl_->jobs_in_flight; }
std::size_t LambdaService::queued_events() const { return impl_->async_pending; }

std::string LambdaService::runtime_version_arn(const std::string& function) const {
  auto fit = impl_->stack.functions.find(function);
  if (fit == impl_->stack.functions.end()) return {};
  auto in = impl_->interpreters.find(fit->second.runtime.id);
  return runtime::runtime_version_arn(impl_->stack.region, fit->second.runtime.id,
                                      in == impl_->interpreters.end() ? std::filesystem::path() : in->second.path);
}

std::vector<DestinationDelivery> LambdaService::destinations() const {
  std::lock_guard lk(impl_->book->m);
  std::vector<DestinationDelivery> out;
  for (const auto& d : impl_->book->list) out.push_back(*d);
  return out;
}
std::size_t LambdaService::destinations_pending() const {
  std::lock_guard lk(impl_->book->m);
  return impl_->book->pending;
}

std::vector<InvocationRecord> LambdaService::records() const {
  return std::vector<InvocationRecord>(impl_->records.begin(), impl_->records.end());
}
void LambdaService::clear_records() { impl_->records.clear(); }
std::size_t LambdaService::records_pending() const { return impl_->records_pending; }

struct StreamReader::State {
  explicit State(asio::any_io_executor ex) : wake(ex, std::chrono::steady_clock::time_point::max()) {}
  std::shared_ptr<runtime::ResponseStream> stream;
  std::deque<std::string> pending;
  bool ended = false;
  asio::steady_timer wake;
};

StreamReader::StreamReader(asio::any_io_executor ex, std::shared_ptr<runtime::ResponseStream> stream)
    : state_(std::make_shared<State>(ex)) {
  state_->stream = std::move(stream);
  std::weak_ptr<State> w = state_;
  state_->stream->consume(
      [w](std::string_view chunk) {
        auto st = w.lock();
        if (!st) return true;
        st->pending.emplace_back(chunk);
        st->wake.cancel();
        return st->pending.size() < 8;
      },
      [w] {
        if (auto st = w.lock()) {
          st->ended = true;
          st->wake.cancel();
        }
      });
}

StreamReader::~StreamReader() {
  // Nothing is delivered here any more; a paused producer goes on to its end.
  state_->stream->consume([](std::string_view) { return true; }, [] {});
  state_->stream->resume();
}

asio::awaitable<std::optional<std::string>> StreamReader::next() {
  auto st = state_;
  for (;;) {
    if (!st->pending.empty()) {
      std::string chunk = std::move(st->pending.front());
      st->pending.pop_front();
      if (st->pending.size() < 4) st->stream->resume();
      co_return chunk;
    }
    if (st->ended) co_return std::nullopt;
    st->wake.expires_at(std::chrono::steady_clock::time_point::max());
    co_await st->wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> read_stream(runtime::ResponseStream& stream, const std::function<void(std::string_view)>& on_chunk) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer wake(ex, std::chrono::steady_clock::time_point::max());
  bool done = false;
  stream.consume(
      [&on_chunk](std::string_view chunk) {
        on_chunk(chunk);
        return true;
      },
      [&] {
        done = true;
        wake.cancel();
      });
  while (!done) {
    wake.expires_at(std::chrono::steady_clock::time_point::max());
    co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace sluice::lambda
