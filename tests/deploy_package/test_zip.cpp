#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <map>

#include "../test_support.hpp"
#include "sluice/package/package.hpp"

using namespace sluice::package;
using test_support::TempDir;
using test_support::write_file;

namespace {

void set_mtime(const fs::path& p, long seconds) {
  fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::seconds(seconds));
}

std::uint16_t le16(const std::string& b, std::size_t at) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(b[at]) | static_cast<unsigned char>(b[at + 1]) << 8);
}
std::uint32_t le32(const std::string& b, std::size_t at) { return le16(b, at) | static_cast<std::uint32_t>(le16(b, at + 2)) << 16; }

// What each local file header says: flags, DOS time/date, extra field length.
struct LocalHeader {
  std::string name;
  std::uint16_t flags, time, date, extra_len;
};
std::vector<LocalHeader> local_headers(const std::string& b) {
  std::vector<LocalHeader> out;
  std::size_t at = 0;
  while (at + 30 <= b.size() && le32(b, at) == 0x04034b50) {
    LocalHeader h{};
    h.flags = le16(b, at + 6);
    h.time = le16(b, at + 10);
    h.date = le16(b, at + 12);
    const std::uint32_t csize = le32(b, at + 18);
    const std::uint16_t nlen = le16(b, at + 26);
    h.extra_len = le16(b, at + 28);
    h.name = b.substr(at + 30, nlen);
    out.push_back(h);
    at += 30 + nlen + h.extra_len + csize;
  }
  return out;
}

// Central directory: version made by (high byte = OS), extra field length per entry.
struct CentralEntry {
  std::string name;
  std::uint8_t made_by_os;
  std::uint16_t extra_len, comment_len;
  std::uint32_t external;
};
std::vector<CentralEntry> central_entries(const std::string& b) {
  std::vector<CentralEntry> out;
  const std::size_t eocd = b.rfind(std::string("PK\x05\x06", 4));
  REQUIRE(eocd != std::string::npos);
  std::size_t at = le32(b, eocd + 16);
  while (at + 46 <= b.size() && le32(b, at) == 0x02014b50) {
    CentralEntry e{};
    e.made_by_os = static_cast<std::uint8_t>(le16(b, at + 4) >> 8);
    const std::uint16_t nlen = le16(b, at + 28);
    e.extra_len = le16(b, at + 30);
    e.comment_len = le16(b, at + 32);
    e.external = le32(b, at + 38);
    e.name = b.substr(at + 46, nlen);
    out.push_back(e);
    at += 46 + nlen + e.extra_len + e.comment_len;
  }
  return out;
}

std::map<std::string, std::string> contents(const std::string& bytes) {
  std::map<std::string, std::string> out;
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
  zip_t* za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  REQUIRE(za != nullptr);
  for (zip_int64_t i = 0; i < zip_get_num_entries(za, 0); ++i) {
    zip_stat_t st;
    zip_stat_index(za, i, 0, &st);
    std::string data(st.size, '\0');
    zip_file_t* f = zip_fopen_index(za, i, 0);
    REQUIRE(f != nullptr);
    REQUIRE(zip_fread(f, data.data(), data.size()) == static_cast<zip_int64_t>(st.size));
    zip_fclose(f);
    out[st.name] = data;
  }
  zip_discard(za);
  return out;
}

std::vector<std::string> names(const Archive& a) {
  std::vector<std::string> out;
  for (const auto& e : list_zip(a.bytes)) out.push_back(e.name);
  return out;
}

