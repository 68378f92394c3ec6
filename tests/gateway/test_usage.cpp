// API keys, usage plans, throttling and quotas (gateway/usage.hpp), driven by
// injected clocks: nothing here sleeps.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "sluice/gateway/usage.hpp"

namespace {

using namespace sluice;
using namespace std::chrono;
using namespace std::chrono_literals;
using gateway::KeyCheck;
using gateway::quota_period_index;
using gateway::TokenBucket;
using gateway::UsageControl;
using gateway::Verdict;
using stack::QuotaPeriod;
using stack::Throttle;

const steady_clock::time_point T0 = steady_clock::time_point{} + hours(1);
steady_clock::time_point at_ms(long ms) { return T0 + milliseconds(ms); }

// Monday 2024-03-04 10:00 UTC, unless a test says otherwise.
const system_clock::time_point W0 = sys_days{2024y / March / 4} + 10h;

const std::string kAlpha = "alpha-key-value-0123456789";
const std::string kBeta = "beta-key-value-0123456789";
const std::string kOff = "disabled-key-value-0123456789";
const std::string kLoose = "loose-key-value-0123456789";  // in no plan
const std::string kOther = "other-key-value-0123456789";  // in a plan for the dev stage only

stack::ApiKeySpec make_key(const std::string& name, const std::string& value, bool enabled = true) {
  stack::ApiKeySpec k;
  k.name = name;
  k.value = value;
  k.id = name + "-id";
  k.enabled = enabled;
  return k;
}

stack::RouteSpec make_route(const std::string& method, const std::string& path) {
  stack::RouteSpec r;
  r.key = method + " " + path;
  r.method = method;
  r.path = path;
  r.target.function = "fn";
  r.api_key_required = true;
  return r;
}

// One REST API "store" with stages prod and dev and three routes, five keys
// and two plans: "gold" (alpha, beta, disabled) on store/prod, "silver"
// (other) on store/dev. No throttle or quota anywhere; tests add what they need.
stack::Stack make_stack() {
  stack::Stack s;
  s.name = "watchlist";
  stack::ApiSpec api;
  api.name = "store";
  api.type = stack::ApiType::rest;
  api.routes = {make_route("GET", "/movies"), make_route("GET", "/movies/{id}"), make_route("POST", "/movies")};
  for (const char* stage : {"prod", "dev"}) {
    stack::StageSpec st;
    st.name = stage;
    api.stages[stage] = st;
  }
  s.apis["store"] = api;

  s.api_keys["alpha"] = make_key("alpha", kAlpha);
  s.api_keys["beta"] = make_key("beta", kBeta);
  s.api_keys["disabled"] = make_key("disabled", kOff, false);
  s.api_keys["loose"] = make_key("loose", kLoose);
  s.api_keys["other"] = make_key("other", kOther);

  stack::UsagePlanSpec gold;
  gold.name = "gold";
  gold.stages = {{"store", "prod"}};
  gold.keys = {"alpha", "beta", "disabled"};
  s.usage_plans["gold"] = gold;

  stack::UsagePlanSpec silver;
  silver.name = "silver";
  silver.stages = {{"store", "dev"}};
  silver.keys = {"other"};
  s.usage_plans["silver"] = silver;
  return s;
}

stack::QuotaSpec quota(int limit, QuotaPeriod period, int offset = 0) {
  stack::QuotaSpec q;
  q.limit = limit;
  q.period = period;
  q.offset = offset;
  return q;
}

// Sends `n` requests at one instant; returns how many were allowed.
int burst_of(UsageControl& uc, int n, const std::string& route, const KeyCheck* key, steady_clock::time_point now,
             const std::string& stage = "prod", system_clock::time_point wall = W0) {
  int allowed = 0;
  for (int i = 0; i < n; ++i) allowed += uc.admit("store", stage, route, key, now, wall) == Verdict::allow ? 1 : 0;
  return allowed;
}

const std::string kList = "GET /movies";
const std::string kFind = "GET /movies/{id}";
const std::string kAdd = "POST /movies";

}  // namespace

// ---- TokenBucket ---------------------------------------------------------------

TEST_CASE("token bucket starts full and serves its burst at once", "[usage]") {
  TokenBucket b(10, 5, T0);
  for (int i = 0; i < 5; ++i) CHECK(b.take(T0));
  CHECK_FALSE(b.take(T0));
  CHECK_FALSE(b.take(T0));
}

