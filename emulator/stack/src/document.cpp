#include "document.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "sluice/common/util.hpp"

namespace sluice::stack::detail {

namespace {

constexpr std::size_t max_file_bytes = 8u * 1024 * 1024;
constexpr int max_json_depth = 256;

Problem file_problem(std::string message, int line = 0) {
  Problem p;
  p.message = std::move(message);
  p.line = line;
  return p;
}

bool is_ident_segment(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '_' || c == '-')) return false;
  return true;
}

int line_of_offset(const std::string& text, std::size_t offset) {
  int line = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i)
    if (text[i] == '\n') ++line;
  return line;
}

// Rejects what no parser should see: binary data, invalid UTF-8, absurd sizes.
// Returns false (with a problem) when the text is not worth parsing.
bool precheck(const std::string& text, std::vector<Problem>& problems) {
  if (text.size() > max_file_bytes) {
    problems.push_back(file_problem("the file is " + std::to_string(text.size()) +
                                    " bytes; a stack file may be at most " + std::to_string(max_file_bytes) +
                                    " bytes"));
    return false;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02x", c);
      problems.push_back(file_problem(std::string("the file contains the control character ") + buf +
                                          "; a stack file is YAML or JSON text (is this a binary file?)",
                                      line_of_offset(text, i)));
      return false;
    }
  }
  if (!valid_utf8(text)) {
    // Find the first offending line for the report.
    std::size_t start = 0;
    int line = 1;
    while (start <= text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      if (!valid_utf8(std::string_view(text).substr(start, end - start))) break;
      start = end + 1;
      ++line;
    }
    problems.push_back(file_problem("the file is not valid UTF-8 text", line));
    return false;
  }
  return true;
}

// ---- JSON -------------------------------------------------------------------

class JsonParser {
 public:
  explicit JsonParser(const std::string& t) : t_(t) {}

  NodeP parse(std::string& error, int& error_line) {
    try {
      skip_ws();
      auto n = value(0);
      skip_ws();
      if (i_ < t_.size()) fail("unexpected " + describe_here() + " after the end of the JSON value");
      return n;
    } catch (const Failure& f) {
      error = f.message;
      error_line = f.line;
      return nullptr;
    }
  }

 private:
  struct Failure {
    std::string message;
    int line;
  };

  [[noreturn]] void fail(const std::string& msg) { throw Failure{msg, line_}; }