// A small function tree written in the given order; mtimes vary with `age`.
void make_tree(const fs::path& root, bool reverse, long age) {
  std::vector<std::pair<std::string, std::string>> files{
      {"handler.py", "def handler(event, context):\n    return {'ok': True}\n"},
      {"bootstrap", "#!/bin/sh\nexec python3 handler.py\n"},
      {"lib/a.py", "A = 1\n"},
      {"lib/b/c.txt", std::string(5000, 'x')},
      {"lib.txt", "sorts before lib/ by bytes\n"},
      {"Z-upper.txt", "upper case sorts first\n"},
      {"empty.txt", ""},
  };
  if (reverse) std::reverse(files.begin(), files.end());
  for (const auto& [rel, data] : files) {
    write_file(root / rel, data);
    set_mtime(root / rel, age);
  }
  fs::permissions(root / "bootstrap", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec,
                  fs::perm_options::replace);
}

}  // namespace

TEST_CASE("the same tree gives the same bytes whatever the order, mtimes, umask and cwd") {
  TempDir t;
  const mode_t old = ::umask(022);
  make_tree(t / "one", false, 10);
  ::umask(077);  // files of the second copy are 0600 / 0700
  make_tree(t / "two", true, 100000);
  ::umask(old);
  set_mtime(t / "two" / "lib", 5000);

  const Archive a = zip_directory(t / "one");
  const auto cwd = fs::current_path();
  fs::current_path(t / "two" / "lib");
  const Archive b = zip_directory("..");  // relative path, from another directory
  fs::current_path(cwd);

  CHECK(a.bytes == b.bytes);
  CHECK(a.sha256_hex == b.sha256_hex);
  CHECK(a.sha256_hex.size() == 64);
  CHECK(a.sha256_b64.size() == 44);
  CHECK(a.files == 7);
  CHECK(a.unzipped_size == 53 + 34 + 6 + 5000 + 27 + 23 + 0);
  CHECK(names(a) == std::vector<std::string>{"Z-upper.txt", "bootstrap", "empty.txt", "handler.py", "lib.txt",
                                             "lib/a.py", "lib/b/c.txt"});
  // Zipping twice gives the same bytes too.
  CHECK(zip_directory(t / "one").bytes == a.bytes);
}

TEST_CASE("modes: 0755 for anything executable, 0644 otherwise, as Unix attributes") {
  TempDir t;
  make_tree(t.path(), false, 0);
  write_file(t / "bin" / "tool", "#!/bin/sh\n");
  fs::permissions(t / "bin" / "tool", fs::perms::owner_exec, fs::perm_options::add);  // only u+x
  fs::permissions(t / "handler.py", fs::perms::owner_read, fs::perm_options::replace);  // 0400
  const Archive a = zip_directory(t.path());
  std::map<std::string, std::uint32_t> modes;
  for (const auto& e : list_zip(a.bytes)) {
    CHECK(e.opsys == ZIP_OPSYS_UNIX);
    CHECK(e.compression == ZIP_CM_DEFLATE);
    modes[e.name] = e.mode;
  }
  CHECK(modes["bootstrap"] == (S_IFREG | 0755));
  CHECK(modes["bin/tool"] == (S_IFREG | 0755));
  CHECK(modes["handler.py"] == (S_IFREG | 0644));
  CHECK(modes["lib/a.py"] == (S_IFREG | 0644));
}

TEST_CASE("no timestamps, extra fields or data descriptors leak into the headers") {
  TempDir t;
  make_tree(t.path(), false, 12345);
  const Archive a = zip_directory(t.path());
  const auto locals = local_headers(a.bytes);
  REQUIRE(locals.size() == a.files);
  for (const auto& h : locals) {
    INFO(h.name);
    CHECK(h.time == kDosTime);
    CHECK(h.date == kDosDate);
    CHECK(h.extra_len == 0);
    CHECK((h.flags & 0x0008) == 0);  // no data descriptor
    CHECK((h.flags & 0x0001) == 0);  // not encrypted
  }
  const auto central = central_entries(a.bytes);
  REQUIRE(central.size() == a.files);
  for (const auto& e : central) {
    INFO(e.name);
    CHECK(e.made_by_os == 3);
    CHECK(e.extra_len == 0);
    CHECK(e.comment_len == 0);
  }
  // Contents survive the round trip.
  const auto files = contents(a.bytes);
  CHECK(files.at("lib/b/c.txt") == std::string(5000, 'x'));
  CHECK(files.at("empty.txt").empty());
}

