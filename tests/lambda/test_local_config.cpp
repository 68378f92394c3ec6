// sluice/lambda/local_config.hpp: SAM CLI's env-vars file and --debug-args.
#include "sluice/lambda/local_config.hpp"

#include <catch2/catch.hpp>

using namespace sluice::lambda;

TEST_CASE("env-vars: Parameters for all, a function's own entry wins, only declared variables", "[local_config]") {
  auto o = parse_env_overrides(R"({"Parameters": {"STAGE": "local", "N": 5, "ON": true},
                                   "fn": {"STAGE": "mine", "EXTRA": "x"}})", "env.json");
  CHECK(o.all.at("N") == "5");
  CHECK(o.all.at("ON") == "true");
  std::map<std::string, std::string> declared{{"STAGE", "prod"}, {"N", "1"}, {"KEEP", "k"}};
  auto fn = apply_env_overrides(o, "fn", declared);
  CHECK(fn == std::map<std::string, std::string>{{"STAGE", "mine"}, {"N", "5"}, {"KEEP", "k"}});
  auto other = apply_env_overrides(o, "other", declared);
  CHECK(other.at("STAGE") == "local");
  CHECK(other.count("EXTRA") == 0);
}

TEST_CASE("env-vars: errors name the file, the place and the key", "[local_config]") {
  CHECK_THROWS_WITH(parse_env_overrides("{\"fn\": {\"A\": \"x\",}}", "env.json"),
                    Catch::StartsWith("env.json: not valid JSON: parse error at line 1, column"));
  CHECK_THROWS_WITH(parse_env_overrides("[1]", "env.json"), Catch::Contains("must be a JSON object") &&
                                                               Catch::EndsWith("not array"));
  CHECK_THROWS_WITH(parse_env_overrides(R"({"fn": "x"})", "env.json"),
                    "env.json: \"fn\" must be an object of variable names to values, not string");
  CHECK_THROWS_WITH(parse_env_overrides(R"({"fn": {"A": null}})", "env.json"),
                    "env.json: fn.A must be a string, a number or a boolean, not null");
  CHECK(parse_env_overrides("{}", "env.json").empty());
}

TEST_CASE("--debug-args splits on blanks, quotes keep them", "[local_config]") {
  CHECK(split_args("-X dev") == std::vector<std::string>{"-X", "dev"});
  CHECK(split_args("  dlv exec --listen='127.0.0.1:2345' -- ") ==
        std::vector<std::string>{"dlv", "exec", "--listen=127.0.0.1:2345", "--"});
  CHECK(split_args(R"(--title "a b" '')") == std::vector<std::string>{"--title", "a b", ""});
  CHECK(split_args("").empty());
  CHECK_THROWS_WITH(split_args("'open"), "--debug-args has an unclosed ' quote: 'open");
}
