#include "sluice/aws/retry.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <random>

namespace sluice::aws {
namespace {
template <std::size_t N>
bool contains(const std::array<std::string_view, N>& names, std::string_view code) {
  return std::find(names.begin(), names.end(), code) != names.end();
}
}  // namespace

bool is_throttling_code(std::string_view code) {
  // The union botocore, the JS SDK and the Java SDK treat as throttling.
  static constexpr std::array<std::string_view, 16> names = {
      "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
      "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
      "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown",
      "PriorRequestNotComplete", "EC2ThrottledException", "ThrottlingError", "TooManyRequests"};
  return contains(names, code);
}

bool is_transient_code(std::string_view code) {
  static constexpr std::array<std::string_view, 5> names = {"RequestTimeout", "RequestTimeoutException",
                                                            "PriorRequestNotComplete", "InternalError",
                                                            "ServiceUnavailable"};
  return contains(names, code);
}

bool is_transient_status(int status) { return status == 500 || status == 502 || status == 503 || status == 504; }

bool is_auth_code(std::string_view code) {
  static constexpr std::array<std::string_view, 14> names = {
      "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException", "InvalidAccessKeyId",
      "ExpiredToken", "ExpiredTokenException", "InvalidToken", "TokenRefreshRequired", "AuthFailure",
      "IncompleteSignature", "InvalidSignatureException", "MissingAuthenticationToken",
      "MissingAuthenticationTokenException", "RequestExpired"};
  return contains(names, code);
}

RetryPolicy::RetryPolicy(int max_attempts, std::function<double()> random)
    : max_attempts_(std::max(1, max_attempts)), random_(std::move(random)) {
  if (!random_) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    random_ = [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
  }
}

bool RetryPolicy::acquire(int attempt, Failure failure, int& last_cost) {
  if (attempt >= max_attempts_) return false;
  int cost = failure == Failure::timeout ? kTimeoutRetryCost : kRetryCost;
  if (tokens_ < cost) return false;
  tokens_ -= cost;
  last_cost = cost;
  return true;
}

std::chrono::milliseconds RetryPolicy::delay(int attempt, Failure failure) {
  const auto base = failure == Failure::throttling ? kThrottlingBaseDelay : kBaseDelay;
  double ceiling = static_cast<double>(base.count());
  for (int i = 1; i < attempt && ceiling < kMaxBackoff.count(); ++i) ceiling *= 2;
  ceiling = std::min(ceiling, static_cast<double>(kMaxBackoff.count()));
  double r = std::clamp(random_(), 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<long long>(r * ceiling));
}

void RetryPolicy::on_success(int last_cost) {
  tokens_ = std::min(kInitialTokens, tokens_ + (last_cost > 0 ? last_cost : kNoRetryIncrement));
}

}  // namespace sluice::aws
