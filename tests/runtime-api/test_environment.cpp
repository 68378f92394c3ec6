// sluice/runtime/environment.hpp: a real custom runtime (a shell script using
// curl against AWS_LAMBDA_RUNTIME_API) driven through a cold and a warm invocation.
#include "sluice/runtime/environment.hpp"

#include <catch2/catch.hpp>

#include "sluice/common/process.hpp"
#include "../test_support.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <signal.h>

#include <cerrno>
#include <cmath>
#include <optional>

using namespace sluice::runtime;
namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

class CaptureSink : public LogSink {
 public:
  struct Line {
    std::string request_id, text;
    bool platform;
  };
  void write(const LogLine& l) override { lines.push_back({std::string(l.request_id), std::string(l.text), l.platform}); }
  std::vector<Line> lines;

  const Line* find(std::string_view prefix) const {
    for (const auto& l : lines)
      if (l.text.rfind(prefix, 0) == 0) return &l;
    return nullptr;
  }
  std::size_t count(std::string_view prefix) const {
    std::size_t n = 0;
    for (const auto& l : lines) n += l.text.rfind(prefix, 0) == 0;
    return n;
  }
  std::string dump() const {
    std::string s;
    for (const auto& l : lines) s += (l.platform ? "P " : "F ") + l.request_id + " | " + l.text + "\n";
    return s;
  }
};

// A custom runtime in POSIX sh: wraps each event as {"echo": EVENT, "n": N}.
const char* bootstrap_script = R"SH(#!/bin/sh
set -eu
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
headers="$LAMBDA_TASK_ROOT/.headers"
echo "init in $LAMBDA_TASK_ROOT for $_HANDLER"
n=0
while true; do
  event="$(curl -sS -D "$headers" "$api/invocation/next")"
  request_id="$(sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *\([^[:space:]]*\).*/\1/p' "$headers")"
  n=$((n + 1))
  echo "handling $request_id"
  curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"echo\":$event,\"n\":$n}" "$api/invocation/$request_id/response"
done
)SH";

struct Observed {
  std::optional<InvocationResult> result;
  std::optional<InvocationReport> report;
};

}  // namespace

TEST_CASE("a custom runtime serves a cold and a warm invocation", "[environment]") {
  test_support::TempDir dir;
  test_support::write_file(dir / "bootstrap", bootstrap_script);
  fs::permissions(dir / "bootstrap", fs::perms::owner_all, fs::perm_options::add);

  asio::io_context ioc;
  install_child_watch(ioc.get_executor());

  EnvironmentSpec spec;
  spec.function_name = "echo";
  spec.kind = RuntimeKind::provided;
  spec.runtime_id = "provided.al2023";
  spec.runtime_version = "provided:al2023.v100";
  spec.handler = "echo.handler";
  spec.code_dir = dir.path();
  spec.bootstrap_dir = default_bootstrap_dir();
  spec.memory_mb = 128;
  spec.timeout_s = 5;
  spec.init_timeout = 5000ms;
  spec.shutdown_grace = 300ms;

  auto logs = std::make_shared<CaptureSink>();
  std::vector<Observed> outcomes(2);
  std::optional<std::string> death;
  int idles = 0;
  std::unique_ptr<Environment> env;

  auto invoke = [&](int i, std::string payload) {
    Invocation inv;
    inv.request_id = "req-" + std::to_string(i + 1);
    inv.payload = std::move(payload);
    inv.invoked_arn = "arn:aws:lambda:us-east-1:123456789012:function:echo";
    env->invoke(
        std::move(inv), [&, i](InvocationResult r) { outcomes[i].result = std::move(r); },
        [&, i](const InvocationReport& rep) { outcomes[i].report = rep; });
  };

  EnvironmentEvents events;
  events.on_idle = [&] {
    // Called once the runtime is back in /next after each invocation (the
    // first invocation was handed over while starting: no idle before it).
    ++idles;
    asio::post(ioc, [&] {
      if (idles == 1) invoke(1, R"("warm")");
      else env->stop("test finished");
    });
  };
  events.on_dead = [&](const std::string& reason) {
    death = reason;
    ioc.stop();
  };
  env = std::make_unique<Environment>(ioc.get_executor(), spec, logs, events);
  env->start();
  CHECK(env->state() == EnvState::starting);
  invoke(0, R"({"x": [1, 2]})");  // a cold start

  ioc.run_for(8s);
  INFO(logs->dump());
  REQUIRE(death);
  CHECK(*death == "test finished");
  CHECK(env->state() == EnvState::dead);

  // Results.
  REQUIRE(outcomes[0].result);
  CHECK(outcomes[0].result->outcome == sluice::runtime::Outcome::success);
  CHECK_FALSE(outcomes[0].result->function_error);
  CHECK(nlohmann::json::parse(outcomes[0].result->payload) ==
        nlohmann::json::parse(R"({"echo": {"x": [1, 2]}, "n": 1})"));
  CHECK(outcomes[0].result->content_type == "application/json");
  REQUIRE(outcomes[1].result);
  CHECK(outcomes[1].result->outcome == sluice::runtime::Outcome::success);
  CHECK(nlohmann::json::parse(outcomes[1].result->payload) == nlohmann::json::parse(R"({"echo": "warm", "n": 2})"));

  // Reports: the cold one carries the init duration, the warm one does not.
  REQUIRE(outcomes[0].report);
  const auto& cold = *outcomes[0].report;
  CHECK(cold.request_id == "req-1");
  CHECK(cold.duration_ms > 0);
  CHECK(cold.duration_ms < 5000);
  // The init phase is billed too (AWS, since August 2025).
  REQUIRE(cold.init_duration_ms);
  CHECK(cold.billed_ms == static_cast<std::int64_t>(std::ceil(cold.duration_ms + *cold.init_duration_ms)));
  CHECK(cold.billed_ms >= 1);
  CHECK(cold.memory_size_mb == 128);
  CHECK(cold.max_memory_used_mb > 0);
  CHECK(cold.max_memory_used_mb <= 128);
  REQUIRE(cold.init_duration_ms);
  CHECK(*cold.init_duration_ms > 0);
  CHECK(*cold.init_duration_ms < 5000);
  CHECK(cold.status.empty());
  CHECK(cold.error_type.empty());
  CHECK(cold.log_tail.find("handling req-1") != std::string::npos);

  REQUIRE(outcomes[1].report);
  const auto& warm = *outcomes[1].report;
  CHECK(warm.request_id == "req-2");
  CHECK_FALSE(warm.init_duration_ms);
  CHECK(warm.billed_ms == static_cast<std::int64_t>(std::ceil(warm.duration_ms)));
  CHECK(warm.memory_size_mb == 128);
  CHECK(warm.log_tail.find("handling req-2") != std::string::npos);
  CHECK(warm.log_tail.find("handling req-1") == std::string::npos);

  // The log lines, in AWS's shapes.
  auto* init = logs->find("INIT_START Runtime Version: provided:al2023.v100\tRuntime Version ARN: ");
  CHECK(init);
  auto* init_out = logs->find("init in " + dir.path().string() + " for echo.handler");
  REQUIRE(init_out);
  CHECK_FALSE(init_out->platform);
  CHECK(init_out->request_id.empty());  // printed during init, outside any invocation
  auto* start = logs->find("START RequestId: req-1 Version: $LATEST");
  REQUIRE(start);
  CHECK(start->platform);
  auto* handled = logs->find("handling req-1");
  REQUIRE(handled);
  CHECK(handled->request_id == "req-1");
  CHECK(logs->find("END RequestId: req-1"));
  auto* report = logs->find("REPORT RequestId: req-1\tDuration: ");
  REQUIRE(report);
  CHECK(report->text.find("\tMemory Size: 128 MB\tMax Memory Used: ") != std::string::npos);
  CHECK(report->text.find("\tInit Duration: ") != std::string::npos);
  auto* report2 = logs->find("REPORT RequestId: req-2\tDuration: ");
  REQUIRE(report2);
  CHECK(report2->text.find("Init Duration") == std::string::npos);
  CHECK(logs->count("START RequestId: ") == 2);

  // The process is gone.
  int pid = env->pid();
  REQUIRE(pid > 0);
  CHECK((::kill(pid, 0) != 0 && errno == ESRCH));
}

