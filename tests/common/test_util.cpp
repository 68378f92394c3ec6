// sluice/common/util.hpp: ids, encodings, time formats, string helpers.
#include "sluice/common/util.hpp"

#include <catch2/catch.hpp>

#include <regex>
#include <set>

using namespace sluice;
using namespace std::chrono;

namespace {

wall_clock::time_point at_ms(std::int64_t ms) { return wall_clock::time_point(milliseconds(ms)); }

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

}  // namespace

TEST_CASE("base64_encode matches the RFC 4648 test vectors", "[util][base64]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  // The standard alphabet, not the URL-safe one.
  CHECK(base64_encode("\xfb\xff") == "+/8=");
}

TEST_CASE("base64 round-trips every byte value and every length remainder", "[util][base64]") {
  const std::string bytes = all_bytes();
  for (std::size_t len = 0; len <= bytes.size(); len += (len < 8 ? 1 : 37)) {
    std::string in = bytes.substr(bytes.size() - len);
    std::string enc = base64_encode(in);
    CHECK(enc.size() == (len + 2) / 3 * 4);
    auto dec = base64_decode(enc);
    REQUIRE(dec);
    CHECK(*dec == in);
  }
  auto dec = base64_decode(base64_encode(bytes));
  REQUIRE(dec);
  CHECK(*dec == bytes);
}

TEST_CASE("base64_decode decodes the RFC 4648 vectors", "[util][base64]") {
  CHECK(base64_decode("") == std::optional<std::string>(""));
  CHECK(base64_decode("Zg==") == std::optional<std::string>("f"));
  CHECK(base64_decode("Zm8=") == std::optional<std::string>("fo"));
  CHECK(base64_decode("Zm9vYmFy") == std::optional<std::string>("foobar"));
  CHECK(base64_decode("+/8=") == std::optional<std::string>("\xfb\xff"));
}

TEST_CASE("base64_decode rejects what is not base64", "[util][base64]") {
  for (const char* bad : {"Zm9v!", "Zm9v YmFy!", "Z", "Zm9vY", "Zm=9v", "Zg=a", "=Zg=", "Zm9v\x01", "Zm9v\xc3\xa9",
                          "@@@@", "Zm9v.mFy"}) {
    INFO("input: " << quoted(bad));
    CHECK_FALSE(base64_decode(bad));
  }
}

