// One execution environment: process supervision, the Runtime API endpoint the
// process talks to, and the lifecycle (init, invoke, freeze, timeout, crash,
// out-of-memory, shutdown). Everything runs on one io thread; the state
// machine refuses every transition it does not explicitly allow.
#include "sluice/runtime/environment.hpp"

#include "child_watch.hpp"
#include "env_vars.hpp"
#include "sluice/common/http_server.hpp"
#include "sluice/common/log.hpp"
#include "sluice/common/process.hpp"
#include "sluice/common/util.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <set>

namespace sluice::runtime {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using mono = std::chrono::steady_clock;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::uint32_t kRuntimeHeaderLimit = 64 * 1024;  // a Runtime API request's line and headers
constexpr std::size_t max_payload = 6 * 1024 * 1024 + 100;  // 6,291,556 bytes, as RIE enforces
constexpr std::size_t max_discard = 64 * 1024 * 1024;
constexpr std::size_t max_log_line = 256 * 1024;
constexpr std::size_t tail_bytes = 4096;
constexpr auto memory_poll = std::chrono::milliseconds(25);

auto logger() {
  static auto l = log::get("runtime");
  return l;
}

// Runtime API state names as the emulator reports them in InvalidStateTransition.
const char* api_state_name(EnvState s, bool init_error) {
  if (init_error) return "InitError";
  switch (s) {
    case EnvState::starting: return "Started";
    case EnvState::idle: return "Ready";
    case EnvState::running: return "Running";
    case EnvState::response_sent: return "RuntimeResponseSentState";
    default: return "Running";
  }
}

std::string api_error(const std::string& type, const std::string& message) {
  return json{{"errorMessage", message}, {"errorType", type}}.dump();
}

std::string seconds2(int s) { return std::to_string(s) + ".00"; }

std::string ms2(double ms) { return fixed2(ms); }

// "Something changed" for coroutines on a single thread: notify() wakes every coroutine waiting
// at that moment; each re-checks its own condition (`while (cond) co_await ev.wait();`). The
// timer never expires and is never re-armed, so that one waiter starting to wait cannot cancel
// another's wait (re-arming a timer cancels the waits already on it).
class Event {
 public:
  explicit Event(asio::any_io_executor ex) : timer_(ex, mono::time_point::max()) {}
  asio::awaitable<void> wait() {
    const auto seen = generation_;
    while (generation_ == seen) co_await timer_.async_wait(nothrow);
  }
  void notify() {
    ++generation_;
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  std::uint64_t generation_ = 0;
};

class Stream final : public ResponseStream {
 public:
  explicit Stream(asio::any_io_executor ex, std::string content_type)
      : resume_(ex), content_type_(std::move(content_type)) {}

  void consume(std::function<bool(std::string_view)> on_data, std::function<void()> on_end) override {
    on_data_ = std::move(on_data);
    on_end_ = std::move(on_end);
    deliver_queued();
  }
  void resume() override {
    paused_ = false;
    deliver_queued();
    resume_.notify();
  }
  bool ended() const override { return ended_; }
  std::string content_type() const override { return content_type_; }
  std::string error_type() const override { return error_type_; }
  std::string error_body() const override { return error_body_; }
  std::uint64_t bytes() const override { return bytes_; }

  // Hands queued chunks to the consumer until it pauses, then the end once all are out.
  void deliver_queued() {
    while (!queued_.empty() && !paused_ && on_data_) {
      std::string chunk = std::move(queued_.front());
      queued_.pop_front();
      if (!on_data_(chunk)) paused_ = true;
    }
    if (queued_.empty() && ended_ && on_end_) {
      auto fn = std::move(on_end_);
      on_end_ = nullptr;
      fn();
    }
  }

  // producer side
  void push(std::string chunk) {
    bytes_ += chunk.size();
    if (on_data_ && !paused_ && queued_.empty()) {
      if (!on_data_(chunk)) paused_ = true;
    } else {
      queued_.push_back(std::move(chunk));
    }
  }
  bool should_pause() const { return paused_ || queued_.size() > 64; }
  asio::awaitable<void> wait_resume() { co_await resume_.wait(); }
  void end(std::string error_type, std::string error_body) {
    if (ended_) return;
    ended_ = true;
    error_type_ = std::move(error_type);
    error_body_ = std::move(error_body);
    if (queued_.empty() && on_end_) {
      auto fn = std::move(on_end_);
      on_end_ = nullptr;
      fn();
    }
    resume_.notify();
  }

 private:
  Event resume_;
  std::string content_type_;
  std::function<bool(std::string_view)> on_data_;
  std::function<void()> on_end_;
  std::deque<std::string> queued_;
  bool paused_ = false;
  bool ended_ = false;
  std::string error_type_, error_body_;
  std::uint64_t bytes_ = 0;
};

}  // namespace

const char* to_string(EnvState s) {
  switch (s) {
    case EnvState::starting: return "starting";
    case EnvState::idle: return "idle";
    case EnvState::running: return "running";
    case EnvState::response_sent: return "response_sent";
    case EnvState::stopping: return "stopping";
    case EnvState::dead: return "dead";
  }
  return "?";
}

struct Environment::Impl : std::enable_shared_from_this<Impl> {
  struct Current {
    Invocation inv;
    ResultHandler on_result;
    ReportHandler on_report;
    mono::time_point delivered_at{};
    mono::time_point responded_at{};
    bool result_sent = false;
    bool answered = false;  // the runtime is done with it (response_sent): only its next /next ends it
    bool handed = false;    // the event went out to the runtime on a GET /next
    bool cold = false;
    std::size_t produced_bytes = 0;  // the response's size (JSON runtimeDone record)
    std::string tail;
    std::string status, error_type;
    std::shared_ptr<Stream> stream;
  };

  enum class KillReason { none, timeout, oom, init_timeout, stop };

  Impl(asio::any_io_executor ex_, EnvironmentSpec spec_, std::shared_ptr<LogSink> logs_, EnvironmentEvents ev)
      : ex(ex_),
        spec(std::move(spec_)),
        logs(std::move(logs_)),
        events(std::move(ev)),
        id(random_hex(8)),
        acceptor(ex_),
        next_ready(ex_),
        timeout_timer(ex_),
        freeze_timer(ex_),
        init_timer(ex_),
        memory_timer(ex_),
        kill_timer(ex_),
        log_retry(ex_) {
    log_stream = ymd_slashes() + "/[" + spec.version + "]" + random_hex(32);
  }

  asio::any_io_executor ex;
  EnvironmentSpec spec;
  std::shared_ptr<LogSink> logs;
  EnvironmentEvents events;
  std::string id;
  std::string log_stream;

  EnvState state = EnvState::starting;
  bool served = false;
  bool retiring = false;
  bool frozen = false;
  bool exited = false;
  KillReason kill_reason = KillReason::none;
  std::string death_reason;

  // init
  mono::time_point spawned_at{};
  std::optional<double> init_duration_ms;  // reported on the first invocation only
  bool init_reported = false;
  bool init_error_posted = false;
  std::string invalid_entrypoint;  // set when there is no bootstrap to run
  std::string init_error_payload, init_error_type;

