#include "sluice/lambda/payload_check.hpp"

#include "sluice/common/util.hpp"

#include <cstdio>
#include <cctype>
#include <vector>

namespace sluice::lambda {
namespace {

constexpr const char* expected_value =
    "expected a valid value (JSON String, Number, Array, Object or token 'null', 'true' or 'false')";

class Checker {
 public:
  explicit Checker(std::string_view s) : s_(s) {}

  std::optional<std::string> run() {
    skip_ws();
    if (i_ >= s_.size()) return fail("No content to map due to end-of-input");
    if (!value(0)) return error_;
    skip_ws();
    if (i_ < s_.size()) {
      return fail(unexpected(static_cast<unsigned char>(s_[i_])) +
                  ": expected end-of-input after the root value");
    }
    return std::nullopt;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
  std::optional<std::string> error_;

  // consumed: the location is just after the byte at i_ - 1, on that byte's
  // line (Jackson does not count a line break it consumed while reporting).
  std::optional<std::string> fail(const std::string& what, bool consumed = false) {
    // Jackson's location suffix: 1-based line and column of the offending byte.
    std::size_t line = 1, col = 1;
    std::size_t end = consumed && i_ > 0 ? i_ - 1 : i_;
    for (std::size_t k = 0; k < end && k < s_.size(); ++k) {
      if (s_[k] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    if (end < i_) ++col;
    error_ = what + "\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: " +
             std::to_string(line) + ", column: " + std::to_string(col) + "]";
    return error_;
  }

  static std::string unexpected(unsigned char c) {
    char buf[96];
    if (c < 32 || (c >= 127 && c < 160))
      std::snprintf(buf, sizeof buf, "Unexpected character ((CTRL-CHAR, code %u))", c);
    else if (c < 127)
      std::snprintf(buf, sizeof buf, "Unexpected character ('%c' (code %u))", c, c);
    else
      std::snprintf(buf, sizeof buf, "Unexpected character ((code %u))", c);
    return buf;
  }

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  bool value(int depth) {
    skip_ws();
    if (i_ >= s_.size()) {
      fail("Unexpected end-of-input: expected a value");
      return false;
    }
    char c = s_[i_];
    if ((c == '{' || c == '[') && depth + 1 > max_depth) {
      // Jackson's StreamReadConstraints: a StreamConstraintsException, which carries no location.
      error_ = "Document nesting depth (" + std::to_string(depth + 1) + ") exceeds the maximum allowed (" +
               std::to_string(max_depth) + ", from `StreamReadConstraints.getMaxNestingDepth()`)";
      return false;
    }
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return string();
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    if (identifier_start(static_cast<unsigned char>(c))) return literal();
    fail(unexpected(static_cast<unsigned char>(c)) + ": " + expected_value);
    return false;
  }

  static constexpr int max_depth = 1000;
  static constexpr std::size_t max_error_token = 256;

  // Character.isJavaIdentifierStart / isJavaIdentifierPart, for ASCII.
  static bool identifier_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
  }
  static bool identifier_part(unsigned char c) {
    return identifier_start(c) || (c >= '0' && c <= '9') || c <= 0x08 || (c >= 0x0e && c <= 0x1b) || c == 0x7f;
  }

  bool literal() {
    std::size_t start = i_;
    while (i_ < s_.size() && i_ - start < max_error_token && identifier_part(static_cast<unsigned char>(s_[i_])))
      ++i_;
    std::string_view tok = s_.substr(start, i_ - start);
    if (tok == "true" || tok == "false" || tok == "null") return true;
    // Jackson's _reportInvalidToken: it goes on consuming the characters that
    // could belong to the token, decoding UTF-8 as it goes (so a bad byte there
    // is reported as such), consumes the character that ends it, and reports
    // the location after that.
    std::string token(tok);
    while (i_ < s_.size()) {
      if (token.size() >= max_error_token) {
        token += "...";
        break;
      }
      unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c < 0x80) {
        if (!identifier_part(c)) break;
        token.push_back(static_cast<char>(c));
        continue;
      }
      int len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
      char buf[64];
      if (len == 0) {
        std::snprintf(buf, sizeof buf, "Invalid UTF-8 start byte 0x%02x", c);
        fail(buf);
        return false;
      }
      std::size_t seq = i_ - 1;
      for (int k = 1; k < len && i_ < s_.size(); ++k) {
        unsigned char cc = static_cast<unsigned char>(s_[i_++]);
        if ((cc & 0xc0) != 0x80) {
          std::snprintf(buf, sizeof buf, "Invalid UTF-8 middle byte 0x%02x", cc);
          fail(buf);
          return false;
        }
      }
      token.append(s_.substr(seq, i_ - seq));
    }
    fail("Unrecognized token '" + token + "': was expecting (JSON String, Number, Array, Object or token "
         "'null', 'true' or 'false')",
         true);
    return false;
  }

  bool number() {
    std::size_t start = i_;
    if (s_[i_] == '-') ++i_;
    if (i_ >= s_.size() || !(s_[i_] >= '0' && s_[i_] <= '9')) {
      fail("Unexpected character after '-' in numeric value: expected digit (0-9) to follow minus sign, for valid "
           "numeric value");
      return false;
    }
    if (s_[i_] == '0' && i_ + 1 < s_.size() && s_[i_ + 1] >= '0' && s_[i_ + 1] <= '9') {
      fail("Invalid numeric value: Leading zeroes not allowed");
      return false;
    }
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (i_ >= s_.size() || !(s_[i_] >= '0' && s_[i_] <= '9')) {
        fail("Unexpected character: Decimal point not followed by a digit");
        return false;
      }
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || !(s_[i_] >= '0' && s_[i_] <= '9')) {
        fail("Unexpected character: Exponent indicator not followed by a digit");
        return false;
      }
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    }
    (void)start;
    return true;
  }

