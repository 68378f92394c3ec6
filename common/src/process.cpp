#include "sluice/common/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
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

// Everything the child needs, prepared by the parent: between clone and exec the
// child shares the parent's memory and may only make async-signal-safe calls.
struct ChildArgs {
  char* const* argv;
  char* const* envp;
  const char* cwd;
  int devnull;
  int output_fd;
  pid_t parent;
  int exec_errno;  // written by the child when it cannot exec
};

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
  if (a->cwd && ::chdir(a->cwd) != 0) {
    a->exec_errno = errno ? errno : ENOENT;
    ::_exit(127);
  }
  ::execve(a->argv[0], a->argv, a->envp);
  a->exec_errno = errno ? errno : ENOEXEC;
  ::_exit(a->exec_errno == ENOENT ? 127 : 126);
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
                 ::open("/dev/null", O_RDWR | O_CLOEXEC), opts.output_fd, ::getpid(), 0};
  constexpr std::size_t stack_size = 64 * 1024;
  std::vector<char> stack(stack_size);

  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::clone(child_main, stack.data() + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (args.devnull >= 0) ::close(args.devnull);

  if (pid < 0) {
    result.exec_errno = clone_errno;
    return result;
  }
  if (args.exec_errno != 0) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exec_errno = args.exec_errno;
    return result;
  }
  reaper_send('+', pid);
  result.pid = pid;
  return result;
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
  auto tree = process_tree(leader);
  ::kill(-leader, SIGKILL);
  for (pid_t p : tree) ::kill(p, SIGKILL);
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
