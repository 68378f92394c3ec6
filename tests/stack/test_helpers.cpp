// The small public helpers: runtimes, reserved names, stable ids.
#include <set>

#include "stack_test_support.hpp"

using namespace stack_test;

TEST_CASE("parse_runtime knows the supported runtimes", "[stack][helpers]") {
  for (int minor = 9; minor <= 14; ++minor) {
    auto r = parse_runtime("python3." + std::to_string(minor));
    REQUIRE(r);
    CHECK(r->family == RuntimeFamily::python);
    CHECK(r->major == 3);
    CHECK(r->minor == minor);
    CHECK(r->id == "python3." + std::to_string(minor));
  }
  for (int major : {18, 20, 22, 24}) {
    auto r = parse_runtime("nodejs" + std::to_string(major) + ".x");
    REQUIRE(r);
    CHECK(r->family == RuntimeFamily::node);
    CHECK(r->major == major);
    CHECK(r->minor == 0);
  }
  for (const char* id : {"provided", "provided.al2", "provided.al2023"}) {
    auto r = parse_runtime(id);
    REQUIRE(r);
    CHECK(r->family == RuntimeFamily::provided);
    CHECK(r->major == 0);
    CHECK(r->minor == 0);
    CHECK(r->id == id);
  }
  for (const char* id : {"python3.8", "python3.15", "python3", "nodejs16.x", "nodejs20", "java21", "go1.x",
                         "provided.al2024", "Python3.12", "", " python3.12"})
    CHECK_FALSE(parse_runtime(id));
}

TEST_CASE("reserved_environment_names is the list AWS documents", "[stack][helpers]") {
  const auto& names = reserved_environment_names();
  std::set<std::string> set(names.begin(), names.end());
  CHECK(set.size() == names.size());
  CHECK(set == std::set<std::string>{"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION",
                                     "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                                     "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
                                     "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
                                     "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                     "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"});
  CHECK_FALSE(set.count("TZ"));  // settable on AWS
}

TEST_CASE("stable_id is deterministic, lower-case alphanumeric, any length", "[stack][helpers]") {
  std::string a = stable_id("watchlist/store");
  CHECK(a.size() == 10);
  CHECK(a == stable_id("watchlist/store"));
  CHECK(a != stable_id("watchlist/store2"));
  CHECK(stable_id("x", 1).size() == 1);
  CHECK(stable_id("x", 0).empty());
  std::string long_id = stable_id("seed", 200);
  CHECK(long_id.size() == 200);
  CHECK(long_id.substr(0, 10) == stable_id("seed", 10));  // a longer id extends the shorter one
  for (char c : long_id) CHECK(((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')));
  // Spread: 1000 seeds give 1000 different ids.
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(stable_id("api/" + std::to_string(i)));
  CHECK(ids.size() == 1000);
}
