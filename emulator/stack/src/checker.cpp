#include "checker.hpp"

#include <charconv>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <regex>

#include "sluice/common/util.hpp"

namespace sluice::stack::detail {

namespace {
constexpr std::size_t max_problems = 500;
// Aliases can make a small file expand enormously; validation stops past this many nodes.
constexpr std::size_t max_work = 2'000'000;
const std::string empty_text;
}  // namespace

const std::string& View::text() const { return scalar() ? n->text : empty_text; }

bool looks_integer(const std::string& s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

bool looks_number(const std::string& s) {
  static const std::regex re(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
  return s.size() < 400 && std::regex_match(s, re);
}

std::string describe_int_range(long long lo, long long hi) {
  if (hi == LLONG_MAX) return "an integer >= " + std::to_string(lo);
  return "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

std::string list_words(const std::vector<std::string>& words) { return join(words, ", "); }

std::string squoted(std::string_view s) {
  std::string q = sluice::quoted(s);
  q.front() = '\'';
  q.back() = '\'';
  return q;
}

void Checker::add(Problem p) {
  if (stopped_) return;
  if (out_.size() >= max_problems) {
    Problem stop;
    stop.message = "too many problems; stopped after the first " + std::to_string(max_problems);
    out_.push_back(std::move(stop));
    ++errors_;
    stopped_ = true;
    return;
  }
  if (!p.warning) ++errors_;
  out_.push_back(std::move(p));
}

void Checker::error(const std::string& path, int line, std::string message) {
  Problem p;
  p.path = path;
  p.line = line;
  p.message = std::move(message);
  add(std::move(p));
}

void Checker::warning(const std::string& path, int line, std::string message) {
  Problem p;
  p.path = path;
  p.line = line;
  p.message = std::move(message);
  p.warning = true;
  add(std::move(p));
}

bool Checker::spend() {
  if (stopped_) return false;
  if (++work_ > max_work) {
    Problem p;
    p.message = "the file expands (through YAML aliases) to more than " + std::to_string(max_work) +
                " values; validation stopped";
    out_.push_back(std::move(p));
    ++errors_;
    stopped_ = true;
    return false;
  }
  return true;
}

std::string Checker::found(const View& v) {
  if (v.null()) return "nothing";
  if (v.map()) return "a mapping";
  if (v.seq()) return "a list";
  std::string shown = v.n->text;
  if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
  if (v.n->plain && looks_number(v.n->text)) return shown;
  return sluice::quoted(shown);
}

View Checker::child(const View& parent, const Entry& e) {
  spend();
  return View{e.value.get(), join_path(parent.path, e.key), e.key_line ? e.key_line : parent.line};
}

View Checker::item(const View& parent, std::size_t index) {
  spend();
  const Node* n = parent.n->items[index].get();
  return View{n, index_path(parent.path, index), n && n->line ? n->line : parent.line};
}

void Checker::missing(const View& parent, const std::string& key, const std::string& hint) {
  error(parent, "missing required key '" + key + "'" + (hint.empty() ? "" : "; " + hint));
}

std::optional<Fields> Checker::fields(const View& v, const std::vector<std::string>& allowed, std::string_view expected,
                                      bool null_ok) {
  if (stopped_) return std::nullopt;
  Fields f;
  f.self = v;
  if (v.null() && null_ok) return f;
  if (!v.map()) {
    error(v, "expected " + std::string(expected) + ", found " + found(v));
    return std::nullopt;
  }
  std::map<std::string, int> first_line;
  for (const auto& e : v.n->entries) {
    if (stopped_) break;
    View c = child(v, e);
    auto seen = first_line.find(e.key);
    if (seen != first_line.end()) {
      error(c, "duplicate key '" + e.key + "' (first defined on line " + std::to_string(seen->second) + ")");
      continue;
    }
    first_line[e.key] = c.line;
    bool known = false;
    for (const auto& a : allowed) known = known || a == e.key;
    if (!known && e.key == "<<") {
      error(c, "YAML merge keys ('<<: *anchor') are not supported: write the keys out (anchors and aliases of "
               "whole values work, and 'defaults:' sets what every function shares)");
      continue;
    }
    if (!known) {
      std::string msg = "unknown key " + squoted(e.key);
      std::string near = nearest(e.key, allowed);
      if (!near.empty()) msg += "; did you mean '" + near + "'?";
      msg += (near.empty() ? "; allowed keys: " : " Allowed keys: ") + list_words(allowed);
      error(c, msg);
      continue;
    }
    f.by_key.emplace(e.key, c);
  }
  return f;
}

std::optional<std::vector<std::pair<std::string, View>>> Checker::named(const View& v, std::string_view expected,
                                                                        bool null_ok) {
  if (stopped_) return std::nullopt;
  std::vector<std::pair<std::string, View>> out;
  if (v.null() && null_ok) return out;
  if (!v.map()) {
    error(v, "expected " + std::string(expected) + ", found " + found(v));
    return std::nullopt;
  }
  std::map<std::string, int> first_line;
  for (const auto& e : v.n->entries) {
    if (stopped_) break;
    View c = child(v, e);
    auto seen = first_line.find(e.key);
    if (seen != first_line.end()) {
      error(c, "duplicate key " + squoted(e.key) + " (first defined on line " + std::to_string(seen->second) + ")");
      continue;
    }
    first_line[e.key] = c.line;
    out.emplace_back(e.key, c);
  }
  return out;
}

std::optional<std::vector<View>> Checker::list(const View& v, std::string_view expected, bool scalar_ok) {
  if (stopped_) return std::nullopt;
  if (scalar_ok && v.scalar()) return std::vector<View>{v};
  if (!v.seq()) {
    error(v, "expected " + std::string(expected) + ", found " + found(v));
    return std::nullopt;
  }
  std::vector<View> out;
  for (std::size_t i = 0; i < v.n->items.size() && !stopped_; ++i) out.push_back(item(v, i));
  return out;
}

std::optional<std::string> Checker::string(const View& v, std::string_view expected) {
  if (!v.scalar()) {
    error(v, "expected " + std::string(expected) + ", found " + found(v));
    return std::nullopt;
  }
  return v.n->text;
}

std::optional<long long> Checker::integer(const View& v, long long lo, long long hi) {
  std::string expected = describe_int_range(lo, hi);
  if (!v.scalar()) {
    error(v, "expected " + expected + ", found " + found(v));
    return std::nullopt;
  }
  const std::string& t = v.n->text;
  if (!v.n->plain) {
    if (looks_integer(t))
      error(v, "expected " + expected + ", found the string " + sluice::quoted(t) + " (write numbers without quotes)");
    else
      error(v, "expected " + expected + ", found " + found(v));
    return std::nullopt;
  }
  if (!looks_integer(t)) {
    error(v, "expected " + expected + ", found " + found(v));
    return std::nullopt;
  }
  long long value = 0;
  const char* b = t.data() + (t[0] == '+' ? 1 : 0);
  auto [ptr, ec] = std::from_chars(b, t.data() + t.size(), value);
  if (ec != std::errc() || ptr != t.data() + t.size() || value < lo || value > hi) {
    error(v, "expected " + expected + ", found " + found(v));
    return std::nullopt;
  }
  return value;
}

std::optional<double> Checker::number(const View& v, std::string_view expected) {
  if (!v.scalar() || !looks_number(v.n->text)) {
    error(v, "expected " + std::string(expected) + ", found " + found(v));
    return std::nullopt;
  }
  if (!v.n->plain) {
    error(v, "expected " + std::string(expected) + ", found the string " + sluice::quoted(v.n->text) +
                 " (write numbers without quotes)");
    return std::nullopt;
  }
  errno = 0;
  double d = std::strtod(v.n->text.c_str(), nullptr);
  if (!std::isfinite(d) || errno == ERANGE) {
    error(v, "expected " + std::string(expected) + ", found " + found(v) + " (out of range)");
    return std::nullopt;
  }
  return d;
}

std::optional<bool> Checker::boolean(const View& v) {
  if (v.scalar() && v.n->plain) {
    const std::string& t = v.n->text;
    if (t == "true" || t == "True" || t == "TRUE") return true;
    if (t == "false" || t == "False" || t == "FALSE") return false;
  }
  std::string msg = "expected true or false, found " + found(v);
  if (v.scalar() && !v.n->plain && (v.n->text == "true" || v.n->text == "false"))
    msg += " (write booleans without quotes)";
  error(v, msg);
  return std::nullopt;
}

std::optional<std::string> Checker::choice(const View& v, const std::vector<std::string>& choices,
                                           std::string_view what) {
  if (!v.scalar()) {
    error(v, "expected " + std::string(what) + " (one of " + list_words(choices) + "), found " + found(v));
    return std::nullopt;
  }
  for (const auto& c : choices)
    if (c == v.n->text) return c;
  std::string msg = "unknown " + std::string(what) + " " + sluice::quoted(v.n->text);
  std::string near = nearest(v.n->text, choices);
  if (!near.empty()) msg += "; did you mean " + sluice::quoted(near) + "?";
  msg += (near.empty() ? "; allowed: " : " Allowed: ") + list_words(choices);
  error(v, msg);
  return std::nullopt;
}

}  // namespace sluice::stack::detail
