#include "sluice/common/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>

namespace sluice::proc {
namespace {

int reaper_fd = -1;

bool read_small_file(const char* path, char* buf, std::size_t cap, std::size_t& len) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::read(fd, buf, cap - 1);
  ::close(fd);
  if (n < 0) return false;
  len = static_cast<std::size_t>(n);
  buf[len] = 0;
  return true;
}

void add_children(pid_t pid, std::vector<pid_t>& out, int depth) {
  if (depth > 64) return;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR* d = ::opendir(path);
  if (!d) return;
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char cpath[512];
    std::snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", pid, e->d_name);
    char buf[4096];
    std::size_t len = 0;
    if (!read_small_file(cpath, buf, sizeof buf, len)) continue;
    char* p = buf;
    while (*p) {
      char* end = nullptr;
      long child = std::strtol(p, &end, 10);
      if (end == p) break;
      out.push_back(static_cast<pid_t>(child));
      add_children(static_cast<pid_t>(child), out, depth + 1);
      p = end;
      while (*p == ' ' || *p == '\n') ++p;
    }
  }
  ::closedir(d);
}

std::uint64_t status_number(const char* buf, const char* key) {
  const char* p = std::strstr(buf, key);
  if (!p) return 0;
  p += std::strlen(key);
  return std::strtoull(p, nullptr, 10);
}

// Go's syscall.Signal.String() table, for the signals a handler realistically dies of.
const char* go_signal_name(int sig) {
  switch (sig) {
    case SIGHUP: return "hangup";
    case SIGINT: return "interrupt";
    case SIGQUIT: return "quit";
    case SIGILL: return "illegal instruction";
    case SIGTRAP: return "trace/breakpoint trap";
    case SIGABRT: return "aborted";
    case SIGBUS: return "bus error";
    case SIGFPE: return "floating point exception";
    case SIGKILL: return "killed";
    case SIGUSR1: return "user defined signal 1";
    case SIGSEGV: return "segmentation fault";
    case SIGUSR2: return "user defined signal 2";
    case SIGPIPE: return "broken pipe";
    case SIGALRM: return "alarm clock";
    case SIGTERM: return "terminated";
    case SIGXCPU: return "CPU time limit exceeded";
    case SIGXFSZ: return "file size limit exceeded";
    case SIGSYS: return "bad system call";
    default: return nullptr;
  }
}

void reaper_send(char op, pid_t pgid) {
  if (reaper_fd < 0) return;
  char line[32];
  int n = std::snprintf(line, sizeof line, "%c%d\n", op, pgid);
  ssize_t w;
  do {
    w = ::write(reaper_fd, line, static_cast<std::size_t>(n));
  } while (w < 0 && errno == EINTR);
}

[[noreturn]] void reaper_main(int fd) {
  // The reaper outlives sluice by design; it must ignore the terminal's
  // Ctrl-C (sluice handles that) and only act when sluice's end of the pipe closes.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGTERM, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  ::prctl(PR_SET_NAME, "sluice-reaper");
  std::set<pid_t> groups;
  std::string pending;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, pos);
      pending.erase(0, pos + 1);
      if (line.size() < 2) continue;
      pid_t pgid = static_cast<pid_t>(std::strtol(line.c_str() + 1, nullptr, 10));
      if (line[0] == '+') groups.insert(pgid);
      else groups.erase(pgid);
    }
  }
  for (pid_t pgid : groups) kill_tree(pgid);
  ::_exit(0);
}

// One step of a sandbox's set-up, prepared by the parent and carried out by the child
// between clone and exec (system calls only: the child shares the parent's memory).
struct SandboxStep {
  enum Kind { write_file, make_dir, make_file, make_link, mount_fs } kind;
  const char* a;  // write_file, make_dir, make_file: the path; make_link: the target; mount_fs: the source
  const char* b;  // write_file: the text; make_link: the link; mount_fs: the mount point
  const char* fstype = nullptr;
  unsigned long flags = 0;
  const char* data = nullptr;
  int skip_on_success = 0;  // the steps after this one that only stand in for it when it fails
  bool may_fail = false;
};

