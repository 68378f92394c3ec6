// runtime-api/src/extensions.hpp: Telemetry API subscriptions as Lambda validates them, the
// records each kind of subscriber gets, and what an extension process sees.
#include "extensions.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace sluice::runtime::ext;

namespace {

std::optional<SubscriptionRequest> parse(bool telemetry, const std::string& body, std::string& problems) {
  problems.clear();
  return parse_subscription(telemetry, body, problems);
}

}  // namespace

TEST_CASE("a Telemetry API subscription takes AWS's buffering defaults", "[extensions]") {
  std::string problems;
  auto s = parse(true, R"({"schemaVersion":"2022-12-13","types":["platform","function"],
    "destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080/lambda_logs"}})", problems);
  REQUIRE(s);
  CHECK(problems.empty());
  CHECK(s->max_items == 10000);
  CHECK(s->max_bytes == 262144);
  CHECK(s->timeout == std::chrono::milliseconds(1000));
  CHECK(s->port == 8080);
  CHECK(s->path == "/lambda_logs");
  CHECK(s->platform);
  CHECK(s->function);
  CHECK_FALSE(s->extension);
  CHECK(s->types == std::vector<std::string>{"platform", "function"});
  CHECK_FALSE(s->logs_api);
}

TEST_CASE("every problem of a subscription is reported at once", "[extensions]") {
  std::string problems;
  auto s = parse(true, R"({"schemaVersion":"2099-01-01","types":[],"buffering":{"maxItems":5,"maxBytes":262144,"timeoutMs":30001},
    "destination":{"protocol":"HTTP","URI":"http://localhost/x"}})", problems);
  CHECK_FALSE(s);
  CHECK(problems ==
        "schemaVersion 2099-01-01 is not one of 2022-07-01, 2022-12-13, 2025-01-29; types should not be empty; "
        "buffering.maxItems must be an integer from 1000 to 10000; buffering.timeoutMs must be an integer from 25 "
        "to 30000; destination.URI host must be sandbox.localdomain (found localhost); URI port is not provided");
}

