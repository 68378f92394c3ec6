// Requirements layers against a local wheelhouse (this machine has no PyPI): the
// wheels are written here, by hand, as zips of a dist-info tree.
#include <catch2/catch.hpp>

#include "../test_support.hpp"
#include "sluice/package/package.hpp"

using namespace sluice::package;
using test_support::TempDir;
using test_support::write_file;

namespace {

// A pure-Python wheel NAME-VERSION-py3-none-any.whl (or with the given tag) in `house`.
void make_wheel(const fs::path& house, const std::string& name, const std::string& version,
                const std::string& tag = "py3-none-any") {
  TempDir src;
  const std::string info = name + "-" + version + ".dist-info";
  write_file(src / name / "__init__.py", "VERSION = '" + version + "'\n");
  write_file(src / info / "METADATA", "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n");
  write_file(src / info / "WHEEL", "Wheel-Version: 1.0\nGenerator: sluice-test\nRoot-Is-Purelib: true\nTag: " + tag + "\n");
  write_file(src / info / "RECORD", name + "/__init__.py,,\n" + info + "/METADATA,,\n" + info + "/WHEEL,,\n" + info + "/RECORD,,\n");
  const Archive whl = zip_directory(src.path());
  write_file(house / (name + "-" + version + "-" + tag + ".whl"), whl.bytes);
}

std::vector<std::string> names(const Archive& a) {
  std::vector<std::string> out;
  for (const auto& e : list_zip(a.bytes)) out.push_back(e.name);
  return out;
}

}  // namespace

TEST_CASE("a requirements file becomes a python/ layer, cached by content") {
  TempDir t;
  make_wheel(t / "wheels", "tinypkg", "1.0");
  write_file(t / "app" / "requirements.txt", "tinypkg==1.0\n");
  RequirementsOptions o;
  o.extra_pip_args = {"--no-index", "--find-links", (t / "wheels").string()};

  const LayerBuild first = build_python_layer(t / "app" / "requirements.txt", "3.12", o);
  CHECK_FALSE(first.from_cache);
  CHECK(first.zip_path.parent_path() == t / "app" / ".sluice" / "layers");
  CHECK(fs::exists(first.zip_path));
  const auto entries = names(first.archive);
  CHECK(std::find(entries.begin(), entries.end(), "python/tinypkg/__init__.py") != entries.end());
  for (const auto& n : entries) CHECK(n.rfind("python/", 0) == 0);
  // The work directory is gone; only the zip stays in the cache.
  std::size_t in_cache = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(first.zip_path.parent_path())) ++in_cache;
  CHECK(in_cache == 1);

  const LayerBuild again = build_python_layer(t / "app" / "requirements.txt", "python3.12", o);
  CHECK(again.from_cache);
  CHECK(again.archive.bytes == first.archive.bytes);
  CHECK(again.archive.files == first.archive.files);
  CHECK(again.archive.unzipped_size == first.archive.unzipped_size);
  CHECK(again.archive.sha256_b64 == first.archive.sha256_b64);

  // Another Python version or another file is another layer.
  CHECK_FALSE(build_python_layer(t / "app" / "requirements.txt", "3.11", o).from_cache);
  make_wheel(t / "wheels", "tinypkg", "2.0");
  write_file(t / "app" / "requirements.txt", "tinypkg==2.0\n");
  const LayerBuild changed = build_python_layer(t / "app" / "requirements.txt", "3.12", o);
  CHECK_FALSE(changed.from_cache);
  CHECK(changed.archive.sha256_hex != first.archive.sha256_hex);

  // The contract's entry point, with an explicit cache elsewhere.
  o.cache_dir = t / "cache";
  CHECK_FALSE(build_python_layer(t / "app" / "requirements.txt", "3.12", o).from_cache);
  CHECK(fs::exists(t / "cache"));
}

TEST_CASE("a requirement pip cannot find is an error with pip's message") {
  TempDir t;
  fs::create_directories(t / "wheels");
  write_file(t / "requirements.txt", "no-such-package-sluice==1.0\n");
  try {
    build_requirements_layer(t / "requirements.txt", "3.12", {"--no-index", "--find-links", (t / "wheels").string()});
    FAIL("no error");
  } catch (const PackageError& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::StartsWith("cannot build the requirements layer from " + (t / "requirements.txt").string() +
                                      " for Python 3.12 on manylinux2014_x86_64: pip failed (exit status 1):\n"));
    CHECK_THAT(msg, Catch::Contains("ERROR: No matching distribution found for no-such-package-sluice==1.0"));
    CHECK_THAT(msg, Catch::Contains("a package published only as source cannot be installed"));
  }
  CHECK_FALSE(fs::exists(t / ".sluice" / "layers" / "x"));
}

TEST_CASE("requirements layer input errors") {
  TempDir t;
  CHECK_THROWS_WITH(build_requirements_layer(t / "missing.txt", "3.12"),
                    "requirements file " + (t / "missing.txt").string() + " does not exist");
  write_file(t / "requirements.txt", "x\n");
  CHECK_THROWS_WITH(build_requirements_layer(t / "requirements.txt", "twelve"),
                    "Python version 'twelve' is not of the form 3.12 (or python3.12)");
  write_file(t / "empty.txt", "# nothing\n");
  CHECK_THROWS_WITH(build_requirements_layer(t / "empty.txt", "3.12", {"--no-index"}),
                    Catch::EndsWith("pip installed nothing (does the file list any package?)"));
  RequirementsOptions o;
  o.python = "/nonexistent/python3";
  CHECK_THROWS_WITH(build_python_layer(t / "requirements.txt", "3.12", o),
                    Catch::EndsWith("cannot run /nonexistent/python3: No such file or directory"));
}