  bool string() {
    ++i_;  // opening quote
    while (i_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c == '\\') {
        if (i_ + 1 >= s_.size()) break;
        char e = s_[i_ + 1];
        if (e == 'u') {
          for (int k = 2; k < 6; ++k) {
            if (i_ + k >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_ + k]))) {
              i_ += k;
              fail("Unexpected character in Unicode escape: expected a hex-digit for character escape sequence");
              return false;
            }
          }
          i_ += 6;
          continue;
        }
        if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
          ++i_;
          fail(std::string("Unrecognized character escape '") + e + "' (code " +
               std::to_string(static_cast<unsigned char>(e)) + ")");
          return false;
        }
        i_ += 2;
        continue;
      }
      if (c < 32) {
        fail("Illegal unquoted character ((CTRL-CHAR, code " + std::to_string(c) +
             ")): has to be escaped using backslash to be included in string value");
        return false;
      }
      if (c < 0x80) {
        ++i_;
        continue;
      }
      int len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
      if (len == 0 || c == 0xc0 || c == 0xc1 || c > 0xf4) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "Invalid UTF-8 start byte 0x%02x", c);
        ++i_;
        fail(buf);
        return false;
      }
      for (int k = 1; k < len; ++k) {
        if (i_ + k >= s_.size()) {
          i_ += k;
          fail("Unexpected end-of-input in a UTF-8 sequence");
          return false;
        }
        unsigned char cc = static_cast<unsigned char>(s_[i_ + k]);
        if ((cc & 0xc0) != 0x80) {
          char buf[64];
          std::snprintf(buf, sizeof buf, "Invalid UTF-8 middle byte 0x%02x", cc);
          i_ += k + 1;
          fail(buf);
          return false;
        }
      }
      i_ += len;
    }
    fail("Unexpected end-of-input: was expecting closing quote for a string value");
    return false;
  }

  bool object(int depth) {
    ++i_;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return true;
    }
    while (true) {
      skip_ws();
      if (i_ >= s_.size()) {
        fail("Unexpected end-of-input: expected close marker for Object");
        return false;
      }
      if (s_[i_] != '"') {
        fail(unexpected(static_cast<unsigned char>(s_[i_])) +
             ": was expecting double-quote to start field name");
        return false;
      }
      if (!string()) return false;
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != ':') {
        if (i_ >= s_.size()) fail("Unexpected end-of-input: expected close marker for Object");
        else fail(unexpected(static_cast<unsigned char>(s_[i_])) + ": was expecting a colon to separate field name and value");
        return false;
      }
      ++i_;
      if (!value(depth + 1)) return false;
      skip_ws();
      if (i_ >= s_.size()) {
        fail("Unexpected end-of-input: expected close marker for Object");
        return false;
      }
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == '}') {
        ++i_;
        return true;
      }
      fail(unexpected(static_cast<unsigned char>(s_[i_])) + ": was expecting comma to separate Object entries");
      return false;
    }
  }

  bool array(int depth) {
    ++i_;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return true;
    }
    while (true) {
      if (!value(depth + 1)) return false;
      skip_ws();
      if (i_ >= s_.size()) {
        fail("Unexpected end-of-input: expected close marker for Array");
        return false;
      }
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == ']') {
        ++i_;
        return true;
      }
      fail(unexpected(static_cast<unsigned char>(s_[i_])) + ": was expecting comma to separate Array entries");
      return false;
    }
  }
};

}  // namespace

std::optional<std::string> check_json_payload(std::string_view payload) { return Checker(payload).run(); }

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
      if (len != 0 && i + len <= s.size() && valid_utf8(s.substr(i, len))) {
        out.append(s.substr(i, len));
        i += len - 1;
      } else {
        out += "\xef\xbf\xbd";  // U+FFFD for a byte that starts no valid sequence
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace sluice::lambda