  std::string describe_here() const {
    if (i_ >= t_.size()) return "end of file";
    unsigned char c = static_cast<unsigned char>(t_[i_]);
    if (c >= 0x20 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
    char buf[16];
    std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    return buf;
  }

  void skip_ws() {
    while (i_ < t_.size()) {
      char c = t_[i_];
      if (c == '\n') {
        ++line_;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        break;
      }
      ++i_;
    }
  }

  std::shared_ptr<Node> value(int depth) {
    if (depth > max_json_depth) fail("JSON nested more than " + std::to_string(max_json_depth) + " levels deep");
    if (i_ >= t_.size()) fail("unexpected end of file; expected a JSON value");
    char c = t_[i_];
    auto n = std::make_shared<Node>();
    n->line = line_;
    if (c == '{') {
      n->kind = Node::Kind::map;
      ++i_;
      skip_ws();
      if (i_ < t_.size() && t_[i_] == '}') {
        ++i_;
        return n;
      }
      for (;;) {
        skip_ws();
        if (i_ < t_.size() && t_[i_] == '}' && !n->entries.empty())
          fail("trailing comma before '}' (JSON allows none)");
        if (i_ >= t_.size() || t_[i_] != '"') fail("expected a quoted key, found " + describe_here());
        Entry e;
        e.key_line = line_;
        e.key = string();
        skip_ws();
        if (i_ >= t_.size() || t_[i_] != ':')
          fail("expected ':' after key \"" + e.key + "\", found " + describe_here());
        ++i_;
        skip_ws();
        e.value = value(depth + 1);
        n->entries.push_back(std::move(e));
        skip_ws();
        if (i_ < t_.size() && t_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < t_.size() && t_[i_] == '}') {
          ++i_;
          return n;
        }
        fail("expected ',' or '}' in an object, found " + describe_here());
      }
    }
    if (c == '[') {
      n->kind = Node::Kind::seq;
      ++i_;
      skip_ws();
      if (i_ < t_.size() && t_[i_] == ']') {
        ++i_;
        return n;
      }
      for (;;) {
        skip_ws();
        if (i_ < t_.size() && t_[i_] == ']' && !n->items.empty()) fail("trailing comma before ']' (JSON allows none)");
        n->items.push_back(value(depth + 1));
        skip_ws();
        if (i_ < t_.size() && t_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < t_.size() && t_[i_] == ']') {
          ++i_;
          return n;
        }
        fail("expected ',' or ']' in an array, found " + describe_here());
      }
    }
    if (c == '"') {
      n->kind = Node::Kind::scalar;
      n->text = string();
      return n;
    }
    if (literal("true") || literal("false")) {
      n->kind = Node::Kind::scalar;
      n->plain = true;
      n->text = c == 't' ? "true" : "false";
      return n;
    }
    if (literal("null")) return n;
    if (c == '-' || (c >= '0' && c <= '9')) {
      n->kind = Node::Kind::scalar;
      n->plain = true;
      n->text = number();
      return n;
    }
    fail("expected a JSON value, found " + describe_here());
  }

  bool literal(std::string_view word) {
    if (t_.compare(i_, word.size(), word) == 0) {
      std::size_t end = i_ + word.size();
      if (end < t_.size() && std::isalnum(static_cast<unsigned char>(t_[end]))) return false;
      i_ = end;
      return true;
    }
    return false;
  }

  std::string number() {
    std::size_t start = i_;
    auto digits = [&] {
      std::size_t s = i_;
      while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') ++i_;
      return i_ - s;
    };
    if (t_[i_] == '-') ++i_;
    if (i_ < t_.size() && t_[i_] == '0') {
      ++i_;
    } else if (digits() == 0) {
      fail("malformed number");
    }
    if (i_ < t_.size() && t_[i_] == '.') {
      ++i_;
      if (digits() == 0) fail("malformed number: digits expected after '.'");
    }
    if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
      ++i_;
      if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-')) ++i_;
      if (digits() == 0) fail("malformed number: digits expected in the exponent");
    }
    return t_.substr(start, i_ - start);
  }

  static void put_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  std::uint32_t hex4() {
    if (i_ + 4 > t_.size()) fail("truncated \\u escape");
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = t_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= c - '0';
      else if (c >= 'a' && c <= 'f')
        v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        v |= c - 'A' + 10;
      else
        fail("malformed \\u escape");
    }
    return v;
  }

  std::string string() {
    ++i_;  // opening quote
    std::string out;
    for (;;) {
      if (i_ >= t_.size()) fail("unterminated string");
      char c = t_[i_++];
      if (c == '"') return out;
      if (c == '\n') fail("unterminated string (a JSON string cannot span lines)");
      if (static_cast<unsigned char>(c) < 0x20) fail("control character inside a string; escape it");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= t_.size()) fail("unterminated string");
      char e = t_[i_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (i_ + 1 < t_.size() && t_[i_] == '\\' && t_[i_ + 1] == 'u') {
              i_ += 2;
              std::uint32_t lo = hex4();
              if (lo < 0xdc00 || lo > 0xdfff) fail("invalid surrogate pair in \\u escape");
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else {
              fail("lone surrogate in \\u escape");
            }
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            fail("lone surrogate in \\u escape");
          }
          put_utf8(out, cp);
          break;
        }
        default:
          fail(std::string("invalid escape '\\") + e + "' in a string");
      }
    }
  }

  const std::string& t_;
  std::size_t i_ = 0;
  int line_ = 1;
};

// ---- YAML -------------------------------------------------------------------

int mark_line(const YAML::Mark& m) { return m.line >= 0 ? m.line + 1 : 0; }

// Builds the tree from yaml-cpp's event stream, iteratively, so depth costs no stack.
class TreeBuilder : public YAML::EventHandler {
 public:
  explicit TreeBuilder(std::vector<Problem>& problems) : problems_(problems) {}