TEST_CASE("prefix puts the tree under a folder") {
  TempDir t;
  write_file(t / "mod" / "__init__.py", "");
  write_file(t / "mod" / "x.py", "X = 1\n");
  CHECK(names(zip_directory(t.path(), "python")) == std::vector<std::string>{"python/mod/__init__.py", "python/mod/x.py"});
  CHECK(names(zip_directory(t.path(), "python/")) == std::vector<std::string>{"python/mod/__init__.py", "python/mod/x.py"});
  CHECK_THROWS_WITH(zip_directory(t.path(), "../x"), Catch::Contains("must be a relative folder"));
  CHECK_THROWS_WITH(zip_directory(t.path(), "/abs"), Catch::Contains("must be a relative folder"));
}

TEST_CASE("exclusions: .sluice/, __pycache__/, .git and *.pyc at any depth") {
  TempDir t;
  write_file(t / "app.py", "");
  write_file(t / "app.pyc", "compiled");
  write_file(t / ".sluice" / "state.json", "{}");
  write_file(t / "__pycache__" / "app.cpython-311.pyc", "");
  write_file(t / ".git" / "HEAD", "ref: refs/heads/main\n");
  write_file(t / "pkg" / "__pycache__" / "m.cpython-311.pyc", "");
  write_file(t / "pkg" / "m.py", "");
  write_file(t / "pkg" / "old.pyc", "");
  write_file(t / "sub" / ".git", "gitdir: ../.git/modules/sub\n");  // a submodule's .git file
  write_file(t / "sub" / "s.py", "");
  write_file(t / "pkg" / "notes.pyc.txt", "kept: it does not end in .pyc");
  write_file(t / ".env", "kept: only the listed names are left out");
  CHECK(names(zip_directory(t.path())) ==
        std::vector<std::string>{".env", "app.py", "pkg/m.py", "pkg/notes.pyc.txt", "sub/s.py"});
}

TEST_CASE("symlinks are followed: files and directories appear as their targets") {
  TempDir t;
  write_file(t / "shared" / "util.py", "U = 1\n");
  write_file(t / "outside.txt", "outside\n");
  fs::create_directories(t / "fn");
  write_file(t / "fn" / "handler.py", "");
  write_file(t / "fn" / "run.sh", "#!/bin/sh\n");
  fs::permissions(t / "fn" / "run.sh", fs::perms::owner_exec, fs::perm_options::add);
  fs::create_directory_symlink("../shared", t / "fn" / "shared");
  fs::create_symlink("../outside.txt", t / "fn" / "link.txt");
  fs::create_symlink("run.sh", t / "fn" / "bootstrap");  // executable through the link
  fs::create_directory_symlink("../shared", t / "fn" / "again");  // the same dir twice is not a loop
  const Archive a = zip_directory(t / "fn");
  CHECK(names(a) == std::vector<std::string>{"again/util.py", "bootstrap", "handler.py", "link.txt", "run.sh",
                                             "shared/util.py"});
  const auto files = contents(a.bytes);
  CHECK(files.at("link.txt") == "outside\n");
  CHECK(files.at("shared/util.py") == "U = 1\n");
  for (const auto& e : list_zip(a.bytes))
    if (e.name == "bootstrap") CHECK(e.mode == (S_IFREG | 0755));
  // The zip of a tree through a symlink to it is the zip of the tree.
  fs::create_directory_symlink(t / "fn", t / "fn-link");
  CHECK(zip_directory(t / "fn-link").bytes == a.bytes);
}