// Everything the child needs, prepared by the parent: between clone and exec the
// child shares the parent's memory and may only make async-signal-safe calls.
struct ChildArgs {
  char* const* argv;
  char* const* envp;
  const char* cwd;
  int devnull;
  int output_fd;
  pid_t parent;
  int pass_fd, pass_fd_as;
  int exec_errno;  // written by the child when it cannot exec
  const SandboxStep* steps = nullptr;
  std::size_t nsteps = 0;
  long failed_step = -1;  // written by the child when a sandbox step fails (exec_errno has the errno)
  int join_user = -1, join_mnt = -1;  // namespaces to enter (setns)
  int report_fd = -1;  // a child with memory of its own reports {exec_errno, failed_step} here
};

// The child cannot exec: record why (in the parent's memory, or through report_fd) and end.
[[noreturn]] void child_fails(ChildArgs* a, int err, long step) {
  a->exec_errno = err ? err : EPERM;
  a->failed_step = step;
  if (a->report_fd >= 0) {
    long report[2] = {a->exec_errno, step};
    [[maybe_unused]] ssize_t n = ::write(a->report_fd, report, sizeof report);
  }
  ::_exit(step != -1 ? 126 : a->exec_errno == ENOENT ? 127 : 126);
}

bool write_whole(const char* path, const char* text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::size_t len = std::strlen(text);
  ssize_t n = ::write(fd, text, len);
  int err = errno;
  ::close(fd);
  errno = err;
  return n == static_cast<ssize_t>(len);
}

bool run_step(const SandboxStep& s) {
  switch (s.kind) {
    case SandboxStep::write_file: return write_whole(s.a, s.b);
    case SandboxStep::make_dir: return ::mkdir(s.a, 0755) == 0 || errno == EEXIST;
    case SandboxStep::make_file: {
      int fd = ::open(s.a, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) return false;
      ::close(fd);
      return true;
    }
    case SandboxStep::make_link: return ::symlink(s.a, s.b) == 0;
    case SandboxStep::mount_fs: return ::mount(s.a, s.b, s.fstype, s.flags, s.data) == 0;
  }
  return false;
}

// The sandbox's steps, in order; the child ends at the first failure.
void run_steps(ChildArgs* a) {
  for (std::size_t i = 0; i < a->nsteps; ++i) {
    const SandboxStep& s = a->steps[i];
    if (run_step(s)) {
      i += static_cast<std::size_t>(s.skip_on_success);
      continue;
    }
    if (s.may_fail) continue;
    child_fails(a, errno, static_cast<long>(i));
  }
}

// Steps of their own for entering held namespaces, for the messages.
constexpr long join_user_step = -2, join_mnt_step = -3;

int child_main(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  // A process group of its own (signals, freeze and kill reach the whole handler), but
  // sluice's session: a new session would also be a new scheduler autogroup, and 16
  // handler autogroups outweigh sluice's one 16 to 1 under load (p99 latency 2-5x).
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != a->parent) ::_exit(127);
  // Default dispositions first, then unblock: the parent blocked every signal
  // around the clone, so none of its handlers can run on this shared memory.
  for (int s = 1; s < NSIG; ++s) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    ::signal(s, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (a->devnull >= 0) ::dup2(a->devnull, 0);
  int out = a->output_fd >= 0 ? a->output_fd : a->devnull;
  if (out >= 0) {
    ::dup2(out, 1);
    ::dup2(out, 2);
  }
  if (a->join_user >= 0 && ::setns(a->join_user, CLONE_NEWUSER) != 0) child_fails(a, errno, join_user_step);
  if (a->join_mnt >= 0 && ::setns(a->join_mnt, CLONE_NEWNS) != 0) child_fails(a, errno, join_mnt_step);
  if (a->steps) run_steps(a);
  if (a->cwd && ::chdir(a->cwd) != 0) child_fails(a, errno ? errno : ENOENT, -1);
  // Nothing of sluice's beyond 0-2 reaches the program: its listening sockets, client
  // connections, other environments' Runtime API listeners and pipes would otherwise stay open
  // in every handler (a removed API's port kept listening in a frozen handler; a handler's
  // detached grandchild kept ports bound after sluice ended). Marked close-on-exec rather than
  // closed, so that report_fd still works should the exec fail.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
    for (int fd = 3; fd < 4096; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  // The one descriptor handed over on purpose (dup2 clears close-on-exec on the copy; a
  // descriptor that already has the number keeps its flag, which is cleared here).
  if (a->pass_fd >= 0 && a->pass_fd_as > 2) {
    if (a->pass_fd == a->pass_fd_as) ::fcntl(a->pass_fd_as, F_SETFD, 0);
    else if (::dup2(a->pass_fd, a->pass_fd_as) < 0) child_fails(a, errno, -1);
  }
  ::execve(a->argv[0], a->argv, a->envp);
  child_fails(a, errno ? errno : ENOEXEC, -1);
}

// What every sandbox on this machine shares, found out once: a directory of sluice's own to put
// the new /var together on, the hosts file, and what the host's /var holds.
struct SandboxHost {
  std::string error;  // why this machine cannot give children a sandbox
  std::string stage;      // where the new /var is put together
  std::string tmp_stage;  // where a private /tmp is put together
  std::string hosts;
  struct Entry {
    std::string name;
    char type;  // 'd' directory, 'f' anything else, 'l' symbolic link
    std::string target;
  };
  std::vector<Entry> var;
  std::string uid_map, gid_map;
};

// The directory sluice keeps its sandbox files in: $TMPDIR/sluice-<uid>, made private to
// the user, refused when it is anything else (another user's, a symbolic link).
std::string sandbox_workspace(std::string& error) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/sluice-" + std::to_string(::getuid());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    error = "cannot create " + dir + ": " + std::strerror(errno);
    return {};
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid()) {
    error = dir + " is not a directory of this user's";
    return {};
  }
  return dir;
}

