// sluice/lambda/versions.hpp: published versions as immutable snapshots.
#include "sluice/lambda/versions.hpp"

#include <catch2/catch.hpp>

#include "sluice/common/util.hpp"
#include "sluice/stack/loader.hpp"
#include "../test_support.hpp"

#include <regex>

using namespace sluice;
using namespace sluice::lambda;
using test_support::read_file;
using test_support::TempDir;
using test_support::write_file;
namespace fs = std::filesystem;

namespace {

using Published = VersionStore::Published;

struct Fixture {
  TempDir root;
  fs::path code = root / "src";
  fs::path state = root / ".sluice";
  stack::FunctionSpec fn;
  VersionStore store{state};

  Fixture() {
    write_file(code / "app.py", "def handler(event, context):\n    return 'v1'\n");
    write_file(code / "lib" / "helper.py", "X = 1\n");
    write_file(code / "bin" / "tool", "#!/bin/sh\necho tool\n");
    fs::permissions(code / "bin" / "tool", fs::perms::owner_exec, fs::perm_options::add);
    fn.name = "orders";
    fn.runtime = *stack::parse_runtime("python3.12");
    fn.handler = "app.handler";
    fn.code_dir = code;
    fn.memory_mb = 256;
    fn.timeout_s = 10;
    fn.environment = {{"TABLE", "orders"}};
    fn.description = "the orders function";
  }

  Published publish(const std::string& description = "") { return store.publish(fn, description); }
};

}  // namespace

