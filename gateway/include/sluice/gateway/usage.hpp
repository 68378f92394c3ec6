// API keys, usage plans, throttling and quotas (reference §4.7), as pure state
// driven by an explicit clock so it can be tested without sleeping.
#pragma once

#include "sluice/stack/model.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

namespace sluice::gateway {

// Token bucket: `burst` tokens, refilled at `rate` per second.
class TokenBucket {
 public:
  TokenBucket() = default;
  TokenBucket(double rate, int burst, std::chrono::steady_clock::time_point now);
  bool take(std::chrono::steady_clock::time_point now);
  void reconfigure(double rate, int burst);

 private:
  double rate_ = 0, burst_ = 0, tokens_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

struct KeyCheck {
  bool ok = false;                            // the key exists, is enabled and is in a plan for this stage
  const stack::ApiKeySpec* key = nullptr;
  const stack::UsagePlanSpec* plan = nullptr;
};

enum class Verdict { allow, throttled, quota_exceeded };

class UsageControl {
 public:
  // The account's limit defaults to AWS's default quota (10,000 rps, burst 5,000); an account
  // can have it raised, as `--account-throttle` does.
  explicit UsageControl(const stack::Stack& stack, stack::Throttle account = {10000, 5000});

  // The key value a client sent (x-api-key), or the authorizer's usageIdentifierKey.
  KeyCheck check_key(const std::string& api, const std::string& stage, const std::optional<std::string>& value) const;

  // Throttling in AWS's order: the usage plan (per key, per-route override
  // first), then the stage's route throttle, then the stage default, then the
  // account (10,000 rps, 5,000 burst). Quota is counted per key per period
  // (UTC day, week from Monday, calendar month; with the plan's offset) and only
  // for requests that pass the throttles.
  Verdict admit(const std::string& api, const std::string& stage, const std::string& route_key, const KeyCheck* key,
                std::chrono::steady_clock::time_point now, std::chrono::system_clock::time_point wall_now);

  // Remaining quota for a key (for tests and logs); nullopt when the plan has no quota.
  std::optional<long> remaining(const std::string& key_name, std::chrono::system_clock::time_point wall_now) const;

 private:
  const stack::Stack* stack_;
  std::map<std::string, TokenBucket> buckets_;  // by scope id
  struct QuotaState {
    long period_index = -1;
    long used = 0;
  };
  std::map<std::string, QuotaState> quotas_;  // by key name + plan
  stack::Throttle account_limit_;
  TokenBucket account_;
  bool account_init_ = false;
  // Added: lookups built once from the stack (key by value, key+stage -> plan,
  // resolved per-route limits, precomputed scope ids), defined in usage.cpp.
  // Shared and immutable, so copies of a UsageControl stay cheap and valid.
  struct Index;
  std::shared_ptr<const Index> index_;
};

// Which quota period a time falls into, as a number that changes when the
// period rolls over (pure; exposed for tests).
long quota_period_index(stack::QuotaPeriod period, int offset, std::chrono::system_clock::time_point t);

}  // namespace sluice::gateway