  // process
  pid_t pid = -1;
  int out_fd = -1;
  std::unique_ptr<asio::posix::stream_descriptor> out;
  std::string partial;
  std::uint64_t peak_kb = 0;
  mono::time_point memory_read_at{};
  proc::TreeMemory tree;  // the handler's processes at the last walk (read_memory)
  mono::time_point tree_walked_at{};

  // Runtime API
  tcp::acceptor acceptor;
  unsigned short port = 0;
  std::set<std::shared_ptr<tcp::socket>> conns;
  // The connection of the GET /next waiting for an event (at most one; empty when none). A
  // runtime may close that connection while it waits (a client-side timeout, then a retry on a
  // new connection): the waiting /next is let go when another comes, and the event never goes
  // into a closed connection (see handle_next).
  std::weak_ptr<tcp::socket> parked_sock;
  bool next_parked() const { return !parked_sock.expired(); }
  Event next_ready;

  std::optional<Current> cur;
  std::optional<Current> pending;  // invocation waiting for init (cold start)

  asio::steady_timer timeout_timer, freeze_timer, init_timer, memory_timer, kill_timer, log_retry;
  bool freeze_pending = false;
  mono::time_point idle_since = mono::now();

  // ---------------------------------------------------------------- logs

  void emit(std::string_view text, bool platform, std::string_view request_id) {
    if (logs) logs->write(LogLine{spec.function_name, spec.version, request_id, text, platform});
    // The init phase's lines belong to the tail of the invocation that waits for it (AWS's
    // LogResult of a cold start holds them).
    Current* c = cur ? &*cur : pending ? &*pending : nullptr;
    if (c) {
      c->tail.append(text);
      c->tail.push_back('\n');
      if (c->tail.size() > 4 * tail_bytes) c->tail.erase(0, c->tail.size() - tail_bytes);
    }
  }
  void emit_platform(const std::string& text) { emit(text, true, cur ? cur->inv.request_id : std::string_view{}); }

  // With JSON logs Lambda itself filters the function's output by the application log level:
  // a line that is a JSON object with a "level" key has that level, any other line INFO.
  static int app_level_rank(std::string_view level) {
    std::string u(level);
    for (auto& ch : u) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (u == "TRACE") return 0;
    if (u == "DEBUG") return 1;
    if (u == "WARN" || u == "WARNING") return 3;
    if (u == "ERROR") return 4;
    if (u == "FATAL" || u == "CRITICAL") return 5;
    return 2;  // INFO, and anything Lambda does not know
  }
  bool app_line_wanted(std::string_view line) const {
    if (spec.log_format != "JSON" || spec.log_level.empty()) return true;
    int threshold = app_level_rank(spec.log_level);
    if (threshold <= 2 && (line.empty() || line.front() != '{')) return true;  // INFO passes INFO
    int level = 2;
    if (!line.empty() && line.front() == '{') {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object()) {
        auto it = j.find("level");
        if (it != j.end() && it->is_string()) level = app_level_rank(it->get_ref<const std::string&>());
      }
    }
    return level >= threshold;
  }

  // ------------------------------------------------- system (platform) log lines
  // Text: the lines CloudWatch shows (INIT_START, START, END, REPORT, INIT_REPORT). With the
  // JSON log format, AWS writes them as the Telemetry API's records instead,
  // {"time","type":"platform.*","record":{...}}, filtered by the system log level: at INFO
  // (the default) platform.initStart, platform.start and platform.report; DEBUG adds
  // platform.initRuntimeDone, platform.initReport and platform.runtimeDone; there is no END.
  enum class SysLevel { debug = 0, info = 1, warn = 2 };

  bool json_logs() const { return spec.log_format == "JSON"; }
  bool sys_on(SysLevel l) const {
    int threshold = spec.system_log_level == "DEBUG" ? 0 : spec.system_log_level == "WARN" ? 2 : 1;
    return static_cast<int>(l) >= threshold;
  }
  void emit_record(SysLevel l, const char* type, nlohmann::ordered_json record) {
    if (!sys_on(l)) return;
    nlohmann::ordered_json line;
    line["time"] = iso8601_ms();
    line["type"] = type;
    line["record"] = std::move(record);
    emit_platform(line.dump());
  }
  static double ms3(double ms) { return std::round(ms * 1000.0) / 1000.0; }
  std::string runtime_version_arn() {
    return "arn:aws:lambda:" + spec.region + "::runtime:" + runtime_version_hash();
  }

  // with_arn = false: the runtime never started (no bootstrap), AWS shows the version alone.
  void log_init_start(bool with_arn) {
    if (!json_logs()) {
      emit_platform("INIT_START Runtime Version: " + spec.runtime_version +
                    (with_arn ? "\tRuntime Version ARN: " + runtime_version_arn() : std::string()));
      return;
    }
    nlohmann::ordered_json r;
    r["initializationType"] = "on-demand";
    r["phase"] = "init";
    r["runtimeVersion"] = spec.runtime_version;
    r["runtimeVersionArn"] = runtime_version_arn();
    r["functionName"] = spec.function_name;
    r["functionVersion"] = spec.version;
    // The log stream's name with the function's in it (as AWS writes instanceId).
    auto bracket = log_stream.find('[');
    r["instanceId"] = log_stream.substr(0, bracket) + spec.function_name + log_stream.substr(bracket);
    r["instanceMaxMemory"] = static_cast<std::int64_t>(spec.memory_mb) * 1024 * 1024;
    emit_record(SysLevel::info, "platform.initStart", std::move(r));
  }

  // The runtime asked for its first event: init succeeded (JSON at DEBUG only; Text shows nothing).
  void log_init_done(double ms) {
    if (!json_logs()) return;
    nlohmann::ordered_json done{{"initializationType", "on-demand"}, {"phase", "init"}, {"status", "success"}};
    emit_record(SysLevel::debug, "platform.initRuntimeDone", done);
    done["metrics"] = {{"durationMs", ms3(ms)}};
    emit_record(SysLevel::debug, "platform.initReport", std::move(done));
  }

  // Init failed: status "timeout" or "error" (with its error type).
  void log_init_report(double ms, const std::string& status, const std::string& error_type) {
    if (!json_logs()) {
      emit_platform("INIT_REPORT Init Duration: " + ms2(ms) + " ms\tPhase: init\tStatus: " + status +
                    (error_type.empty() ? std::string() : "\tError Type: " + error_type));
      return;
    }
    nlohmann::ordered_json r{{"initializationType", "on-demand"}, {"phase", "init"}, {"status", status}};
    if (!error_type.empty()) r["errorType"] = error_type;
    r["metrics"] = {{"durationMs", ms3(ms)}};
    emit_record(SysLevel::warn, "platform.initReport", std::move(r));
  }

  void log_start() {
    const auto& rid = cur->inv.request_id;
    if (!json_logs()) {
      emit_platform("START RequestId: " + rid + " Version: " + spec.version);
      return;
    }
    emit_record(SysLevel::info, "platform.start",
                {{"requestId", rid},
                 {"functionArn", "arn:aws:lambda:" + spec.region + ":" + spec.account_id + ":function:" +
                                     spec.function_name},
                 {"version", spec.version}});
  }

