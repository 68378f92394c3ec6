// API keys, usage plans, throttling and quotas (reference §4.7).
//
// What AWS documents, and what this file does with it:
// - Throttling is a token bucket per scope; "the burst is the maximum bucket
//   size" and the rate is the refill per second (AG:api-gateway-request-throttling).
//   A bucket starts full. A burst of 0 is a bucket that can hold no token, so
//   it refuses every request whatever the rate. AWS does not state this in so
//   many words, but it follows from "burst = bucket size" and matches what is
//   reported: a method throttled to 0/0 accepts nothing (aws-cdk#10071), and a
//   stage deployed with a rate but no burst (so burst 0) answers 429 to all.
// - Order (same page): per-client per-method limits of the usage plan, else the
//   per-client limits of the plan; then the stage's per-method limits (an
//   individual method setting, else the stage default "per-method" setting);
//   then the account (10,000 rps, burst 5,000). A request must pass every
//   applicable level. It takes a token from each level only when all of them
//   admit it: a request that is refused was not served and costs nothing.
// - "Throttling and quota limits apply to requests for individual API keys that
//   are aggregated across all API stages within a usage plan"
//   (AG:api-gateway-api-usage-plans): the plan bucket and the quota counter are
//   per (plan, key), shared by the plan's stages; a per-method override of the
//   plan has its own bucket per (plan, key, api/stage/route).
// - Quota: limit per DAY | WEEK | MONTH. `offset` is "the number of requests
//   subtracted from the given limit in the initial time period" (API reference
//   QuotaSettings, CloudFormation QuotaSettings; the 2016 CloudFormation text
//   adds "when you first implement a usage plan, the plan might start in the
//   middle of the week or month"). It is a request count, not a time shift:
//   period boundaries do not move. Some SDK models for a while described it as
//   "the day that a time period starts" (WEEK: 0 = Sunday); the current AWS
//   documentation does not, and neither do we.
// - Period boundaries are not specified by AWS beyond "resets at the beginning
//   of the month" for MONTH; we use UTC: the calendar day, the week from Monday
//   00:00, the calendar month.
//
// Not thread-safe: admit() mutates; the server serialises calls (one strand or
// a mutex). The stack must outlive this object and stay unchanged; build a new
// UsageControl when the stack is reloaded.
#include "sluice/gateway/usage.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <string_view>

namespace sluice::gateway {

namespace {

// Refill is computed in floating point; tolerate the rounding of a refill that
// should land exactly on a whole token (10 rps after 100 ms).
constexpr double kEpsilon = 1e-9;
constexpr char kSep = '\x1f';

double non_negative(double v) { return std::isfinite(v) && v > 0 ? v : 0.0; }

std::string scope_id(std::initializer_list<std::string_view> parts) {
  std::string id;
  for (auto p : parts) {
    id.append(p);
    id.push_back(kSep);
  }
  return id;
}

long floor_div(long a, long b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0); }

}  // namespace

// ---- TokenBucket ------------------------------------------------------------

TokenBucket::TokenBucket(double rate, int burst, std::chrono::steady_clock::time_point now)
    : rate_(non_negative(rate)), burst_(burst > 0 ? burst : 0), tokens_(burst_), last_(now) {}

bool TokenBucket::take(std::chrono::steady_clock::time_point now) {
  if (now > last_) {  // a clock that goes back refills nothing
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + rate_ * elapsed);
    last_ = now;
  }
  if (tokens_ + kEpsilon < 1.0) return false;
  tokens_ = std::max(0.0, tokens_ - 1.0);
  return true;
}

// Keeps what has been spent and not yet refilled (burst - tokens): a full
// bucket stays full, an emptied one stays short by what it served, clamped to
// the new size. The time since the last take is refilled at the new rate.
void TokenBucket::reconfigure(double rate, int burst) {
  const double spent = std::max(0.0, burst_ - tokens_);
  rate_ = non_negative(rate);
  burst_ = burst > 0 ? burst : 0;
  tokens_ = std::clamp(burst_ - spent, 0.0, burst_);
}

// ---- Index --------------------------------------------------------------------

struct UsageControl::Index {
  using Key3 = std::tuple<std::string, std::string, std::string>;
  using Key2 = std::tuple<std::string, std::string>;

  struct Limit {
    stack::Throttle throttle;
    std::string bucket_id;
  };
  struct PlanKey {  // one key in one plan
    const stack::UsagePlanSpec* plan = nullptr;
    std::string plan_bucket_id;
    std::string quota_id;
    std::string plan_start_id;                           // the plan's initial quota period
    std::map<Key3, Limit, std::less<>> route_overrides;  // (api, stage, route key)
  };