TEST_CASE("rate 10 burst 5: five at once, then one every 100 ms", "[usage]") {
  TokenBucket b(10, 5, T0);
  CHECK(b.take(at_ms(0)));
  for (int i = 0; i < 4; ++i) CHECK(b.take(at_ms(0)));
  CHECK_FALSE(b.take(at_ms(0)));
  CHECK_FALSE(b.take(at_ms(99)));
  CHECK(b.take(at_ms(100)));
  CHECK_FALSE(b.take(at_ms(100)));
  CHECK_FALSE(b.take(at_ms(150)));
  CHECK_FALSE(b.take(at_ms(199)));
  CHECK(b.take(at_ms(200)));
  CHECK_FALSE(b.take(at_ms(299)));
  CHECK(b.take(at_ms(300)));
}

TEST_CASE("a greedy client over one simulated second gets exactly burst + rate", "[usage]") {
  TokenBucket b(10, 5, T0);
  std::vector<long> allowed;  // when each admitted request went through
  for (long ms = 0; ms <= 1000; ++ms) {
    while (b.take(at_ms(ms))) allowed.push_back(ms);  // sends until refused, every millisecond
  }
  CHECK(allowed == std::vector<long>{0, 0, 0, 0, 0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000});
}

TEST_CASE("refill is continuous and stops at the burst", "[usage]") {
  TokenBucket b(10, 5, T0);
  for (int i = 0; i < 5; ++i) REQUIRE(b.take(T0));
  // 250 ms refill 2.5 tokens: two requests, and half a token is kept.
  CHECK(b.take(at_ms(250)));
  CHECK(b.take(at_ms(250)));
  CHECK_FALSE(b.take(at_ms(250)));
  CHECK(b.take(at_ms(300)));  // 0.5 + 0.5
  // An hour idle fills to the burst, not beyond.
  const auto later = T0 + hours(1);
  int n = 0;
  while (b.take(later)) ++n;
  CHECK(n == 5);
}

TEST_CASE("fractional rates refill slower than one per second", "[usage]") {
  TokenBucket b(0.5, 1, T0);
  CHECK(b.take(T0));
  CHECK_FALSE(b.take(T0 + 1999ms));
  CHECK(b.take(T0 + 2000ms));
  CHECK_FALSE(b.take(T0 + 3000ms));
  CHECK(b.take(T0 + 4000ms));
}

TEST_CASE("a rate of 3 per second lands on whole tokens despite rounding", "[usage]") {
  TokenBucket b(3, 5, T0);
  for (int i = 0; i < 5; ++i) REQUIRE(b.take(T0));
  std::vector<long> allowed;
  // A greedy client over 3 s: a token every 333.3 ms (fractions carry over
  // because the bucket never reaches its cap).
  for (long ms = 1; ms <= 3000; ++ms) {
    while (b.take(at_ms(ms))) allowed.push_back(ms);
  }
  CHECK(allowed == std::vector<long>{334, 667, 1000, 1334, 1667, 2000, 2334, 2667, 3000});
}

TEST_CASE("a full bucket drops the refill it cannot hold", "[usage]") {
  TokenBucket b(3, 1, T0);
  REQUIRE(b.take(T0));
  std::vector<long> allowed;
  for (long ms = 1; ms <= 1400; ++ms) {
    while (b.take(at_ms(ms))) allowed.push_back(ms);
  }
  // 334 ms refill 1.002 tokens, capped at 1: each wait starts afresh.
  CHECK(allowed == std::vector<long>{334, 668, 1002, 1336});
}

TEST_CASE("burst 0 refuses everything, as on AWS, whatever the rate", "[usage]") {
  TokenBucket b(100, 0, T0);
  for (long ms = 0; ms <= 5000; ms += 7) CHECK_FALSE(b.take(at_ms(ms)));
  TokenBucket zero(0, 0, T0);
  CHECK_FALSE(zero.take(T0));
  TokenBucket unset;  // default: no capacity
  CHECK_FALSE(unset.take(T0));
  TokenBucket negative(-5, -3, T0);
  CHECK_FALSE(negative.take(T0 + hours(1)));
}

TEST_CASE("rate 0 serves the burst once and never refills", "[usage]") {
  TokenBucket b(0, 3, T0);
  for (int i = 0; i < 3; ++i) CHECK(b.take(T0));
  CHECK_FALSE(b.take(T0 + hours(24)));
}