  // END + REPORT (Text), or platform.runtimeDone (DEBUG) + platform.report (JSON).
  // rep.status: "" (success), "timeout" or "error" (with rep.error_type).
  void log_end_report(const InvocationReport& rep) {
    if (!json_logs()) {
      emit_platform("END RequestId: " + rep.request_id);
      std::string report = "REPORT RequestId: " + rep.request_id + "\tDuration: " + ms2(rep.duration_ms) +
                           " ms\tBilled Duration: " + std::to_string(rep.billed_ms) +
                           " ms\tMemory Size: " + std::to_string(rep.memory_size_mb) +
                           " MB\tMax Memory Used: " + std::to_string(rep.max_memory_used_mb) + " MB\t";
      if (rep.init_duration_ms) report += "Init Duration: " + ms2(*rep.init_duration_ms) + " ms\t";
      // A failed invocation's line ends with its status, without the trailing tab.
      if (!rep.status.empty()) report += "Status: " + rep.status;
      if (!rep.error_type.empty()) report += "\tError Type: " + rep.error_type;
      emit_platform(report);
      return;
    }
    std::string status = rep.status.empty() ? "success" : rep.status;
    nlohmann::ordered_json done{{"requestId", rep.request_id}, {"status", status}};
    if (!rep.error_type.empty()) done["errorType"] = rep.error_type;
    done["metrics"] = {{"durationMs", ms3(rep.duration_ms)}, {"producedBytes", cur ? cur->produced_bytes : 0}};
    emit_record(SysLevel::debug, "platform.runtimeDone", std::move(done));
    nlohmann::ordered_json metrics{{"durationMs", ms3(rep.duration_ms)},
                                   {"billedDurationMs", rep.billed_ms},
                                   {"memorySizeMB", rep.memory_size_mb},
                                   {"maxMemoryUsedMB", rep.max_memory_used_mb}};
    if (rep.init_duration_ms) metrics["initDurationMs"] = ms3(*rep.init_duration_ms);
    nlohmann::ordered_json r{{"requestId", rep.request_id}, {"metrics", std::move(metrics)}, {"status", status}};
    if (!rep.error_type.empty()) r["errorType"] = rep.error_type;
    emit_record(status == "success" ? SysLevel::info : SysLevel::warn, "platform.report", std::move(r));
  }

  void emit_output_lines(std::string_view data) {
    std::string_view rid = cur ? std::string_view(cur->inv.request_id) : std::string_view{};
    partial.append(data);
    std::size_t start = 0;
    while (true) {
      auto nl = partial.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(partial.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (app_line_wanted(line)) emit(line, false, rid);
      start = nl + 1;
    }
    partial.erase(0, start);
    while (partial.size() > max_log_line) {
      emit(std::string_view(partial.data(), max_log_line), false, rid);
      partial.erase(0, max_log_line);
    }
  }

  // Reads whatever the process has written so far; returns false at EOF.
  bool read_output() {
    if (out_fd < 0) return false;
    char buf[65536];
    for (int rounds = 0; rounds < 64; ++rounds) {
      ssize_t n = ::read(out_fd, buf, sizeof buf);
      if (n > 0) {
        emit_output_lines(std::string_view(buf, static_cast<std::size_t>(n)));
        if (logs && !logs->accepting()) return true;
        continue;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    return true;
  }

  void flush_partial() {
    if (!partial.empty()) {
      std::string line = std::move(partial);
      partial.clear();
      if (app_line_wanted(line)) emit(line, false, cur ? std::string_view(cur->inv.request_id) : std::string_view{});
    }
  }

  // Everything the process wrote before this point belongs to what came before.
  void drain_output() {
    while (out_fd >= 0) {
      char buf[65536];
      ssize_t n = ::read(out_fd, buf, sizeof buf);
      if (n > 0) {
        emit_output_lines(std::string_view(buf, static_cast<std::size_t>(n)));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    flush_partial();
  }

  void arm_output() {
    if (!out) return;
    if (logs && !logs->accepting()) {
      // Back-pressure: the handler blocks on a full pipe instead of sluice buffering without bound.
      log_retry.expires_after(std::chrono::milliseconds(5));
      log_retry.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->arm_output();
      });
      return;
    }
    out->async_wait(asio::posix::stream_descriptor::wait_read,
                    [self = shared_from_this()](boost::system::error_code ec) {
                      if (ec) return;
                      if (self->read_output()) {
                        self->arm_output();
                      } else {
                        self->flush_partial();
                        self->close_output();
                      }
                    });
  }

  void close_output() {
    if (out) {
      boost::system::error_code ignored;
      out->close(ignored);
      out.reset();
    }
    out_fd = -1;
  }

  // ---------------------------------------------------------------- process

  std::vector<std::string> command_line(std::string& missing) {
    namespace fs = std::filesystem;
    switch (spec.kind) {
      case RuntimeKind::python: {
        std::vector<std::string> argv{spec.interpreter.string()};
        argv.insert(argv.end(), spec.interpreter_args.begin(), spec.interpreter_args.end());
        argv.push_back((spec.bootstrap_dir / "python" / "bootstrap.py").string());
        return argv;
      }
      case RuntimeKind::node: {
        fs::path dir = spec.bootstrap_dir / "node";
        fs::path entry = fs::exists(dir / "bootstrap.mjs") ? dir / "bootstrap.mjs" : dir / "bootstrap.js";
        std::vector<std::string> argv{spec.interpreter.string()};
        argv.insert(argv.end(), spec.interpreter_args.begin(), spec.interpreter_args.end());
        argv.push_back(entry.string());
        return argv;
      }
      case RuntimeKind::provided: {
        // Lookup order of the Lambda sandbox: /var/task/bootstrap, then /opt/bootstrap.
        fs::path b = spec.code_dir / "bootstrap";
        if (!fs::exists(b) && !spec.opt_dir.empty() && fs::exists(spec.opt_dir / "bootstrap")) b = spec.opt_dir / "bootstrap";
        if (!fs::exists(b)) missing = b.string();
        return {b.string()};
      }
    }
    return {};
  }

  void start() {
    boost::system::error_code ec;
    tcp::endpoint ep{asio::ip::make_address("127.0.0.1"), 0};
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(16, ec);
    if (ec) {
      fail_start("cannot open a Runtime API endpoint: " + ec.message());
      return;
    }
    port = acceptor.local_endpoint().port();

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      fail_start(std::string("cannot create the output pipe: ") + std::strerror(errno));
      return;
    }
    // The child's end must block (a handler writing logs waits instead of failing).
    ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) & ~O_NONBLOCK);

    EnvContext ctx;
    ctx.runtime_api = "127.0.0.1:" + std::to_string(port);
    ctx.log_stream_name = log_stream;
    ctx.runtime_dir = spec.kind == RuntimeKind::python ? spec.bootstrap_dir / "python"
                      : spec.kind == RuntimeKind::node ? spec.bootstrap_dir / "node"
                                                       : spec.bootstrap_dir;
    proc::SpawnOptions opts;
    std::string missing;
    opts.argv = command_line(missing);
    if (!missing.empty()) {
      // No bootstrap anywhere the sandbox looks: Lambda's Runtime.InvalidEntrypoint.
      std::string where = "[" + (spec.code_dir / "bootstrap").string() +
                          (spec.opt_dir.empty() ? "" : " " + (spec.opt_dir / "bootstrap").string()) + "]";
      invalid_entrypoint = "Couldn't find valid bootstrap(s): " + where;
      ::close(fds[0]);
      ::close(fds[1]);
      log_init_start(false);
      exit_later(127 << 8);
      return;
    }
    for (auto& [k, v] : build_environment(spec, ctx)) opts.env.push_back(k + "=" + v);
    opts.cwd = spec.code_dir.string();
    opts.output_fd = fds[1];

    log_init_start(true);
    spawned_at = mono::now();
    auto res = proc::spawn(opts);
    ::close(fds[1]);
    out_fd = fds[0];
    out = std::make_unique<asio::posix::stream_descriptor>(ex, out_fd);

    if (res.pid < 0) {
      std::string what = opts.argv.empty() ? "bootstrap" : opts.argv[0];
      emit_platform("sluice: cannot execute " + what + ": " + std::strerror(res.exec_errno));
      int code = res.exec_errno == ENOENT ? 127 : 126;
      exit_later(code << 8);
      return;
    }
    pid = res.pid;
    watch_child(ex, pid, [w = weak_from_this(), child = pid](int status) {
      proc::reaper_untrack(child);
      if (auto self = w.lock()) self->on_exit(status);
    });
    arm_output();
    asio::co_spawn(ex, accept_loop(shared_from_this()), asio::detached);

    init_timer.expires_after(spec.init_timeout);
    init_timer.async_wait([w = weak_from_this()](boost::system::error_code ec) {
      if (auto self = w.lock(); self && !ec) self->on_init_timeout();
    });
  }