  std::map<std::string, const stack::ApiKeySpec*, std::less<>> key_by_value;
  std::map<Key3, const stack::UsagePlanSpec*, std::less<>> plan_by_key_stage;  // (key name, api, stage)
  std::map<Key2, PlanKey, std::less<>> plan_keys;                              // (plan, key name)
  std::map<Key3, Limit, std::less<>> method_limits;                            // (api, stage, route key)
  std::map<Key2, stack::Throttle, std::less<>> stage_defaults;                 // (api, stage)
  std::map<std::string, const stack::UsagePlanSpec*, std::less<>> quota_plan_by_key;
};

UsageControl::UsageControl(const stack::Stack& model, stack::Throttle account)
    : stack_(&model), account_limit_(account) {
  const stack::Stack& stack = *stack_;
  auto index = std::make_shared<Index>();

  // AWS requires key values to be unique; should two keys share one, the first
  // by name wins.
  for (const auto& [name, key] : stack.api_keys) {
    if (!key.value.empty()) index->key_by_value.emplace(key.value, &key);
  }

  // Plans in name order: "a given API key can only be associated with one usage
  // plan for each stage"; if the stack breaks that, the first plan wins.
  for (const auto& [plan_name, plan] : stack.usage_plans) {
    for (const auto& key_name : plan.keys) {
      if (!stack.api_keys.count(key_name)) continue;
      for (const auto& [api, stage] : plan.stages) {
        index->plan_by_key_stage.emplace(Index::Key3{key_name, api, stage}, &plan);
      }
      Index::PlanKey pk;
      pk.plan = &plan;
      pk.plan_bucket_id = scope_id({"plan", plan_name, key_name});
      pk.quota_id = scope_id({"quota", plan_name, key_name});
      pk.plan_start_id = scope_id({"plan-start", plan_name});
      // Overrides are keyed "api/stage/METHOD /path"; match them against the
      // plan's own stages so that names holding '/' cannot be split wrongly.
      for (const auto& [api, stage] : plan.stages) {
        const std::string prefix = api + "/" + stage + "/";
        for (const auto& [scope, throttle] : plan.route_throttles) {
          if (scope.size() <= prefix.size() || scope.compare(0, prefix.size(), prefix) != 0) continue;
          pk.route_overrides.emplace(Index::Key3{api, stage, scope.substr(prefix.size())},
                                     Index::Limit{throttle, scope_id({"plan-route", plan_name, key_name, scope})});
        }
      }
      index->plan_keys.emplace(Index::Key2{plan_name, key_name}, std::move(pk));
      if (plan.quota) index->quota_plan_by_key.emplace(key_name, &plan);
    }
  }

  // Stage limits are per method: an individual setting (the stage's own route
  // setting, else the route's) replaces the stage default for that method.
  for (const auto& api_entry : stack.apis) {
    const std::string& api_name = api_entry.first;
    const stack::ApiSpec& api = api_entry.second;
    for (const auto& stage_entry : api.stages) {
      const std::string& stage_name = stage_entry.first;
      const stack::StageSpec& stage = stage_entry.second;
      auto add = [&](const std::string& route_key, const stack::Throttle& t) {
        index->method_limits.emplace(Index::Key3{api_name, stage_name, route_key},
                                     Index::Limit{t, scope_id({"method", api_name, stage_name, route_key})});
      };
      for (const auto& [route_key, t] : stage.route_throttles) add(route_key, t);
      for (const auto& route : api.routes) {
        if (stage.route_throttles.count(route.key)) continue;
        if (route.throttle) {
          add(route.key, *route.throttle);
        } else if (stage.throttle) {
          add(route.key, *stage.throttle);
        }
      }
      if (stage.throttle) index->stage_defaults.emplace(Index::Key2{api_name, stage_name}, *stage.throttle);
    }
  }

  index_ = std::move(index);
}

// ---- Keys -------------------------------------------------------------------

KeyCheck UsageControl::check_key(const std::string& api, const std::string& stage,
                                 const std::optional<std::string>& value) const {
  if (!value || value->empty()) return {};
  const auto k = index_->key_by_value.find(*value);
  if (k == index_->key_by_value.end() || !k->second->enabled) return {};
  const auto p = index_->plan_by_key_stage.find(std::tie(k->second->name, api, stage));
  if (p == index_->plan_by_key_stage.end()) return {};
  return KeyCheck{true, k->second, p->second};
}

// ---- Admission ----------------------------------------------------------------