SandboxHost make_sandbox_host() {
  SandboxHost h;
  struct stat st {};
  if (::stat("/opt", &st) != 0 || !S_ISDIR(st.st_mode)) {
    h.error = "this machine has no /opt directory to put the layers on";
    return h;
  }
  std::string dir = sandbox_workspace(h.error);
  if (dir.empty()) return h;
  h.stage = dir + "/var";
  h.tmp_stage = dir + "/tmp";
  for (const auto& d : {h.stage, h.tmp_stage}) {
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
      h.error = "cannot create " + d + ": " + std::strerror(errno);
      return h;
    }
  }
  // /etc/hosts as it is, plus the name AWS's Telemetry API examples listen on.
  std::string hosts;
  {
    std::ifstream in("/etc/hosts");
    std::stringstream ss;
    ss << in.rdbuf();
    hosts = ss.str();
  }
  if (!hosts.empty() && hosts.back() != '\n') hosts += '\n';
  hosts += "127.0.0.1\tsandbox.localdomain\n";
  h.hosts = dir + "/hosts";
  std::string part = h.hosts + "." + std::to_string(::getpid());
  {
    std::ofstream out(part, std::ios::trunc);
    out << hosts;
    if (!out) {
      h.error = "cannot write " + part;
      return h;
    }
  }
  if (::rename(part.c_str(), h.hosts.c_str()) != 0) {
    h.error = "cannot write " + h.hosts + ": " + std::strerror(errno);
    return h;
  }
  if (DIR* d = ::opendir("/var")) {
    while (auto* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || name == "task" || name == "runtime") continue;
      std::string path = "/var/" + name;
      struct stat es {};
      if (::lstat(path.c_str(), &es) != 0) continue;
      SandboxHost::Entry entry{name, S_ISLNK(es.st_mode) ? 'l' : S_ISDIR(es.st_mode) ? 'd' : 'f', {}};
      if (entry.type == 'l') {
        char target[4096];
        ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
        if (n <= 0) continue;
        entry.target.assign(target, static_cast<std::size_t>(n));
      }
      h.var.push_back(std::move(entry));
    }
    ::closedir(d);
  }
  std::sort(h.var.begin(), h.var.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
  h.uid_map = std::to_string(::geteuid()) + " " + std::to_string(::geteuid()) + " 1";
  h.gid_map = std::to_string(::getegid()) + " " + std::to_string(::getegid()) + " 1";
  return h;
}

const SandboxHost& sandbox_host() {
  static std::once_flag once;
  static SandboxHost host;
  std::call_once(once, [] { host = make_sandbox_host(); });
  return host;
}