  std::string runtime_version_hash() {
    std::string seed = spec.runtime_id + spec.interpreter.string();
    std::uint64_t h = 1469598103934665603ULL;
    for (char c : seed) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return std::string(buf) + std::string(buf) + std::string(buf) + std::string(buf);
  }

  void fail_start(const std::string& why) {
    logger()->error("{}: {}", spec.function_name, why);
    emit_platform("sluice: " + why);
    exit_later(127 << 8);
  }

  // Start-up failures are delivered like an exit, but never from inside start().
  void exit_later(int status) {
    asio::post(ex, [self = shared_from_this(), status] { self->on_exit(status); });
  }

  void freeze() {
    if (spec.freeze && pid > 0 && !frozen && !exited) {
      proc::signal_group(pid, SIGSTOP);
      frozen = true;
    }
  }
  // Under load the next event usually arrives within microseconds; stopping and
  // continuing every thread of the runtime for it would cost more than the call.
  void schedule_freeze() {
    if (!spec.freeze || frozen || freeze_pending) return;
    if (spec.freeze_delay.count() <= 0) {
      freeze();
      return;
    }
    freeze_pending = true;
    freeze_timer.expires_after(spec.freeze_delay);
    freeze_timer.async_wait([w = weak_from_this()](boost::system::error_code ec) {
      auto self = w.lock();
      if (!self) return;
      self->freeze_pending = false;
      if (!ec && self->state == EnvState::idle && !self->cur) self->freeze();
    });
  }
  void thaw() {
    if (freeze_pending) {
      freeze_timer.cancel();
      freeze_pending = false;
    }
    if (frozen && pid > 0) {
      proc::signal_group(pid, SIGCONT);
      frozen = false;
    }
  }

  void kill_now(KillReason why) {
    if (kill_reason == KillReason::none) kill_reason = why;
    if (pid > 0 && !exited) {
      proc::kill_tree(pid);
    }
  }

  // ---------------------------------------------------------------- lifecycle

  void invoke(Invocation inv, ResultHandler on_result, ReportHandler on_report) {
    Current c;
    c.inv = std::move(inv);
    c.on_result = std::move(on_result);
    c.on_report = std::move(on_report);
    if (state == EnvState::starting && !pending && !init_error_posted) {
      c.cold = true;
      pending = std::move(c);
      return;
    }
    if (state == EnvState::idle && !cur) {
      deliver(std::move(c));
      return;
    }
    // The service only hands invocations to idle or starting environments.
    InvocationResult r;
    r.outcome = Outcome::exit_error;
    r.function_error = true;
    r.error_type = "Runtime.ExitError";
    r.payload = api_error("Runtime.ExitError", "RequestId: " + c.inv.request_id +
                                                   " Error: execution environment is not available (" +
                                                   to_string(state) + ")");
    if (c.on_result) c.on_result(std::move(r));
  }

  void deliver(Current c) {
    served = true;
    c.delivered_at = mono::now();
    if (!init_reported && init_duration_ms) {
      c.cold = true;
      init_reported = true;
    }
    cur = std::move(c);
    state = EnvState::running;
    log_start();
    thaw();
    timeout_timer.expires_after(std::chrono::seconds(spec.timeout_s));
    timeout_timer.async_wait([w = weak_from_this()](boost::system::error_code ec) {
      if (auto self = w.lock(); self && !ec) self->on_timeout();
    });
    poll_memory();
    next_ready.notify();
  }

  void poll_memory() {
    memory_timer.expires_after(memory_poll);
    memory_timer.async_wait([w = weak_from_this()](boost::system::error_code ec) {
      auto self = w.lock();
      if (!self || ec || self->state != EnvState::running) return;
      if (self->over_memory(true)) {
        self->on_out_of_memory();
        return;
      }
      self->poll_memory();
    });
  }

  // The handler's memory. Finding its process tree (a directory and a file per thread of
  // every process) costs several times reading the members' status files, kept open from
  // the last walk; so only the 25 ms poll walks afresh, and the check when a response
  // arrives and the REPORT's figure reuse a tree found less than a second ago (a process
  // started since is counted from the next walk on).
  proc::Memory read_memory(bool walk) {
    auto now = mono::now();
    if (walk || !tree.walked() || now - tree_walked_at > std::chrono::seconds(1)) {
      tree.walk(pid);
      tree_walked_at = now;
    }
    memory_read_at = now;
    auto m = tree.read();
    peak_kb = std::max(peak_kb, m.hwm_kb);
    return m;
  }

  bool over_memory(bool walk) {
    if (pid <= 0 || exited) return false;
    return read_memory(walk).hwm_kb > static_cast<std::uint64_t>(spec.memory_mb) * 1024;
  }

  int max_memory_used_mb() {
    // Peak RSS only grows, so a reading up to 100 ms old loses nothing but the
    // last few milliseconds; it spares busy environments a /proc read per call.
    if (pid > 0 && !exited && mono::now() - memory_read_at > std::chrono::milliseconds(100)) read_memory(false);
    int mb = static_cast<int>((peak_kb + 1023) / 1024);
    return std::min(mb, spec.memory_mb);
  }