  NodeP root() const { return root_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto n = std::make_shared<Node>();
    n->line = mark_line(mark);
    remember(anchor, n);
    add(n);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end() || open_.count(anchor)) {
      report(mark, "this alias refers to a node that contains it (recursive anchors are not allowed)");
      auto n = std::make_shared<Node>();
      n->line = mark_line(mark);
      add(n);
      return;
    }
    add(it->second);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    auto n = std::make_shared<Node>();
    n->kind = Node::Kind::scalar;
    n->line = mark_line(mark);
    n->text = value;
    n->plain = scalar_plain(mark, tag);
    remember(anchor, n);
    add(n);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, tag, anchor, Node::Kind::seq);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, tag, anchor, Node::Kind::map);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    std::shared_ptr<Node> node;
    YAML::anchor_t anchor = 0;
    std::string path;
    bool have_key = false;
    Entry pending;
  };

  void report(const YAML::Mark& mark, std::string message) {
    Problem p;
    p.path = current_path();
    p.line = mark_line(mark);
    p.message = std::move(message);
    problems_.push_back(std::move(p));
  }

  // The dotted path of the node about to be added, for tree-level complaints.
  std::string current_path() const {
    if (stack_.empty()) return "";
    const Frame& f = stack_.back();
    if (f.node->kind == Node::Kind::seq) return index_path(f.path, f.node->items.size());
    if (f.have_key) return join_path(f.path, f.pending.key);
    return f.path;
  }

  bool scalar_plain(const YAML::Mark& mark, const std::string& tag) {
    if (tag == "?") return true;
    if (tag == "!" || tag.empty()) return false;
    static const std::string core = "tag:yaml.org,2002:";
    if (tag == core + "str" || tag == core + "binary") return false;
    if (tag == core + "int" || tag == core + "float" || tag == core + "bool" || tag == core + "null") return true;
    unsupported_tag(mark, tag);
    return false;
  }

  void unsupported_tag(const YAML::Mark& mark, const std::string& tag) {
    report(mark, "unsupported YAML tag " + sluice::quoted(tag) +
                     "; a stack file is plain YAML (CloudFormation functions such as !Ref or !Sub are not "
                     "supported)");
  }

  void remember(YAML::anchor_t anchor, const std::shared_ptr<Node>& n) {
    if (anchor != YAML::NullAnchor) anchors_[anchor] = n;
  }

  void open(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor, Node::Kind kind) {
    if (!(tag == "?" || tag == "!" || tag.empty() || tag == "tag:yaml.org,2002:map" || tag == "tag:yaml.org,2002:seq" ||
          tag == "tag:yaml.org,2002:omap"))
      unsupported_tag(mark, tag);
    auto n = std::make_shared<Node>();
    n->kind = kind;
    n->line = mark_line(mark);
    Frame f;
    f.path = current_path();
    add(n);
    f.node = n;
    f.anchor = anchor;
    if (anchor != YAML::NullAnchor) {
      anchors_[anchor] = n;
      open_.insert(anchor);
    }
    stack_.push_back(std::move(f));
  }

  void close() {
    if (stack_.empty()) return;
    Frame& f = stack_.back();
    if (f.node->kind == Node::Kind::map && f.have_key) {
      // A key without a value cannot come from the parser, but stay safe.
      f.pending.value = std::make_shared<Node>();
      f.node->entries.push_back(std::move(f.pending));
    }
    if (f.anchor != YAML::NullAnchor) open_.erase(f.anchor);
    stack_.pop_back();
  }

  void add(const NodeP& n) {
    if (stack_.empty()) {
      if (!root_) root_ = n;
      return;
    }
    Frame& f = stack_.back();
    if (f.node->kind == Node::Kind::seq) {
      f.node->items.push_back(n);
      return;
    }
    if (!f.have_key) {
      f.have_key = true;
      f.pending = Entry{};
      f.pending.key_line = n->line;
      if (n->kind == Node::Kind::scalar) {
        f.pending.key = n->text;
      } else if (n->kind == Node::Kind::null) {
        f.pending.key = "";
        Problem p;
        p.path = f.path;
        p.line = n->line;
        p.message = "a mapping key is empty (null)";
        problems_.push_back(std::move(p));
      } else {
        f.pending.key = "?";
        Problem p;
        p.path = f.path;
        p.line = n->line;
        p.message = "a mapping key must be a plain string, not a list or a mapping";
        problems_.push_back(std::move(p));
      }
      return;
    }
    f.pending.value = n;
    f.node->entries.push_back(std::move(f.pending));
    f.pending = Entry{};
    f.have_key = false;
  }

  std::vector<Problem>& problems_;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, NodeP> anchors_;
  std::set<YAML::anchor_t> open_;
  NodeP root_;
};