// Mount flags a bind mount inherits from its source and may not drop inside a user namespace:
// a read-only remount must repeat them.
unsigned long locked_flags(const std::string& path) {
  struct statvfs v {};
  if (::statvfs(path.c_str(), &v) != 0) return 0;
  unsigned long f = 0;
  if (v.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (v.f_flag & ST_NODEV) f |= MS_NODEV;
  if (v.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (v.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (v.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (v.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

// A sandbox's steps with the strings they point into.
class SandboxPlan {
 public:
  SandboxPlan(const Sandbox& sb, const SandboxHost& h) {
    step(SandboxStep::write_file, "/proc/self/setgroups", "deny");
    step(SandboxStep::write_file, "/proc/self/uid_map", keep(h.uid_map));
    step(SandboxStep::write_file, "/proc/self/gid_map", keep(h.gid_map));
    // Nothing mounted here may reach the host's namespace.
    mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE);
    // The new /var: the host's entries, task and runtime; read-only itself.
    mount("tmpfs", keep(h.stage), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k");
    for (const auto& e : h.var) {
      const char* at = keep(h.stage + "/" + e.name);
      if (e.type == 'l') {
        step(SandboxStep::make_link, keep(e.target), at);
        continue;
      }
      step(e.type == 'd' ? SandboxStep::make_dir : SandboxStep::make_file, at, nullptr);
      mount(keep("/var/" + e.name), at, nullptr, MS_BIND | MS_REC);
    }
    read_only_dir(sb.task, h.stage + "/task");
    read_only_dir(sb.runtime, h.stage + "/runtime");
    mount(nullptr, keep(h.stage), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV);
    mount(keep(h.stage), "/var", nullptr, MS_MOVE);
    // /opt: the layers, or nothing.
    if (sb.layers.empty()) {
      mount("tmpfs", "/opt", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755,size=4k");
    } else if (sb.layers.size() == 1) {
      bind_read_only(sb.layers.front(), "/opt");
    } else {
      // overlayfs takes ':' and ',' as separators; such paths go through the fallback.
      bool plain = true;
      std::string lower = "lowerdir=";
      for (std::size_t i = 0; i < sb.layers.size(); ++i) {
        if (sb.layers[i].find_first_of(":,\\") != std::string::npos) plain = false;
        lower += (i ? ":" : "") + sb.layers[i];
      }
      if (plain || sb.opt_fallback.empty()) {
        mount("overlay", "/opt", "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, keep(lower));
        if (!sb.opt_fallback.empty()) {
          steps_.back().may_fail = true;
          steps_.back().skip_on_success = 2;
        }
      }
      if (!sb.opt_fallback.empty()) bind_read_only(sb.opt_fallback, "/opt");
    }
    bind_read_only(h.hosts, "/etc/hosts");
    // Last: every host path above may be under /tmp. The new /tmp is put together beside the
    // host's (the entries it keeps bound from there), then moved over it.
    if (sb.tmp_mb > 0) {
      const char* stage = keep(h.tmp_stage);
      mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, keep("mode=1777,size=" + std::to_string(sb.tmp_mb) + "m"));
      for (const auto& name : sb.tmp_keep) {
        std::string from = "/tmp/" + name;
        struct stat st {};
        if (name.empty() || name.find('/') != std::string::npos || ::lstat(from.c_str(), &st) != 0) continue;
        const char* at = keep(h.tmp_stage + "/" + name);
        step(S_ISDIR(st.st_mode) ? SandboxStep::make_dir : SandboxStep::make_file, at, nullptr);
        mount(keep(from), at, nullptr, MS_BIND | MS_REC);
      }
      mount(stage, "/tmp", nullptr, MS_MOVE);
    }
  }
  const std::vector<SandboxStep>& steps() const { return steps_; }

 private:
  const char* keep(std::string s) { return strings_.emplace_back(std::move(s)).c_str(); }
  void step(SandboxStep::Kind k, const char* a, const char* b) { steps_.push_back(SandboxStep{k, a, b}); }
  void mount(const char* src, const char* at, const char* fstype, unsigned long flags, const char* data = nullptr) {
    steps_.push_back(SandboxStep{SandboxStep::mount_fs, src, at, fstype, flags, data});
  }
  void bind_read_only(const std::string& src, const std::string& at) {
    const char* a = keep(at);
    mount(keep(src), a, nullptr, MS_BIND | MS_REC);
    mount(nullptr, a, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(src));
  }
  void read_only_dir(const std::string& src, const std::string& at) {
    step(SandboxStep::make_dir, keep(at), nullptr);
    if (!src.empty()) bind_read_only(src, at);
  }
  std::deque<std::string> strings_;
  std::vector<SandboxStep> steps_;
};

std::string describe_step(const SandboxStep& s, int err) {
  std::string what;
  switch (s.kind) {
    case SandboxStep::write_file: what = std::string("write ") + s.a; break;
    case SandboxStep::make_dir:
    case SandboxStep::make_file: what = std::string("create ") + s.a; break;
    case SandboxStep::make_link: what = std::string("link ") + s.b; break;
    case SandboxStep::mount_fs:
      if (s.flags & MS_MOVE) what = std::string("move ") + s.a + " to " + s.b;
      else if (s.flags & MS_REMOUNT) what = std::string("make ") + s.b + " read-only";
      else if (s.flags & MS_BIND) what = std::string("mount ") + s.a + " on " + s.b;
      else if (!s.a) what = std::string("make ") + s.b + " private";
      else what = std::string("mount ") + s.fstype + " on " + s.b;
      break;
  }
  return what + ": " + std::strerror(err);
}

}  // namespace

// clone(CLONE_VM | CLONE_VFORK), as posix_spawn does: no copy of sluice's page
// tables and no copy-on-write faults afterwards (a plain fork cost a cold start
// 1-2 ms here), and the parent resumes only once the child has exec'd or failed.
// posix_spawn itself cannot set PR_SET_PDEATHSIG, hence our own child function.
SpawnResult spawn(const SpawnOptions& opts) {
  SpawnResult result;
  std::vector<char*> argv;
  for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : opts.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  if (argv.size() < 2) {
    result.exec_errno = ENOENT;
    return result;
  }

  ChildArgs args{argv.data(), envp.data(), opts.cwd.empty() ? nullptr : opts.cwd.c_str(),
                 ::open("/dev/null", O_RDWR | O_CLOEXEC), opts.output_fd, ::getpid(), opts.pass_fd, opts.pass_fd_as, 0};
  std::optional<SandboxPlan> plan;
  int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
  int report[2] = {-1, -1};
  if (opts.join && opts.join->held()) {
    // Entering a user namespace takes a process with memory of its own (setns refuses one
    // that shares it): a fork, which tells how exec went through a close-on-exec pipe.
    if (::pipe2(report, O_CLOEXEC) != 0) {
      if (args.devnull >= 0) ::close(args.devnull);
      result.exec_errno = errno;
      return result;
    }
    args.report_fd = report[1];
    args.join_user = opts.join->user_fd;
    args.join_mnt = opts.join->mnt_fd;
    flags = SIGCHLD;
  } else if (opts.sandbox) {
    const SandboxHost& host = sandbox_host();
    if (!host.error.empty()) {
      if (args.devnull >= 0) ::close(args.devnull);
      result.exec_errno = EPERM;
      result.sandbox_error = host.error;
      return result;
    }
    plan.emplace(*opts.sandbox, host);
    args.steps = plan->steps().data();
    args.nsteps = plan->steps().size();
    flags |= CLONE_NEWUSER | CLONE_NEWNS;
  }
  constexpr std::size_t stack_size = 64 * 1024;
  std::vector<char> stack(stack_size);

  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::clone(child_main, stack.data() + stack_size, flags, &args);
  int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (args.devnull >= 0) ::close(args.devnull);
  if (report[1] >= 0) {
    ::close(report[1]);
    long got[2] = {0, -1};
    ssize_t n = 0;
    if (pid > 0)
      do {
        n = ::read(report[0], got, sizeof got);
      } while (n < 0 && errno == EINTR);
    ::close(report[0]);
    if (n == static_cast<ssize_t>(sizeof got)) {
      args.exec_errno = static_cast<int>(got[0]);
      args.failed_step = got[1];
    }
  }

  if (pid < 0) {
    result.exec_errno = clone_errno;
    if (plan)
      result.sandbox_error = std::string("cannot create a user and mount namespace: ") + std::strerror(clone_errno);
    return result;
  }
  if (args.exec_errno != 0) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exec_errno = args.exec_errno;
    if (args.failed_step >= 0 && plan)
      result.sandbox_error = describe_step(plan->steps()[static_cast<std::size_t>(args.failed_step)], args.exec_errno);
    else if (args.failed_step == join_user_step || args.failed_step == join_mnt_step)
      result.sandbox_error = std::string("cannot enter the environment's ") +
                             (args.failed_step == join_user_step ? "user" : "mount") +
                             " namespace: " + std::strerror(args.exec_errno);
    return result;
  }
  reaper_send('+', pid);
  result.pid = pid;
  return result;
}

bool Namespaces::open(pid_t pid) {
  close();
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
  user_fd = ::open(path, O_RDONLY | O_CLOEXEC);
  std::snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid);
  mnt_fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (!held()) close();
  return held();
}

void Namespaces::close() {
  if (user_fd >= 0) ::close(user_fd);
  if (mnt_fd >= 0) ::close(mnt_fd);
  user_fd = mnt_fd = -1;
}

const std::string& sandbox_unavailable() {
  static std::once_flag once;
  static std::string why;
  std::call_once(once, [] {
    Sandbox sb;
    sb.task = "/etc";
    SpawnOptions o;
    o.argv = {"/bin/true"};
    o.sandbox = &sb;
    auto res = spawn(o);
    if (res.pid < 0) {
      why = !res.sandbox_error.empty() ? res.sandbox_error : std::string("/bin/true: ") + std::strerror(res.exec_errno);
      return;
    }
    reaper_send('-', res.pid);
    int status = 0;
    while (::waitpid(res.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      why = "/bin/true in a sandbox ended with " + describe_wait_status(status);
  });
  return why;
}

std::vector<pid_t> process_tree(pid_t root) {
  std::vector<pid_t> out{root};
  add_children(root, out, 0);
  return out;
}

Memory tree_memory(pid_t root) {
  TreeMemory tree;
  tree.walk(root);
  return tree.read();
}

TreeMemory::~TreeMemory() { clear(); }

void TreeMemory::clear() {
  for (auto& [pid, fd] : members_)
    if (fd >= 0) ::close(fd);
  members_.clear();
}

void TreeMemory::walk(pid_t root) {
  std::vector<std::pair<pid_t, int>> now;
  for (pid_t p : process_tree(root)) {
    auto known = std::find_if(members_.begin(), members_.end(), [p](const auto& m) { return m.first == p; });
    if (known != members_.end()) {
      now.push_back(*known);
      known->second = -1;  // handed over
      continue;
    }
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/status", p);
    now.emplace_back(p, ::open(path, O_RDONLY | O_CLOEXEC));
  }
  clear();
  members_ = std::move(now);
}

Memory TreeMemory::read() const {
  Memory m;
  for (const auto& [pid, fd] : members_) {
    if (fd < 0) continue;
    char buf[4096];
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) continue;
    buf[n] = 0;
    m.rss_kb += status_number(buf, "VmRSS:");
    m.hwm_kb += status_number(buf, "VmHWM:");
  }
  return m;
}

void signal_group(pid_t pgid, int sig) {
  if (pgid > 0) ::kill(-pgid, sig);
}

void kill_tree(pid_t leader) {
  if (leader <= 0) return;
  // The walk first, while every parent link is intact; then the group (which also holds
  // orphans whose parent has exited), then whoever left the group but not the tree.
  kill_tree(leader, process_tree(leader));
}

void kill_tree(pid_t leader, const std::vector<pid_t>& tree) {
  if (leader <= 0) return;
  // The group's id is the leader's pid, so the group signal reaches the leader too; it is not
  // signalled by pid, which may already have been reaped (and its number given out again).
  ::kill(-leader, SIGKILL);
  for (pid_t p : tree)
    if (p != leader) ::kill(p, SIGKILL);
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = go_signal_name(sig);
    std::string s = "signal: " + (name ? std::string(name) : "signal " + std::to_string(sig));
    if (WCOREDUMP(status)) s += " (core dumped)";
    return s;
  }
  return "exit status " + std::to_string(status);
}

void start_reaper() {
  if (reaper_fd >= 0) return;
  int fds[2];
  if (::pipe(fds) != 0) return;
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return;
  }
  if (pid == 0) {
    ::close(fds[1]);
    // Detach from the terminal's process group so Ctrl-C never reaches it, and from the
    // working directory (the Python package forks it inside a test's project directory).
    ::setpgid(0, 0);
    [[maybe_unused]] int ignored = ::chdir("/");
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != fds[0]) ::close(fd);
    reaper_main(fds[0]);
  }
  ::close(fds[0]);
  ::fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  reaper_fd = fds[1];
}

void reaper_track(pid_t pgid) { reaper_send('+', pgid); }
void reaper_untrack(pid_t pgid) { reaper_send('-', pgid); }

}  // namespace sluice::proc