TEST_CASE("a clock that goes back refills nothing and does not break the bucket", "[usage]") {
  TokenBucket b(10, 2, at_ms(1000));
  CHECK(b.take(at_ms(1000)));
  CHECK(b.take(at_ms(1000)));
  CHECK_FALSE(b.take(at_ms(500)));
  CHECK_FALSE(b.take(at_ms(1099)));
  CHECK(b.take(at_ms(1100)));
}

TEST_CASE("reconfigure keeps what was spent", "[usage]") {
  SECTION("a full bucket stays full when the burst grows") {
    TokenBucket b(10, 5, T0);
    b.reconfigure(10, 8);
    int n = 0;
    while (b.take(T0)) ++n;
    CHECK(n == 8);
  }
  SECTION("an emptied bucket stays short by what it served") {
    TokenBucket b(10, 5, T0);
    for (int i = 0; i < 5; ++i) REQUIRE(b.take(T0));
    b.reconfigure(10, 8);  // spent 5 of 8: 3 left
    int n = 0;
    while (b.take(T0)) ++n;
    CHECK(n == 3);
  }
  SECTION("shrinking clamps to the new size") {
    TokenBucket b(10, 10, T0);
    REQUIRE(b.take(T0));
    b.reconfigure(10, 4);  // spent 1: 3 left
    int n = 0;
    while (b.take(T0)) ++n;
    CHECK(n == 3);
    TokenBucket c(10, 10, T0);
    for (int i = 0; i < 8; ++i) REQUIRE(c.take(T0));
    c.reconfigure(10, 4);  // spent 8 > 4: empty, not negative
    CHECK_FALSE(c.take(T0));
    CHECK(c.take(at_ms(100)));
  }
  SECTION("the new rate applies to the next refill") {
    TokenBucket b(1, 1, T0);
    REQUIRE(b.take(T0));
    b.reconfigure(100, 1);
    CHECK_FALSE(b.take(at_ms(9)));
    CHECK(b.take(at_ms(10)));
  }
  SECTION("reconfigured to burst 0 refuses everything") {
    TokenBucket b(10, 5, T0);
    b.reconfigure(10, 0);
    CHECK_FALSE(b.take(T0 + hours(1)));
  }
}

// ---- check_key -------------------------------------------------------------------

TEST_CASE("check_key accepts an enabled key of a plan bound to the stage", "[usage]") {
  const auto s = make_stack();
  UsageControl uc(s);
  const KeyCheck k = uc.check_key("store", "prod", kAlpha);
  REQUIRE(k.ok);
  REQUIRE(k.key != nullptr);
  REQUIRE(k.plan != nullptr);
  CHECK(k.key->name == "alpha");
  CHECK(k.plan->name == "gold");
  CHECK(k.key == &s.api_keys.at("alpha"));  // points into the stack

  const KeyCheck o = uc.check_key("store", "dev", kOther);
  REQUIRE(o.ok);
  CHECK(o.plan->name == "silver");
}

TEST_CASE("check_key refuses missing, unknown, disabled and misplaced keys", "[usage]") {
  const auto s = make_stack();
  UsageControl uc(s);
  auto refused = [](const KeyCheck& k) { return !k.ok && k.key == nullptr && k.plan == nullptr; };
  CHECK(refused(uc.check_key("store", "prod", std::nullopt)));
  CHECK(refused(uc.check_key("store", "prod", std::string())));
  CHECK(refused(uc.check_key("store", "prod", std::string("no-such-key-value-0123456789"))));
  CHECK(refused(uc.check_key("store", "prod", kAlpha.substr(0, kAlpha.size() - 1))));  // a prefix is not the key
  CHECK(refused(uc.check_key("store", "prod", kOff)));    // disabled
  CHECK(refused(uc.check_key("store", "prod", kLoose)));  // in no plan
  CHECK(refused(uc.check_key("store", "prod", kOther)));  // its plan is bound to dev only
  CHECK(refused(uc.check_key("store", "dev", kAlpha)));   // gold is bound to prod only
  CHECK(refused(uc.check_key("films", "prod", kAlpha)));  // another API
  CHECK(refused(uc.check_key("store", "Prod", kAlpha)));  // stage names are exact
}

TEST_CASE("check_key finds the plan of the stage when a key is in several plans", "[usage]") {
  auto s = make_stack();
  s.usage_plans["silver"].keys.push_back("alpha");
  UsageControl uc(s);
  CHECK(uc.check_key("store", "prod", kAlpha).plan->name == "gold");
  CHECK(uc.check_key("store", "dev", kAlpha).plan->name == "silver");
}

