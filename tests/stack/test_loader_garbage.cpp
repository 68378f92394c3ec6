// Garbage in, a report out: no input may crash or throw, and a broken file
// always gives at least one error.
#include <chrono>
#include <fstream>
#include <random>

#include "sluice/common/util.hpp"
#include "stack_test_support.hpp"

using namespace stack_test;

namespace {

// Loads without throwing and checks the result is coherent; returns it.
LoadResult survive(const std::string& text) {
  LoadResult r;
  REQUIRE_NOTHROW(r = load_text(text, "garbage.yaml", fixtures()));
  if (r.ok()) {
    CHECK(errors(r) == 0);
  } else {
    CHECK(errors(r) > 0);
  }
  for (const auto& p : r.problems) {
    CHECK_FALSE(p.message.empty());
    CHECK(p.line >= 0);
  }
  std::string report_text;
  REQUIRE_NOTHROW(report_text = format_report(r, "garbage.yaml"));
  CHECK_FALSE(report_text.empty());
  return r;
}

LoadResult refused(const std::string& text) {
  auto r = survive(text);
  INFO(report(r));
  CHECK_FALSE(r.ok());
  return r;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("empty and near-empty files", "[stack][garbage]") {
  for (std::string text : {"", "   \n\n", "# only a comment\n", "---\n", "~\n", "null\n"}) {
    INFO(sluice::quoted(text));
    auto r = refused(text);
    REQUIRE_ERROR(r, "", "the file is empty", 0);
  }
}

TEST_CASE("the top level must be a mapping", "[stack][garbage]") {
  auto r = refused("- a\n- b\n");
  REQUIRE_ERROR(r, "", "expected a mapping at the top level (name:, functions:, apis:, ...), found a list", 1);
  r = refused("just some words\n");
  REQUIRE_ERROR(r, "", "found \"just some words\"", 1);
  r = refused("42");
  REQUIRE_ERROR(r, "", "found 42", 1);
  r = refused("[1, 2, 3]");
  REQUIRE_ERROR(r, "", "found a list", 1);
  r = refused("\"a string\"");
  REQUIRE_ERROR(r, "", "found \"a string\"", 1);
  for (const char* name : {"broken-toplevel-list.yaml"}) {
    auto f = load_fixture(name);
    CHECK_FALSE(f.ok());
    REQUIRE_ERROR(f, "", "found a list", 1);
  }
}

TEST_CASE("fixtures with syntax errors", "[stack][garbage]") {
  auto r = load_fixture("broken-syntax.yaml");
  REQUIRE_FALSE(r.ok());
  REQUIRE_ERROR(r, "", "YAML syntax error: end of sequence flow not found", 6);
  r = load_fixture("broken-syntax.json");
  REQUIRE_FALSE(r.ok());
  REQUIRE_ERROR(r, "", "JSON syntax error: trailing comma before '}' (JSON allows none)", 7);
  r = load_fixture("broken-tabs.yaml");
  REQUIRE_FALSE(r.ok());
  REQUIRE_ERROR(r, "", "(line 3 is indented with a tab; YAML indentation must use spaces)", 3);
  r = load_fixture("broken-empty.yaml");
  REQUIRE_FALSE(r.ok());
  REQUIRE_ERROR(r, "", "the file is empty", 0);
}

TEST_CASE("JSON errors carry their line", "[stack][garbage][json]") {
  REQUIRE_ERROR(refused("{\n\"name\": \"x\",\n\"a\": [1, 2,]\n}"), "", "trailing comma before ']'", 3);
  REQUIRE_ERROR(refused("{\"name\": \"x\"} trailing"), "", "after the end of the JSON value", 1);
  REQUIRE_ERROR(refused("{\"name\": \"x\n\"}"), "", "unterminated string", 1);
  REQUIRE_ERROR(refused("{\"name\": 01}"), "", "JSON syntax error", 1);
  REQUIRE_ERROR(refused("{\"name\": \"\\q\"}"), "", "invalid escape", 1);
  REQUIRE_ERROR(refused("{\"name\": \"\\ud800\"}"), "", "lone surrogate", 1);
  REQUIRE_ERROR(refused("{\"name\": tru}"), "", "expected a JSON value", 1);
  REQUIRE_ERROR(refused("{\"name\": \"a\", \"name\": \"b\"}"), "name", "duplicate key 'name'", 1);
  REQUIRE_ERROR(refused("{\"name\": -}"), "", "malformed number", 1);
  REQUIRE_ERROR(refused("{\"name\": 1.}"), "", "digits expected after '.'", 1);
  REQUIRE_ERROR(refused("{\"name\": 1e}"), "", "exponent", 1);
  REQUIRE_ERROR(refused("{\"name\""), "", "expected ':'", 1);
  REQUIRE_ERROR(refused("{"), "", "expected a quoted key", 1);
  REQUIRE_ERROR(refused("["), "", "JSON syntax error", 1);
}

TEST_CASE("binary data and invalid text", "[stack][garbage]") {
  std::string nul("name: a\nregion: \0x\n", 19);
  REQUIRE_ERROR(refused(nul), "", "the file contains the control character 0x00", 2);
  REQUIRE_ERROR(refused("name: caf\xe9\n"), "", "the file is not valid UTF-8 text", 1);
  REQUIRE_ERROR(refused("name: a\nx: \xc3\x28\n"), "", "not valid UTF-8", 2);
  REQUIRE_ERROR(refused("name: a\x1b[31m\n"), "", "control character 0x1b", 1);
  std::mt19937 rng(1234);
  for (int i = 0; i < 200; ++i) {
    std::string junk(static_cast<std::size_t>(rng() % 400), '\0');
    for (auto& c : junk) c = static_cast<char>(rng() % 256);
    survive(junk);
  }
  // Printable junk gets through the byte checks and into the parsers.
  const std::string alphabet = "abc:{}[]-,#&*!|>'\"%@`? \t\n\r.~$";
  for (int i = 0; i < 500; ++i) {
    std::string junk;
    std::size_t n = rng() % 200;
    for (std::size_t k = 0; k < n; ++k) junk.push_back(alphabet[rng() % alphabet.size()]);
    survive(junk);
  }
}

TEST_CASE("deep nesting does not exhaust the stack", "[stack][garbage]") {
  for (std::size_t depth : {100u, 5000u, 100000u}) {
    INFO(depth);
    survive(std::string(depth, '['));
    survive(std::string(depth, '[') + std::string(depth, ']'));
    survive(std::string(depth, '{'));
    survive("name: x\nfunctions: " + std::string(depth, '[') + std::string(depth, ']'));
    std::string json;
    for (std::size_t i = 0; i < depth; ++i) json += "{\"a\":";
    json += "1";
    json += std::string(depth, '}');
    survive(json);
    std::string block = "name: x\n";
    for (std::size_t i = 0; i < std::min<std::size_t>(depth, 3000); ++i) block += std::string(i, ' ') + "a:\n";
    survive(block);
    std::string dashes;
    for (std::size_t i = 0; i < std::min<std::size_t>(depth, 3000); ++i) dashes += "- ";
    survive(dashes + "x\n");
  }
  auto r = refused(std::string(1000, '['));
  CHECK(r.problems.size() >= 1);
}

TEST_CASE("huge numbers, long strings, many keys", "[stack][garbage]") {
  survive("name: a\naccount_id: 1e999999\n");
  REQUIRE_ERROR(refused("name: a\nfunctions:\n  f: {memory: 1" + std::string(5000, '0') + "}\n"), "functions.f.memory",
                "expected an integer from 128 to 10240, found \"1000000000", 3);
  REQUIRE_ERROR(refused("name: a\nusage_plans: {p: {stages: [], throttle: {rate: 1e999, burst: 1}}}\n"),
                "usage_plans.p.throttle.rate", "(out of range)", 2);
  survive("name: " + std::string(1 << 20, 'a') + "\n");
  std::string many = "name: a\nfunctions:\n";
  for (int i = 0; i < 3000; ++i) many += "  f" + std::to_string(i) + ": {}\n";
  auto r = refused(many);
  // The report is capped rather than endless.
  CHECK(r.problems.size() <= 501);
  REQUIRE_ERROR(r, "", "too many problems; stopped after the first 500", 0);
}

TEST_CASE("YAML features that have no place in a stack", "[stack][garbage]") {
  REQUIRE_ERROR(refused("name: a\n---\nname: b\n"), "", "more than one YAML document", 3);
  REQUIRE_ERROR(refused("name: !Ref Something\n"), "name", "unsupported YAML tag \"!Ref\"", 1);
  REQUIRE_ERROR(refused("name: a\nfunctions: !!set {a, b}\n"), "functions", "unsupported YAML tag", 2);
  REQUIRE_ERROR(refused("name: a\n? [complex, key]\n: value\n"), "", "a mapping key must be a plain string", 2);
  REQUIRE_ERROR(refused("name: a\n: no key\n"), "", "a mapping key is empty", 2);
  REQUIRE_ERROR(refused("name: &a [*a]\n"), "name[0]", "recursive anchors are not allowed", 1);
  survive("a: *undefined\n");
  survive("name: a\n<<: {region: us-east-1}\n");
  // !!str and !!int are plain YAML and fine.
  Stack s =
      must_load(load("name: !!str tagged\nfunctions:\n  f: {runtime: python3.12, handler: app.handler, code: "
                     "code/python-app, memory: !!int 256}\n"));
  CHECK(s.functions.at("f").memory_mb == 256);
}

TEST_CASE("alias bombs finish quickly", "[stack][garbage]") {
  std::string bomb =
      "name: bomb\n"
      "x0: &x0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}\n";
  for (int i = 1; i < 9; ++i) {
    bomb += "x" + std::to_string(i) + ": &x" + std::to_string(i) + " {";
    for (int k = 0; k < 10; ++k)
      bomb += std::string(k ? ", " : "") + "k" + std::to_string(k) + ": *x" + std::to_string(i - 1);
    bomb += "}\n";
  }
  bomb += "functions: *x8\n";
  auto start = std::chrono::steady_clock::now();
  auto r = refused(bomb);
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(took < std::chrono::seconds(20));
  CHECK(r.problems.size() <= 501);
}

TEST_CASE("unreadable files", "[stack][garbage]") {
  auto r = load_file(fixtures() / "no-such-stack.yaml");
  REQUIRE_FALSE(r.ok());
  REQUIRE_ERROR(r, "", "cannot read the stack file: it does not exist", 0);
  r = load_file(fixtures() / "code");
  REQUIRE_FALSE(r.ok());
  REQUIRE_ERROR(r, "", "it is a directory", 0);
  r = load_file("");
  REQUIRE_FALSE(r.ok());
}

TEST_CASE("fuzz: mutated stacks never crash", "[stack][garbage][fuzz]") {
  const std::vector<std::string> seeds{read(fixtures() / "valid-full.yaml"), read(fixtures() / "valid-full.json"),
                                       read(fixtures() / "design-example.yaml"), read(fixtures() / "broken-apis.yaml")};
  for (const auto& s : seeds) REQUIRE_FALSE(s.empty());
  const std::string specials = ":{}[]-,#&*!|>'\"%@`?\t\n $.0123456789~/\\";
  const unsigned seed = static_cast<unsigned>(std::random_device{}());
  INFO("fuzz seed " << seed);
  std::mt19937 rng(seed);
  auto pick = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  int loaded = 0;
  for (int iteration = 0; iteration < 1500; ++iteration) {
    std::string text = seeds[pick(seeds.size())];
    int mutations = 1 + static_cast<int>(pick(8));
    for (int m = 0; m < mutations && !text.empty(); ++m) {
      std::size_t at = pick(text.size());
      switch (pick(8)) {
        case 0:
          text[at] = specials[pick(specials.size())];
          break;  // replace with a special
        case 1:
          text.erase(at, 1 + pick(20));
          break;  // delete a run
        case 2:
          text.insert(at, 1, specials[pick(specials.size())]);
          break;  // insert a special
        case 3:
          text[at] = static_cast<char>(rng() % 256);
          break;  // any byte
        case 4:
          text.resize(at);
          break;   // truncate
        case 5: {  // duplicate a line
          std::size_t b = text.rfind('\n', at), e = text.find('\n', at);
          b = b == std::string::npos ? 0 : b + 1;
          e = e == std::string::npos ? text.size() : e + 1;
          text.insert(b, text.substr(b, e - b));
          break;
        }
        case 6: {  // shift indentation
          std::size_t b = text.rfind('\n', at);
          text.insert(b == std::string::npos ? 0 : b + 1, pick(2) ? " " : "\t");
          break;
        }
        default:
          text.insert(at, std::to_string(static_cast<long long>(rng()) * 1000003));
          break;  // numbers
      }
    }
    auto r = survive(text);
    loaded += r.ok() ? 1 : 0;
  }
  // Most mutations break something; a few are harmless. Either way, nothing crashed.
  CHECK(loaded < 1500);
}

TEST_CASE("nesting past yaml-cpp's depth and merge keys are named, not 'bad file'", "[stack][garbage]") {
  std::string deep = "name: x\nfunctions: " + std::string(100000, '[') + std::string(100000, ']') + "\n";
  auto r = refused(deep);
  CHECK(report(r).find("YAML nested too deeply to read") != std::string::npos);
  CHECK(report(r).find("bad file") == std::string::npos);
  auto m = refused("name: x\ndefaults: &d {runtime: python3.11}\nfunctions:\n  f:\n    <<: *d\n    code: .\n");
  CHECK(report(m).find("YAML merge keys ('<<: *anchor') are not supported") != std::string::npos);
}
