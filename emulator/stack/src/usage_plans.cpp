// API keys and usage plans: values, stages, quotas, per-route throttles, and
// the rule that a key belongs to one plan per API stage.
#include <climits>

#include "schema.hpp"

namespace sluice::stack::detail {

// ---- API keys and usage plans ------------------------------------------------------

void Loader::read_api_keys(const View& v) {
  auto entries = c_.named(v, "a mapping of API key names to {value, enabled}", true);
  if (!entries) return;
  std::map<std::string, std::string> values;  // value -> key name
  for (const auto& [name, kv] : *entries) {
    if (c_.stopped()) return;
    key_names_.insert(name);
    if (!valid_name(name, 128)) {
      c_.error(kv, "API key name " + sluice::quoted(name) + " must be 1 to 128 letters, digits, '-' or '_'");
      continue;
    }
    auto f = c_.fields(kv, {"value", "enabled"}, "a mapping {value, enabled}", true);
    if (!f) continue;
    ApiKeySpec key;
    key.name = name;
    key.id = stable_id(stack_.name + "/api-keys/" + name);
    key.value = stable_id(stack_.name + "/api-keys/" + name + "/value", 40);
    if (auto x = f->get("value")) {
      if (auto s = c_.string(*x, "an API key value of 20 to 128 characters")) {
        bool printable = chars_in(*s, [](unsigned char c) { return c > 0x20 && c < 0x7f; });
        if (s->size() < 20 || s->size() > 128 || !printable) {
          c_.error(*x,
                   "an API key value must be 20 to 128 printable ASCII characters without spaces (as on AWS), "
                   "found " +
                       std::to_string(s->size()) + " characters" +
                       (printable ? ""
                                  : " with spaces or "
                                    "non-ASCII ones") +
                       "; omit 'value' to get a generated one");
        } else {
          key.value = *s;
        }
      }
    }
    if (auto x = f->get("enabled"))
      if (auto b = c_.boolean(*x)) key.enabled = *b;
    if (auto [it, inserted] = values.emplace(key.value, name); !inserted)
      c_.error(f->get("value") ? *f->get("value") : kv,
               "API key values must be unique; this is the value of API key " + squoted(it->second));
    stack_.api_keys[name] = std::move(key);
  }
}

void Loader::read_usage_plans(const View& v) {
  auto entries = c_.named(v, "a mapping of usage plan names to their settings", true);
  if (!entries) return;
  for (const auto& [name, pv] : *entries) {
    if (c_.stopped()) return;
    if (!valid_name(name, 128)) {
      c_.error(pv, "usage plan name " + sluice::quoted(name) + " must be 1 to 128 letters, digits, '-' or '_'");
      continue;
    }
    auto f = c_.fields(pv, {"stages", "throttle", "quota", "keys", "route_throttles"},
                       "a mapping with the usage plan's settings (stages, keys, throttle, quota, route_throttles)");
    if (!f) continue;
    UsagePlanSpec plan;
    plan.name = name;
    if (auto x = f->get("stages")) read_plan_stages(*x, plan);
    if (auto x = f->get("throttle")) plan.throttle = throttle(*x);
    if (auto x = f->get("quota")) plan.quota = quota(*x);
    if (auto x = f->get("keys")) read_plan_keys(*x, plan);
    if (auto x = f->get("route_throttles")) {
      read_plan_route_throttles(*x, plan);
      // Served as written locally, but CreateUsagePlan refuses it (aws/aws-cdk#6411 quotes the
      // answer), so the deploy would stop there.
      if (!plan.throttle && !plan.route_throttles.empty())
        c_.warning(*x, "route_throttles without a throttle of the plan's own: API Gateway refuses that at deploy "
                       "(\"Can not define fine grain throttling if usage plan throttle is not defined.\"); "
                       "add throttle: {rate: ..., burst: ...} to the plan");
    }
    stack_.usage_plans[name] = std::move(plan);
  }
}

void Loader::read_plan_stages(const View& v, UsagePlanSpec& plan) {
  auto items = c_.list(v, "a list of \"API/STAGE\" references");
  if (!items) return;
  std::set<std::string> seen;
  for (const auto& item : *items) {
    auto s = c_.string(item, "an \"API/STAGE\" reference");
    if (!s) continue;
    auto slash = s->find('/');
    if (slash == std::string::npos) {
      c_.error(item, "expected \"API/STAGE\" (e.g. \"store/prod\"), found " + sluice::quoted(*s));
      continue;
    }
    std::string api = s->substr(0, slash), stage = s->substr(slash + 1);
    auto info = api_info_.find(api);
    if (info == api_info_.end()) {
      c_.error(item, with_choices("unknown API " + sluice::quoted(api), api, keys_of(api_info_), "APIs",
                                  "no APIs are defined"));
      continue;
    }
    if (info->second.type == ApiType::http) {
      c_.error(item, "usage plans apply to REST APIs only; " + squoted(api) + " is an HTTP API");
      continue;
    }
    if (!info->second.stage_names.count(stage)) {
      c_.error(item, with_choices("API " + squoted(api) + " has no stage " + sluice::quoted(stage), stage,
                                  keys_of_set(info->second.stage_names), "its stages"));
      continue;
    }
    if (!seen.insert(*s).second) {
      c_.error(item, "stage " + sluice::quoted(*s) + " is listed twice");
      continue;
    }
    plan.stages.emplace_back(api, stage);
  }
}

std::optional<QuotaSpec> Loader::quota(const View& v) {
  auto q = c_.fields(v, {"limit", "period", "offset"}, "a mapping {limit, period: DAY|WEEK|MONTH, offset}");
  if (!q) return std::nullopt;
  QuotaSpec quota;
  bool ok = true;
  if (auto y = q->get("limit")) {
    if (auto n = c_.integer(*y, 1, INT_MAX))
      quota.limit = static_cast<int>(*n);
    else
      ok = false;
  } else {
    c_.missing(v, "limit", "the number of requests allowed per period");
    ok = false;
  }
  bool period_known = false;
  if (auto y = q->get("period")) {
    if (auto p = c_.choice(*y, {"DAY", "WEEK", "MONTH"}, "quota period")) {
      quota.period = *p == "DAY" ? QuotaPeriod::day : *p == "WEEK" ? QuotaPeriod::week : QuotaPeriod::month;
      period_known = true;
    } else {
      ok = false;
    }
  } else {
    c_.missing(v, "period", "DAY, WEEK or MONTH");
    ok = false;
  }
  if (auto y = q->get("offset")) {
    // As on AWS: a DAY quota takes no offset, WEEK 0..6 days, MONTH 0..27 days.
    auto n = c_.integer(*y, 0, 27);
    if (n && period_known && quota.period != QuotaPeriod::month && *n > (quota.period == QuotaPeriod::day ? 0 : 6)) {
      c_.error(*y, std::string(quota.period == QuotaPeriod::day ? "a DAY quota takes no offset (0)"
                                                                : "a WEEK quota's offset is 0 to 6 (days)") +
                       ", found " + std::to_string(*n) + "; MONTH allows 0 to 27");
      n.reset();
    }
    if (n)
      quota.offset = static_cast<int>(*n);
    else
      ok = false;
  }
  if (!ok) return std::nullopt;
  return quota;
}

void Loader::read_plan_keys(const View& v, UsagePlanSpec& plan) {
  auto items = c_.list(v, "a list of API key names");
  if (!items) return;
  std::set<std::string> seen;
  for (const auto& item : *items) {
    auto s = c_.string(item, "an API key name");
    if (!s) continue;
    if (!key_names_.count(*s)) {
      c_.error(item, with_choices("unknown API key " + sluice::quoted(*s), *s, keys_of_set(key_names_), "API keys",
                                  "define it under the top-level 'api_keys:'"));
      continue;
    }
    if (!seen.insert(*s).second) {
      c_.error(item, "API key " + sluice::quoted(*s) + " is listed twice");
      continue;
    }
    // As on AWS, a key belongs to at most one usage plan per API stage.
    for (const auto& [api, stage] : plan.stages) {
      auto [it, inserted] = key_stage_plan_.emplace(std::make_pair(*s, api + "/" + stage), plan.name);
      if (!inserted) {
        c_.error(item, "API key " + sluice::quoted(*s) + " is already in usage plan " + squoted(it->second) +
                           " for stage " + sluice::quoted(api + "/" + stage) +
                           "; a key may belong to only one usage plan per API stage");
        break;
      }
    }
    plan.keys.push_back(*s);
  }
}

void Loader::read_plan_route_throttles(const View& v, UsagePlanSpec& plan) {
  auto entries = c_.named(v, "a mapping of \"API/STAGE/METHOD /path\" to {rate, burst}", true);
  if (!entries) return;
  std::set<std::string> stages;
  for (const auto& [api, stage] : plan.stages) stages.insert(api + "/" + stage);
  for (const auto& [ref, tv] : *entries) {
    auto t = throttle(tv);
    auto first = ref.find('/');
    auto second = first == std::string::npos ? std::string::npos : ref.find('/', first + 1);
    if (second == std::string::npos) {
      c_.error(tv,
               "expected \"API/STAGE/METHOD /path\" (e.g. \"store/prod/GET /movies\"), found " + sluice::quoted(ref));
      continue;
    }
    std::string api_stage = ref.substr(0, second);
    if (!stages.count(api_stage)) {
      c_.error(tv, "stage " + sluice::quoted(api_stage) + " is not among this usage plan's stages" +
                       (stages.empty() ? "" : " (" + list_words(keys_of_set(stages)) + ")"));
      continue;
    }
    auto normal = route_key_ref(tv, ref.substr(second + 1), api_info_[ref.substr(0, first)]);
    if (normal && t) plan.route_throttles[api_stage + "/" + *normal] = *t;
  }
}

}  // namespace sluice::stack::detail