TEST_CASE("keys named in a plan but missing from api_keys are ignored", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].keys.push_back("ghost");
  UsageControl uc(s);
  CHECK(uc.check_key("store", "prod", kAlpha).ok);
  CHECK_FALSE(uc.remaining("ghost", W0).has_value());
}

// ---- admit: throttles --------------------------------------------------------------

TEST_CASE("without any setting only the account limits apply: 5,000 at once, 10,000 per second", "[usage]") {
  const auto s = make_stack();
  UsageControl uc(s);
  CHECK(burst_of(uc, 5000, kList, nullptr, T0) == 5000);
  CHECK(uc.admit("store", "prod", kList, nullptr, T0, W0) == Verdict::throttled);
  // The account bucket is one for every API, stage, route and key.
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  CHECK(uc.admit("store", "dev", kAdd, &alpha, T0, W0) == Verdict::throttled);
  // 1 ms at 10,000 rps refills 10.
  CHECK(burst_of(uc, 20, kFind, nullptr, at_ms(1)) == 10);
  // Half a second refills 5,000, the whole burst.
  CHECK(burst_of(uc, 6000, kFind, nullptr, at_ms(1000)) == 5000);
}

TEST_CASE("the stage default throttles each method on its own", "[usage]") {
  auto s = make_stack();
  s.apis["store"].stages["prod"].throttle = Throttle{10, 2};
  UsageControl uc(s);
  CHECK(burst_of(uc, 5, kList, nullptr, T0) == 2);
  CHECK(burst_of(uc, 5, kFind, nullptr, T0) == 2);  // "default per-method limits": its own bucket
  CHECK(burst_of(uc, 5, kList, nullptr, T0, "dev") == 5);  // another stage is unaffected
  CHECK(burst_of(uc, 5, kList, nullptr, at_ms(100)) == 1);
  // A route key the stack does not list still gets the stage default.
  CHECK(burst_of(uc, 5, "DELETE /movies", nullptr, T0) == 2);
}

TEST_CASE("a route's own throttle replaces the stage default for that route", "[usage]") {
  auto s = make_stack();
  s.apis["store"].stages["prod"].throttle = Throttle{10, 2};
  s.apis["store"].routes[1].throttle = Throttle{10, 4};  // GET /movies/{id}
  s.apis["store"].routes[2].throttle = Throttle{10, 1};  // POST /movies
  UsageControl uc(s);
  CHECK(burst_of(uc, 10, kFind, nullptr, T0) == 4);  // looser than the default: the route wins
  CHECK(burst_of(uc, 10, kAdd, nullptr, T0) == 1);   // stricter: the route wins
  CHECK(burst_of(uc, 10, kList, nullptr, T0) == 2);  // the default
  CHECK(burst_of(uc, 10, kFind, nullptr, T0, "dev") == 4);  // a route throttle holds in every stage
}

TEST_CASE("the stage's route setting replaces the route's own throttle", "[usage]") {
  auto s = make_stack();
  auto& prod = s.apis["store"].stages["prod"];
  prod.throttle = Throttle{10, 2};
  prod.route_throttles[kFind] = Throttle{10, 3};
  s.apis["store"].routes[1].throttle = Throttle{10, 6};
  UsageControl uc(s);
  CHECK(burst_of(uc, 10, kFind, nullptr, T0) == 3);
  CHECK(burst_of(uc, 10, kFind, nullptr, T0, "dev") == 6);  // dev has no stage setting: the route's
}

TEST_CASE("the usage plan throttles per key, and each key has its own bucket", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].throttle = Throttle{10, 3};
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  const KeyCheck beta = uc.check_key("store", "prod", kBeta);
  REQUIRE(alpha.ok);
  REQUIRE(beta.ok);
  CHECK(burst_of(uc, 10, kList, &alpha, T0) == 3);
  CHECK(burst_of(uc, 10, kList, &beta, T0) == 3);  // alpha's use does not touch beta
  CHECK(burst_of(uc, 10, kList, nullptr, T0) == 10);  // no key: the plan does not apply
  CHECK(burst_of(uc, 10, kList, &alpha, at_ms(100)) == 1);
  CHECK(burst_of(uc, 10, kList, &beta, at_ms(200)) == 2);  // 200 ms refill 2, whatever alpha did
}