// Where the first tab-indented line is, for a friendlier syntax error.
int first_tab_indented_line(const std::string& text) {
  int line = 1;
  bool at_start = true;
  for (char c : text) {
    if (c == '\n') {
      ++line;
      at_start = true;
      continue;
    }
    if (at_start) {
      if (c == '\t') return line;
      if (c != ' ') at_start = false;
    }
  }
  return 0;
}

std::string strip_bom(const std::string& text) {
  if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xef && static_cast<unsigned char>(text[1]) == 0xbb &&
      static_cast<unsigned char>(text[2]) == 0xbf)
    return text.substr(3);
  return text;
}

}  // namespace

std::string join_path(const std::string& parent, const std::string& key) {
  std::string seg;
  if (is_ident_segment(key) && !std::isdigit(static_cast<unsigned char>(key[0]))) {
    seg = parent.empty() ? key : "." + key;
  } else {
    std::string q = "[\"";
    for (unsigned char c : key) {
      if (c == '"' || c == '\\') {
        q.push_back('\\');
        q.push_back(static_cast<char>(c));
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        q += buf;
      } else {
        q.push_back(static_cast<char>(c));
      }
    }
    q += "\"]";
    seg = q;
  }
  return parent + seg;
}

std::string index_path(const std::string& parent, std::size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

ParsedDocument parse_json(const std::string& raw) {
  ParsedDocument doc;
  doc.json = true;
  std::string text = strip_bom(raw);
  if (!precheck(text, doc.problems)) return doc;
  std::string error;
  int line = 0;
  try {
    JsonParser p(text);
    doc.root = p.parse(error, line);
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unreadable JSON";
  }
  if (!doc.root) doc.problems.push_back(file_problem("JSON syntax error: " + error, line));
  return doc;
}

ParsedDocument parse_yaml(const std::string& raw) {
  ParsedDocument doc;
  std::string text = strip_bom(raw);
  if (!precheck(text, doc.problems)) return doc;
  std::vector<Problem> tree_problems;
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    TreeBuilder builder(tree_problems);
    parser.HandleNextDocument(builder);
    doc.root = builder.root();
    // A second document is almost always an accident ('---' between two stacks).
    TreeBuilder rest(tree_problems);
    std::size_t before = tree_problems.size();
    if (parser.HandleNextDocument(rest)) {
      tree_problems.resize(before);
      int line = rest.root() ? rest.root()->line : 0;
      tree_problems.push_back(file_problem(
          "the file holds more than one YAML document (separated by '---'); a stack file holds exactly one", line));
    }
  } catch (const YAML::DeepRecursion& e) {
    doc.root = nullptr;
    doc.problems.push_back(file_problem("YAML nested too deeply to read (over " + std::to_string(e.depth()) +
                                            " levels of lists and mappings); a stack file needs a handful",
                                        mark_line(e.mark)));
    return doc;
  } catch (const YAML::Exception& e) {
    doc.root = nullptr;
    int line = mark_line(e.mark);
    std::string msg = "YAML syntax error: " + e.msg;
    int tab = first_tab_indented_line(text);
    if (tab && (line == 0 || tab <= line))
      msg += " (line " + std::to_string(tab) + " is indented with a tab; YAML indentation must use spaces)";
    doc.problems.push_back(file_problem(std::move(msg), line));
    return doc;
  } catch (const std::exception& e) {
    doc.root = nullptr;
    doc.problems.push_back(file_problem(std::string("YAML syntax error: ") + e.what()));
    return doc;
  } catch (...) {
    doc.root = nullptr;
    doc.problems.push_back(file_problem("YAML syntax error"));
    return doc;
  }
  for (auto& p : tree_problems) doc.problems.push_back(std::move(p));
  return doc;
}

ParsedDocument parse_document(const std::string& raw) {
  std::string text = strip_bom(raw);
  std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '{' || text[first] == '[')) {
    ParsedDocument json = parse_json(text);
    if (json.root) return json;
    // `{"name": ...` is JSON and gets JSON's errors; `{name: x}` is flow-style
    // YAML, which is read as YAML.
    std::size_t next = text.find_first_not_of(" \t\r\n", first + 1);
    bool json_like = text[first] == '[' || next == std::string::npos || text[next] == '"' || text[next] == '}';
    if (json_like) return json;
    return parse_yaml(text);
  }
  return parse_yaml(text);
}

}  // namespace sluice::stack::detail