Verdict UsageControl::admit(const std::string& api, const std::string& stage, const std::string& route_key,
                            const KeyCheck* key, std::chrono::steady_clock::time_point now,
                            std::chrono::system_clock::time_point wall_now) {
  // At most one bucket per level: plan, method, account.
  TokenBucket* levels[3];
  int count = 0;
  auto bucket = [&](const std::string& id, const stack::Throttle& t) {
    levels[count++] = &buckets_.try_emplace(id, t.rate, t.burst, now).first->second;
  };

  const stack::UsagePlanSpec* plan = nullptr;
  const Index::PlanKey* plan_key = nullptr;
  if (key && key->ok && key->key && key->plan) {
    const auto pk = index_->plan_keys.find(std::tie(key->plan->name, key->key->name));
    if (pk != index_->plan_keys.end()) {
      plan_key = &pk->second;
      plan = plan_key->plan;
    }
  }

  // (1) the usage plan, per key: the per-method override, else the plan throttle.
  if (plan_key) {
    const auto o = plan_key->route_overrides.find(std::tie(api, stage, route_key));
    if (o != plan_key->route_overrides.end()) {
      bucket(o->second.bucket_id, o->second.throttle);
    } else if (plan->throttle) {
      bucket(plan_key->plan_bucket_id, *plan->throttle);
    }
  }

  // (2)+(3) the stage, per method: its individual setting, else its default.
  const auto m = index_->method_limits.find(std::tie(api, stage, route_key));
  if (m != index_->method_limits.end()) {
    bucket(m->second.bucket_id, m->second.throttle);
  } else if (const auto d = index_->stage_defaults.find(std::tie(api, stage)); d != index_->stage_defaults.end()) {
    bucket(scope_id({"method", api, stage, route_key}), d->second);  // a route key the stack does not list
  }

  // (4) the account.
  if (!account_init_) {
    account_ = TokenBucket(account_limit_.rate, account_limit_.burst, now);
    account_init_ = true;
  }
  levels[count++] = &account_;

  // All or nothing: try on copies, keep them only if every level admits.
  TokenBucket trial[3];
  for (int i = 0; i < count; ++i) {
    trial[i] = *levels[i];
    if (!trial[i].take(now)) return Verdict::throttled;
  }
  for (int i = 0; i < count; ++i) *levels[i] = trial[i];

  // Quota, only for requests that passed the throttles; a refused one does not count.
  if (plan_key && plan->quota) {
    const auto& q = *plan->quota;
    const long period = quota_period_index(q.period, q.offset, wall_now);
    auto [it, fresh] = quotas_.try_emplace(plan_key->quota_id);
    QuotaState& state = it->second;
    if (fresh) {
      // The plan's initial period is the one in which any of its keys was first
      // metered; only there is the offset taken off the limit.
      auto [start, started_now] = quotas_.try_emplace(plan_key->plan_start_id);
      if (started_now) start->second.period_index = period;
      state.period_index = period;
      state.used = period <= start->second.period_index ? std::max(0, q.offset) : 0;
    } else if (period > state.period_index) {
      state.period_index = period;
      state.used = 0;
    }
    if (state.used >= q.limit) return Verdict::quota_exceeded;
    ++state.used;
  }
  return Verdict::allow;
}

std::optional<long> UsageControl::remaining(const std::string& key_name,
                                            std::chrono::system_clock::time_point wall_now) const {
  const auto p = index_->quota_plan_by_key.find(key_name);
  if (p == index_->quota_plan_by_key.end()) return std::nullopt;
  const stack::UsagePlanSpec& plan = *p->second;
  const auto& q = *plan.quota;
  const auto pk = index_->plan_keys.find(std::tie(plan.name, key_name));
  if (pk == index_->plan_keys.end()) return std::nullopt;
  const long period = quota_period_index(q.period, q.offset, wall_now);

  long used = 0;
  if (const auto s = quotas_.find(pk->second.quota_id); s != quotas_.end()) {
    used = period > s->second.period_index ? 0 : s->second.used;
  } else {
    // Not metered yet: the offset applies if this is (or would become) the
    // plan's initial period.
    const auto start = quotas_.find(pk->second.plan_start_id);
    const bool initial = start == quotas_.end() || period <= start->second.period_index;
    used = initial ? std::max(0, q.offset) : 0;
  }
  return std::max(0L, static_cast<long>(q.limit) - used);
}

// ---- Periods ------------------------------------------------------------------

// The offset is a request count (see the top of this file), so it does not
// move boundaries; it is part of the signature so that callers need not know.
long quota_period_index(stack::QuotaPeriod period, int /*offset*/, std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const sys_days today = floor<days>(t);
  const long day_number = today.time_since_epoch().count();  // days since 1970-01-01, a Thursday
  switch (period) {
    case stack::QuotaPeriod::day:
      return day_number;
    case stack::QuotaPeriod::week:
      return floor_div(day_number + 3, 7);  // 1969-12-29, a Monday, starts week 0
    case stack::QuotaPeriod::month: {
      const year_month_day ymd{today};
      return (static_cast<long>(static_cast<int>(ymd.year())) - 1970) * 12 +
             static_cast<long>(static_cast<unsigned>(ymd.month())) - 1;
    }
  }
  return day_number;
}

}  // namespace sluice::gateway