TEST_CASE("the plan bucket is shared by the plan's routes and stages", "[usage]") {
  auto s = make_stack();
  auto& gold = s.usage_plans["gold"];
  gold.stages.push_back({"store", "dev"});
  gold.throttle = Throttle{1, 4};
  UsageControl uc(s);
  const KeyCheck prod = uc.check_key("store", "prod", kAlpha);
  const KeyCheck dev = uc.check_key("store", "dev", kAlpha);
  REQUIRE(dev.ok);
  CHECK(burst_of(uc, 2, kList, &prod, T0) == 2);
  CHECK(burst_of(uc, 1, kAdd, &prod, T0) == 1);
  CHECK(burst_of(uc, 5, kFind, &dev, T0, "dev") == 1);
}

TEST_CASE("a per-route override of the plan replaces the plan throttle on that route", "[usage]") {
  auto s = make_stack();
  auto& gold = s.usage_plans["gold"];
  gold.throttle = Throttle{10, 2};
  gold.route_throttles["store/prod/" + kAdd] = Throttle{10, 1};
  gold.route_throttles["store/prod/" + kFind] = Throttle{10, 5};
  gold.route_throttles["store/dev/" + kList] = Throttle{10, 9};  // a stage the plan is not bound to
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  const KeyCheck beta = uc.check_key("store", "prod", kBeta);
  CHECK(burst_of(uc, 10, kAdd, &alpha, T0) == 1);   // stricter override
  CHECK(burst_of(uc, 10, kFind, &alpha, T0) == 5);  // looser override: the plan's 2 does not apply
  CHECK(burst_of(uc, 10, kList, &alpha, T0) == 2);  // the plan throttle
  CHECK(burst_of(uc, 10, kAdd, &beta, T0) == 1);    // per key as well
}

TEST_CASE("a plan override without a plan throttle limits only its route", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].route_throttles["store/prod/" + kAdd] = Throttle{10, 1};
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  CHECK(burst_of(uc, 10, kAdd, &alpha, T0) == 1);
  CHECK(burst_of(uc, 10, kList, &alpha, T0) == 10);
}

TEST_CASE("stage limits still hold for requests that the plan admits", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].throttle = Throttle{100, 50};
  s.apis["store"].stages["prod"].throttle = Throttle{10, 2};
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  const KeyCheck beta = uc.check_key("store", "prod", kBeta);
  CHECK(burst_of(uc, 10, kList, &alpha, T0) == 2);
  CHECK(burst_of(uc, 10, kList, &beta, T0) == 0);  // the method bucket is shared by all clients
}

TEST_CASE("the account bucket bounds looser plan and stage limits", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].throttle = Throttle{50000, 20000};
  s.apis["store"].stages["prod"].throttle = Throttle{50000, 20000};
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  CHECK(burst_of(uc, 8000, kList, &alpha, T0) == 5000);
}

TEST_CASE("a refused request takes no token from the levels that admitted it", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].throttle = Throttle{1, 3};
  s.apis["store"].routes[2].throttle = Throttle{1, 1};  // POST /movies
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  CHECK(burst_of(uc, 1, kAdd, &alpha, T0) == 1);  // plan 3 -> 2, route 1 -> 0
  CHECK(burst_of(uc, 5, kAdd, &alpha, T0) == 0);  // refused by the route: plan stays at 2
  CHECK(burst_of(uc, 5, kList, &alpha, T0) == 2);
}

TEST_CASE("a KeyCheck that is not ok is treated as no key", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].throttle = Throttle{1, 1};
  s.usage_plans["gold"].quota = quota(1, QuotaPeriod::day);
  UsageControl uc(s);
  KeyCheck forged = uc.check_key("store", "prod", kAlpha);
  forged.ok = false;
  CHECK(burst_of(uc, 3, kList, &forged, T0) == 3);
  CHECK(uc.remaining("alpha", W0) == 1);
}

// ---- admit: quotas ------------------------------------------------------------------

TEST_CASE("the quota counts admitted requests and refuses the rest until UTC midnight", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].quota = quota(3, QuotaPeriod::day);
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  const auto day = sys_days{2024y / March / 6};
  CHECK(uc.remaining("alpha", day + 1h) == 3);
  for (int i = 0; i < 3; ++i) CHECK(uc.admit("store", "prod", kList, &alpha, at_ms(i), day + 1h) == Verdict::allow);
  CHECK(uc.remaining("alpha", day + 1h) == 0);
  CHECK(uc.admit("store", "prod", kList, &alpha, at_ms(10), day + 2h) == Verdict::quota_exceeded);
  CHECK(uc.admit("store", "prod", kList, &alpha, at_ms(11), day + 24h - 1ms) == Verdict::quota_exceeded);
  CHECK(uc.remaining("alpha", day + 24h - 1ms) == 0);
  // Refused requests did not count: the next day starts full.
  CHECK(uc.remaining("alpha", day + 24h) == 3);
  CHECK(uc.admit("store", "prod", kList, &alpha, at_ms(12), day + 24h) == Verdict::allow);
  CHECK(uc.remaining("alpha", day + 24h) == 2);
}

