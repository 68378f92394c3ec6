// Names, ARNs, stage-variable substitution and lock holders of deploy: pure functions.
#include "naming.hpp"
#include "state.hpp"

#include <catch2/catch.hpp>

using namespace sluice::deploy;

TEST_CASE("resource names follow the documented scheme") {
  CHECK(bucket_name("watchlist", "123456789012", "eu-west-3") == "sluice-watchlist-123456789012-eu-west-3");
  CHECK(bucket_name("My_Stack", "1", "us-east-1") == "sluice-my-stack-1-us-east-1");
  CHECK(bucket_name(std::string(80, 'a'), "123456789012", "us-east-1").size() <= 63);
  CHECK(function_name("watchlist", "movies-list") == "watchlist-movies-list");
  CHECK(function_arn("eu-west-3", "123456789012", "w-f") == "arn:aws:lambda:eu-west-3:123456789012:function:w-f");
  CHECK(function_arn("eu-west-3", "1", "w-f", "${stageVariables.env}") ==
        "arn:aws:lambda:eu-west-3:1:function:w-f:${stageVariables.env}");
  CHECK(invocation_uri("eu-west-3", "arn:aws:lambda:eu-west-3:1:function:f:live") ==
        "arn:aws:apigateway:eu-west-3:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-3:1:function:f:live/invocations");
}

TEST_CASE("an invocation URI gives back the function and qualifier it invokes") {
  CHECK(invoked_target(invocation_uri("eu-west-3", function_arn("eu-west-3", "1", "w-f"))) == "w-f");
  CHECK(invoked_target(invocation_uri("eu-west-3", function_arn("eu-west-3", "1", "w-f", "live"))) == "w-f:live");
  CHECK(invoked_target(invocation_uri("eu-west-3", function_arn("eu-west-3", "1", "w-f", "${stageVariables.alias}"))) ==
        "w-f:${stageVariables.alias}");
  CHECK(invoked_target("") == "");  // a JWT authorizer
  CHECK(invoked_target("arn:aws:apigateway:eu-west-3:lambda:path/2015-03-31/functions/x/invocations") == "");
  CHECK(invoked_target("arn:aws:lambda:eu-west-3:1:function:w-f/invocations/more") == "");
}

TEST_CASE("stage variables are substituted, and a missing one is reported") {
  std::map<std::string, std::string> vars = {{"env", "sandbox"}, {"fn", "list"}};
  CHECK(substitute_stage_variables("${stageVariables.env}", vars) == "sandbox");
  CHECK(substitute_stage_variables("movies-${stageVariables.fn}-${stageVariables.env}", vars) == "movies-list-sandbox");
  CHECK(substitute_stage_variables("plain", vars) == "plain");
  CHECK_FALSE(substitute_stage_variables("${stageVariables.nope}", vars).has_value());
}

TEST_CASE("statement ids keep only what Lambda allows") {
  CHECK(statement_id("sluice-abc123-api-sandbox") == "sluice-abc123-api-sandbox");
  CHECK(statement_id("sluice-abc-auth-x:y/$z") == "sluice-abc-auth-x-y--z");
  CHECK(statement_id(std::string(150, 'a')).size() == 100);
}

TEST_CASE("stage URLs: AWS's execute-api host, or moto's form under the endpoint") {
  CHECK(stage_url("abc", "eu-west-3", "prod", std::nullopt, false) == "https://abc.execute-api.eu-west-3.amazonaws.com/prod");
  CHECK(stage_url("abc", "eu-west-3", "$default", std::nullopt, true) == "https://abc.execute-api.eu-west-3.amazonaws.com");
  CHECK(stage_url("abc", "eu-west-3", "dev", std::string("http://127.0.0.1:5000/"), false) ==
        "http://127.0.0.1:5000/restapis/abc/dev/_user_request_");
}

TEST_CASE("state keys and lock holders") {
  CHECK(state_current_key("sandbox") == "state/sandbox/current.json");
  CHECK(state_history_key("sandbox", "20261121T080000000Z") == "state/sandbox/history/20261121T080000000Z.json");
  CHECK(state_lock_key("prod") == "state/prod/lock");
  CHECK(lock_holder(R"({"holder":"ci@runner pid 42","since":"2026-11-21T08:00:00.000Z"})") ==
        "ci@runner pid 42 since 2026-11-21T08:00:00.000Z");
  CHECK(lock_holder("garbage") == "an unknown holder (unreadable lock object)");
  auto stamp = compact_timestamp();
  CHECK(stamp.size() == 19);  // 20261121T080000123Z
  CHECK(stamp.back() == 'Z');
}

TEST_CASE("schedule rules: names within EventBridge's limits, target ids, qualifiers per stage") {
  using namespace sluice::deploy;
  CHECK(rule_name("watchlist", "sandbox", "refresh-cache") == "watchlist-sandbox-refresh-cache");
  std::string long_schedule(60, 'x');
  auto r = rule_name("watchlist", "production", long_schedule);
  CHECK(r.size() == 64);
  CHECK(r.substr(0, 55) == ("watchlist-production-" + long_schedule).substr(0, 55));
  CHECK(r[55] == '-');
  CHECK(valid_rule_chars(r));
  CHECK(r != rule_name("watchlist", "production", long_schedule + "y"));
  CHECK(r.rfind(rule_prefix("watchlist", "production"), 0) == 0);
  CHECK(rule_prefix("watchlist", "sandbox") == "watchlist-sandbox-");
  CHECK(rule_prefix(std::string(60, 'a'), "s").size() == 55);

  CHECK(schedule_target_id("watchlist", "sandbox") == "sluice.watchlist.sandbox");
  auto id = schedule_target_id(std::string(60, 'a'), "sandbox");
  CHECK(id.size() == 39);
  CHECK(valid_rule_chars(id));
  // '.' separates: stack "a" stage "b-c" and stack "a-b" stage "c" differ.
  CHECK(schedule_target_id("a", "b-c") != schedule_target_id("a-b", "c"));

  CHECK(schedule_qualifier("", "staging") == "staging");
  CHECK(schedule_qualifier("sandbox", "staging") == "staging");
  CHECK(schedule_qualifier("3", "staging") == "3");
  CHECK(schedule_qualifier("$LATEST", "staging") == "");
  CHECK_FALSE(valid_rule_chars("a b"));
  CHECK_FALSE(valid_rule_chars(""));
}

TEST_CASE("a stage must be a Lambda alias name") {
  CHECK(valid_alias_name("sandbox"));
  CHECK(valid_alias_name("prod_2-eu"));
  CHECK(valid_alias_name("v1"));
  CHECK(valid_alias_name(std::string(128, 'a')));
  CHECK_FALSE(valid_alias_name(""));
  CHECK_FALSE(valid_alias_name("42"));  // a version number
  CHECK_FALSE(valid_alias_name("prod.eu"));
  CHECK_FALSE(valid_alias_name("my stage"));
  CHECK_FALSE(valid_alias_name("$default"));
  CHECK_FALSE(valid_alias_name(std::string(129, 'a')));
}

TEST_CASE("a target's $LATEST is the unqualified function") {
  CHECK(permission_qualifier("$LATEST") == "");
  CHECK(permission_qualifier("") == "");
  CHECK(permission_qualifier("live") == "live");
  CHECK(permission_qualifier("3") == "3");
}