TEST_CASE("new_uuid is a lower-case RFC 4122 version 4 UUID", "[util][ids]") {
  static const std::regex shape("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  std::set<char> variants;
  for (int i = 0; i < 1000; ++i) {
    std::string u = new_uuid();
    INFO(u);
    REQUIRE(std::regex_match(u, shape));
    variants.insert(u[19]);
    seen.insert(u);
  }
  CHECK(seen.size() == 1000);
  // The variant nibble carries two random bits: all four values show up.
  CHECK(variants == std::set<char>{'8', '9', 'a', 'b'});
}

TEST_CASE("random_hex gives n random lower-case hex digits", "[util][ids]") {
  CHECK(random_hex(0).empty());
  for (std::size_t n : {1u, 15u, 16u, 17u, 64u}) {
    std::string h = random_hex(n);
    CHECK(h.size() == n);
    CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
  }
  CHECK(random_hex(32) != random_hex(32));
  std::set<char> digits;
  for (int i = 0; i < 50; ++i)
    for (char c : random_hex(40)) digits.insert(c);
  CHECK(digits.size() == 16);
}

TEST_CASE("trace and API Gateway ids have AWS's shapes", "[util][ids]") {
  CHECK(std::regex_match(new_trace_id(),
                         std::regex("^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$")));
  std::string id = new_apigw_id();
  CHECK(std::regex_match(id, std::regex("^[A-Za-z0-9+/]{15}=$")));
}

TEST_CASE("url_decode", "[util][url]") {
  CHECK(url_decode("a%20b") == "a b");
  CHECK(url_decode("%2F%2f") == "//");
  CHECK(url_decode("%C3%A9t%C3%A9") == "\xc3\xa9t\xc3\xa9");
  CHECK(url_decode("abc%41") == "abcA");
  CHECK(url_decode("a+b") == "a+b");
  CHECK(url_decode("a+b", true) == "a b");
  CHECK(url_decode("%2B", true) == "+");
  // Broken escapes stay as they were.
  CHECK(url_decode("%zz") == "%zz");
  CHECK(url_decode("100%") == "100%");
  CHECK(url_decode("%4") == "%4");
  CHECK(url_decode("%%41") == "%A");
  CHECK(url_decode("%00") == std::string(1, '\0'));
}

TEST_CASE("url_encode keeps the unreserved set only", "[util][url]") {
  CHECK(url_encode("AZaz09-_.~") == "AZaz09-_.~");
  CHECK(url_encode("a b/c?d=e&f+g%") == "a%20b%2Fc%3Fd%3De%26f%2Bg%25");
  CHECK(url_encode("\xc3\xa9") == "%C3%A9");
  CHECK(url_encode(std::string(1, '\0')) == "%00");
  const std::string bytes = all_bytes();
  CHECK(url_decode(url_encode(bytes)) == bytes);
}

TEST_CASE("time formats for fixed time points", "[util][time]") {
  auto t = at_ms(1709579717135);  // 2024-03-04T19:15:17.135Z, a Monday
  CHECK(epoch_ms(t) == 1709579717135);
  CHECK(iso8601_ms(t) == "2024-03-04T19:15:17.135Z");
  CHECK(clf_time(t) == "04/Mar/2024:19:15:17 +0000");
  CHECK(http_date(t) == "Mon, 04 Mar 2024 19:15:17 GMT");
  CHECK(ymd_slashes(t) == "2024/03/04");

  auto leap = at_ms(1709190309007);  // 2024-02-29T07:05:09.007Z, a Thursday
  CHECK(iso8601_ms(leap) == "2024-02-29T07:05:09.007Z");
  CHECK(clf_time(leap) == "29/Feb/2024:07:05:09 +0000");
  CHECK(http_date(leap) == "Thu, 29 Feb 2024 07:05:09 GMT");
  CHECK(ymd_slashes(leap) == "2024/02/29");

  auto epoch = at_ms(0);
  CHECK(iso8601_ms(epoch) == "1970-01-01T00:00:00.000Z");
  CHECK(clf_time(epoch) == "01/Jan/1970:00:00:00 +0000");
  CHECK(http_date(epoch) == "Thu, 01 Jan 1970 00:00:00 GMT");
  CHECK(ymd_slashes(epoch) == "1970/01/01");

  // Last millisecond of a year: no rounding into the next second.
  auto eoy = at_ms(1735689599999);  // 2024-12-31T23:59:59.999Z, a Tuesday
  CHECK(iso8601_ms(eoy) == "2024-12-31T23:59:59.999Z");
  CHECK(http_date(eoy) == "Tue, 31 Dec 2024 23:59:59 GMT");
}

TEST_CASE("fixed2", "[util]") {
  CHECK(fixed2(0) == "0.00");
  CHECK(fixed2(2.5) == "2.50");
  CHECK(fixed2(1234.567) == "1234.57");
}

TEST_CASE("levenshtein", "[util][strings]") {
  CHECK(levenshtein("", "") == 0);
  CHECK(levenshtein("", "abc") == 3);
  CHECK(levenshtein("abc", "") == 3);
  CHECK(levenshtein("kitten", "sitting") == 3);
  CHECK(levenshtein("sitting", "kitten") == 3);
  CHECK(levenshtein("flaw", "lawn") == 2);
  CHECK(levenshtein("timeout", "timeout") == 0);
  CHECK(levenshtein("timeuot", "timeout") == 2);
}

TEST_CASE("nearest suggests a plausible candidate or nothing", "[util][strings]") {
  std::vector<std::string> keys{"runtime", "handler", "memory", "timeout", "environment"};
  CHECK(nearest("handelr", keys) == "handler");
  CHECK(nearest("timout", keys) == "timeout");
  CHECK(nearest("MEMORY", keys) == "memory");
  CHECK(nearest("enviroment", keys) == "environment");
  CHECK(nearest("zzzzzz", keys) == "");
  CHECK(nearest("handler", {}) == "");
  // The allowance grows with the word: a third of its length.
  CHECK(nearest("environmnt__", keys) == "environment");
  CHECK(nearest("ab", {"xyz"}) == "");
}

TEST_CASE("valid_utf8", "[util][utf8]") {
  using namespace std::string_literals;
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("plain ascii"));
  CHECK(valid_utf8("nul\0inside"s));
  CHECK(valid_utf8("\xc3\xa9"));                  // é
  CHECK(valid_utf8("\xe2\x82\xac"));              // €
  CHECK(valid_utf8("\xf0\x9f\x98\x80"));          // 😀
  CHECK(valid_utf8("\xef\xbf\xbf"));              // U+FFFF
  CHECK(valid_utf8("\xf4\x8f\xbf\xbf"));          // U+10FFFF
  CHECK(valid_utf8("\xed\x9f\xbf"));              // U+D7FF, just below the surrogates
  CHECK(valid_utf8("\xee\x80\x80"));              // U+E000, just above them
  CHECK(valid_utf8("\xc2\x80"));                  // U+0080, shortest 2-byte
  CHECK(valid_utf8("\xe0\xa0\x80"));              // U+0800, shortest 3-byte
  CHECK(valid_utf8("\xf0\x90\x80\x80"));          // U+10000, shortest 4-byte

  CHECK_FALSE(valid_utf8("\x80"));               // lone continuation byte
  CHECK_FALSE(valid_utf8("a\xbf"));
  CHECK_FALSE(valid_utf8("\xc3"));               // truncated
  CHECK_FALSE(valid_utf8("\xe2\x82"));
  CHECK_FALSE(valid_utf8("\xf0\x9f\x98"));
  CHECK_FALSE(valid_utf8("\xc3(" ));             // bad continuation
  CHECK_FALSE(valid_utf8("\xc0\x80"));           // overlong NUL
  CHECK_FALSE(valid_utf8("\xc1\xbf"));           // overlong U+007F
  CHECK_FALSE(valid_utf8("\xe0\x80\x80"));       // overlong 3-byte
  CHECK_FALSE(valid_utf8("\xe0\x9f\xbf"));       // overlong U+07FF
  CHECK_FALSE(valid_utf8("\xf0\x80\x80\x80"));   // overlong 4-byte
  CHECK_FALSE(valid_utf8("\xf0\x8f\xbf\xbf"));   // overlong U+FFFF
  CHECK_FALSE(valid_utf8("\xed\xa0\x80"));       // U+D800 (surrogate)
  CHECK_FALSE(valid_utf8("\xed\xbf\xbf"));       // U+DFFF (surrogate)
  CHECK_FALSE(valid_utf8("\xed\xa0\xbd\xed\xb8\x80"));  // CESU-8 surrogate pair
  CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80"));   // U+110000
  CHECK_FALSE(valid_utf8("\xf5\x80\x80\x80"));
  CHECK_FALSE(valid_utf8("\xf8\x88\x80\x80\x80"));  // 5-byte form
  CHECK_FALSE(valid_utf8("\xfe"));
  CHECK_FALSE(valid_utf8("\xff"));
  CHECK_FALSE(valid_utf8("ok \x87 then ok"));
}