TEST_CASE("keys of one plan have separate quotas", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].quota = quota(2, QuotaPeriod::month);
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  const KeyCheck beta = uc.check_key("store", "prod", kBeta);
  CHECK(burst_of(uc, 5, kList, &alpha, T0) == 2);
  CHECK(uc.remaining("alpha", W0) == 0);
  CHECK(uc.remaining("beta", W0) == 2);
  CHECK(burst_of(uc, 5, kList, &beta, at_ms(1)) == 2);
  CHECK(uc.remaining("beta", W0) == 0);
}

TEST_CASE("the quota is shared by the plan's stages", "[usage]") {
  auto s = make_stack();
  auto& gold = s.usage_plans["gold"];
  gold.stages.push_back({"store", "dev"});
  gold.quota = quota(3, QuotaPeriod::week);
  UsageControl uc(s);
  const KeyCheck prod = uc.check_key("store", "prod", kAlpha);
  const KeyCheck dev = uc.check_key("store", "dev", kAlpha);
  CHECK(burst_of(uc, 2, kList, &prod, T0) == 2);
  CHECK(burst_of(uc, 5, kFind, &dev, T0, "dev") == 1);
  CHECK(uc.remaining("alpha", W0) == 0);
}

TEST_CASE("quota_exceeded is answered after the throttles, and throttled requests use no quota", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].throttle = Throttle{1, 1};
  s.usage_plans["gold"].quota = quota(5, QuotaPeriod::day);
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  CHECK(uc.admit("store", "prod", kList, &alpha, T0, W0) == Verdict::allow);
  for (int i = 0; i < 10; ++i) CHECK(uc.admit("store", "prod", kList, &alpha, T0, W0) == Verdict::throttled);
  CHECK(uc.remaining("alpha", W0) == 4);
  // A stage throttle refusing the request does not use quota either.
  s.apis["store"].stages["prod"].throttle = Throttle{0, 0};
  UsageControl blocked(s);
  const KeyCheck a2 = blocked.check_key("store", "prod", kAlpha);
  CHECK(burst_of(blocked, 10, kList, &a2, T0) == 0);
  CHECK(blocked.remaining("alpha", W0) == 5);
}

TEST_CASE("the weekly quota rolls over on Monday 00:00 UTC", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].quota = quota(2, QuotaPeriod::week);
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  const auto wednesday = sys_days{2024y / March / 6} + 12h;
  const auto monday = sys_days{2024y / March / 11};
  CHECK(uc.admit("store", "prod", kList, &alpha, at_ms(0), wednesday) == Verdict::allow);
  CHECK(uc.admit("store", "prod", kList, &alpha, at_ms(1), wednesday) == Verdict::allow);
  CHECK(uc.admit("store", "prod", kList, &alpha, at_ms(2), wednesday) == Verdict::quota_exceeded);
  CHECK(uc.admit("store", "prod", kList, &alpha, at_ms(3), monday - 1ms) == Verdict::quota_exceeded);  // Sunday night
  CHECK(uc.remaining("alpha", monday - 1ms) == 0);
  CHECK(uc.remaining("alpha", monday) == 2);
  CHECK(uc.admit("store", "prod", kList, &alpha, at_ms(4), monday) == Verdict::allow);
  CHECK(uc.remaining("alpha", monday + 6 * 24h + 23h) == 1);  // still that week on Sunday
}

TEST_CASE("the monthly quota rolls over on the first of the month", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].quota = quota(1, QuotaPeriod::month);
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  long ms = 0;
  auto send = [&](system_clock::time_point wall) {
    return uc.admit("store", "prod", kList, &alpha, at_ms(ms++), wall);
  };
  CHECK(send(sys_days{2024y / January / 15}) == Verdict::allow);
  CHECK(send(sys_days{2024y / February / 1} - 1ms) == Verdict::quota_exceeded);  // January 31, 23:59:59.999
  CHECK(send(sys_days{2024y / February / 1}) == Verdict::allow);
  CHECK(send(sys_days{2024y / February / 29} + 23h) == Verdict::quota_exceeded);  // leap day, same month
  CHECK(send(sys_days{2024y / March / 1}) == Verdict::allow);
  CHECK(send(sys_days{2024y / December / 31} + 23h) == Verdict::allow);
  CHECK(send(sys_days{2025y / January / 1} - 1ms) == Verdict::quota_exceeded);
  CHECK(send(sys_days{2025y / January / 1}) == Verdict::allow);
}

