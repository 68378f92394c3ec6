// Schedules: EventBridge scheduled rules that invoke a function with the
// "Scheduled Event" or a constant input.
#include "sluice/stack/event_filter.hpp"

#include <nlohmann/json.hpp>

#include "schema.hpp"

namespace sluice::stack::detail {

namespace {

bool rule_name_char(unsigned char c) { return std::isalnum(c) || c == '.' || c == '-' || c == '_'; }

// A JSON value the stack file gives either written out (a mapping, a list) or as a string
// holding the JSON text, as AWS's APIs take it (EventBridge's Input, a filter's Pattern): the
// compact JSON text, or nullopt when the string does not hold JSON.
std::optional<std::string> json_text(const View& x) {
  if (!x.scalar() || x.n->plain) return to_json(x.n).dump();
  auto parsed = nlohmann::json::parse(x.text(), nullptr, false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed.dump();
}

}  // namespace

// `FUNCTION` or `FUNCTION:QUALIFIER`, naming a function of the stack and (statically) one of
// its versions or aliases; `separate_qualifier`: the mapping also has a 'qualifier' key.
bool Loader::read_function_target(const View& x, bool separate_qualifier, std::string& function,
                                  std::string& qualifier) {
  auto text = c_.string(x, "a function name, optionally with :QUALIFIER");
  if (!text) return false;
  bool ok = true;
  std::string fn = *text, q;
  if (auto colon = fn.find(':'); colon != std::string::npos) {
    q = fn.substr(colon + 1);
    fn = fn.substr(0, colon);
    if (separate_qualifier) {
      c_.error(x, "the qualifier is given twice: in " + sluice::quoted(*text) + " and in 'qualifier'; keep one");
      ok = false;
    }
  }
  if (!function_names_.count(fn)) {
    c_.error(x, with_choices("unknown function " + sluice::quoted(fn), fn, keys_of_set(function_names_), "functions",
                             "no functions are defined"));
    ok = false;
  } else if (auto err = static_qualifier_error(fn, q)) {
    c_.error(x, *err);
    ok = false;
  }
  function = fn;
  qualifier = q;
  return ok;
}

void Loader::read_schedules(const View& v) {
  auto entries = c_.named(v, "a mapping of schedule names to {function, expression, ...}", true);
  if (!entries) return;
  for (const auto& [name, sv] : *entries) {
    if (c_.stopped()) return;
    read_schedule(name, sv);
  }
}

void Loader::read_schedule(const std::string& name, const View& v) {
  if (name.empty() || name.size() > 64 || !chars_in(name, rule_name_char)) {
    c_.error(v, "schedule name " + sluice::quoted(name) +
                    " must be 1 to 64 letters, digits, '.', '-' or '_' (it names an EventBridge rule)");
    return;
  }
  auto f = c_.fields(v, {"function", "qualifier", "expression", "input", "enabled", "description"},
                     "a mapping {function, expression, qualifier, input, enabled, description}");
  if (!f) return;
  ScheduleSpec s;
  s.name = name;
  bool ok = true;

  if (auto x = f->get("function")) {
    ok = read_function_target(*x, f->get("qualifier") != nullptr, s.function, s.qualifier);
  } else {
    c_.missing(v, "function", "the function the schedule invokes");
    ok = false;
  }
  if (auto x = f->get("qualifier")) {
    if (auto q = c_.string(*x, "$LATEST, a version number or an alias")) {
      if (function_names_.count(s.function))
        if (auto err = static_qualifier_error(s.function, *q)) {
          c_.error(*x, *err);
          ok = false;
        }
      if (s.qualifier.empty()) s.qualifier = *q;
    } else {
      ok = false;
    }
  }
  if (auto x = f->get("expression")) {
    if (auto text = c_.string(*x, "rate(value unit) or cron(Minutes Hours Day-of-month Month Day-of-week Year)")) {
      auto parsed = parse_schedule_expression(*text);
      if (auto err = std::get_if<std::string>(&parsed)) {
        c_.error(*x, *err);
        ok = false;
      } else {
        s.expression = std::get<ScheduleExpression>(std::move(parsed));
      }
    } else {
      ok = false;
    }
  } else {
    c_.missing(v, "expression", "rate(value unit), e.g. rate(5 minutes), or cron(...) with six fields");
    ok = false;
  }
  if (auto x = f->get("input")) {
    // A mapping or list is the JSON itself; a string must hold JSON text, as EventBridge's Input does.
    if (x->null()) {
      c_.error(*x, "input is empty; give a mapping (e.g. input: {refresh: true}) or leave 'input' out to send the "
                   "scheduled event");
      ok = false;
    } else if (auto text = json_text(*x)) {
      s.input = std::move(*text);
    } else {
      c_.error(*x, "input must be JSON: a mapping or list written in the stack file, or a string holding JSON "
                   "text; found " + Checker::found(*x) + ", which is not valid JSON");
      ok = false;
    }
  }
  if (auto x = f->get("enabled")) {
    if (auto b = c_.boolean(*x)) s.enabled = *b;
  }
  if (auto x = f->get("description")) {
    if (auto d = c_.string(*x, "a description of at most 512 characters")) {
      if (d->size() > 512)
        c_.error(*x, "a description is at most 512 characters, found " + std::to_string(d->size()));
      else
        s.description = *d;
    }
  }
  if (ok) stack_.schedules[name] = std::move(s);
}

// ---- SQS event source mappings ------------------------------------------------------

void Loader::read_event_sources(const View& v) {
  auto entries = c_.named(v, "a mapping of event source names to {function, queue, batch_size, ...}", true);
  if (!entries) return;
  for (const auto& [name, ev] : *entries) {
    if (c_.stopped()) return;
    read_event_source(name, ev);
  }
}

// FilterCriteria: a list of patterns, each written as a mapping in the stack file or as a string
// holding the JSON (as in CloudFormation's Filters[].Pattern).
bool Loader::read_event_filters(const View& v, std::vector<std::string>& out) {
  auto items = c_.list(v, "a list of filter patterns, e.g. [{body: {kind: [order]}}]");
  if (!items) return false;
  bool ok = true;
  if (items->size() > 10) {
    c_.error(v, "an event source takes at most 10 filters (AWS: 5, and up to 10 with a quota increase), found " +
                    std::to_string(items->size()));
    return false;
  }
  if (items->size() > 5)
    c_.warning(v, std::to_string(items->size()) + " filters: AWS allows 5 per event source unless the account's "
                  "quota was raised (up to 10)");
  for (const auto& item : *items) {
    auto text = json_text(item);
    if (!text) {
      c_.error(item, "a filter written as a string must hold a JSON pattern such as "
                     "'{\"body\": {\"kind\": [\"order\"]}}'; found " + Checker::found(item) + ", which is not JSON");
      ok = false;
    } else if (auto problem = stack::sqs_filter_problem(*text); !problem.empty()) {
      c_.error(item, "invalid filter pattern (AWS: 'Invalid filter pattern definition.'): " + problem);
      ok = false;
    } else {
      out.push_back(std::move(*text));
    }
  }
  return ok;
}

void Loader::read_event_source(const std::string& name, const View& v) {
  if (!valid_name(name, 64)) {
    c_.error(v, "event source name " + sluice::quoted(name) + " must be 1 to 64 letters, digits, '-' or '_'");
    return;
  }
  auto f = c_.fields(v,
                     {"function", "queue", "batch_size", "batching_window", "report_batch_item_failures", "enabled",
                      "max_concurrency", "filters"},
                     "a mapping {function, queue: SQS ARN, batch_size, batching_window, report_batch_item_failures, "
                     "enabled, max_concurrency, filters}");
  if (!f) return;
  EventSourceSpec e;
  e.name = name;
  bool ok = true;
  if (auto x = f->get("function")) {
    ok = read_function_target(*x, false, e.function, e.qualifier);
  } else {
    c_.missing(v, "function", "the function the queue's messages go to");
    ok = false;
  }
  bool fifo = false;
  if (auto x = f->get("queue")) {
    if (auto text = c_.string(*x, "an SQS queue ARN, arn:aws:sqs:REGION:ACCOUNT:QUEUE")) {
      auto arn = parse_arn(*text);
      if (!arn || arn->partition.rfind("aws", 0) != 0 || arn->service != "sqs" || !valid_region(arn->region) ||
          arn->account.size() != 12 || !chars_in(arn->account, digit_char) || arn->resource.empty() ||
          arn->resource.size() > 80 || arn->resource.find(':') != std::string::npos) {
        c_.error(*x, "expected an SQS queue ARN such as arn:aws:sqs:us-east-1:123456789012:orders, found " +
                         sluice::quoted(*text));
        ok = false;
      } else {
        e.queue_arn = *text;
        fifo = ends_with(arn->resource, ".fifo");
      }
    } else {
      ok = false;
    }
  } else {
    c_.missing(v, "queue", "the ARN of the SQS queue to poll, e.g. arn:aws:sqs:us-east-1:123456789012:orders");
    ok = false;
  }
  if (auto x = f->get("batch_size")) {
    if (auto n = c_.integer(*x, 1, 10000)) {
      e.batch_size = static_cast<int>(*n);
      if (fifo && e.batch_size > 10) {
        c_.error(*x, "a FIFO queue is read in batches of at most 10 messages (AWS), found " + std::to_string(*n));
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  if (auto x = f->get("batching_window")) {
    if (auto n = c_.integer(*x, 0, 300)) {
      e.batching_window_s = static_cast<int>(*n);
      if (fifo && *n > 0) {
        c_.error(*x, "a FIFO queue takes no batching window (AWS: batching window is not supported for FIFO "
                     "queues); leave batching_window out or 0");
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  if (ok && e.batch_size > 10 && e.batching_window_s < 1) {
    c_.error(*f->get("batch_size"), "a batch_size over 10 needs a batching_window of at least 1 second (AWS: "
                                    "MaximumBatchingWindowInSeconds must be greater than 0 then)");
    ok = false;
  }
  if (auto x = f->get("report_batch_item_failures")) {
    if (auto b = c_.boolean(*x)) e.report_batch_item_failures = *b;
    else ok = false;
  }
  if (auto x = f->get("enabled")) {
    if (auto b = c_.boolean(*x)) e.enabled = *b;
    else ok = false;
  }
  if (auto x = f->get("max_concurrency")) {
    if (auto n = c_.integer(*x, 2, 1000)) e.max_concurrency = static_cast<int>(*n);
    else ok = false;
  }
  if (auto x = f->get("filters")) {
    if (!read_event_filters(*x, e.filters)) ok = false;
  }
  if (ok) stack_.event_sources[name] = std::move(e);
}

}  // namespace sluice::stack::detail