TEST_CASE("the first publish creates version 1, a snapshot of code and configuration", "[versions]") {
  Fixture f;
  auto p = f.publish();
  CHECK(p.created);
  const auto& c = p.config;
  CHECK(c.function == "orders");
  CHECK(c.version == "1");
  CHECK(c.runtime.id == "python3.12");
  CHECK(c.handler == "app.handler");
  CHECK(c.memory_mb == 256);
  CHECK(c.timeout_s == 10);
  CHECK(c.environment == std::map<std::string, std::string>{{"TABLE", "orders"}});
  CHECK(c.description == "the orders function");
  CHECK(c.opt_dir.empty());
  CHECK(c.layers.empty());
  CHECK(c.code_dir == f.state / "functions" / "orders" / "versions" / "1" / "code");
  CHECK(read_file(c.code_dir / "app.py") == read_file(f.code / "app.py"));
  CHECK(read_file(c.code_dir / "lib" / "helper.py") == "X = 1\n");
  // The exec bit survives the copy.
  CHECK((fs::status(c.code_dir / "bin" / "tool").permissions() & fs::perms::owner_exec) != fs::perms::none);
  // CodeSha256 as AWS shows it: base64 of a 32-byte digest.
  CHECK(c.code_sha256.size() == 44);
  auto raw = base64_decode(c.code_sha256);
  REQUIRE(raw);
  CHECK(raw->size() == 32);
  CHECK(std::regex_match(c.published_at, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
  // No temporary directories are left behind.
  for (const auto& e : fs::directory_iterator(f.state / "functions" / "orders" / "versions"))
    CHECK(e.path().filename() == "1");
}

TEST_CASE("publishing unchanged code and configuration returns the newest version", "[versions]") {
  Fixture f;
  auto first = f.publish();
  auto again = f.publish();
  CHECK_FALSE(again.created);
  CHECK(again.config.version == "1");
  CHECK(again.config.code_sha256 == first.config.code_sha256);
  CHECK(again.config.published_at == first.config.published_at);
  // A different description alone does not make a version either.
  CHECK_FALSE(f.publish("another description").created);
  CHECK(f.store.list("orders") == std::vector<std::string>{"1"});
}

TEST_CASE("code and configuration changes make a new version", "[versions]") {
  Fixture f;
  REQUIRE(f.publish().created);

  SECTION("code") {
    write_file(f.code / "app.py", "def handler(event, context):\n    return 'v2'\n");
  }
  SECTION("a new file") { write_file(f.code / "lib" / "extra.py", ""); }
  SECTION("a removed file") { fs::remove(f.code / "lib" / "helper.py"); }
  SECTION("the exec bit") {
    fs::permissions(f.code / "app.py", fs::perms::owner_exec, fs::perm_options::add);
  }
  SECTION("memory") { f.fn.memory_mb = 512; }
  SECTION("timeout") { f.fn.timeout_s = 11; }
  SECTION("environment value") { f.fn.environment["TABLE"] = "orders-v2"; }
  SECTION("environment key") { f.fn.environment["NEW"] = "1"; }
  SECTION("handler") { f.fn.handler = "app.other"; }
  SECTION("runtime") { f.fn.runtime = *stack::parse_runtime("python3.13"); }
  SECTION("logging") { f.fn.logging = stack::LoggingSpec{"JSON", "", "WARN"}; }

  auto p = f.publish();
  CHECK(p.created);
  CHECK(p.config.version == "2");
  CHECK(f.store.list("orders") == std::vector<std::string>{"1", "2"});
  // Publishing again without a change stays at 2.
  auto q = f.publish();
  CHECK_FALSE(q.created);
  CHECK(q.config.version == "2");
}

TEST_CASE("a published version keeps its logging configuration", "[versions][logging]") {
  Fixture f;
  auto plain = f.publish();
  CHECK_FALSE(plain.config.logging);  // not set: AWS's default, and no "logging" in its config.json
  CHECK(read_file(f.state / "functions" / "orders" / "versions" / "1" / "config.json").find("logging") ==
        std::string::npos);
  f.fn.logging = stack::LoggingSpec{"JSON", "DEBUG", "WARN"};
  auto json_logs = f.publish();
  REQUIRE(json_logs.created);
  REQUIRE(f.store.get("orders", "2")->logging);
  CHECK(*f.store.get("orders", "2")->logging == stack::LoggingSpec{"JSON", "DEBUG", "WARN"});
  CHECK_FALSE(f.store.get("orders", "1")->logging);
  CHECK(latest_config(f.fn).logging == f.fn.logging);
}

TEST_CASE("bytecode caches, VCS data and editor files are not code changes", "[versions]") {
  Fixture f;
  auto first = f.publish();
  write_file(f.code / "__pycache__" / "app.cpython-312.pyc", "bytecode");
  write_file(f.code / "lib" / "__pycache__" / "helper.cpython-312.pyc", "bytecode");
  write_file(f.code / "lib" / "stale.pyc", "bytecode");
  write_file(f.code / ".git" / "HEAD", "ref: refs/heads/main\n");
  write_file(f.code / ".git" / "objects" / "ab" / "cdef", "blob");
  write_file(f.code / ".app.py.swp", "vim");
  write_file(f.code / "app.py~", "backup");
  auto p = f.publish();
  CHECK_FALSE(p.created);
  CHECK(p.config.version == "1");

  // And they are not copied into snapshots either.
  write_file(f.code / "app.py", "changed\n");
  auto second = f.publish();
  REQUIRE(second.created);
  CHECK(fs::exists(second.config.code_dir / "app.py"));
  CHECK_FALSE(fs::exists(second.config.code_dir / "__pycache__"));
  CHECK_FALSE(fs::exists(second.config.code_dir / "lib" / "__pycache__"));
  CHECK_FALSE(fs::exists(second.config.code_dir / "lib" / "stale.pyc"));
  CHECK_FALSE(fs::exists(second.config.code_dir / ".git"));
  CHECK_FALSE(fs::exists(second.config.code_dir / ".app.py.swp"));
  CHECK_FALSE(fs::exists(second.config.code_dir / "app.py~"));
}

TEST_CASE("a published version keeps its code when the live directory changes", "[versions]") {
  Fixture f;
  auto v1 = f.publish();
  write_file(f.code / "app.py", "def handler(event, context):\n    return 'v2'\n");
  fs::remove(f.code / "lib" / "helper.py");
  f.fn.memory_mb = 1024;
  auto v2 = f.publish();
  REQUIRE(v2.created);

  auto got1 = f.store.get("orders", "1");
  REQUIRE(got1);
  CHECK(got1->code_dir == v1.config.code_dir);
  CHECK(read_file(got1->code_dir / "app.py") == "def handler(event, context):\n    return 'v1'\n");
  CHECK(fs::exists(got1->code_dir / "lib" / "helper.py"));
  CHECK(got1->memory_mb == 256);
  CHECK(got1->code_sha256 == v1.config.code_sha256);

  auto got2 = f.store.get("orders", "2");
  REQUIRE(got2);
  CHECK(read_file(got2->code_dir / "app.py") == "def handler(event, context):\n    return 'v2'\n");
  CHECK_FALSE(fs::exists(got2->code_dir / "lib" / "helper.py"));
  CHECK(got2->memory_mb == 1024);
  CHECK(got2->code_sha256 != got1->code_sha256);

  CHECK_FALSE(f.store.get("orders", "3"));
  CHECK_FALSE(f.store.get("orders", "$LATEST"));
  CHECK_FALSE(f.store.get("other", "1"));
}

TEST_CASE("list() is in numeric order", "[versions]") {
  Fixture f;
  CHECK(f.store.list("orders").empty());
  for (int i = 0; i < 11; ++i) {
    f.fn.memory_mb = 128 + i;
    REQUIRE(f.publish().config.version == std::to_string(i + 1));
  }
  CHECK(f.store.list("orders") ==
        std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"});
  CHECK(f.store.list("someone-else").empty());
  // A fresh store over the same directory sees the same versions.
  VersionStore reopened(f.state);
  CHECK(reopened.list("orders").size() == 11);
  CHECK(reopened.get("orders", "10")->memory_mb == 137);
}

TEST_CASE("layers are copied in order, later layers winning", "[versions][layers]") {
  Fixture f;
  fs::path l1 = f.root / "layer1", l2 = f.root / "layer2";
  write_file(l1 / "python" / "only1.py", "one");
  write_file(l1 / "python" / "shared.py", "from layer 1");
  write_file(l1 / "bin" / "tool1", "t1");
  write_file(l2 / "python" / "only2.py", "two");
  write_file(l2 / "python" / "shared.py", "from layer 2");
  f.fn.layers = {l1, l2};

  auto p = f.publish();
  REQUIRE(p.created);
  const fs::path opt = p.config.opt_dir;
  REQUIRE_FALSE(opt.empty());
  CHECK(read_file(opt / "python" / "only1.py") == "one");
  CHECK(read_file(opt / "python" / "only2.py") == "two");
  CHECK(read_file(opt / "python" / "shared.py") == "from layer 2");
  CHECK(read_file(opt / "bin" / "tool1") == "t1");
  CHECK_FALSE(fs::exists(p.config.code_dir / "python"));  // layers do not mix with the code

  // A layer's content is part of the version.
  write_file(l1 / "python" / "only1.py", "one, edited");
  auto q = f.publish();
  CHECK(q.created);
  CHECK(read_file(q.config.opt_dir / "python" / "only1.py") == "one, edited");
  CHECK(read_file(p.config.opt_dir / "python" / "only1.py") == "one");

  // So is their order.
  f.fn.layers = {l2, l1};
  auto r = f.publish();
  CHECK(r.created);
  CHECK(read_file(r.config.opt_dir / "python" / "shared.py") == "from layer 1");

  // Dropping every layer leaves no /opt.
  f.fn.layers.clear();
  auto s = f.publish();
  CHECK(s.created);
  CHECK(s.config.opt_dir.empty());
}

TEST_CASE("latest_config mirrors the function spec", "[versions]") {
  Fixture f;
  f.fn.layers = {f.root / "l1"};
  auto c = latest_config(f.fn);
  CHECK(c.version == "$LATEST");
  CHECK(c.function == "orders");
  CHECK(c.code_dir == f.code);
  CHECK(c.layers == f.fn.layers);
  CHECK(c.memory_mb == 256);
  CHECK(c.timeout_s == 10);
  CHECK(c.handler == "app.handler");
  CHECK(c.environment == f.fn.environment);
}

TEST_CASE("ignored_path", "[versions]") {
  for (const char* p : {"__pycache__", "__pycache__/app.cpython-312.pyc", "pkg/__pycache__/x.txt", "app.pyc",
                        "pkg/mod.pyo", ".git", ".git/HEAD", "sub/.git/config", ".hg/store", ".svn/entries",
                        ".DS_Store", "pkg/.DS_Store", ".pytest_cache/v", ".mypy_cache/3.12/x.json", ".sluice/state",
                        ".app.py.swp", ".app.py.swo", ".app.py.swx", "app.py~", ".#app.py", "4913"})
    CHECK(ignored_path(p));
  for (const char* p : {"app.py", "pkg/mod.py", ".gitignore", ".github/workflows/ci.yml", "my.git", "pycache/x",
                        "node_modules/lib/index.js", "pyc", "swp", "4914", "bootstrap", ""})
    CHECK_FALSE(ignored_path(p));
}

TEST_CASE("merge_layers", "[versions][layers]") {
  TempDir root;
  fs::path l1 = root / "l1", l2 = root / "l2", target = root / "merged";
  write_file(l1 / "python" / "a.py", "a1");
  write_file(l1 / "python" / "shared.py", "s1");
  write_file(l1 / "bin" / "tool", "tool1");
  write_file(l2 / "python" / "b.py", "b2");
  write_file(l2 / "python" / "shared.py", "s2");
  write_file(l2 / "lib" / "libx.so", "x2");

  SECTION("no layers: no /opt") {
    CHECK(merge_layers({}, target).empty());
    CHECK_FALSE(fs::exists(target));
  }
  SECTION("one layer is used as it is") {
    CHECK(merge_layers({l1}, target) == l1);
    CHECK_FALSE(fs::exists(target));
  }
  SECTION("two layers: later files win, directories merge") {
    auto merged = merge_layers({l1, l2}, target);
    REQUIRE(merged == target);
    CHECK(read_file(target / "python" / "a.py") == "a1");
    CHECK(read_file(target / "python" / "b.py") == "b2");
    CHECK(read_file(target / "python" / "shared.py") == "s2");
    CHECK(read_file(target / "bin" / "tool") == "tool1");
    CHECK(read_file(target / "lib" / "libx.so") == "x2");
    // Files are links into the layers: edits show through.
    CHECK(fs::is_symlink(target / "python" / "shared.py"));
    write_file(l2 / "python" / "shared.py", "s2 edited");
    CHECK(read_file(target / "python" / "shared.py") == "s2 edited");

    // In the other order, the other layer wins.
    merge_layers({l2, l1}, target);
    CHECK(read_file(target / "python" / "shared.py") == "s1");
    CHECK(read_file(target / "python" / "b.py") == "b2");
  }
  SECTION("rebuilding drops what is no longer in any layer") {
    merge_layers({l1, l2}, target);
    fs::remove(l2 / "lib" / "libx.so");
    merge_layers({l1, l2}, target);
    CHECK_FALSE(fs::exists(target / "lib" / "libx.so"));
    CHECK(fs::exists(l1 / "bin" / "tool"));  // the layers themselves are untouched
  }
}