TEST_CASE("a runtime that exits during init fails the pending invocation", "[environment]") {
  test_support::TempDir dir;
  test_support::write_file(dir / "bootstrap", "#!/bin/sh\necho 'cannot start' >&2\nexit 3\n");
  fs::permissions(dir / "bootstrap", fs::perms::owner_all, fs::perm_options::add);
  asio::io_context ioc;
  install_child_watch(ioc.get_executor());

  EnvironmentSpec spec;
  spec.function_name = "broken";
  spec.kind = RuntimeKind::provided;
  spec.runtime_id = "provided.al2023";
  spec.code_dir = dir.path();
  spec.bootstrap_dir = default_bootstrap_dir();

  auto logs = std::make_shared<CaptureSink>();
  std::optional<InvocationResult> result;
  std::optional<InvocationReport> report;
  std::optional<std::string> death;
  EnvironmentEvents events;
  events.on_dead = [&](const std::string& reason) {
    death = reason;
    ioc.stop();
  };
  Environment env(ioc.get_executor(), spec, logs, events);
  env.start();
  Invocation inv;
  inv.request_id = "req-x";
  inv.payload = "{}";
  env.invoke(
      inv, [&](InvocationResult r) { result = std::move(r); }, [&](const InvocationReport& r) { report = r; });
  ioc.run_for(5s);
  INFO(logs->dump());
  REQUIRE(death);
  CHECK(env.state() == EnvState::dead);
  REQUIRE(result);
  CHECK(result->outcome == sluice::runtime::Outcome::exit_error);
  CHECK(result->function_error);
  CHECK(result->error_type == "Runtime.ExitError");
  auto body = nlohmann::json::parse(result->payload);
  CHECK(body == nlohmann::json{{"errorType", "Runtime.ExitError"},
                               {"errorMessage", "RequestId: req-x Error: Runtime exited with error: exit status 3"}});
  REQUIRE(report);
  CHECK(report->status == "error");
  CHECK(report->error_type == "Runtime.ExitError");
  CHECK(logs->find("cannot start"));
  auto* init_report = logs->find("INIT_REPORT Init Duration: ");
  REQUIRE(init_report);
  CHECK(init_report->text.find("\tPhase: init\tStatus: error\tError Type: Runtime.ExitError") != std::string::npos);
  // The init output comes before the invocation's START.
  std::size_t out_at = 0, start_at = 0;
  for (std::size_t i = 0; i < logs->lines.size(); ++i) {
    if (logs->lines[i].text == "cannot start") out_at = i;
    if (logs->lines[i].text.rfind("START RequestId: req-x", 0) == 0) start_at = i;
  }
  CHECK(out_at < start_at);
}
