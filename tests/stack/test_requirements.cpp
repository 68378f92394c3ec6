// `requirements:` on functions and packages: resolved to absolute files, inherited from the
// package, refused for missing files, directories and non-Python functions.
#include "stack_test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice::stack;
using namespace stack_test;

namespace {
LoadResult refused(const LoadResult& r) {
  INFO(report(r));
  REQUIRE_FALSE(r.ok());
  return r;
}
}  // namespace

TEST_CASE("requirements files: the function's own, else its package's", "[stack][valid][requirements]") {
  TempDir tmp;
  tmp.write("src/app.py", "def handler(e, c): pass\n");
  tmp.write("own/app.py", "def handler(e, c): pass\n");
  tmp.write("requirements.txt", "requests\n");
  tmp.write("own/requirements.txt", "pillow\n");
  Stack s = must_load(load_text(R"(
name: r
packages:
  core: {path: src/, requirements: requirements.txt}
functions:
  inherits: {runtime: python3.12, package: core, handler: app.handler}
  own: {runtime: python3.11, code: own/, handler: app.handler, requirements: own/requirements.txt}
  replaces: {runtime: python3.12, package: core, handler: app.handler, requirements: own/requirements.txt}
  none: {runtime: python3.12, code: own/, handler: app.handler}
)",
                                "stack.yaml", tmp.path()));
  CHECK(s.packages.at("core").requirements == tmp.path() / "requirements.txt");
  CHECK(s.functions.at("inherits").requirements == tmp.path() / "requirements.txt");
  CHECK(s.functions.at("own").requirements == tmp.path() / "own/requirements.txt");
  CHECK(s.functions.at("replaces").requirements == tmp.path() / "own/requirements.txt");
  CHECK_FALSE(s.functions.at("none").requirements.has_value());
}

TEST_CASE("requirements files: missing, not a file, not Python", "[stack][errors][requirements]") {
  TempDir tmp;
  tmp.write("src/app.py", "def handler(e, c): pass\n");
  tmp.write("src/index.js", "exports.handler = async () => 1;\n");
  tmp.write("requirements.txt", "requests\n");
  auto r = refused(load_text(R"(name: r
packages:
  core: {path: src/, requirements: requirements.txt}
  broken: {path: src/, requirements: gone.txt}
functions:
  missing: {runtime: python3.12, code: src/, handler: app.handler, requirements: nope.txt}
  dir: {runtime: python3.12, code: src/, handler: app.handler, requirements: src/}
  node: {runtime: nodejs20.x, code: src/, handler: index.handler, requirements: requirements.txt}
  node-pkg: {runtime: nodejs20.x, package: core, handler: index.handler}
  empty: {runtime: python3.12, code: src/, handler: app.handler, requirements: ""}
)",
                               "t.yaml", tmp.path()));
  REQUIRE_ERROR(r, "packages.broken.requirements", "requirements file \"gone.txt\" does not exist (looked for " +
                                                       (tmp.path() / "gone.txt").string() + ")", 4);
  REQUIRE_ERROR(r, "functions.missing.requirements", "requirements file \"nope.txt\" does not exist", 6);
  REQUIRE_ERROR(r, "functions.dir.requirements", "requirements file \"src/\" is not a file", 7);
  REQUIRE_ERROR(r, "functions.node.requirements",
                "requirements is for Python functions (a pip requirements file becomes a layer); this function runs "
                "nodejs20.x",
                8);
  REQUIRE_ERROR(r, "functions.node-pkg.package",
                "package \"core\" has requirements, which are for Python functions; this function runs nodejs20.x", 9);
  REQUIRE_ERROR(r, "functions.empty.requirements", "requirements is empty", 10);
  CHECK(errors(r) == 6);
}
