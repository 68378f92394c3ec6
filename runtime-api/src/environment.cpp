// One execution environment: process supervision, the Runtime API endpoint the
// process talks to, and the lifecycle (init, invoke, freeze, timeout, crash,
// out-of-memory, shutdown). Everything runs on one io thread; the state
// machine refuses every transition it does not explicitly allow.
#include "sluice/runtime/environment.hpp"

#include "child_watch.hpp"
#include "env_vars.hpp"
#include "extensions.hpp"
#include "sluice/common/hash.hpp"
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
#include <boost/beast/core/tcp_stream.hpp>
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

#include <algorithm>
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
std::size_t g_extension_shutdowns = 0;  // environments whose extensions are still shutting down

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
    std::int64_t deadline_ms = 0;    // epoch ms at which it times out (runtime and extensions)
    mono::time_point runtime_done_at{};  // the runtime's /next after its answer (extension overhead)
    std::string tail;
    std::string status, error_type;
    std::shared_ptr<Stream> stream;
    bool stream_done = false;  // the runtime closed its stream (else it was cut: timeout, crash)
  };

  enum class KillReason { none, timeout, oom, init_timeout, stop, extension };

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
        log_retry(ex_),
        records_retry(ex_) {
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
  // A managed runtime's log records, framed (_LAMBDA_TELEMETRY_LOG_FD): one record each,
  // however many lines it holds, as Lambda takes them.
  int records_fd = -1;
  std::unique_ptr<asio::posix::stream_descriptor> records_in;
  std::string records_buf;        // an unfinished frame
  bool records_unframed = false;  // the runtime broke the framing: the rest is read as lines
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

  // Extensions (Extensions API, /2020-01-01): external ones are the executables in
  // /opt/extensions, started before the runtime, which starts once every one has registered;
  // internal ones register from the runtime process during its init. Agent states as Lambda
  // names them: Started, Registered, Ready (waiting in /event/next), Running (working on an
  // event), InitError, ExitError, LaunchError, Exited, ShutdownFailed.
  struct Extension {
    std::string name;  // Lambda-Extension-Name: the file name for an external one
    std::string id;    // Lambda-Extension-Identifier, once registered
    bool external = false;
    std::string state = "Started";
    std::vector<std::string> events;  // registered for, in the order given
    bool wants_invoke = false, wants_shutdown = false;
    std::string error_type;  // a launch error, or the Lambda-Extension-Function-Error-Type posted
    std::string fatal;       // Extension.InitError / Extension.ExitError once posted
    pid_t pid = -1;
    bool exited = false;
    std::deque<std::string> queue;  // events not yet fetched
    int out_fd = -1;
    std::unique_ptr<asio::posix::stream_descriptor> out;
    std::string partial;
    proc::TreeMemory tree;  // its processes at the last walk (read_memory)
    bool registered() const { return !id.empty(); }
    bool running() const { return external && pid > 0 && !exited; }  // a process of its own, alive
    bool ready() const { return state == "Ready" && queue.empty(); }
  };
  std::vector<std::shared_ptr<Extension>> exts;
  bool runtime_launched = false;   // with external extensions, once all of them have registered
  bool registration_open = true;   // closes at the runtime's first /next
  bool init_done = false;          // subscriptions close with it
  proc::SpawnOptions runtime_opts;  // kept until the runtime is launched
  proc::Sandbox sandbox;            // see sandbox_view()
  proc::Namespaces namespaces;      // the first sandboxed process's, which the others join
  asio::steady_timer ext_kill_timer{ex};
  bool ext_shutdown = false;       // SHUTDOWN sent or being sent; sockets stay open for it
  std::string ext_shutdown_reason;  // "timeout" / "failure"; empty: spindown when stopped, else failure
  bool stop_requested = false;
  mono::time_point shutdown_started{};
  static constexpr std::size_t max_extensions = 10;
  static constexpr auto ext_shutdown_limit = std::chrono::milliseconds(2000);
  static constexpr auto runtime_shutdown_share = std::chrono::milliseconds(300);

  asio::steady_timer timeout_timer, freeze_timer, init_timer, memory_timer, kill_timer, log_retry, records_retry;
  bool freeze_pending = false;
  mono::time_point idle_since = mono::now();
  std::vector<pid_t> stop_tree;  // the handler's processes when stop() began (killed at exit)

  // ---------------------------------------------------------------- logs

  // in_tail = false: a line no LogResult shows (INIT_START).
  void emit(std::string_view text, bool platform, std::string_view request_id, bool in_tail = true) {
    if (logs) logs->write(LogLine{spec.function_name, spec.version, request_id, text, platform});
    // The init phase's lines belong to the tail of the invocation that waits for it (AWS's
    // LogResult of a cold start holds them), but for INIT_START: AWS's tail of a cold start
    // begins with START (recorded test_invocation_with_logs, 2025).
    Current* c = cur ? &*cur : pending ? &*pending : nullptr;
    if (c && in_tail) {
      c->tail.append(text);
      c->tail.push_back('\n');
      if (c->tail.size() > 4 * tail_bytes) c->tail.erase(0, c->tail.size() - tail_bytes);
    }
  }
  void emit_platform(const std::string& text, bool in_tail = true) {
    emit(text, true, cur ? cur->inv.request_id : std::string_view{}, in_tail);
  }

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
  bool app_rank_wanted(int rank) const {
    return spec.log_format != "JSON" || spec.log_level.empty() || rank >= app_level_rank(spec.log_level);
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
  // A platform event: to the Telemetry API's subscribers (whatever the log format and level),
  // and as a log line with the JSON log format at its system log level.
  void emit_record(SysLevel l, const char* type, nlohmann::ordered_json record) {
    if (tele_wanted()) tele_push(type, record, {});
    if (!json_logs() || !sys_on(l)) return;
    nlohmann::ordered_json line;
    line["time"] = iso8601_ms();
    line["type"] = type;
    line["record"] = std::move(record);
    emit_platform(line.dump());
  }
  static double ms3(double ms) { return std::round(ms * 1000.0) / 1000.0; }
  std::string runtime_version_arn() { return runtime::runtime_version_arn(spec.region, spec.runtime_id, spec.interpreter); }

  // with_arn = false: the runtime never started (no bootstrap), AWS shows the version alone.
  void log_init_start(bool with_arn) {
    if (!json_logs()) {
      // Not in the tail (recorded for the text format; the JSON platform.initStart record, of
      // which no recording says, stays in it).
      emit_platform("INIT_START Runtime Version: " + spec.runtime_version +
                        (with_arn ? "\tRuntime Version ARN: " + runtime_version_arn() : std::string()),
                    false);
      if (!tele_wanted()) return;
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
    if (!json_logs() && !tele_wanted()) {
      log_extensions();
      return;
    }
    nlohmann::ordered_json done{{"initializationType", "on-demand"}, {"phase", "init"}, {"status", "success"}};
    emit_record(SysLevel::debug, "platform.initRuntimeDone", done);
    log_extensions();
    done["metrics"] = {{"durationMs", ms3(ms)}};
    emit_record(SysLevel::debug, "platform.initReport", std::move(done));
  }

  // Init failed: status "timeout" or "error" (with its error type).
  void log_init_report(double ms, const std::string& status, const std::string& error_type) {
    log_extensions();
    if (!json_logs()) {
      emit_platform("INIT_REPORT Init Duration: " + ms2(ms) + " ms\tPhase: init\tStatus: " + status +
                    (error_type.empty() ? std::string() : "\tError Type: " + error_type));
      if (!tele_wanted()) return;
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
      if (!tele_wanted()) return;
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
      if (!tele_wanted()) return;
    }
    std::string status = rep.status.empty() ? "success" : rep.status;
    nlohmann::ordered_json done{{"requestId", rep.request_id}, {"status", status}};
    if (!rep.error_type.empty()) done["errorType"] = rep.error_type;
    // The runtime's part: up to its /next when extensions went on working after it.
    double runtime_ms = rep.duration_ms;
    if (cur && cur->runtime_done_at != mono::time_point{})
      runtime_ms = std::chrono::duration<double, std::milli>(cur->runtime_done_at - cur->delivered_at).count();
    done["metrics"] = {{"durationMs", ms3(runtime_ms)}, {"producedBytes", cur ? cur->produced_bytes : 0}};
    emit_record(SysLevel::debug, "platform.runtimeDone", std::move(done));
    if (tele_wanted()) tele_push("platform.end", {{"requestId", rep.request_id}}, {});  // the Logs API's
    nlohmann::ordered_json metrics{{"durationMs", ms3(rep.duration_ms)},
                                   {"billedDurationMs", rep.billed_ms},
                                   {"memorySizeMB", rep.memory_size_mb},
                                   {"maxMemoryUsedMB", rep.max_memory_used_mb}};
    if (rep.init_duration_ms) metrics["initDurationMs"] = ms3(*rep.init_duration_ms);
    nlohmann::ordered_json r{{"requestId", rep.request_id}, {"metrics", std::move(metrics)}};
    if (cur && cur->runtime_done_at != mono::time_point{}) {
      // The extensions' work after the runtime's /next, as Lambda reports it.
      auto overhead = mono::now() - cur->runtime_done_at;
      auto start = wall_clock::now() - std::chrono::duration_cast<wall_clock::duration>(overhead);
      r["spans"] = nlohmann::ordered_json::array(
          {{{"name", "extensionOverhead"},
            {"start", iso8601_ms(start)},
            {"durationMs", ms3(std::chrono::duration<double, std::milli>(overhead).count())}}});
    }
    r["status"] = status;
    if (!rep.error_type.empty()) r["errorType"] = rep.error_type;
    emit_record(status == "success" ? SysLevel::info : SysLevel::warn, "platform.report", std::move(r));
  }

  void emit_output_lines(std::string_view data) { emit_lines(partial, data, true); }

  // One line of the function's (app) or an extension's output: to the log and to the
  // Telemetry API's subscribers.
  // `rank`: the record's level when its frame tells it (app_level_rank's scale), else -1.
  void out_line(std::string_view line, bool app, std::string_view rid, int rank = -1) {
    if (app && !(rank >= 0 ? app_rank_wanted(rank) : app_line_wanted(line))) return;
    emit(line, false, rid);
    if (tele_wanted()) tele_push(app ? "function" : "extension", {}, line);
  }

  // Splits a process's output into log lines; `part` holds an unfinished last line. The
  // application log level filters the function's own output (`app`), not an extension's.
  void emit_lines(std::string& part, std::string_view data, bool app) {
    std::string_view rid = cur ? std::string_view(cur->inv.request_id) : std::string_view{};
    part.append(data);
    std::size_t start = 0;
    while (true) {
      auto nl = part.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(part.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      out_line(line, app, rid);
      start = nl + 1;
    }
    part.erase(0, start);
    while (part.size() > max_log_line) {
      out_line(std::string_view(part.data(), max_log_line), false, rid);
      part.erase(0, max_log_line);
    }
  }

  // Reads whatever the process has written to `fd` so far, each chunk to `take`; returns false
  // at EOF.
  template <typename Take>
  bool read_pipe(int fd, Take&& take) {
    if (fd < 0) return false;
    char buf[65536];
    for (int rounds = 0; rounds < 64; ++rounds) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        take(std::string_view(buf, static_cast<std::size_t>(n)));
        if (logs && !logs->accepting()) return true;
        continue;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    return true;
  }
  bool read_output() {
    return read_pipe(out_fd, [this](std::string_view d) { emit_output_lines(d); });
  }
  bool read_records() {
    return read_pipe(records_fd, [this](std::string_view d) { take_records(d); });
  }

  // The framing of _LAMBDA_TELEMETRY_LOG_FD (AWS's runtimes: FramedTelemetryLogSink in
  // awslambdaric, the log patch of the Node.js runtime): a 4-byte type, 0xa55a in its high half,
  // then the format in its two low bits (2 JSON, 3 text) and the level in the three above them
  // (1 TRACE .. 6 FATAL, 0 none); a 4-byte length; an 8-byte timestamp in microseconds; the
  // message. Big-endian.
  static constexpr int telemetry_log_fd_number = 62;  // AWS's (recorded environments)
  static constexpr std::size_t frame_header = 16;
  static constexpr std::uint32_t max_frame = 64u << 20;

  static std::uint32_t big_endian32(const char* p) {
    auto b = [p](int i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])); };
    return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
  }

  void take_records(std::string_view data) {
    if (records_unframed) return emit_lines(records_buf, data, true);
    records_buf.append(data);
    std::size_t at = 0;
    while (records_buf.size() - at >= frame_header) {
      const char* h = records_buf.data() + at;
      std::uint32_t type = big_endian32(h), len = big_endian32(h + 4);
      if ((type >> 16) != 0xa55a || len > max_frame) {
        // Not a frame: from here on the descriptor is read as lines, as stdout is.
        records_unframed = true;
        std::string rest = records_buf.substr(at);
        records_buf.clear();
        emit_platform("sluice: the runtime wrote to _LAMBDA_TELEMETRY_LOG_FD without the log framing (type 0x" +
                      hex32(type) + "); the rest is read as lines");
        return emit_lines(records_buf, rest, true);
      }
      if (records_buf.size() - at - frame_header < len) break;
      int level = static_cast<int>((type >> 2) & 7);
      record_line(std::string_view(h + frame_header, len), level >= 1 && level <= 6 ? level - 1 : -1);
      at += frame_header + len;
    }
    records_buf.erase(0, at);
  }

  // One framed record, a log line of its own whatever it holds; the newline that ends a text
  // record is not part of it. Longer than a log line can be: in pieces, as stdout's lines are.
  void record_line(std::string_view msg, int rank) {
    std::string_view rid = cur ? std::string_view(cur->inv.request_id) : std::string_view{};
    if (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
    do {
      out_line(msg.substr(0, max_log_line), true, rid, rank);
      msg.remove_prefix(std::min(msg.size(), max_log_line));
    } while (!msg.empty());
  }

  static std::string hex32(std::uint32_t v) {
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", v);
    return buf;
  }

  // A frame cut short (the runtime ended while writing it): what there is of its message.
  void flush_records() {
    if (records_unframed) return flush_part(records_buf, true);
    if (records_buf.size() > frame_header) record_line(std::string_view(records_buf).substr(frame_header), -1);
    records_buf.clear();
  }

  void flush_partial() { flush_part(partial, true); }

  // An unfinished last line of output (`part`), as a line of its own.
  void flush_part(std::string& part, bool app) {
    if (!part.empty()) {
      std::string line = std::move(part);
      part.clear();
      out_line(line, app, cur ? std::string_view(cur->inv.request_id) : std::string_view{});
    }
  }

  // Reads all a process has written to its output pipe so far, as lines (`app`: the function's).
  void drain_pipe(int fd, std::string& part, bool app) {
    read_all(fd, [&](std::string_view d) { emit_lines(part, d, app); });
    flush_part(part, app);
  }

  // Everything in the pipe now, whether the log sink keeps up or not.
  template <typename Take>
  static void read_all(int fd, Take&& take) {
    while (fd >= 0) {
      char buf[65536];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        take(std::string_view(buf, static_cast<std::size_t>(n)));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;
    }
  }

  // Everything the processes wrote before this point belongs to what came before.
  void drain_output() {
    drain_pipe(out_fd, partial, true);
    read_all(records_fd, [this](std::string_view d) { take_records(d); });
    for (auto& e : exts) drain_pipe(e->out_fd, e->partial, false);
  }

  // Reads the runtime's output (or with `records`, its framed log records) as it comes.
  void arm_output(bool records = false) {
    auto& sd = records ? records_in : out;
    if (!sd) return;
    if (logs && !logs->accepting()) {
      // Back-pressure: the handler blocks on a full pipe instead of sluice buffering without bound.
      auto& retry = records ? records_retry : log_retry;
      retry.expires_after(std::chrono::milliseconds(5));
      retry.async_wait([self = shared_from_this(), records](boost::system::error_code ec) {
        if (!ec) self->arm_output(records);
      });
      return;
    }
    sd->async_wait(asio::posix::stream_descriptor::wait_read,
                   [self = shared_from_this(), records](boost::system::error_code ec) {
                     if (ec) return;
                     if (records ? self->read_records() : self->read_output()) {
                       self->arm_output(records);
                     } else if (records) {
                       self->close_records();
                     } else {
                       self->flush_partial();
                       self->close_output();
                     }
                   });
  }

  void close_output() { close_pipe(out, out_fd); }
  void close_records() {
    flush_records();
    close_pipe(records_in, records_fd);
  }

  static void close_pipe(std::unique_ptr<asio::posix::stream_descriptor>& sd, int& fd) {
    if (sd) {
      boost::system::error_code ignored;
      sd->close(ignored);
      sd.reset();
    }
    fd = -1;
  }

  // A process's output pipe: sluice's end non-blocking, the process's end blocking (a process
  // writing logs waits instead of failing). False (errno set) when it cannot be made.
  static bool output_pipe(int fds[2]) {
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return false;
    ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) & ~O_NONBLOCK);
    return true;
  }

  // ---------------------------------------------------------------- process

  // The runtime's own files (sluice's bootstrap for the runtime; nothing for provided.*).
  std::filesystem::path runtime_dir() const {
    return spec.kind == RuntimeKind::python ? spec.bootstrap_dir / "python"
           : spec.kind == RuntimeKind::node ? spec.bootstrap_dir / "node"
                                            : (spec.sandbox ? std::filesystem::path{} : spec.bootstrap_dir);
  }

  // Where the processes see the code, the layers and the runtime: Lambda's paths in a sandbox,
  // the host's otherwise.
  std::filesystem::path task_root() const { return spec.sandbox ? "/var/task" : spec.code_dir; }
  std::filesystem::path opt_root() const { return spec.sandbox ? "/opt" : spec.opt_dir; }
  std::filesystem::path runtime_root() const { return spec.sandbox ? "/var/runtime" : runtime_dir(); }

  std::vector<std::string> command_line(std::string& missing) {
    namespace fs = std::filesystem;
    switch (spec.kind) {
      case RuntimeKind::python: {
        std::vector<std::string> argv{spec.interpreter.string()};
        argv.insert(argv.end(), spec.interpreter_args.begin(), spec.interpreter_args.end());
        argv.insert(argv.end(), spec.debug_args.begin(), spec.debug_args.end());
        argv.push_back((runtime_root() / "bootstrap.py").string());
        return argv;
      }
      case RuntimeKind::node: {
        const char* entry = "bootstrap.js";
        std::vector<std::string> argv{spec.interpreter.string()};
        argv.insert(argv.end(), spec.interpreter_args.begin(), spec.interpreter_args.end());
        argv.insert(argv.end(), spec.debug_args.begin(), spec.debug_args.end());
        argv.push_back((runtime_root() / entry).string());
        return argv;
      }
      case RuntimeKind::provided: {
        // Lookup order of the Lambda sandbox: /var/task/bootstrap, then /opt/bootstrap.
        std::vector<std::string> argv = spec.debug_args;
        if (fs::exists(spec.code_dir / "bootstrap")) {
          argv.push_back((task_root() / "bootstrap").string());
        } else if (!spec.opt_dir.empty() && fs::exists(spec.opt_dir / "bootstrap")) {
          argv.push_back((opt_root() / "bootstrap").string());
        } else {
          missing = (task_root() / "bootstrap").string();
          return {missing};
        }
        return argv;
      }
    }
    return {};
  }

  // A path the function names (/opt/..., /var/task/...) on this machine.
  std::string host_path(const std::string& p) const {
    if (starts_with(p, "/opt/") && !spec.opt_dir.empty()) return (spec.opt_dir / p.substr(5)).string();
    if (starts_with(p, "/var/task/")) return (spec.code_dir / p.substr(10)).string();
    return p;
  }

  // The sandbox the processes start in (see proc::Sandbox), when the spec asks for one.
  const proc::Sandbox* sandbox_view() {
    if (!spec.sandbox) return nullptr;
    if (sandbox.task.empty()) {
      sandbox.task = spec.code_dir.string();
      sandbox.runtime = runtime_dir().string();
      if (spec.layers.size() > 1) {
        // A later layer's files win, as in Lambda's /opt: it goes on top.
        for (auto l = spec.layers.rbegin(); l != spec.layers.rend(); ++l) sandbox.layers.push_back(l->string());
        sandbox.opt_fallback = spec.opt_dir.string();
      } else if (!spec.opt_dir.empty()) {
        sandbox.layers.push_back(spec.opt_dir.string());
      }
      sandbox.tmp_mb = spec.tmp_mb;
      // What the processes need from the host's /tmp stays visible in their own.
      std::vector<std::filesystem::path> needed{spec.project_dir, spec.code_dir, spec.opt_dir, spec.bootstrap_dir,
                                                spec.interpreter};
      needed.insert(needed.end(), spec.layers.begin(), spec.layers.end());
      for (const auto& p : needed) {
        std::error_code ec;
        auto real = p.empty() ? p : std::filesystem::weakly_canonical(p, ec);
        auto rel = real.lexically_relative("/tmp");
        if (real.empty() || rel.empty() || *rel.begin() == "..") continue;
        std::string top = rel.begin()->string();
        if (top == ".") sandbox.tmp_mb = 0;  // /tmp itself: the host's it stays
        else if (std::find(sandbox.tmp_keep.begin(), sandbox.tmp_keep.end(), top) == sandbox.tmp_keep.end())
          sandbox.tmp_keep.push_back(top);
      }
    }
    return &sandbox;
  }

  // Starts one of the environment's processes: the first sets up the sandbox, the others
  // join its namespaces (one /tmp for the runtime and its extensions, as on Lambda).
  proc::SpawnResult spawn_process(proc::SpawnOptions& o) {
    o.sandbox = sandbox_view();
    if (spec.sandbox && namespaces.held()) o.join = &namespaces;
    auto res = proc::spawn(o);
    if (res.pid > 0 && spec.sandbox && !namespaces.held()) namespaces.open(res.pid);
    return res;
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
    if (!output_pipe(fds)) {
      fail_start(std::string("cannot create the output pipe: ") + std::strerror(errno));
      return;
    }
    // A managed runtime's log records come on a pipe of their own, AWS's descriptor 62.
    int record_fds[2] = {-1, -1};
    if (spec.kind != RuntimeKind::provided && !output_pipe(record_fds)) {
      int err = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      fail_start(std::string("cannot create the log record pipe: ") + std::strerror(err));
      return;
    }

    EnvContext ctx;
    ctx.runtime_api = "127.0.0.1:" + std::to_string(port);
    ctx.log_stream_name = log_stream;
    ctx.runtime_dir = runtime_root();
    if (record_fds[1] >= 0) ctx.telemetry_log_fd = telemetry_log_fd_number;
    proc::SpawnOptions opts;
    opts.pass_fd = record_fds[1];
    opts.pass_fd_as = telemetry_log_fd_number;
    // Both pipes' ends, closed on the paths below where the runtime never starts.
    auto close_pipes = [&] {
      for (int fd : {fds[0], fds[1], record_fds[0], record_fds[1]})
        if (fd >= 0) ::close(fd);
    };
    std::string missing;
    opts.argv = command_line(missing);
    if (!missing.empty()) {
      // No bootstrap anywhere the sandbox looks: Lambda's Runtime.InvalidEntrypoint.
      std::string where = "[" + (task_root() / "bootstrap").string() +
                          (spec.opt_dir.empty() && !spec.sandbox ? "" : " " + (opt_root() / "bootstrap").string()) + "]";
      invalid_entrypoint = "Couldn't find valid bootstrap(s): " + where;
      close_pipes();
      log_init_start(false);
      exit_later(127 << 8);
      return;
    }
    EnvironmentSpec seen = spec;
    seen.code_dir = task_root();
    seen.opt_dir = spec.sandbox || !spec.opt_dir.empty() ? opt_root() : std::filesystem::path{};
    auto env = build_environment(seen, ctx);
    for (auto& [k, v] : env) opts.env.push_back(k + "=" + v);
    opts.cwd = task_root().string();
    opts.output_fd = fds[1];

    log_init_start(true);
    spawned_at = mono::now();
    // A managed runtime's bootstrap runs AWS_LAMBDA_EXEC_WRAPPER with the interpreter's command
    // line as its arguments; a missing or non-executable wrapper ends the runtime with the
    // bootstrap's message and exit status 127 / 126 (Runtime.ExitError). Not for provided.*.
    if (auto w = env.find("AWS_LAMBDA_EXEC_WRAPPER"); w != env.end() && !w->second.empty() &&
                                                     spec.kind != RuntimeKind::provided) {
      std::string on_host = host_path(w->second);
      std::string wrapper = spec.sandbox ? w->second : on_host;
      std::error_code fec;
      bool is_file = std::filesystem::is_regular_file(on_host, fec);
      int bad = !is_file ? 127 : ::access(on_host.c_str(), X_OK) != 0 ? 126 : 0;
      if (bad) {
        close_pipes();
        emit(wrapper + (bad == 127 ? ": does not exist" : ": is not an executable"), false, {});
        exit_later(bad << 8);
        return;
      }
      opts.argv.insert(opts.argv.begin(), wrapper);
    }
    out_fd = fds[0];
    out = std::make_unique<asio::posix::stream_descriptor>(ex, out_fd);
    if (record_fds[0] >= 0) {
      records_fd = record_fds[0];
      records_in = std::make_unique<asio::posix::stream_descriptor>(ex, records_fd);
    }
    runtime_opts = std::move(opts);
    asio::co_spawn(ex, accept_loop(shared_from_this()), asio::detached);
    if (!spec.debugging) {
      init_timer.expires_after(spec.init_timeout);
      init_timer.async_wait([w = weak_from_this()](boost::system::error_code ec) {
        if (auto self = w.lock(); self && !ec) self->on_init_timeout();
      });
    }
    // External extensions first; the runtime once every one of them has registered.
    if (!launch_extensions(env)) return;
    maybe_launch_runtime();
  }

  void launch_runtime() {
    runtime_launched = true;
    auto res = spawn_process(runtime_opts);
    close_runtime_ends();
    if (res.pid < 0) {
      std::string what = runtime_opts.argv.empty() ? "bootstrap" : runtime_opts.argv[0];
      emit_platform(!res.sandbox_error.empty()
                        ? "sluice: cannot set up the sandbox for " + what + ": " + res.sandbox_error
                        : "sluice: cannot execute " + what + ": " + std::strerror(res.exec_errno));
      int code = res.exec_errno == ENOENT ? 127 : 126;
      exit_later(code << 8);
      return;
    }
    pid = res.pid;
    watch_child(ex, pid, [w = weak_from_this(), child = pid](int status, long max_rss_kb) {
      proc::reaper_untrack(child);
      if (auto self = w.lock()) {
        // A runtime that died between readings (a crash in its first milliseconds) still
        // used the memory the kernel counted for it.
        if (max_rss_kb > 0) self->peak_kb = std::max<std::uint64_t>(self->peak_kb, static_cast<std::uint64_t>(max_rss_kb));
        self->on_exit(status);
      }
    });
    arm_output();
    arm_output(true);
  }

  // The runtime's ends of its pipes, once it has them (or never will).
  void close_runtime_ends() {
    for (int* fd : {&runtime_opts.output_fd, &runtime_opts.pass_fd})
      if (*fd >= 0) {
        ::close(*fd);
        *fd = -1;
      }
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
    if (tele_sending()) return;  // frozen once the listener has its batch (tele_post)
    if (spec.freeze && pid > 0 && !frozen && !exited) {
      proc::signal_group(pid, SIGSTOP);
      for (auto& e : exts)
        if (e->running()) proc::signal_group(e->pid, SIGSTOP);
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
      for (auto& e : exts)
        if (e->running()) proc::signal_group(e->pid, SIGCONT);
      frozen = false;
      if (!subs.empty()) tele_flush_all(true);  // what waited while frozen goes out now
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
    r.payload = platform_error("Runtime.ExitError", "RequestId: " + c.inv.request_id +
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
    cur->deadline_ms = epoch_ms() + static_cast<std::int64_t>(spec.timeout_s) * 1000;
    state = EnvState::running;
    log_start();
    if (!exts.empty()) queue_invoke_event();
    thaw();
    if (!spec.debugging) {
      timeout_timer.expires_after(std::chrono::seconds(spec.timeout_s));
      timeout_timer.async_wait([w = weak_from_this()](boost::system::error_code ec) {
        if (auto self = w.lock(); self && !ec) self->on_timeout();
      });
    }
    poll_memory();
    next_ready.notify();
  }

  void poll_memory() {
    memory_timer.expires_after(memory_poll);
    memory_timer.async_wait([w = weak_from_this()](boost::system::error_code ec) {
      auto self = w.lock();
      if (!self || ec || (self->state != EnvState::running && self->state != EnvState::response_sent)) return;
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
      for (auto& e : exts)
        if (e->running()) e->tree.walk(e->pid);
      tree_walked_at = now;
    }
    memory_read_at = now;
    auto m = tree.read();
    for (auto& e : exts)  // the sandbox's memory: extension processes count too
      if (e->running()) m.hwm_kb += e->tree.read().hwm_kb;
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
    r.payload = o == Outcome::response_too_large ? api_error(type, message) : platform_error(type, message);
    return r;
  }

  // END + REPORT, then hand the report over. status: "", "timeout", "error".
  void finish_invocation(const std::string& status, const std::string& error_type) {
    if (!cur) return;
    drain_output();
    // With extensions at work on the invocation, it lasts until the last of them is done.
    // A stream that was cut short (a timeout, a crash) lasted until now, not until it started.
    bool answered = cur->result_sent && (!cur->stream || cur->stream_done);
    auto end = answered && !has_invoke_extensions() ? cur->responded_at : mono::now();
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
    if (state == EnvState::response_sent && cur) {
      // The runtime answered; an extension was still at work when the time ran out.
      kill_now(KillReason::timeout);
      drain_output();
      finish_invocation("timeout", "");
      ext_shutdown_reason = "timeout";
      become_dead("timed out (extensions)");
      return;
    }
    if (state != EnvState::running || !cur) return;
    ext_shutdown_reason = "timeout";
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

  // The current invocation fails with a platform error: the two log lines Lambda writes
  // ("RequestId: ... Error: ..." and the type), the caller's error, END / REPORT.
  void fail_invocation(const std::string& type, const std::string& message) {
    std::string full = "RequestId: " + cur->inv.request_id + " Error: " + message;
    emit_platform(full);
    emit_platform(type);
    send_result(failure(Outcome::exit_error, type, full));
    end_stream_with(type, full);
    finish_invocation("error", type);
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
    ext_shutdown_reason = "timeout";
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
    // The environment ends with its runtime, as a Lambda sandbox does: whatever the handler
    // started goes too, the group's members that outlived the SIGTERM, and descendants that
    // left the group (a setsid or daemonised child), known from the walk taken when the stop
    // began, while every parent link was intact.
    proc::kill_tree(pid, stop_tree);
    stop_tree.clear();
    drain_output();
    close_output();
    close_records();
    frozen = false;
    std::string how = proc::describe_wait_status(status);
    bool clean_exit = WIFEXITED(status) && WEXITSTATUS(status) == 0;

    if (kill_reason == KillReason::timeout || kill_reason == KillReason::oom ||
        kill_reason == KillReason::init_timeout || kill_reason == KillReason::extension) {
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
            fail_invocation(type, msg);
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
        fail_invocation("Runtime.ExitError", msg);
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
    namespaces.close();  // no process joins any more; /tmp goes with the last one
    timeout_timer.cancel();
    freeze_timer.cancel();
    init_timer.cancel();
    memory_timer.cancel();
    log_retry.cancel();
    records_retry.cancel();
    close_runtime_ends();  // when the runtime never started
    if (shutdown_started == mono::time_point{}) shutdown_started = mono::now();
    // Extensions that get a SHUTDOWN event keep the Runtime API until they exit or time out.
    if (exts.empty() || !shutdown_extensions()) {
      boost::system::error_code ignored;
      acceptor.close(ignored);
      for (auto& s : conns) s->close(ignored);
      conns.clear();
    }
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
    stop_requested = true;
    shutdown_started = mono::now();
    if (exited) {
      become_dead(reason);
      return;
    }
    if (pid <= 0) {  // the runtime never started (extensions still registering)
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
    stop_tree = proc::process_tree(pid);
    proc::signal_group(pid, SIGCONT);
    proc::signal_group(pid, SIGTERM);
    // With external extensions the runtime gets 300 ms of the 2 s shutdown, as on AWS.
    bool external = std::any_of(exts.begin(), exts.end(), [](auto& e) { return e->running(); });
    kill_timer.expires_after(external ? std::min<std::chrono::milliseconds>(spec.shutdown_grace, runtime_shutdown_share)
                                      : spec.shutdown_grace);
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

  // The endpoint serves until the environment is gone, and on for extensions that still have
  // a SHUTDOWN event to take.
  bool api_open() const { return state != EnvState::dead || ext_shutdown; }

  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    while (self->api_open()) {
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

  // ---------------------------------------------------------------- Telemetry API / Logs API
  // An extension subscribes during init (PUT /2022-07-01/telemetry, or the older
  // PUT /2020-08-15/logs); Lambda then POSTs it JSON arrays of {"time","type","record"} for the
  // platform's events, the function's output and the extensions' output, batched by item
  // count, bytes and time. Events of the init phase are kept until init ends and replayed to
  // each subscriber. Nothing is delivered while the environment is frozen: a batch that comes
  // due then goes out at the next thaw, as on AWS.

  using TeleItem = ext::TeleItem;
  struct Subscription {
    std::shared_ptr<Extension> ext;
    ext::SubscriptionRequest req;
    std::vector<std::string> batch;
    std::size_t batch_bytes = 0;
    std::unique_ptr<asio::steady_timer> timer;
    bool timer_armed = false, due = false, sending = false, failing = false;
    std::size_t dropped_records = 0, dropped_bytes = 0;
    std::string drop_reason;
  };
  std::vector<std::shared_ptr<Subscription>> subs;
  std::vector<TeleItem> init_items;  // until init ends, for subscribers still to come
  static constexpr std::size_t max_init_items = 10000;

  bool tele_wanted() const { return !init_done || !subs.empty(); }

  void tele_push(const char* type, nlohmann::ordered_json record, std::string_view line) {
    TeleItem it{iso8601_ms(), type, std::move(record), std::string(line)};
    for (auto& s : subs) {
      auto text = tele_render(*s, it);
      if (!text.empty()) tele_enqueue(s, std::move(text));
    }
    if (!init_done && init_items.size() < max_init_items) init_items.push_back(std::move(it));
  }

  // The record as this subscriber gets it, or "" when it does not get it.
  std::string tele_render(const Subscription& s, const TeleItem& it) const {
    if (s.ext->exited) return {};
    return ext::render_record(s.req, it, json_logs());
  }

  void tele_enqueue(const std::shared_ptr<Subscription>& s, std::string text) {
    // A listener that falls behind loses records rather than sluice growing without bound.
    if (s->batch_bytes + text.size() > 4 * s->req.max_bytes || s->batch.size() >= 4 * s->req.max_items) {
      s->dropped_records++;
      s->dropped_bytes += text.size();
      if (s->drop_reason.empty())
        s->drop_reason = "Some logs were dropped because the downstream consumer is slower than the logs production rate";
      return;
    }
    s->batch_bytes += text.size();
    s->batch.push_back(std::move(text));
    if (s->batch.size() >= s->req.max_items || s->batch_bytes >= s->req.max_bytes) {
      s->due = true;
      tele_flush(s);
    } else if (!s->timer_armed) {
      s->timer_armed = true;
      if (!s->timer) s->timer = std::make_unique<asio::steady_timer>(ex);
      s->timer->expires_after(s->req.timeout);
      s->timer->async_wait([w = weak_from_this(), s](boost::system::error_code ec) {
        s->timer_armed = false;
        auto self = w.lock();
        if (!self || ec) return;
        s->due = true;
        self->tele_flush(s);
      });
    }
  }

  void tele_flush(const std::shared_ptr<Subscription>& s) {
    if (!s->due || s->sending || s->ext->exited) return;
    if (frozen) return;  // goes out at the next thaw
    if (s->batch.empty() && s->dropped_records == 0) {
      s->due = false;
      return;
    }
    std::string body = "[";
    if (s->dropped_records > 0) {
      // What was lost since the last delivery, first in the next one.
      nlohmann::ordered_json d{{"time", iso8601_ms()},
                               {"type", "platform.logsDropped"},
                               {"record",
                                {{"reason", s->drop_reason},
                                 {"droppedRecords", s->dropped_records},
                                 {"droppedBytes", s->dropped_bytes}}}};
      body += d.dump();
      s->dropped_records = s->dropped_bytes = 0;
      s->drop_reason.clear();
    }
    std::size_t n = s->batch.size(), bytes = s->batch_bytes;
    for (std::size_t i = 0; i < n; ++i) {
      if (body.size() > 1) body += ',';
      body += s->batch[i];
    }
    body += ']';
    s->batch.clear();
    s->batch_bytes = 0;
    s->due = false;
    if (s->timer_armed && s->timer) s->timer->cancel();
    s->sending = true;
    asio::co_spawn(ex, tele_post(shared_from_this(), s, std::move(body), n, bytes), asio::detached);
  }

  void tele_flush_all(bool force) {
    for (auto& s : subs) {
      if (force && (!s->batch.empty() || s->dropped_records)) s->due = true;
      tele_flush(s);
    }
  }

  bool tele_sending() const {
    for (auto& s : subs)
      if (s->sending) return true;
    return false;
  }

  static asio::awaitable<void> tele_post(std::shared_ptr<Impl> self, std::shared_ptr<Subscription> s,
                                         std::string body, std::size_t n, std::size_t bytes) {
    std::string failed;
    {
      boost::beast::tcp_stream stream(self->ex);
      stream.expires_after(std::chrono::seconds(5));
      tcp::endpoint to{asio::ip::make_address("127.0.0.1"), s->req.port};
      auto [cec] = co_await stream.async_connect(to, nothrow);
      if (cec) {
        failed = cec.message();
      } else {
        bhttp::request<bhttp::string_body> req{bhttp::verb::post, s->req.path, 11};
        req.set(bhttp::field::host, "sandbox.localdomain:" + std::to_string(s->req.port));
        req.set(bhttp::field::content_type, "application/json");
        req.body() = std::move(body);
        req.prepare_payload();
        auto [wec, wn] = co_await bhttp::async_write(stream, req, nothrow);
        if (wec) {
          failed = wec.message();
        } else {
          boost::beast::flat_buffer rbuf;
          bhttp::response<bhttp::string_body> res;
          auto [rec, rn] = co_await bhttp::async_read(stream, rbuf, res, nothrow);
          if (rec) failed = rec.message();
          else if (res.result_int() >= 400) failed = "HTTP " + std::to_string(res.result_int());
        }
      }
      boost::system::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    }
    s->sending = false;
    if (!failed.empty()) {
      failed = "could not send events: " + failed;
      s->dropped_records += n;
      s->dropped_bytes += bytes;
      if (s->drop_reason.empty()) s->drop_reason = failed;
      if (!s->failing) logger()->warn("{}: Telemetry API delivery to {} failed ({})", self->spec.function_name,
                                      s->ext->name, failed);
      s->failing = true;
    } else {
      s->failing = false;
    }
    if (s->batch.size() >= s->req.max_items || s->batch_bytes >= s->req.max_bytes) s->due = true;
    self->tele_flush(s);
    if (self->state == EnvState::idle && !self->cur && !self->tele_sending()) self->schedule_freeze();
  }

  StrResponse subscribe(bool telemetry, const std::string& id, const std::string& body, unsigned version,
                        bool keep_alive) {
    const std::string api = telemetry ? "Telemetry" : "Logs";
    std::optional<StrResponse> refusal;
    auto e = ext_for(id, refusal, version, keep_alive);
    if (!e) return std::move(*refusal);
    if (init_done)
      return ext_refuse(api + ".SubscriptionClosed", api + " API subscription is closed already", version, keep_alive);
    const std::string invalid = telemetry ? "ValidationError" : "Logs.ValidationError";
    std::string problems;
    auto req = ext::parse_subscription(telemetry, body, problems);
    for (auto& other : subs)
      if (other->ext == e && other->req.logs_api == telemetry)
        problems += (problems.empty() ? "" : "; ") +
                    std::string("an extension subscribes to either the Telemetry API or the Logs API, not both");
    if (!req || !problems.empty()) return make_response(400, api_error(invalid, problems), version, keep_alive);
    auto sub = std::make_shared<Subscription>();
    sub->ext = e;
    sub->req = std::move(*req);
    const auto& types = sub->req.types;
    // A second subscription by the same extension replaces the first.
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](auto& o) { return o->ext == e && o->req.logs_api == sub->req.logs_api; }),
               subs.end());
    subs.push_back(sub);
    for (const auto& it : init_items) {
      auto text = tele_render(*sub, it);
      if (!text.empty()) tele_enqueue(sub, std::move(text));
    }
    // TELEMETRY line (Text) / platform.telemetrySubscription record.
    if (!json_logs()) emit_platform(ext::subscription_line(telemetry, e->name, types));
    emit_record(SysLevel::info, telemetry ? "platform.telemetrySubscription" : "platform.logsSubscription",
                {{"name", e->name}, {"state", "Subscribed"}, {"types", types}});
    return make_response(200, "\"OK\"", version, keep_alive);
  }

  // ---------------------------------------------------------------- extensions

  // Starts every external extension; false when init has already failed.
  bool launch_extensions(const std::map<std::string, std::string>& runtime_env) {
    auto files = ext::extension_files(spec.opt_dir);
    if (files.empty()) return true;
    auto env = ext::extension_environment(runtime_env);
    for (const auto& f : files) {
      auto e = std::make_shared<Extension>();
      e->name = f.filename().string();
      e->external = true;
      exts.push_back(e);
      if (exts.size() > max_extensions) {
        e->state = "LaunchError";
        e->error_type = "TooManyExtensions";
        fail_init_for_extension("Extension.LaunchError", "Extension limit (10) reached");
        return false;
      }
      int fds[2];
      if (!output_pipe(fds)) {
        e->state = "LaunchError";
        e->error_type = "UnknownError";
        fail_init_for_extension("Extension.LaunchError", std::string("pipe: ") + std::strerror(errno));
        return false;
      }
      proc::SpawnOptions o;
      std::filesystem::path seen = opt_root() / "extensions" / f.filename();
      o.argv = {seen.string()};
      o.env = env;
      o.cwd = task_root().string();
      o.output_fd = fds[1];
      auto res = spawn_process(o);
      ::close(fds[1]);
      if (res.pid < 0) {
        ::close(fds[0]);
        e->state = "LaunchError";
        if (!res.sandbox_error.empty()) {
          e->error_type = "UnknownError";
          fail_init_for_extension("Extension.LaunchError", "sluice: cannot set up the sandbox for " + seen.string() +
                                                               ": " + res.sandbox_error);
          return false;
        }
        e->error_type = res.exec_errno == EACCES || res.exec_errno == EPERM ? "PermissionDenied" : "UnknownError";
        fail_init_for_extension("Extension.LaunchError", ext::exec_error(seen, res.exec_errno));
        return false;
      }
      e->pid = res.pid;
      e->out_fd = fds[0];
      e->out = std::make_unique<asio::posix::stream_descriptor>(ex, fds[0]);
      arm_extension_output(e);
      watch_child(ex, e->pid, [w = weak_from_this(), e, child = e->pid](int status, long) {
        proc::reaper_untrack(child);
        if (auto self = w.lock()) self->on_extension_exit(e, status);
      });
    }
    return true;
  }

  void maybe_launch_runtime() {
    if (runtime_launched || state != EnvState::starting) return;
    for (auto& e : exts)
      if (e->external && !e->registered()) return;
    launch_runtime();
  }

  void arm_extension_output(std::shared_ptr<Extension> e) {
    if (!e->out) return;
    e->out->async_wait(asio::posix::stream_descriptor::wait_read,
                       [w = weak_from_this(), e](boost::system::error_code ec) {
                         auto self = w.lock();
                         if (!self || ec || e->out_fd < 0) return;
                         char buf[65536];
                         ssize_t n = ::read(e->out_fd, buf, sizeof buf);
                         if (n > 0) {
                           self->emit_lines(e->partial, std::string_view(buf, static_cast<std::size_t>(n)), false);
                         } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                           self->drain_pipe(e->out_fd, e->partial, false);
                           close_pipe(e->out, e->out_fd);
                           return;
                         }
                         self->arm_extension_output(e);
                       });
  }

  std::shared_ptr<Extension> extension_named(const std::string& name) const {
    for (auto& e : exts)
      if (e->name == name) return e;
    return nullptr;
  }

  // Every registered extension waits in /event/next with nothing left to fetch.
  bool extensions_ready() const {
    for (auto& e : exts)
      if (e->registered() && !e->exited && !e->ready()) return false;
    return true;
  }
  // Every extension registered for INVOKE is back in /event/next.
  bool extensions_done_with_invoke() const {
    for (auto& e : exts)
      if (e->wants_invoke && !e->exited && !e->ready()) return false;
    return true;
  }
  bool has_invoke_extensions() const {
    for (auto& e : exts)
      if (e->wants_invoke) return true;
    return false;
  }

  void queue_invoke_event() {
    if (!cur) return;
    nlohmann::ordered_json ev;
    ev["eventType"] = "INVOKE";
    ev["deadlineMs"] = cur->deadline_ms;
    ev["requestId"] = cur->inv.request_id;
    ev["invokedFunctionArn"] = cur->inv.invoked_arn;
    if (!cur->inv.trace_id.empty()) ev["tracing"] = {{"type", "X-Amzn-Trace-Id"}, {"value", cur->inv.trace_id}};
    std::string body = ev.dump();
    for (auto& e : exts)
      if (e->wants_invoke && !e->exited) e->queue.push_back(body);
  }

  // EXTENSION lines (Text) or platform.extension records (JSON), once, when init ends.
  bool extensions_logged = false;
  void log_extensions() {
    if (extensions_logged || exts.empty()) return;
    extensions_logged = true;
    for (auto& e : exts) {
      if (!json_logs()) {
        emit_platform(ext::extension_line(e->name, e->state, e->events, e->error_type));
        if (!tele_wanted()) continue;
      }
      nlohmann::ordered_json r{{"name", e->name}, {"state", e->state}, {"events", e->events}};
      if (!e->error_type.empty()) r["errorType"] = e->error_type;
      emit_record(SysLevel::info, "platform.extension", std::move(r));
    }
  }

  // Init failed because of an extension (launch error, crash, init error): no runtime started,
  // or the one started is stopped; a waiting invocation fails with the extension's error type.
  void fail_init_for_extension(const std::string& type, const std::string& message) {
    if (state != EnvState::starting) return;
    double ms = std::chrono::duration<double, std::milli>(mono::now() - spawned_at).count();
    kill_now(KillReason::extension);
    drain_output();
    log_init_report(ms, "error", type);
    if (pending) {
      take_pending();
      fail_invocation(type, message);
    }
    ext_shutdown_reason = "failure";
    become_dead("extension failed during init (" + type + ")");
  }

  void on_extension_exit(std::shared_ptr<Extension> e, int status) {
    e->exited = true;
    drain_pipe(e->out_fd, e->partial, false);
    close_pipe(e->out, e->out_fd);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ext_shutdown || state == EnvState::stopping || state == EnvState::dead) {
      if (e->state != "ShutdownFailed") e->state = clean ? "Exited" : "ShutdownFailed";
      maybe_finish_extension_shutdown();
      return;
    }
    std::string how = clean ? "exit code 0" : proc::describe_wait_status(status);
    std::string type = e->fatal.empty() ? "Extension.Crash" : e->fatal;
    if (e->fatal.empty()) e->state = "Exited";
    next_ready.notify();
    switch (state) {
      case EnvState::starting:
        fail_init_for_extension(type, how);
        return;
      case EnvState::running:
      case EnvState::response_sent:  // (the caller keeps the runtime's answer)
        kill_now(KillReason::extension);
        drain_output();
        fail_invocation(type, how);
        break;
      default:
        kill_now(KillReason::extension);
        break;
    }
    ext_shutdown_reason = "failure";
    become_dead("extension " + e->name + " exited (" + how + ")");
  }

  // The environment is going away: extensions registered for SHUTDOWN get the event and have
  // until the deadline (2 s from the start of the shutdown) to exit; the others are killed.
  // Returns whether some are still running (the Runtime API then stays open for them).
  bool shutdown_extensions() {
    bool waiting = false;
    frozen = false;
    tele_flush_all(true);  // what is buffered goes out before the SHUTDOWN events
    auto deadline = shutdown_started + ext_shutdown_limit;
    auto left = deadline - mono::now();
    std::string reason = ext_shutdown_reason.empty() ? (stop_requested ? "spindown" : "failure") : ext_shutdown_reason;
    for (auto& e : exts) {
      if (!e->running()) continue;
      proc::signal_group(e->pid, SIGCONT);
      if (e->wants_shutdown && left > mono::duration::zero()) {
        nlohmann::ordered_json ev;
        ev["eventType"] = "SHUTDOWN";
        ev["deadlineMs"] = epoch_ms() + std::chrono::duration_cast<std::chrono::milliseconds>(left).count();
        ev["shutdownReason"] = reason;
        e->queue.push_back(ev.dump());
        waiting = true;
      } else {
        proc::kill_tree(e->pid);
      }
    }
    if (!waiting) return false;
    ext_shutdown = true;
    ++g_extension_shutdowns;
    next_ready.notify();
    ext_kill_timer.expires_at(deadline);
    ext_kill_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->finish_extension_shutdown();
    });
    return true;
  }

  void maybe_finish_extension_shutdown() {
    if (!ext_shutdown) return;
    for (auto& e : exts)
      if (e->running()) return;
    ext_kill_timer.cancel();
    finish_extension_shutdown();
  }

  void finish_extension_shutdown() {
    if (!ext_shutdown) return;
    ext_shutdown = false;
    --g_extension_shutdowns;
    for (auto& e : exts) {
      if (!e->running()) continue;
      e->state = "ShutdownFailed";
      proc::kill_tree(e->pid);
    }
    boost::system::error_code ignored;
    acceptor.close(ignored);
    for (auto& s : conns) s->close(ignored);
    conns.clear();
    next_ready.notify();
  }

  // Extensions API requests. Every refusal is a 403 with {"errorMessage","errorType"}, as
  // Lambda answers them.
  StrResponse ext_refuse(const std::string& type, const std::string& message, unsigned version, bool keep_alive) {
    return make_response(403, api_error(type, message), version, keep_alive);
  }

  StrResponse ext_register(const std::string& name, const std::string& features, const std::string& body,
                           unsigned version, bool keep_alive) {
    if (name.empty()) return ext_refuse("Extension.InvalidExtensionName", "Empty extension name", version, keep_alive);
    json req;
    try {
      req = json::parse(body);
    } catch (const std::exception& ex_) {
      return ext_refuse("InvalidRequestFormat",
                        body.empty() ? "unexpected end of JSON input" : std::string("invalid JSON: ") + ex_.what(),
                        version, keep_alive);
    }
    std::vector<std::string> events;
    if (req.is_object() && req.contains("events") && !req["events"].is_null()) {
      if (!req["events"].is_array())
        return ext_refuse("InvalidRequestFormat", "events must be a list of event types", version, keep_alive);
      for (auto& ev : req["events"]) {
        std::string name_ = ev.is_string() ? ev.get<std::string>() : ev.dump();
        if (name_ != "INVOKE" && name_ != "SHUTDOWN")
          return ext_refuse("Extension.InvalidEventType", name_ + ": ErrorInvalidEventType", version, keep_alive);
        if (std::find(events.begin(), events.end(), name_) == events.end()) events.push_back(name_);
      }
    }
    if (req.is_object() && req.contains("configurationKeys") && req["configurationKeys"].is_array() &&
        !req["configurationKeys"].empty())
      return ext_refuse("InvalidRequestFormat", "configurationKeys are deprecated; use environment variables instead",
                        version, keep_alive);
    bool shutdown = std::find(events.begin(), events.end(), "SHUTDOWN") != events.end();
    auto e = extension_named(name);
    if (e && e->external) {
      if (e->state != "Started")
        return ext_refuse("Extension.InvalidExtensionState",
                          "State transition from " + e->state + " to Registered failed for extension " + name +
                              ". Error: State transition is not allowed",
                          version, keep_alive);
    } else {
      if (shutdown)
        return ext_refuse("Extension.InvalidEventType", "SHUTDOWN: ShutdownEventNotSupportedForInternalExtension",
                          version, keep_alive);
      if (!registration_open)
        return ext_refuse("Extension.RegistrationClosed", "Extension registration closed already", version, keep_alive);
      if (e)
        return ext_refuse("Extension.InvalidExtensionState", "Extension with this name already registered", version,
                          keep_alive);
      if (exts.size() >= max_extensions)
        return ext_refuse("Extension.TooManyExtensions", "Extension limit (10) reached", version, keep_alive);
      e = std::make_shared<Extension>();
      e->name = name;
      exts.push_back(e);
    }
    e->id = new_uuid();
    e->state = "Registered";
    e->events = events;
    e->wants_invoke = std::find(events.begin(), events.end(), "INVOKE") != events.end();
    e->wants_shutdown = shutdown;
    nlohmann::ordered_json out;
    bool account = false;
    for (const auto& f : split(features, ','))
      if (trim(f) == "accountId") account = true;
    if (account) out["accountId"] = spec.account_id;
    out["functionName"] = spec.function_name;
    out["functionVersion"] = spec.version;
    out["handler"] = spec.handler;
    auto res = make_response(200, out.dump(), version, keep_alive);
    res.set("Lambda-Extension-Identifier", e->id);
    asio::post(ex, [w = weak_from_this()] {
      if (auto self = w.lock()) self->maybe_launch_runtime();
    });
    next_ready.notify();
    return res;
  }

  // The extension a request names by Lambda-Extension-Identifier, or the refusal.
  std::shared_ptr<Extension> ext_for(const std::string& id, std::optional<StrResponse>& refusal, unsigned version,
                                     bool keep_alive, const char* unknown_message = nullptr) {
    if (id.empty()) {
      refusal = ext_refuse("Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header",
                           version, keep_alive);
      return nullptr;
    }
    if (!ext::looks_like_uuid(id)) {
      refusal = ext_refuse("Extension.InvalidExtensionIdentifier", "Invalid Lambda-Extension-Identifier", version,
                           keep_alive);
      return nullptr;
    }
    for (auto& e : exts)
      if (e->id == id) return e;
    refusal = ext_refuse("Extension.UnknownExtensionIdentifier",
                         unknown_message ? std::string(unknown_message) : "Unknown extension " + id, version,
                         keep_alive);
    return nullptr;
  }

  // GET /extension/event/next: waits for the extension's next event. Empty: drop the connection.
  asio::awaitable<std::optional<StrResponse>> ext_next(const std::string& id, unsigned version, bool keep_alive) {
    auto self = shared_from_this();
    std::optional<StrResponse> refusal;
    auto e = ext_for(id, refusal, version, keep_alive);
    if (!e) co_return refusal;
    if (e->state != "Registered" && e->state != "Ready" && e->state != "Running")
      co_return ext_refuse("Extension.InvalidExtensionState",
                           "State transition from " + e->state + " to Ready failed for extension " + id +
                               ". Error: State transition is not allowed",
                           version, keep_alive);
    e->state = "Ready";
    next_ready.notify();
    while (e->queue.empty() && !e->exited && (state != EnvState::dead || ext_shutdown)) co_await next_ready.wait();
    if (e->queue.empty()) co_return std::nullopt;
    std::string body = std::move(e->queue.front());
    e->queue.pop_front();
    e->state = "Running";
    auto res = make_response(200, std::move(body), version, keep_alive);
    res.set("Lambda-Extension-Event-Identifier", new_uuid());
    co_return res;
  }

  // POST /extension/init/error and /extension/exit/error: the error is kept; init (or the
  // invocation) fails when the extension then exits.
  StrResponse ext_error(bool init, const std::string& id, const std::string& type, unsigned version, bool keep_alive) {
    std::optional<StrResponse> refusal;
    auto e = ext_for(id, refusal, version, keep_alive, "Unknown Lambda-Extension-Identifier");
    if (!e) return std::move(*refusal);
    if (type.empty())
      return ext_refuse("Extension.MissingHeader", "Lambda-Extension-Function-Error-Type not found", version, keep_alive);
    const std::string target = init ? "InitError" : "ExitError";
    if (e->state != target) {
      bool allowed = init ? e->state == "Registered"
                          : e->state == "Registered" || e->state == "Ready" || e->state == "Running";
      if (!allowed)
        return ext_refuse("Extension.InvalidExtensionState",
                          "State transition from " + e->state + " to " + (init ? "InitError" : "Exited") +
                              " failed for extension " + id + ". Error: State transition is not allowed",
                          version, keep_alive);
      e->state = target;
      e->error_type = type;
      if (e->fatal.empty()) e->fatal = init ? "Extension.InitError" : "Extension.ExitError";
    }
    return make_response(202, R"({"status":"OK"})", version, keep_alive);
  }

  struct Route {
    enum Kind {
      next,
      response,
      error,
      init_error,
      ext_register,
      ext_next,
      ext_init_error,
      ext_exit_error,
      telemetry,
      logs,
      unknown
    } kind = unknown;
    std::string request_id;
  };

  static Route route(std::string_view method, std::string_view target) {
    Route r;
    auto q = target.find('?');
    if (q != std::string_view::npos) target = target.substr(0, q);
    constexpr std::string_view base = "/2018-06-01/runtime/";
    if (!starts_with(target, base)) {
      constexpr std::string_view ext = "/2020-01-01/extension/";
      if (starts_with(target, ext)) {
        auto what = target.substr(ext.size());
        if (what == "register" && method == "POST") r.kind = Route::ext_register;
        else if (what == "event/next" && method == "GET") r.kind = Route::ext_next;
        else if (what == "init/error" && method == "POST") r.kind = Route::ext_init_error;
        else if (what == "exit/error" && method == "POST") r.kind = Route::ext_exit_error;
      } else if (target == "/2022-07-01/telemetry" && method == "PUT") {
        r.kind = Route::telemetry;
      } else if (target == "/2020-08-15/logs" && (method == "PUT" || method == "POST")) {
        r.kind = Route::logs;
      }
      return r;
    }
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
    while (self->api_open() && sock->is_open()) {
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
          case Route::ext_register: {
            auto& h = parser.get();
            res = self->ext_register(std::string(h["Lambda-Extension-Name"]),
                                     std::string(h["Lambda-Extension-Accept-Feature"]), body, version, keep_alive);
            break;
          }
          case Route::ext_next: {
            std::string id(parser.get()["Lambda-Extension-Identifier"]);
            auto answer = co_await self->ext_next(id, version, keep_alive);
            if (!answer) co_return;
            res = std::move(*answer);
            break;
          }
          case Route::ext_init_error:
          case Route::ext_exit_error: {
            auto& h = parser.get();
            res = self->ext_error(rt.kind == Route::ext_init_error, std::string(h["Lambda-Extension-Identifier"]),
                                  std::string(h["Lambda-Extension-Function-Error-Type"]), version, keep_alive);
            break;
          }
          case Route::telemetry:
          case Route::logs: {
            std::string id(parser.get()["Lambda-Extension-Identifier"]);
            res = self->subscribe(rt.kind == Route::telemetry, id, body, version, keep_alive);
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
    // The function's timeout and memory also bound the extensions' work on the invocation.
    if (!has_invoke_extensions()) {
      timeout_timer.cancel();
      memory_timer.cancel();
    }
    next_ready.notify();
  }

  void stream_finished() {
    // A streamed response is done when its stream is: that is where Duration ends (as on AWS,
    // where a streaming invocation lasts until the function closes its stream).
    if (cur && cur->result_sent) {
      cur->responded_at = mono::now();
      cur->stream_done = true;
      if (cur->stream) cur->produced_bytes = cur->stream->bytes();
    }
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
          if (!exts.empty()) {
            // Registration closes at the runtime's first /next; init ends once every
            // registered extension waits in /event/next too.
            registration_open = false;
            while (state == EnvState::starting && !extensions_ready()) co_await next_ready.wait();
            if (state != EnvState::starting || init_error_posted) co_return false;
          }
          init_done = true;  // subscriptions close; the init events kept for them go
          init_items.clear();
          init_items.shrink_to_fit();
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
          if (!exts.empty()) {
            // The invocation ends when the extensions registered for INVOKE are done too.
            if (cur) cur->runtime_done_at = mono::now();
            while (state == EnvState::response_sent && !extensions_done_with_invoke()) co_await next_ready.wait();
            if (state != EnvState::response_sent) co_return false;
          }
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
    auto deadline = cur->deadline_ms ? cur->deadline_ms : epoch_ms() + static_cast<std::int64_t>(spec.timeout_s) * 1000;
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
bool Environment::waiting_for_extensions() const {
  return impl_->state == EnvState::response_sent && impl_->cur && impl_->cur->runtime_done_at != mono::time_point{};
}

std::size_t extensions_shutting_down() { return g_extension_shutdowns; }

std::string platform_error(const std::string& type, const std::string& message) {
  std::string out = "{\"errorType\":";
  out += json(type).dump();
  out += ",\"errorMessage\":";
  out += json(message).dump();
  out += '}';
  return out;
}

std::string runtime_version_arn(const std::string& region, const std::string& runtime_id,
                                const std::filesystem::path& interpreter) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(name_hash_64(runtime_id + interpreter.string())));
  std::string hash = std::string(buf) + buf + buf + buf;
  return "arn:aws:lambda:" + region + "::runtime:" + hash;
}

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