  void send_result(InvocationResult r) {
    if (!cur || cur->result_sent) return;
    cur->result_sent = true;
    cur->responded_at = mono::now();
    cur->produced_bytes = r.payload.size();
    if (r.function_error && cur->error_type.empty()) cur->error_type = r.error_type;
    auto cb = std::move(cur->on_result);
    if (cb) cb(std::move(r));
  }

  InvocationResult failure(Outcome o, const std::string& type, const std::string& message) {
    InvocationResult r;
    r.outcome = o;
    r.function_error = true;
    r.error_type = type;
    r.payload = api_error(type, message);
    return r;
  }

  // END + REPORT, then hand the report over. status: "", "timeout", "error".
  void finish_invocation(const std::string& status, const std::string& error_type) {
    if (!cur) return;
    drain_output();
    auto end = cur->result_sent ? cur->responded_at : mono::now();
    double duration = std::chrono::duration<double, std::milli>(end - cur->delivered_at).count();
    InvocationReport rep;
    rep.request_id = cur->inv.request_id;
    rep.duration_ms = duration;
    rep.memory_size_mb = spec.memory_mb;
    rep.max_memory_used_mb = max_memory_used_mb();
    if (cur->cold && init_duration_ms) rep.init_duration_ms = init_duration_ms;
    // Since August 2025 AWS bills the init phase of on-demand invocations too: a cold start's
    // Billed Duration is the sum of both, rounded up to the millisecond.
    rep.billed_ms = static_cast<std::int64_t>(std::ceil(duration + rep.init_duration_ms.value_or(0.0)));
    if (rep.billed_ms < 1) rep.billed_ms = 1;
    rep.status = status;
    rep.error_type = error_type;
    log_end_report(rep);
    const std::string& t = cur->tail;
    rep.log_tail = t.size() > tail_bytes ? t.substr(t.size() - tail_bytes) : t;
    auto cb = std::move(cur->on_report);
    timeout_timer.cancel();
    memory_timer.cancel();
    cur.reset();
    if (cb) cb(rep);
  }

  void on_timeout() {
    if (state != EnvState::running || !cur) return;
    kill_now(KillReason::timeout);
    drain_output();
    const auto& rid = cur->inv.request_id;
    send_result(failure(Outcome::timeout, "Sandbox.Timedout",
                        "RequestId: " + rid + " Error: Task timed out after " + seconds2(spec.timeout_s) +
                            " seconds"));
    end_stream_with("Sandbox.Timedout", "Task timed out after " + seconds2(spec.timeout_s) + " seconds");
    finish_invocation("timeout", "");
    become_dead("timed out");
  }

  void on_out_of_memory() {
    if (!cur) return;
    kill_now(KillReason::oom);
    drain_output();
    const auto& rid = cur->inv.request_id;
    std::string msg = "RequestId: " + rid + " Error: Runtime exited with error: signal: killed";
    emit_platform(msg);
    emit_platform("Runtime.OutOfMemory");
    peak_kb = std::max<std::uint64_t>(peak_kb, static_cast<std::uint64_t>(spec.memory_mb) * 1024);
    send_result(failure(Outcome::out_of_memory, "Runtime.OutOfMemory", msg));
    end_stream_with("Runtime.OutOfMemory", msg);
    finish_invocation("error", "Runtime.OutOfMemory");
    become_dead("out of memory");
  }

  void end_stream_with(const std::string& type, const std::string& message) {
    if (cur && cur->stream && !cur->stream->ended()) cur->stream->end(type, api_error(type, message));
  }

  // The invocation that waited for a failed init starts now, only to fail with it.
  void take_pending() {
    cur = std::move(pending);
    pending.reset();
    cur->delivered_at = mono::now();
    log_start();
  }

  void on_init_timeout() {
    if (state != EnvState::starting || exited) return;
    double ms = std::chrono::duration<double, std::milli>(mono::now() - spawned_at).count();
    kill_now(KillReason::init_timeout);
    drain_output();
    log_init_report(ms, "timeout", "");
    if (pending) {
      take_pending();
      // On AWS the init is retried within the invocation and times out again.
      const auto& rid = cur->inv.request_id;
      send_result(failure(Outcome::timeout, "Sandbox.Timedout",
                          "RequestId: " + rid + " Error: Task timed out after " + seconds2(spec.timeout_s) +
                              " seconds"));
      finish_invocation("timeout", "");
    }
    become_dead("init timed out");
  }

  void on_exit(int status) {
    if (exited) return;
    exited = true;
    tree.clear();
    drain_output();
    close_output();
    frozen = false;
    std::string how = proc::describe_wait_status(status);
    bool clean_exit = WIFEXITED(status) && WEXITSTATUS(status) == 0;

    if (kill_reason == KillReason::timeout || kill_reason == KillReason::oom ||
        kill_reason == KillReason::init_timeout) {
      become_dead(death_reason.empty() ? "killed" : death_reason);
      return;
    }
    switch (state) {
      case EnvState::starting: {
        double ms = std::chrono::duration<double, std::milli>(mono::now() - spawned_at).count();
        if (!invalid_entrypoint.empty()) ms = 0;
        std::string type = init_error_posted ? init_error_type
                           : !invalid_entrypoint.empty() ? "Runtime.InvalidEntrypoint"
                                                         : "Runtime.ExitError";
        if (!init_error_posted) {
          std::string msg = !invalid_entrypoint.empty() ? invalid_entrypoint
                            : clean_exit ? "Runtime exited without providing a reason"
                                         : "Runtime exited with error: " + how;
          log_init_report(ms, "error", type);
          if (pending) {
            take_pending();
            std::string full = "RequestId: " + cur->inv.request_id + " Error: " + msg;
            emit_platform(full);
            emit_platform(type);
            send_result(failure(Outcome::exit_error, type, full));
            finish_invocation("error", type);
          }
        } else {
          log_init_report(ms, "error", type);
          if (pending) {
            take_pending();
            InvocationResult r;
            r.outcome = Outcome::function_error;
            r.function_error = true;
            r.error_type = type;
            r.payload = init_error_payload;
            send_result(std::move(r));
            finish_invocation("error", type);
          }
        }
        become_dead(init_error_posted ? "init error (" + type + ")" : "runtime exited during init (" + how + ")");
        return;
      }
      case EnvState::running: {
        std::string msg = clean_exit ? "Runtime exited without providing a reason"
                                     : "Runtime exited with error: " + how;
        std::string full = "RequestId: " + cur->inv.request_id + " Error: " + msg;
        emit_platform(full);
        emit_platform("Runtime.ExitError");
        send_result(failure(Outcome::exit_error, "Runtime.ExitError", full));
        end_stream_with("Runtime.ExitError", full);
        finish_invocation("error", "Runtime.ExitError");
        become_dead("runtime exited during an invocation (" + how + ")");
        return;
      }
      case EnvState::response_sent:
        finish_invocation("", "");
        become_dead("runtime exited after responding (" + how + ")");
        return;
      case EnvState::idle:
        become_dead("runtime exited while idle (" + how + ")");
        return;
      case EnvState::stopping:
      case EnvState::dead:
        become_dead(death_reason.empty() ? "stopped" : death_reason);
        return;
    }
  }

