// Child processes of sluice: spawning a handler runtime in its own process group,
// walking its process tree, reading its memory, signalling it, and the reaper
// that guarantees no handler process outlives sluice.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::proc {

// The file system a Lambda function sees, given to a child in a user and mount namespace of
// its own (no privileges needed, nothing changes outside the child): the host as it is, except
// /var/task (the code, read-only), /var/runtime (the runtime, read-only), /opt (the layers,
// read-only; empty without layers), an /etc/hosts that also names sandbox.localdomain and,
// when tmp_mb is set, a /tmp of that size that holds only the tmp_keep entries of the host's
// /tmp (a project kept in /tmp stays where it is). Paths in argv, env and cwd are then the
// sandbox's (/var/task/bootstrap, ...).
struct Sandbox {
  std::string task;                 // host directory on /var/task
  std::string runtime;              // host directory on /var/runtime ("": an empty one)
  std::vector<std::string> layers;  // /opt: one is bound, more are stacked (overlay), the first on top
  std::string opt_fallback;         // host directory bound on /opt where the overlay cannot be mounted
  int tmp_mb = 0;                   // a private /tmp (tmpfs) of this many MB; 0: the host's /tmp
  std::vector<std::string> tmp_keep;  // names in the host's /tmp that the private one shows too
};

// The namespaces of a sandboxed process, held open so that more processes can join them
// (an environment's extensions and runtime share one /tmp) even after that process is gone.
class Namespaces {
 public:
  Namespaces() = default;
  ~Namespaces() { close(); }
  Namespaces(const Namespaces&) = delete;
  Namespaces& operator=(const Namespaces&) = delete;
  // Opens /proc/<pid>/ns/{user,mnt}; false when the process is gone or not in its own.
  bool open(pid_t pid);
  void close();
  bool held() const { return user_fd >= 0 && mnt_fd >= 0; }
  int user_fd = -1, mnt_fd = -1;
};

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the program path
  std::vector<std::string> env;   // complete environment, "KEY=VALUE"
  std::string cwd;
  int output_fd = -1;             // becomes both stdout and stderr; /dev/null when -1
  // One more descriptor the program gets, as number `pass_fd_as` (Lambda's telemetry log
  // descriptor, 62); -1: none. Every other descriptor above 2 is closed at exec.
  int pass_fd = -1;
  int pass_fd_as = -1;
  const Sandbox* sandbox = nullptr;
  // Start in these namespaces (an earlier process's sandbox) instead of setting up `sandbox`.
  // Costs a copy of sluice's page tables (a fork), which a new sandbox does not.
  const Namespaces* join = nullptr;
};

struct SpawnResult {
  pid_t pid = -1;
  int exec_errno = 0;         // non-zero: the program could not be executed (pid is then -1)
  std::string sandbox_error;  // the sandbox could not be set up: which step failed, and why
};

// "" when this machine can give children a Sandbox, else why not (found out once, by
// starting /bin/true in one).
const std::string& sandbox_unavailable();

// clone(CLONE_VM | CLONE_VFORK) + exec: the child leads a new process group in sluice's session
// (not a session of its own: see process.cpp), dies with sluice (PR_SET_PDEATHSIG) and is
// registered with the reaper.
SpawnResult spawn(const SpawnOptions& opts);

// root and every descendant still alive (via /proc/<pid>/task/<tid>/children)
std::vector<pid_t> process_tree(pid_t root);

struct Memory {
  std::uint64_t rss_kb = 0;  // resident now, summed over the tree
  std::uint64_t hwm_kb = 0;  // peak resident, summed over the tree
};
Memory tree_memory(pid_t root);
// A process tree's memory, read again and again: walk() finds the tree and keeps each
// member's /proc/<pid>/status open, so read() costs one pread per member instead of a walk
// of /proc. A member that has exited reads as nothing (the descriptor stays bound to that
// process, never to a later one given its pid).
class TreeMemory {
 public:
  TreeMemory() = default;
  ~TreeMemory();
  TreeMemory(const TreeMemory&) = delete;
  TreeMemory& operator=(const TreeMemory&) = delete;
  void walk(pid_t root);
  Memory read() const;
  bool walked() const { return !members_.empty(); }
  void clear();

 private:
  std::vector<std::pair<pid_t, int>> members_;  // pid, its status file
};

// Signal a whole process group (the group started by spawn()).
void signal_group(pid_t pgid, int sig);
// SIGKILL a group leader's process tree and its whole process group.
void kill_tree(pid_t leader);
// The same with a tree walked earlier (process_tree), while every parent link was intact: the
// leader's group, then each other process of the walk (descendants that left the group).
void kill_tree(pid_t leader, const std::vector<pid_t>& tree);

// Go's exec.ExitError wording, which Lambda's error messages carry:
// "exit status 3", "signal: killed", "signal: segmentation fault (core dumped)".
std::string describe_wait_status(int status);

// Forks the reaper. Call once at start-up, before any thread or socket exists.
void start_reaper();
void reaper_track(pid_t pgid);
void reaper_untrack(pid_t pgid);

}  // namespace sluice::proc
