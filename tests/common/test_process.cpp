// sluice/common/process.hpp: spawning handler processes, walking their trees,
// reading their memory, and Go's wording of a wait status.
#include "sluice/common/process.hpp"

#include <catch2/catch.hpp>

#include "../test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <optional>
#include <thread>

using namespace sluice;
using test_support::TempDir;
using test_support::write_file;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    close_write();
    if (r >= 0) ::close(r);
  }
  void close_write() {
    if (w >= 0) ::close(w);
    w = -1;
  }
};

// Everything until EOF (or the deadline).
std::string read_all(int fd, std::chrono::milliseconds limit = 5000ms) {
  std::string out;
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  return out;
}

// The wait status, or nullopt when the process did not end in time.
std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds limit = 5000ms) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return std::nullopt;
    std::this_thread::sleep_for(2ms);
  }
  return std::nullopt;
}

// Kills and reaps a spawned process even when a CHECK failed half-way.
struct Reap {
  pid_t pid;
  ~Reap() {
    if (pid > 0) {
      proc::kill_tree(pid);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

// What the fd gives until it has `lines` complete lines, it ends, or 5 s pass.
std::string read_lines(int fd, long lines) {
  std::string text;
  auto until = std::chrono::steady_clock::now() + 5s;
  while (std::count(text.begin(), text.end(), '\n') < lines && std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

bool gone_or_zombie(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  auto rp = line.rfind(')');
  return rp == std::string::npos || (rp + 2 < line.size() && (line[rp + 2] == 'Z' || line[rp + 2] == 'X'));
}

pid_t parent_of(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto rp = line.rfind(')');
  if (rp == std::string::npos) return -1;
  char state;
  int ppid = -1;
  std::sscanf(line.c_str() + rp + 1, " %c %d", &state, &ppid);
  return ppid;
}

// `/bin/sh -c SCRIPT` with only PATH set, its stdout and stderr on output_fd.
proc::SpawnResult spawn_shell(const std::string& script, int output_fd) {
  proc::SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c", script};
  opts.env = {"PATH=/usr/bin:/bin"};
  opts.output_fd = output_fd;
  return proc::spawn(opts);
}

}  // namespace

TEST_CASE("spawn runs the program with exactly the given environment, cwd and output", "[process][spawn]") {
  TempDir dir;
  Pipe out;
  proc::SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c",
               "echo \"foo=$FOO\"; echo \"home=${HOME-unset}\"; pwd; echo to-stderr >&2; "
               "read line || echo stdin-empty; exit 3"};
  opts.env = {"FOO=bar baz", "PATH=/usr/bin:/bin"};
  opts.cwd = dir.path().string();
  opts.output_fd = out.w;
  auto res = proc::spawn(opts);
  REQUIRE(res.pid > 0);
  CHECK(res.exec_errno == 0);
  Reap reap{res.pid};
  out.close_write();

  std::string text = read_all(out.r);
  CHECK(text == "foo=bar baz\nhome=unset\n" + dir.path().string() + "\nto-stderr\nstdin-empty\n");
  auto status = wait_exit(res.pid);
  REQUIRE(status);
  reap.pid = -1;
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 3);
  CHECK(proc::describe_wait_status(*status) == "exit status 3");
}

TEST_CASE("the child starts with no blocked signals and default dispositions", "[process][spawn]") {
  // The parent blocks every signal around the clone and may itself ignore some (sluice
  // ignores SIGPIPE); the handler must see neither.
  struct sigaction ign {}, old_pipe {}, old_usr1 {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &old_pipe);
  ::sigaction(SIGUSR1, &ign, &old_usr1);
  sigset_t usr2, old_mask;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  ::pthread_sigmask(SIG_BLOCK, &usr2, &old_mask);

  Pipe out;
  auto res = spawn_shell("grep -E '^Sig(Blk|Ign):' /proc/self/status", out.w);

  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  ::sigaction(SIGUSR1, &old_usr1, nullptr);
  REQUIRE(res.pid > 0);
  Reap reap{res.pid};
  out.close_write();
  std::string text = read_all(out.r);
  CHECK(text == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  auto status = wait_exit(res.pid);
  REQUIRE(status);
  reap.pid = -1;
  CHECK(WIFEXITED(*status));
}

TEST_CASE("the child leads its own process group, in sluice's session", "[process][spawn]") {
  proc::SpawnOptions opts;
  opts.argv = {"/bin/sleep", "30"};
  auto res = proc::spawn(opts);
  REQUIRE(res.pid > 0);
  Reap reap{res.pid};
  CHECK(::getpgid(res.pid) == res.pid);
  CHECK(::getpgid(res.pid) != ::getpgid(0));
  // Same session, hence the same scheduler autogroup as sluice.
  CHECK(::getsid(res.pid) == ::getsid(0));

  proc::signal_group(res.pid, SIGTERM);
  auto status = wait_exit(res.pid);
  REQUIRE(status);
  reap.pid = -1;
  CHECK(WIFSIGNALED(*status));
  CHECK(WTERMSIG(*status) == SIGTERM);
  CHECK(proc::describe_wait_status(*status) == "signal: terminated");
}

TEST_CASE("spawn reports exec failures through exec_errno", "[process][spawn]") {
  TempDir dir;
  SECTION("missing program") {
    proc::SpawnOptions opts;
    opts.argv = {(dir / "no-such-program").string()};
    auto res = proc::spawn(opts);
    CHECK(res.pid == -1);
    CHECK(res.exec_errno == ENOENT);
  }
  SECTION("not executable") {
    write_file(dir / "script.sh", "#!/bin/sh\nexit 0\n");
    fs::permissions(dir / "script.sh", fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    proc::SpawnOptions opts;
    opts.argv = {(dir / "script.sh").string()};
    auto res = proc::spawn(opts);
    CHECK(res.pid == -1);
    CHECK(res.exec_errno == EACCES);
  }
  SECTION("missing working directory") {
    proc::SpawnOptions opts;
    opts.argv = {"/bin/true"};
    opts.cwd = (dir / "missing").string();
    auto res = proc::spawn(opts);
    CHECK(res.pid == -1);
    CHECK(res.exec_errno == ENOENT);
  }
  // No zombie was left behind by the failed attempts.
  CHECK(::waitpid(-1, nullptr, WNOHANG) <= 0);
}

TEST_CASE("a sandboxed child sees Lambda's paths, read-only, and the host stays as it was", "[process][sandbox]") {
  if (!proc::sandbox_unavailable().empty()) {
    WARN("no sandbox on this machine: " + proc::sandbox_unavailable());
    return;
  }
  TempDir code, layer1, layer2, runtime;
  write_file(code / "handler.txt", "code");
  write_file(runtime / "bootstrap", "runtime");
  write_file(layer1 / "both.txt", "first");
  write_file(layer1 / "first.txt", "first");
  write_file(layer2 / "both.txt", "second");
  proc::Sandbox sb;
  sb.task = code.path().string();
  sb.runtime = runtime.path().string();
  sb.layers = {layer2.path().string(), layer1.path().string()};  // the first on top
  Pipe out;
  proc::SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c",
               "pwd; cat handler.txt /var/runtime/bootstrap /opt/both.txt /opt/first.txt; echo; "
               "grep -c sandbox.localdomain /etc/hosts; touch /var/task/new 2>/dev/null || echo read-only; "
               "touch /opt/new 2>/dev/null || echo read-only; ls /var | grep -c -x -e task -e runtime -e tmp"};
  opts.env = {"PATH=/usr/bin:/bin"};
  opts.cwd = "/var/task";
  opts.output_fd = out.w;
  opts.sandbox = &sb;
  auto res = proc::spawn(opts);
  REQUIRE(res.pid > 0);
  CHECK(res.sandbox_error.empty());
  Reap reap{res.pid};
  out.close_write();
  CHECK(read_all(out.r) == "/var/task\ncoderuntimesecondfirst\n1\nread-only\nread-only\n3\n");
  auto status = wait_exit(res.pid);
  REQUIRE(status);
  reap.pid = -1;
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK_FALSE(fs::exists(code / "new"));
  CHECK_FALSE(fs::exists("/var/task/handler.txt"));
}

TEST_CASE("a sandbox that cannot be set up says which step failed", "[process][sandbox]") {
  if (!proc::sandbox_unavailable().empty()) {
    WARN("no sandbox on this machine: " + proc::sandbox_unavailable());
    return;
  }
  TempDir dir;
  proc::Sandbox sb;
  sb.task = (dir / "missing").string();
  proc::SpawnOptions opts;
  opts.argv = {"/bin/true"};
  opts.sandbox = &sb;
  auto res = proc::spawn(opts);
  CHECK(res.pid == -1);
  CHECK(res.exec_errno == ENOENT);
  CHECK(res.sandbox_error.find("mount " + sb.task + " on ") == 0);
  CHECK(res.sandbox_error.find("/task: No such file or directory") != std::string::npos);
  CHECK(::waitpid(-1, nullptr, WNOHANG) <= 0);
}

TEST_CASE("process_tree finds children and grandchildren; kill_tree ends them all", "[process][tree]") {
  Pipe out;
  // A child (sh) and a grandchild (sleep inside a subshell), reporting their pids.
  auto res = spawn_shell("(sleep 30 & echo $!; wait) & echo ready; wait", out.w);
  REQUIRE(res.pid > 0);
  Reap reap{res.pid};
  out.close_write();

  // Wait until the sleep has been started and announced.
  std::string text = read_lines(out.r, 2);
  INFO(text);
  REQUIRE(std::count(text.begin(), text.end(), '\n') >= 2);
  pid_t sleeper = 0;
  for (const auto& l : {text.substr(0, text.find('\n')), text.substr(text.find('\n') + 1)})
    if (l.rfind("ready", 0) != 0 && !l.empty()) sleeper = static_cast<pid_t>(std::stol(l));
  REQUIRE(sleeper > 0);

  auto tree = proc::process_tree(res.pid);
  CHECK(tree.front() == res.pid);
  CHECK(tree.size() >= 3);  // sh, the subshell, sleep
  CHECK(std::find(tree.begin(), tree.end(), sleeper) != tree.end());
  pid_t subshell = parent_of(sleeper);
  CHECK(subshell != res.pid);
  CHECK(parent_of(subshell) == res.pid);
  CHECK(std::find(tree.begin(), tree.end(), subshell) != tree.end());
  CHECK(proc::process_tree(sleeper) == std::vector<pid_t>{sleeper});

  auto mem = proc::tree_memory(res.pid);
  CHECK(mem.rss_kb > 0);
  CHECK(mem.hwm_kb > 0);
  CHECK(mem.hwm_kb >= mem.rss_kb / 2);
  // The tree holds more than its root.
  CHECK(mem.rss_kb > proc::tree_memory(sleeper).rss_kb);
  // Read again through the status files a walk left open: the same processes.
  proc::TreeMemory kept;
  kept.walk(res.pid);
  auto again = kept.read();
  CHECK(again.hwm_kb >= mem.hwm_kb);  // the same processes; a peak only grows
  CHECK(again.rss_kb > proc::tree_memory(sleeper).rss_kb);

  proc::kill_tree(res.pid);
  auto status = wait_exit(res.pid);
  REQUIRE(status);
  reap.pid = -1;
  CHECK(WIFSIGNALED(*status));
  CHECK(proc::describe_wait_status(*status) == "signal: killed");
  // The grandchild went with it (reparented and killed, at most a zombie left to init).
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (!gone_or_zombie(sleeper) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  CHECK(gone_or_zombie(sleeper));
  // The kept files name the processes that were, not whoever gets their pids: nothing now.
  CHECK(kept.read().hwm_kb == 0);
  kept.walk(res.pid);  // the root is gone: a tree of one that reads as nothing
  CHECK(kept.read().rss_kb == 0);
}

TEST_CASE("kill_tree reaches an orphan left in the group and a child that left the group", "[process][tree]") {
  Pipe out;
  // The first sleep's parent subshell exits at once: an orphan, still in the group. The
  // second leads a session and group of its own (setsid), still a child of the shell.
  auto res = spawn_shell("(sleep 31 & echo $!); setsid sleep 32 & echo $!; wait", out.w);
  REQUIRE(res.pid > 0);
  Reap reap{res.pid};
  out.close_write();
  std::string text = read_lines(out.r, 2);
  INFO(text);
  REQUIRE(std::count(text.begin(), text.end(), '\n') >= 2);
  auto orphan = static_cast<pid_t>(std::stol(text.substr(0, text.find('\n'))));
  auto leaver = static_cast<pid_t>(std::stol(text.substr(text.find('\n') + 1)));
  // setsid has exec'd sleep once the process left the group.
  auto left = std::chrono::steady_clock::now() + 2s;
  while (::getpgid(leaver) == res.pid && std::chrono::steady_clock::now() < left) std::this_thread::sleep_for(2ms);
  CHECK(::getpgid(orphan) == res.pid);
  CHECK(parent_of(orphan) != res.pid);
  CHECK(::getpgid(leaver) == leaver);
  CHECK(parent_of(leaver) == res.pid);

  proc::kill_tree(res.pid);
  REQUIRE(wait_exit(res.pid));
  reap.pid = -1;
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (!(gone_or_zombie(orphan) && gone_or_zombie(leaver)) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  CHECK(gone_or_zombie(orphan));
  CHECK(gone_or_zombie(leaver));
}

TEST_CASE("process_tree and tree_memory of a process that does not exist", "[process][tree]") {
  // pid_max is at most 2^22 on Linux.
  const pid_t absent = 4194304 + 1;
  CHECK(proc::process_tree(absent) == std::vector<pid_t>{absent});
  auto mem = proc::tree_memory(absent);
  CHECK(mem.rss_kb == 0);
  CHECK(mem.hwm_kb == 0);
}

TEST_CASE("describe_wait_status uses Go's exec.ExitError wording", "[process][status]") {
  CHECK(proc::describe_wait_status(0) == "exit status 0");
  CHECK(proc::describe_wait_status(3 << 8) == "exit status 3");
  CHECK(proc::describe_wait_status(255 << 8) == "exit status 255");
  CHECK(proc::describe_wait_status(SIGKILL) == "signal: killed");
  CHECK(proc::describe_wait_status(SIGSEGV) == "signal: segmentation fault");
  CHECK(proc::describe_wait_status(SIGSEGV | 0x80) == "signal: segmentation fault (core dumped)");
  CHECK(proc::describe_wait_status(SIGABRT | 0x80) == "signal: aborted (core dumped)");
  CHECK(proc::describe_wait_status(SIGTERM) == "signal: terminated");
  CHECK(proc::describe_wait_status(SIGBUS) == "signal: bus error");
  // Go names unknown signals by number.
  CHECK(proc::describe_wait_status(SIGRTMIN + 2) == "signal: signal " + std::to_string(SIGRTMIN + 2));
}

TEST_CASE("describe_wait_status of real deaths", "[process][status]") {
  auto run = [](const char* script) {
    proc::SpawnOptions opts;
    opts.argv = {"/bin/sh", "-c", script};
    auto res = proc::spawn(opts);
    REQUIRE(res.pid > 0);
    Reap reap{res.pid};
    auto status = wait_exit(res.pid);
    REQUIRE(status);
    reap.pid = -1;
    return proc::describe_wait_status(*status);
  };
  CHECK(run("exit 3") == "exit status 3");
  CHECK(run("kill -KILL $$") == "signal: killed");
  std::string segv = run("kill -SEGV $$");
  // Whether a core is written depends on RLIMIT_CORE; the wording covers both.
  CHECK((segv == "signal: segmentation fault" || segv == "signal: segmentation fault (core dumped)"));
}