  void become_dead(const std::string& reason) {
    if (state == EnvState::dead) return;
    if (death_reason.empty()) death_reason = reason;
    state = EnvState::dead;
    timeout_timer.cancel();
    freeze_timer.cancel();
    init_timer.cancel();
    memory_timer.cancel();
    log_retry.cancel();
    boost::system::error_code ignored;
    acceptor.close(ignored);
    for (auto& s : conns) s->close(ignored);
    conns.clear();
    next_ready.notify();
    if (!exited && pid > 0) {
      // Make sure it is gone; the exit is still collected by the child watch.
      proc::signal_group(pid, SIGKILL);
    }
    if (pending) {
      auto p = std::move(pending);
      pending.reset();
      InvocationResult r = failure(Outcome::shutdown, "Runtime.ExitError",
                                   "RequestId: " + p->inv.request_id + " Error: " + reason);
      if (p->on_result) p->on_result(std::move(r));
    }
    if (cur && cur->answered) {
      // Stopped between its answer and its next /next (sluice shutting down, an in-process
      // command done): the invocation itself went well.
      finish_invocation("", "");
    } else if (cur) {
      send_result(failure(Outcome::shutdown, "Runtime.ExitError",
                          "RequestId: " + cur->inv.request_id + " Error: " + reason));
      finish_invocation("error", "Runtime.ExitError");
    }
    auto cb = events.on_dead;
    if (cb) cb(death_reason);
  }

  void stop(const std::string& reason) {
    if (state == EnvState::dead || state == EnvState::stopping) return;
    death_reason = reason;
    if (exited) {
      become_dead(reason);
      return;
    }
    state = EnvState::stopping;
    kill_reason = KillReason::stop;
    if (pending) {
      auto p = std::move(pending);
      pending.reset();
      if (p->on_result)
        p->on_result(failure(Outcome::shutdown, "Runtime.ExitError",
                             "RequestId: " + p->inv.request_id + " Error: " + reason));
    }
    thaw();
    proc::signal_group(pid, SIGCONT);
    proc::signal_group(pid, SIGTERM);
    kill_timer.expires_after(spec.shutdown_grace);
    kill_timer.async_wait([w = weak_from_this()](boost::system::error_code ec) {
      auto self = w.lock();
      if (!self || ec || self->exited) return;
      proc::kill_tree(self->pid);
    });
  }

  void retire(const std::string& reason) {
    retiring = true;
    if (death_reason.empty()) death_reason = reason;
    if (state == EnvState::idle || (state == EnvState::starting && !pending)) stop(reason);
  }

