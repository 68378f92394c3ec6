// The AWS SDKs' "standard" retry mode, pure logic (no sleeping, no I/O):
//  - at most max_attempts attempts (3);
//  - retryable: throttling codes, transient codes, 500/502/503/504, connection errors;
//  - delay before retry i (1-based): full jitter, rand[0,1) * min(base * 2^(i-1), 20 s), with
//    base 100 ms, or 500 ms after a throttling error (as in AWS SDK for Java v2 / JS v3);
//  - a retry quota shared by a client's calls: 500 tokens, a retry costs 5 (10 after a
//    timeout); a success gives back what its last retry took, or 1 when it needed none.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace sluice::aws {

bool is_throttling_code(std::string_view code);
bool is_transient_code(std::string_view code);
bool is_transient_status(int status);
bool is_auth_code(std::string_view code);

class RetryPolicy {
 public:
  static constexpr int kInitialTokens = 500;
  static constexpr int kRetryCost = 5;
  static constexpr int kTimeoutRetryCost = 10;
  static constexpr int kNoRetryIncrement = 1;
  static constexpr std::chrono::milliseconds kBaseDelay{100};
  static constexpr std::chrono::milliseconds kThrottlingBaseDelay{500};
  static constexpr std::chrono::milliseconds kMaxBackoff{20000};

  // random() returns a number in [0, 1); tests pass a fixed one.
  explicit RetryPolicy(int max_attempts = 3, std::function<double()> random = {});

  enum class Failure { throttling, transient, timeout };

  // After attempt `attempt` (1-based) failed: may it be retried? Takes the tokens when so.
  // `last_cost` keeps what the latest retry of this call took, for on_success.
  bool acquire(int attempt, Failure failure, int& last_cost);
  std::chrono::milliseconds delay(int attempt, Failure failure);
  void on_success(int last_cost);

  int tokens() const { return tokens_; }
  int max_attempts() const { return max_attempts_; }

 private:
  int max_attempts_;
  int tokens_ = kInitialTokens;
  std::function<double()> random_;
};

}  // namespace sluice::aws
