// Typed reading of the document tree with problem reporting: every accessor
// reports what it found and what is allowed, and returns nothing on a
// mismatch so the caller moves on to the next field (all problems at once).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "document.hpp"

namespace sluice::stack::detail {

// A node seen at a place in the stack file: its dotted path and its line.
struct View {
  const Node* n = nullptr;
  std::string path;
  int line = 0;

  bool null() const { return !n || n->kind == Node::Kind::null; }
  bool scalar() const { return n && n->kind == Node::Kind::scalar; }
  bool map() const { return n && n->kind == Node::Kind::map; }
  bool seq() const { return n && n->kind == Node::Kind::seq; }
  const std::string& text() const;
};

// A mapping with a fixed set of keys.
struct Fields {
  View self;
  std::map<std::string, View> by_key;
  const View* get(const std::string& key) const {
    auto it = by_key.find(key);
    return it == by_key.end() ? nullptr : &it->second;
  }
  bool has(const std::string& key) const { return by_key.count(key) != 0; }
};

class Checker {
 public:
  explicit Checker(std::vector<Problem>& out) : out_(out) {}

  void error(const std::string& path, int line, std::string message);
  void warning(const std::string& path, int line, std::string message);
  void error(const View& at, std::string message) { error(at.path, at.line, std::move(message)); }
  void warning(const View& at, std::string message) { warning(at.path, at.line, std::move(message)); }
  std::size_t errors() const { return errors_; }
  // Set when the problem cap or the work budget is exhausted: callers stop.
  bool stopped() const { return stopped_; }

  // How a value reads in a message: "big", 12, a mapping, a list, nothing.
  static std::string found(const View& v);

  // A mapping with known keys; unknown keys get the nearest valid name and the
  // list of allowed keys; duplicate keys are errors (the first one is used).
  // `null_ok`: a missing value (`prod:`) reads as an empty mapping.
  std::optional<Fields> fields(const View& v, const std::vector<std::string>& allowed, std::string_view expected,
                               bool null_ok = false);
  // A mapping whose keys are names chosen by the user (functions, routes...).
  std::optional<std::vector<std::pair<std::string, View>>> named(const View& v, std::string_view expected,
                                                                 bool null_ok = false);
  // A list; `scalar_ok` turns a single scalar into a one-item list.
  std::optional<std::vector<View>> list(const View& v, std::string_view expected, bool scalar_ok = false);

  std::optional<std::string> string(const View& v, std::string_view expected = "a string");
  std::optional<long long> integer(const View& v, long long lo, long long hi);
  std::optional<double> number(const View& v, std::string_view expected);
  std::optional<bool> boolean(const View& v);
  // A scalar that must be one of `choices`, with a suggestion when it is not.
  std::optional<std::string> choice(const View& v, const std::vector<std::string>& choices, std::string_view what);

  void missing(const View& parent, const std::string& key, const std::string& hint = "");

  View child(const View& parent, const Entry& e);
  View item(const View& parent, std::size_t index);

 private:
  void add(Problem p);
  bool spend();

  std::vector<Problem>& out_;
  std::size_t errors_ = 0;
  std::size_t work_ = 0;
  bool stopped_ = false;
};

// Plain scalars that read as numbers.
bool looks_integer(const std::string& s);
bool looks_number(const std::string& s);
std::string describe_int_range(long long lo, long long hi);
std::string list_words(const std::vector<std::string>& words);
// 'name', with control characters escaped as quoted() does.
std::string squoted(std::string_view s);

}  // namespace sluice::stack::detail