TEST_CASE("the offset is taken off the limit in the plan's initial period only", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].quota = quota(5, QuotaPeriod::day, 2);
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  const KeyCheck beta = uc.check_key("store", "prod", kBeta);
  const auto day1 = sys_days{2024y / March / 6} + 9h;
  const auto day2 = day1 + 24h;
  CHECK(uc.remaining("alpha", day1) == 3);
  CHECK(burst_of(uc, 10, kList, &alpha, T0, "prod", day1) == 3);
  CHECK(uc.remaining("alpha", day1) == 0);
  // beta first comes on the same day: the plan's initial period, so 3 too.
  CHECK(uc.remaining("beta", day1) == 3);
  CHECK(burst_of(uc, 1, kList, &beta, at_ms(1), "prod", day1) == 1);
  CHECK(uc.remaining("beta", day1) == 2);
  // The following days have the whole limit; the boundary does not move.
  CHECK(uc.remaining("alpha", day2) == 5);
  CHECK(uc.remaining("alpha", day1 + 15h - 1ms) == 0);  // 23:59:59.999, still the initial day
  CHECK(uc.remaining("alpha", day1 + 15h) == 5);         // midnight, as without an offset
  CHECK(burst_of(uc, 10, kList, &alpha, at_ms(2), "prod", day2) == 5);
}

TEST_CASE("a key first metered after the plan's initial period gets the whole limit", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].quota = quota(5, QuotaPeriod::week, 4);
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  const KeyCheck beta = uc.check_key("store", "prod", kBeta);
  const auto week1 = sys_days{2024y / March / 6};
  const auto week2 = sys_days{2024y / March / 11} + 1h;
  CHECK(burst_of(uc, 10, kList, &alpha, T0, "prod", week1) == 1);
  CHECK(uc.remaining("beta", week2) == 5);
  CHECK(burst_of(uc, 10, kList, &beta, at_ms(1), "prod", week2) == 5);
  CHECK(burst_of(uc, 10, kList, &alpha, at_ms(2), "prod", week2) == 5);
}

TEST_CASE("an offset at or above the limit leaves nothing in the initial period", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].quota = quota(3, QuotaPeriod::month, 7);
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  CHECK(uc.remaining("alpha", W0) == 0);
  CHECK(uc.admit("store", "prod", kList, &alpha, T0, W0) == Verdict::quota_exceeded);
  CHECK(burst_of(uc, 5, kList, &alpha, at_ms(1), "prod", sys_days{2024y / April / 1}) == 3);
}

TEST_CASE("remaining is nullopt for unknown keys and plans without a quota", "[usage]") {
  auto s = make_stack();
  s.usage_plans["silver"].quota = quota(10, QuotaPeriod::day);
  UsageControl uc(s);
  CHECK_FALSE(uc.remaining("alpha", W0).has_value());  // gold has no quota
  CHECK_FALSE(uc.remaining("loose", W0).has_value());  // in no plan
  CHECK_FALSE(uc.remaining("nobody", W0).has_value());
  CHECK(uc.remaining("other", W0) == 10);
}

TEST_CASE("a quota of 0 refuses every keyed request but not keyless ones", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].quota = quota(0, QuotaPeriod::day);
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  CHECK(uc.admit("store", "prod", kList, &alpha, T0, W0) == Verdict::quota_exceeded);
  CHECK(uc.admit("store", "prod", kList, nullptr, T0, W0) == Verdict::allow);
}

TEST_CASE("a wall clock that goes back counts against the latest period", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].quota = quota(2, QuotaPeriod::day);
  UsageControl uc(s);
  const KeyCheck alpha = uc.check_key("store", "prod", kAlpha);
  const auto day2 = sys_days{2024y / March / 7} + 1h;
  CHECK(uc.admit("store", "prod", kList, &alpha, at_ms(0), day2) == Verdict::allow);
  CHECK(uc.admit("store", "prod", kList, &alpha, at_ms(1), day2 - 2h) == Verdict::allow);
  CHECK(uc.admit("store", "prod", kList, &alpha, at_ms(2), day2 - 2h) == Verdict::quota_exceeded);
  CHECK(uc.remaining("alpha", day2) == 0);
}