  // ---------------------------------------------------------------- Runtime API

  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    while (self->state != EnvState::dead) {
      auto [ec, sock] = co_await self->acceptor.async_accept(nothrow);
      if (ec) break;
      boost::system::error_code ignored;
      sock.set_option(tcp::no_delay(true), ignored);
      auto s = std::make_shared<tcp::socket>(std::move(sock));
      self->conns.insert(s);
      asio::co_spawn(self->ex, connection(self, s), asio::detached);
    }
  }

  using StrResponse = bhttp::response<bhttp::string_body>;

  static StrResponse make_response(unsigned status, std::string body, unsigned version, bool keep_alive,
                                   const char* content_type = "application/json") {
    StrResponse res{static_cast<bhttp::status>(status), version};
    res.set(bhttp::field::content_type, content_type);
    res.set(bhttp::field::date, http_date());
    res.body() = std::move(body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
  }

  struct Route {
    enum Kind { next, response, error, init_error, unknown } kind = unknown;
    std::string request_id;
  };

  static Route route(std::string_view method, std::string_view target) {
    Route r;
    auto q = target.find('?');
    if (q != std::string_view::npos) target = target.substr(0, q);
    constexpr std::string_view base = "/2018-06-01/runtime/";
    if (!starts_with(target, base)) return r;
    std::string_view rest = target.substr(base.size());
    if (rest == "invocation/next" && method == "GET") {
      r.kind = Route::next;
    } else if (rest == "init/error" && method == "POST") {
      r.kind = Route::init_error;
    } else if (starts_with(rest, "invocation/") && method == "POST") {
      rest.remove_prefix(std::string_view("invocation/").size());
      auto slash = rest.find('/');
      if (slash != std::string_view::npos) {
        auto what = rest.substr(slash + 1);
        r.request_id = url_decode(rest.substr(0, slash));
        if (what == "response") r.kind = Route::response;
        else if (what == "error") r.kind = Route::error;
      }
    }
    return r;
  }

  static asio::awaitable<void> connection(std::shared_ptr<Impl> self, std::shared_ptr<tcp::socket> sock) {
    boost::beast::flat_buffer buf;
    std::vector<char> chunk(64 * 1024);
    std::string pending;  // answers held back for a pipelined request
    while (self->state != EnvState::dead && sock->is_open()) {
      bhttp::request_parser<bhttp::buffer_body> parser;
      parser.header_limit(kRuntimeHeaderLimit);
      parser.body_limit(boost::none);
      auto [ec, n] = co_await bhttp::async_read_header(*sock, buf, parser, nothrow);
      if (ec) {
        if (ec != bhttp::error::end_of_stream && ec != asio::error::operation_aborted &&
            ec != asio::error::connection_reset && ec != asio::error::eof && parser.got_some()) {
          auto res = ec == bhttp::error::header_limit
                         ? make_response(431,
                                         api_error("RequestHeaderFieldsTooLarge", http::head_too_large(kRuntimeHeaderLimit)),
                                         11, false)
                         : make_response(400, api_error("InvalidRequest", "Malformed HTTP request: " + ec.message()), 11,
                                         false);
          serialize(res, pending);
          co_await asio::async_write(*sock, asio::buffer(pending), nothrow);
          pending.clear();
          co_await http::linger_close(*sock);
        }
        break;
      }
      auto& head = parser.get();
      unsigned version = head.version();
      bool keep_alive = head.keep_alive();
      Route rt = route(head.method_string(), head.target());

      // Response mode and streaming only apply to /response.
      std::string mode(head["Lambda-Runtime-Function-Response-Mode"]);
      bool streaming = rt.kind == Route::response && iequals(mode, "streaming");
      std::string content_type(head[bhttp::field::content_type]);
      std::string error_type_header(head["Lambda-Runtime-Function-Error-Type"]);

      // Decide before reading the body whether it will be kept.
      std::optional<StrResponse> early;
      std::shared_ptr<Stream> stream;
      bool to_stream = false;
      if (rt.kind == Route::unknown) {
        early = make_response(404, api_error("NotFound", "Unknown Runtime API route: " +
                                                              std::string(head.method_string()) + " " +
                                                              std::string(head.target())),
                              version, keep_alive);
      } else if (rt.kind == Route::response || rt.kind == Route::error) {
        if (!self->cur || self->cur->inv.request_id != rt.request_id) {
          early = make_response(400, api_error("InvalidRequestID", "Invalid request ID"), version, keep_alive);
        } else if (self->state != EnvState::running) {
          std::string to = rt.kind == Route::response ? "InvocationResponse" : "InvocationErrorResponse";
          early = make_response(403,
                                api_error("InvalidStateTransition",
                                          std::string("State transition from ") +
                                              api_state_name(self->state, false) + " to " + to +
                                              " failed for runtime. Error: State transition is not allowed"),
                                version, keep_alive);
        } else if (rt.kind == Route::response && !mode.empty() && !streaming) {
          // Not a mode Lambda knows: the invocation fails, the runtime is told why.
          self->send_result(self->failure(Outcome::invalid_response_mode, "Runtime.InvalidResponseModeHeader",
                                          "RequestId: " + self->cur->inv.request_id +
                                              " Error: invalid response mode header: " + mode));
          self->after_response();  // also wakes a /next already waiting
          early = make_response(400,
                                api_error("InvalidFunctionResponseMode",
                                          "Invalid function response mode: " + mode +
                                              " (allowed: streaming, or no header for a buffered response)"),
                                version, keep_alive);
        } else if (streaming) {
          stream = std::make_shared<Stream>(self->ex, content_type.empty() ? "application/octet-stream"
                                                                             : content_type);
          self->cur->stream = stream;
          to_stream = true;
          InvocationResult r;
          r.outcome = Outcome::success;
          r.content_type = stream->content_type();
          r.stream = stream;
          self->send_result(std::move(r));
        }
      } else if (rt.kind == Route::init_error) {
        if (self->state != EnvState::starting || self->init_error_posted) {
          early = make_response(403,
                                api_error("InvalidStateTransition",
                                          std::string("State transition from ") +
                                              api_state_name(self->state, self->init_error_posted) +
                                              " to InitError failed for runtime. Error: State transition is not allowed"),
                                version, keep_alive);
        }
      }

      // Read the body (or discard it).
      std::string body;
      bool too_large = false;
      bool truncated = false;
      if (!parser.is_done()) {
        std::size_t cap = early ? max_discard : (to_stream ? SIZE_MAX : max_payload);
        std::size_t total = 0;
        while (!parser.is_done()) {
          parser.get().body().data = chunk.data();
          parser.get().body().size = chunk.size();
          auto [rec, rn] = co_await bhttp::async_read_some(*sock, buf, parser, nothrow);
          if (rec == bhttp::error::need_buffer) rec = {};
          if (rec) {
            truncated = true;
            break;
          }
          std::size_t got = chunk.size() - parser.get().body().size;
          total += got;
          if (to_stream) {
            if (got) stream->push(std::string(chunk.data(), got));
            while (stream->should_pause() && self->state != EnvState::dead) co_await stream->wait_resume();
          } else if (!early && !too_large) {
            if (total > cap) {
              too_large = true;
              body.clear();
            } else {
              body.append(chunk.data(), got);
            }
          } else if (total > max_discard) {
            truncated = true;
            break;
          }
        }
      }
      if (truncated) {
        if (to_stream && stream) {
          stream->end("Runtime.TruncatedResponse", api_error("Runtime.TruncatedResponse",
                                                              "the runtime closed the stream before finishing it"));
          self->stream_finished();
        }
        break;
      }

      StrResponse res;
      if (early) {
        res = std::move(*early);
      } else {
        switch (rt.kind) {
          case Route::next: {
            bool keep = co_await self->handle_next(sock);
            if (!keep) co_return;
            if (!self->cur || self->state != EnvState::running) {
              // Woken because the environment is going away.
              co_return;
            }
            res = self->event_response(version, keep_alive);
            break;
          }
          case Route::response:
            if (to_stream) {
              std::string etype(parser.get()["Lambda-Runtime-Function-Error-Type"]);
              std::string ebody(parser.get()["Lambda-Runtime-Function-Error-Body"]);
              std::string decoded;
              if (!ebody.empty()) decoded = base64_decode(ebody).value_or(ebody);
              stream->end(etype, decoded);
              self->stream_finished();
            } else if (too_large) {
              res = self->refuse_oversized(version, keep_alive);
              break;
            } else {
              // An invocation that allocated beyond its memory and freed it before
              // answering was still over the limit; AWS would have killed it.
              // (Faulting in memory takes time, so sub-5 ms calls cannot have.)
              auto now = mono::now();
              bool check = now - self->cur->delivered_at > std::chrono::milliseconds(5) ||
                           now - self->memory_read_at > std::chrono::milliseconds(100);
              if (check && self->over_memory(false)) {
                self->on_out_of_memory();
                co_return;
              }
              InvocationResult r;
              r.outcome = Outcome::success;
              r.payload = std::move(body);
              if (!content_type.empty()) r.content_type = content_type;
              self->send_result(std::move(r));
              self->after_response();
            }
            res = make_response(202, R"({"status":"OK"})", version, keep_alive);
            break;
          case Route::error: {
            if (too_large) {
              res = self->refuse_oversized(version, keep_alive);
              break;
            }
            InvocationResult r;
            r.outcome = Outcome::function_error;
            r.function_error = true;
            r.error_type = error_type_of(body, error_type_header, "Function.Unknown");
            r.payload = body.empty() ? api_error(error_type_header.empty() ? "Unhandled" : error_type_header, "")
                                     : std::move(body);
            self->send_result(std::move(r));
            self->after_response();
            res = make_response(202, R"({"status":"OK"})", version, keep_alive);
            break;
          }
          case Route::init_error:
            self->init_error_posted = true;
            self->init_error_type = error_type_of(body, error_type_header, "Runtime.Unknown");
            self->init_error_payload =
                body.empty() ? api_error(error_type_header.empty() ? "Runtime.Unknown" : error_type_header, "")
                             : std::move(body);
            // The runtime should exit now; if it lingers, it is stopped.
            self->kill_timer.expires_after(std::chrono::milliseconds(500));
            self->kill_timer.async_wait([w = self->weak_from_this()](boost::system::error_code kec) {
              auto s = w.lock();
              if (!s || kec || s->exited) return;
              proc::signal_group(s->pid, SIGKILL);
            });
            res = make_response(202, R"({"status":"OK"})", version, keep_alive);
            break;
          default:
            res = make_response(404, api_error("NotFound", "Unknown route"), version, keep_alive);
        }
        if (to_stream) {
          res = make_response(202, R"({"status":"OK"})", version, keep_alive);
        }
      }
      // A runtime that pipelines its next request behind this one (POST
      // /response then GET /next in one write) gets this answer together
      // with the next one: one send and one wake-up instead of two.
      bool pipelined = buf.size() > 0 && keep_alive && res.result_int() == 202;
      serialize(res, pending);
      if (pipelined) continue;
      auto [wec, wn] = co_await asio::async_write(*sock, asio::buffer(pending), nothrow);
      pending.clear();
      if (wec || !keep_alive) break;
    }
    boost::system::error_code ignored;
    if (!pending.empty() && sock->is_open()) asio::write(*sock, asio::buffer(pending), ignored);
    sock->close(ignored);
    self->conns.erase(sock);
  }

  static void serialize(const StrResponse& res, std::string& out) { out += http::serialize(res); }

  // A response or error over 6 MiB + 100 B: the caller gets Function.ResponseSizeTooLarge,
  // the runtime a 413.
  StrResponse refuse_oversized(unsigned version, bool keep_alive) {
    send_result(failure(Outcome::response_too_large, "Function.ResponseSizeTooLarge",
                        "Response payload size exceeded maximum allowed payload size (6291556 bytes)."));
    after_response();
    return make_response(413, api_error("RequestEntityTooLarge", "Exceeded maximum allowed payload size (6291556 bytes)."),
                         version, keep_alive);
  }

  static std::string error_type_of(const std::string& body, const std::string& header, const char* fallback) {
    if (!body.empty()) {
      auto j = json::parse(body, nullptr, false);
      if (j.is_object() && j.contains("errorType") && j["errorType"].is_string())
        return j["errorType"].get<std::string>();
    }
    return header.empty() ? fallback : header;
  }

  // The runtime answered (buffered); the invoke phase ends at its next /next.
  void after_response() {
    state = EnvState::response_sent;
    if (cur) cur->answered = true;
    timeout_timer.cancel();
    memory_timer.cancel();
    next_ready.notify();
  }

  void stream_finished() {
    if (state == EnvState::running) after_response();
  }

  // /next: ends the invoke phase or the init phase, then waits for an event.
  // Returns false when the connection must be dropped.
  asio::awaitable<bool> handle_next(std::shared_ptr<tcp::socket> sock) {
    auto self = shared_from_this();
    for (;;) {
      switch (state) {
        case EnvState::starting:
          if (init_error_posted) co_return false;
          init_timer.cancel();
          init_duration_ms = std::chrono::duration<double, std::milli>(mono::now() - spawned_at).count();
          log_init_done(*init_duration_ms);
          state = EnvState::idle;
          idle_since = mono::now();
          if (pending) {
            auto p = std::move(*pending);
            pending.reset();
            deliver(std::move(p));
          } else if (events.on_idle) {
            events.on_idle();
          }
          break;
        case EnvState::response_sent:
          finish_invocation("", "");
          state = EnvState::idle;
          idle_since = mono::now();
          if (retiring) {
            stop(death_reason.empty() ? "retired" : death_reason);
            co_return false;
          }
          if (events.on_idle) events.on_idle();
          break;
        case EnvState::running: {
          // The event came while no /next was waiting (the one that was had its connection
          // closed by the runtime): this one takes it.
          if (cur && !cur->handed && !next_parked()) co_return true;
          // /next before the current event was answered: a stream still being
          // written on another connection, or a runtime that skipped the answer
          // (then the invocation runs into its timeout, as with RIE). Wait for
          // the state to move on, then handle it, unless the runtime gave up on
          // this request meanwhile.
          auto invocation = cur ? cur->inv.request_id : std::string{};
          while (state == EnvState::running && cur && cur->inv.request_id == invocation)
            co_await next_ready.wait();
          if (state == EnvState::dead || state == EnvState::stopping) co_return false;
          if (peer_gone(*sock)) co_return false;
          continue;
        }
        case EnvState::idle:
          if (auto first = parked_sock.lock()) {
            // A second /next while one waits: refused, unless the runtime has closed the
            // connection of the first (the close may not have been seen yet).
            if (!peer_gone(*first)) co_return false;
            parked_sock.reset();  // the first, woken, sees it was let go
            next_ready.notify();
          }
          break;
        default:
          co_return false;
      }
      break;
    }
    if (state == EnvState::idle && !cur) schedule_freeze();
    if (state == EnvState::idle) {
      parked_sock = sock;
      auto still_parked = [&] { return parked_sock.lock() == sock; };
      while (state == EnvState::idle && still_parked()) co_await next_ready.wait();
      if (!still_parked()) co_return false;  // let go: a newer /next found this connection closed
      parked_sock.reset();
      // The runtime may have closed this connection while it waited (a client-side timeout):
      // the event then waits for its next GET /next rather than going into a dead connection.
      if (state == EnvState::running && peer_gone(*sock)) co_return false;
    }
    co_return state == EnvState::running;
  }

  // Whether the runtime has closed its end of this connection (or it broke): a peek, which
  // never takes bytes a pipelined request may have left there.
  static bool peer_gone(tcp::socket& s) {
    if (!s.is_open()) return true;
    char c;
    auto r = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0) return true;
    return r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }

  StrResponse event_response(unsigned version, bool keep_alive) {
    auto& inv = cur->inv;
    StrResponse res{bhttp::status::ok, version};
    res.set(bhttp::field::content_type, inv.content_type.empty() ? "application/json" : inv.content_type);
    res.set("Lambda-Runtime-Aws-Request-Id", inv.request_id);
    auto deadline = epoch_ms() + static_cast<std::int64_t>(spec.timeout_s) * 1000;
    res.set("Lambda-Runtime-Deadline-Ms", std::to_string(deadline));
    res.set("Lambda-Runtime-Invoked-Function-Arn", inv.invoked_arn);
    if (!inv.trace_id.empty()) res.set("Lambda-Runtime-Trace-Id", inv.trace_id);
    if (!inv.client_context.empty()) res.set("Lambda-Runtime-Client-Context", inv.client_context);
    if (!inv.cognito_identity.empty()) res.set("Lambda-Runtime-Cognito-Identity", inv.cognito_identity);
    if (!inv.tenant_id.empty()) res.set("Lambda-Runtime-Aws-Tenant-Id", inv.tenant_id);
    res.set(bhttp::field::date, http_date());
    res.body() = std::move(inv.payload);  // delivered once; a re-init never re-sends it
    cur->handed = true;
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
  }
};

