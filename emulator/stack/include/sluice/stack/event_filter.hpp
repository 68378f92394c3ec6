// Lambda's event filtering for SQS event sources (an event source mapping's FilterCriteria):
// which messages reach the function. The rules are EventBridge's pattern syntax as Lambda
// documents it (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html,
// .../with-sqs-filtering.html): equals (string, number, true/false, null), prefix, suffix,
// equals-ignore-case, anything-but, numeric, exists, and $or. SQS mappings filter on the
// message's `body` only.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::stack {

// What is wrong with a filter pattern (JSON text) of an SQS event source, naming the place in
// it ("body.kind[0]: ..."); empty when it is valid.
std::string sqs_filter_problem(const std::string& pattern);

// The filters of one event source (each a pattern that sqs_filter_problem() accepts). A message
// passes when any filter matches its body; with no filters every message passes.
class SqsFilters {
 public:
  explicit SqsFilters(const std::vector<std::string>& patterns);
  ~SqsFilters();
  SqsFilters(const SqsFilters&) = delete;
  SqsFilters& operator=(const SqsFilters&) = delete;

  bool empty() const;
  bool passes(std::string_view body) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::stack