// ---- quota_period_index ----------------------------------------------------------------

TEST_CASE("quota_period_index changes exactly at UTC midnight for DAY", "[usage]") {
  const auto d = sys_days{2024y / March / 6};
  const long i = quota_period_index(QuotaPeriod::day, 0, d);
  CHECK(quota_period_index(QuotaPeriod::day, 0, d + 24h - 1ns) == i);
  CHECK(quota_period_index(QuotaPeriod::day, 0, d + 24h) == i + 1);
  CHECK(quota_period_index(QuotaPeriod::day, 0, d - 1ns) == i - 1);
  CHECK(quota_period_index(QuotaPeriod::day, 0, sys_days{1970y / January / 1}) == 0);
  CHECK(quota_period_index(QuotaPeriod::day, 0, sys_days{1970y / January / 1} - 1ns) == -1);
}

TEST_CASE("quota_period_index starts weeks on Monday 00:00 UTC", "[usage]") {
  const auto monday = sys_days{2024y / March / 4};
  REQUIRE(weekday{monday} == Monday);
  const long i = quota_period_index(QuotaPeriod::week, 0, monday);
  for (int d = 0; d < 7; ++d) CHECK(quota_period_index(QuotaPeriod::week, 0, monday + days{d} + 12h) == i);
  CHECK(quota_period_index(QuotaPeriod::week, 0, monday - 1ns) == i - 1);
  CHECK(quota_period_index(QuotaPeriod::week, 0, monday + days{7}) == i + 1);
  // Around the epoch (1970-01-01 was a Thursday; the week began Monday 1969-12-29).
  CHECK(quota_period_index(QuotaPeriod::week, 0, sys_days{1970y / January / 1}) ==
        quota_period_index(QuotaPeriod::week, 0, sys_days{1969y / December / 29}));
  CHECK(quota_period_index(QuotaPeriod::week, 0, sys_days{1970y / January / 4} + 23h) ==
        quota_period_index(QuotaPeriod::week, 0, sys_days{1969y / December / 29}));
  CHECK(quota_period_index(QuotaPeriod::week, 0, sys_days{1970y / January / 5}) ==
        quota_period_index(QuotaPeriod::week, 0, sys_days{1969y / December / 29}) + 1);
  CHECK(quota_period_index(QuotaPeriod::week, 0, sys_days{1969y / December / 28} + 23h) ==
        quota_period_index(QuotaPeriod::week, 0, sys_days{1969y / December / 29}) - 1);
}

TEST_CASE("quota_period_index counts calendar months", "[usage]") {
  auto month = [](system_clock::time_point t) { return quota_period_index(QuotaPeriod::month, 0, t); };
  const long jan = month(sys_days{2024y / January / 1});
  CHECK(month(sys_days{2024y / January / 31} + 23h + 59min) == jan);
  CHECK(month(sys_days{2024y / February / 1}) == jan + 1);
  CHECK(month(sys_days{2024y / February / 29}) == jan + 1);
  CHECK(month(sys_days{2024y / March / 1} - 1ns) == jan + 1);
  CHECK(month(sys_days{2024y / December / 31} + 23h) == jan + 11);
  CHECK(month(sys_days{2025y / January / 1}) == jan + 12);
  CHECK(month(sys_days{2023y / February / 28} + 23h) == jan - 11);
  CHECK(month(sys_days{1970y / January / 1}) == 0);
}

TEST_CASE("the offset does not move period boundaries (it is a request count)", "[usage]") {
  const auto d = sys_days{2024y / March / 6} + 5h;
  for (auto p : {QuotaPeriod::day, QuotaPeriod::week, QuotaPeriod::month}) {
    for (int offset : {1, 3, 6, 27, 1000}) CHECK(quota_period_index(p, offset, d) == quota_period_index(p, 0, d));
  }
}

TEST_CASE("a copy of a UsageControl keeps working on its own state", "[usage]") {
  auto s = make_stack();
  s.usage_plans["gold"].quota = quota(2, QuotaPeriod::day);
  UsageControl a(s);
  const KeyCheck alpha = a.check_key("store", "prod", kAlpha);
  CHECK(burst_of(a, 1, kList, &alpha, T0) == 1);
  UsageControl b = a;
  CHECK(burst_of(b, 5, kList, &alpha, T0) == 1);
  CHECK(a.remaining("alpha", W0) == 1);
  CHECK(b.remaining("alpha", W0) == 0);
  CHECK(b.check_key("store", "prod", kBeta).ok);
}