TEST_CASE("subscription destinations", "[extensions]") {
  std::string problems;
  auto body = [](const std::string& dest) {
    return R"({"schemaVersion":"2022-07-01","types":["platform"],"destination":)" + dest + "}";
  };
  auto s = parse(true, body(R"({"protocol":"HTTP","URI":"http://sandbox:4243"})"), problems);
  REQUIRE(s);
  CHECK(s->port == 4243);
  CHECK(s->path == "/");
  CHECK_FALSE(parse(true, body(R"({"protocol":"TCP","port":4243})"), problems));
  CHECK(problems == "destination.protocol TCP is not supported by sluice (use HTTP)");
  CHECK_FALSE(parse(true, body(R"({"protocol":"HTTP","URI":"https://sandbox.localdomain:4243"})"), problems));
  CHECK(problems == "destination.URI must be an http:// URI (found \"https://sandbox.localdomain:4243\")");
  CHECK_FALSE(parse(true, body(R"({"protocol":"HTTP","URI":"http://sandbox.localdomain:70000"})"), problems));
  CHECK(problems == "destination.URI port 70000 is not a valid port");
  CHECK_FALSE(parse(true, R"({"schemaVersion":"2022-07-01","types":["platform","logs"]})", problems));
  CHECK(problems == "types: unknown type logs (allowed: platform, function, extension); destination is required");
  CHECK_FALSE(parse(true, "not json", problems));
  CHECK(problems == "the request body is not a JSON object");
}

TEST_CASE("the Logs API's schema version is optional", "[extensions]") {
  std::string problems;
  auto s = parse(false, R"({"types":["function"],"destination":{"protocol":"HTTP","URI":"http://sandbox:9999"}})",
                 problems);
  REQUIRE(s);
  CHECK(s->schema == "2020-08-15");
  CHECK(s->logs_api);
  CHECK_FALSE(parse(true, R"({"types":["function"],"destination":{"protocol":"HTTP","URI":"http://sandbox:9999"}})",
                    problems));
  CHECK(problems == "schemaVersion is required (one of 2022-07-01, 2022-12-13, 2025-01-29)");
}

TEST_CASE("records as each subscriber gets them", "[extensions]") {
  SubscriptionRequest tele;
  tele.schema = "2022-12-13";
  tele.platform = tele.function = true;
  SubscriptionRequest logs = tele;
  logs.logs_api = true;
  logs.schema = "2020-08-15";

  TeleItem report{"2026-11-21T10:00:00.000Z", "platform.report",
                  {{"requestId", "r1"}, {"metrics", {{"durationMs", 1.5}}}, {"status", "success"}}, ""};
  CHECK(render_record(tele, report, false) ==
        R"({"time":"2026-11-21T10:00:00.000Z","type":"platform.report","record":{"requestId":"r1","metrics":{"durationMs":1.5},"status":"success"}})");
  CHECK(render_record(logs, report, false) ==
        R"({"time":"2026-11-21T10:00:00.000Z","type":"platform.report","record":{"requestId":"r1","metrics":{"durationMs":1.5}}})");

  TeleItem init{"t", "platform.initStart", {{"phase", "init"}}, ""};
  CHECK(!render_record(tele, init, false).empty());
  CHECK(render_record(logs, init, false).empty());  // no init events in the Logs API
  TeleItem end{"t", "platform.end", {{"requestId", "r1"}}, ""};
  CHECK(render_record(tele, end, false).empty());
  CHECK(render_record(logs, end, false) == R"({"time":"t","type":"platform.end","record":{"requestId":"r1"}})");
  TeleItem done{"t", "platform.runtimeDone", {{"requestId", "r1"}, {"status", "success"}}, ""};
  CHECK(render_record(logs, done, false).empty());
  logs.schema = "2021-03-18";
  CHECK(render_record(logs, done, false) ==
        R"({"time":"t","type":"platform.runtimeDone","record":{"requestId":"r1","status":"success"}})");

  TeleItem line{"t", "function", nullptr, R"({"level":"INFO","message":"hi"})"};
  CHECK(render_record(tele, line, true) == R"({"time":"t","type":"function","record":{"level":"INFO","message":"hi"}})");
  CHECK(render_record(tele, line, false) ==
        R"({"time":"t","type":"function","record":"{\"level\":\"INFO\",\"message\":\"hi\"}"})");
  tele.schema = "2022-07-01";  // before 2022-12-13 a line is always a string
  CHECK(render_record(tele, line, true) ==
        R"({"time":"t","type":"function","record":"{\"level\":\"INFO\",\"message\":\"hi\"}"})");
  TeleItem ext_line{"t", "extension", nullptr, "started"};
  CHECK(render_record(tele, ext_line, true).empty());  // not subscribed to extension records
}

TEST_CASE("what an extension process sees", "[extensions]") {
  std::map<std::string, std::string> runtime{{"_HANDLER", "h.handler"},
                                             {"LAMBDA_TASK_ROOT", "/var/task"},
                                             {"LAMBDA_RUNTIME_DIR", "/var/runtime"},
                                             {"AWS_EXECUTION_ENV", "AWS_Lambda_python3.12"},
                                             {"AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/f"},
                                             {"AWS_LAMBDA_LOG_STREAM_NAME", "s"},
                                             {"AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR"},
                                             {"AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000"},
                                             {"_AWS_XRAY_DAEMON_PORT", "2000"},
                                             {"AWS_LAMBDA_FUNCTION_NAME", "f"},
                                             {"AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"},
                                             {"MY_VAR", "1"},
                                             {"PATH", "/usr/bin"}};
  CHECK(extension_environment(runtime) == std::vector<std::string>{"AWS_LAMBDA_FUNCTION_NAME=f",
                                                                   "AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001",
                                                                   "MY_VAR=1", "PATH=/usr/bin"});
  CHECK(exec_error("/opt/extensions/x", EACCES) == "fork/exec /opt/extensions/x: permission denied");
  CHECK(extension_line("ext", "Ready", {"INVOKE", "SHUTDOWN"}, "") ==
        "EXTENSION\tName: ext\tState: Ready\tEvents: [INVOKE, SHUTDOWN]");
  CHECK(extension_line("ext", "LaunchError", {}, "PermissionDenied") ==
        "EXTENSION\tName: ext\tState: LaunchError\tEvents: []\tError Type: PermissionDenied");
  CHECK(subscription_line(true, "ext", {"platform", "function"}) ==
        "TELEMETRY\tName: ext\tState: Subscribed\tTypes: [Platform, Function]");
  CHECK(looks_like_uuid("0b5bb8b2-7a52-4d3e-9f1a-2c3d4e5f6a7b"));
  CHECK_FALSE(looks_like_uuid("0b5bb8b2-7a52-4d3e-9f1a-2c3d4e5f6a7"));
  CHECK_FALSE(looks_like_uuid("0b5bb8b2x7a52-4d3e-9f1a-2c3d4e5f6a7b"));
}

TEST_CASE("extension files are a layer's extensions/ folder, by name", "[extensions]") {
  namespace fs = std::filesystem;
  fs::path opt = fs::temp_directory_path() / ("sluice-ext-test-" + std::to_string(::getpid()));
  fs::remove_all(opt);
  CHECK(extension_files(opt).empty());
  fs::create_directories(opt / "extensions" / "a-folder");
  for (const char* n : {"b-ext", "a-ext"}) std::ofstream(opt / "extensions" / n) << "#!/bin/sh\n";
  auto files = extension_files(opt);
  REQUIRE(files.size() == 2);
  CHECK(files[0].filename() == "a-ext");
  CHECK(files[1].filename() == "b-ext");
  CHECK(extension_files({}).empty());
  fs::remove_all(opt);
}