Environment::Environment(asio::any_io_executor ex, EnvironmentSpec spec, std::shared_ptr<LogSink> logs,
                         EnvironmentEvents events)
    : impl_(std::make_shared<Impl>(ex, std::move(spec), std::move(logs), std::move(events))) {}

Environment::~Environment() {
  if (impl_ && impl_->state != EnvState::dead) {
    impl_->events = {};
    impl_->stop("discarded");
  }
}

void Environment::start() { impl_->start(); }
void Environment::invoke(Invocation inv, ResultHandler on_result, ReportHandler on_report) {
  impl_->invoke(std::move(inv), std::move(on_result), std::move(on_report));
}
void Environment::stop(const std::string& reason) { impl_->stop(reason); }
void Environment::retire(const std::string& reason) { impl_->retire(reason); }
EnvState Environment::state() const { return impl_->state; }
bool Environment::has_served() const { return impl_->served; }
const EnvironmentSpec& Environment::spec() const { return impl_->spec; }
const std::string& Environment::id() const { return impl_->id; }
int Environment::pid() const { return impl_->pid; }
unsigned short Environment::port() const { return impl_->port; }
std::chrono::steady_clock::time_point Environment::idle_since() const { return impl_->idle_since; }
bool Environment::retiring() const { return impl_->retiring; }

std::filesystem::path default_bootstrap_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("SLUICE_BOOTSTRAP_DIR")) return env;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path cand : {exe.parent_path() / ".." / "share" / "sluice" / "bootstraps",
                          exe.parent_path() / "bootstraps"}) {
      if (fs::exists(cand / "python" / "bootstrap.py")) return fs::canonical(cand);
    }
  }
  return SLUICE_SOURCE_BOOTSTRAP_DIR;
}

}  // namespace sluice::runtime