TEST_CASE("split, join, trim", "[util][strings]") {
  using V = std::vector<std::string>;
  CHECK(split("a,b,c", ',') == V{"a", "b", "c"});
  CHECK(split("a,,b,", ',') == V{"a", "", "b", ""});
  CHECK(split("", ',') == V{""});
  CHECK(split(",", ',') == V{"", ""});
  CHECK(split("no-sep", ',') == V{"no-sep"});
  for (std::string s : {"a,b,c", "a,,b,", "", ",", "x"}) CHECK(join(split(s, ','), ",") == s);
  CHECK(join({}, ", ") == "");
  CHECK(join({"one"}, ", ") == "one");
  CHECK(join({"a", "b", "c"}, " | ") == "a | b | c");

  CHECK(trim("  a b \t\r\n") == "a b");
  CHECK(trim("") == "");
  CHECK(trim(" \t\n ") == "");
  CHECK(trim("x") == "x");
}

TEST_CASE("case and affix helpers", "[util][strings]") {
  CHECK(to_lower("Content-TYPE") == "content-type");
  CHECK(iequals("X-Amz-Log-Type", "x-amz-log-type"));
  CHECK_FALSE(iequals("abc", "abcd"));
  CHECK_FALSE(iequals("abc", "abd"));
  CHECK(starts_with("arn:aws:lambda", "arn:"));
  CHECK(starts_with("abc", ""));
  CHECK_FALSE(starts_with("ar", "arn"));
  CHECK(ends_with("file.pyc", ".pyc"));
  CHECK_FALSE(ends_with("c", ".pyc"));
}

TEST_CASE("quoted escapes quotes, backslashes and control characters", "[util][strings]") {
  using namespace std::string_literals;
  CHECK(quoted("") == "\"\"");
  CHECK(quoted("plain") == "\"plain\"");
  CHECK(quoted("say \"hi\"") == "\"say \\\"hi\\\"\"");
  CHECK(quoted("C:\\dir") == "\"C:\\\\dir\"");
  CHECK(quoted("a\nb\tc") == "\"a\\x0ab\\x09c\"");
  CHECK(quoted("\x7f"s) == "\"\\x7f\"");
  CHECK(quoted("nul\0"s) == "\"nul\\x00\"");
  CHECK(quoted("\xc3\xa9") == "\"\xc3\xa9\"");  // UTF-8 is left alone
}