TEST_CASE("a symlink loop or a dangling symlink is an error naming the path") {
  SECTION("link to an ancestor") {
    TempDir t;
    write_file(t / "fn" / "a" / "x.py", "");
    fs::create_directory_symlink("../..", t / "fn" / "a" / "up");
    CHECK_THROWS_WITH(zip_directory(t / "fn"), "symlink loop at " + (t / "fn" / "a" / "up").string() + " -> ../..: " +
                                                   (t / "fn" / "a" / "up" / "fn").string() + " is the directory " +
                                                   (t / "fn").string() + " again");
    fs::remove(t / "fn" / "a" / "up");
    fs::create_directory_symlink("..", t / "fn" / "a" / "up");
    CHECK_THROWS_WITH(zip_directory(t / "fn"), "symlink loop at " + (t / "fn" / "a" / "up").string() +
                                                   " -> ..: the directory " + (t / "fn").string() + " again");
  }
  SECTION("links to each other") {
    TempDir t;
    write_file(t / "fn" / "x.py", "");
    fs::create_symlink("b", t / "fn" / "a");
    fs::create_symlink("a", t / "fn" / "b");
    CHECK_THROWS_WITH(zip_directory(t / "fn"), Catch::Contains("symlink loop at " + (t / "fn").string()));
  }
  SECTION("dangling") {
    TempDir t;
    write_file(t / "fn" / "x.py", "");
    fs::create_symlink("missing.py", t / "fn" / "gone.py");
    CHECK_THROWS_AS(zip_directory(t / "fn"), PackageError);
    CHECK_THROWS_WITH(zip_directory(t / "fn"),
                      "dangling symlink " + (t / "fn" / "gone.py").string() + " -> missing.py (its target does not exist)");
  }
  SECTION("a dangling link inside an excluded folder does not matter") {
    TempDir t;
    write_file(t / "fn" / "x.py", "");
    fs::create_directories(t / "fn" / ".git");
    fs::create_symlink("missing", t / "fn" / ".git" / "gone");
    CHECK(names(zip_directory(t / "fn")) == std::vector<std::string>{"x.py"});
  }
}

TEST_CASE("a directory that cannot be packaged says why") {
  TempDir t;
  CHECK_THROWS_WITH(zip_directory(t / "nope"), Catch::Contains("cannot package " + (t / "nope").string()));
  write_file(t / "file", "");
  CHECK_THROWS_WITH(zip_directory(t / "file"), Catch::EndsWith("not a directory"));
  fs::create_directories(t / "empty" / "sub");
  CHECK_THROWS_WITH(zip_directory(t / "empty"), "nothing to package in " + (t / "empty").string() + ": it holds no files");
  fs::create_directories(t / "fifo");
  write_file(t / "fifo" / "a.py", "");
  REQUIRE(::mkfifo((t / "fifo" / "pipe").c_str(), 0644) == 0);
  CHECK_THROWS_WITH(zip_directory(t / "fifo"), Catch::StartsWith((t / "fifo" / "pipe").string() + " is not a regular file"));
  if (::geteuid() != 0) {  // root reads anything
    write_file(t / "locked" / "secret.py", "");
    fs::permissions(t / "locked" / "secret.py", fs::perms::none, fs::perm_options::replace);
    CHECK_THROWS_WITH(zip_directory(t / "locked"), Catch::Contains("cannot read " + (t / "locked" / "secret.py").string()));
  }
}

TEST_CASE("describe_zip gives the same figures as zip_directory") {
  TempDir t;
  make_tree(t.path(), false, 0);
  const Archive a = zip_directory(t.path());
  const Archive d = describe_zip(a.bytes);
  CHECK(d.bytes == a.bytes);
  CHECK(d.sha256_hex == a.sha256_hex);
  CHECK(d.sha256_b64 == a.sha256_b64);
  CHECK(d.files == a.files);
  CHECK(d.unzipped_size == a.unzipped_size);
  CHECK_THROWS_WITH(describe_zip("not a zip"), Catch::StartsWith("not a valid zip"));
}
