// sluice/common/hash.hpp: SHA-256 and HMAC against published vectors, and the
// directory digest that decides whether code changed.
#include "sluice/common/hash.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

#include "../test_support.hpp"

using namespace sluice;
using test_support::TempDir;
using test_support::write_file;
namespace fs = std::filesystem;

TEST_CASE("sha256 matches the FIPS 180-2 test vectors", "[hash][sha256]") {
  CHECK(hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex(sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(hex(sha256(std::string(1000000, 'a'))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  CHECK(sha256("abc").size() == 32);
}

TEST_CASE("incremental Sha256 equals the one-shot digest", "[hash][sha256]") {
  const std::string msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  for (std::size_t cut : {0u, 1u, 7u, 55u, 56u}) {
    Sha256 h;
    h.update(std::string_view(msg).substr(0, cut));
    h.update(std::string_view(msg).substr(cut));
    CHECK(hex(h.final()) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  }
}

TEST_CASE("name_hash_64 gives the values sluice's derived ids have always had", "[hash][name_hash]") {
  // FNV-1a's steps from sluice's offset 1469598103934665603 (not the published basis).
  CHECK(sluice::name_hash_64("") == 0x14650fb0739d0383ULL);
  CHECK(sluice::name_hash_64("a") == 0x44bd8ad473cd9906ULL);
  CHECK(sluice::name_hash_64("foobar") == 0x88fad7c0a8ff07f2ULL);
}

TEST_CASE("hex", "[hash]") {
  CHECK(hex("") == "");
  CHECK(hex(std::string("\x00\x0f\xf0\xff", 4)) == "000ff0ff");
}

TEST_CASE("hmac_sha256 matches the RFC 4231 test cases", "[hash][hmac]") {
  // Test case 1
  CHECK(hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 2: key shorter than the output
  CHECK(hex(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 3
  CHECK(hex(hmac_sha256(std::string(20, '\xaa'), std::string(50, '\xdd'))) ==
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  // Test case 6: key larger than the block size
  CHECK(hex(hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")) ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  // Test case 7: key and data larger than the block size
  CHECK(hex(hmac_sha256(std::string(131, '\xaa'),
                        "This is a test using a larger than block-size key and a larger than block-size data. The "
                        "key needs to be hashed before being used by the HMAC algorithm.")) ==
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

namespace {

void make_tree(const fs::path& root) {
  write_file(root / "app.py", "def handler(event, context):\n    return event\n");
  write_file(root / "lib" / "util.py", "X = 1\n");
  write_file(root / "lib" / "data.bin", std::string("\x00\x01\x02", 3));
  write_file(root / "bootstrap", "#!/bin/sh\n");
  fs::permissions(root / "bootstrap", fs::perms::owner_exec, fs::perm_options::add);
}

bool skip_pycache(const fs::path& rel) {
  for (const auto& part : rel)
    if (part == "__pycache__") return true;
  return rel.extension() == ".pyc";
}

}  // namespace

TEST_CASE("hash_tree is stable and independent of where the tree lives", "[hash][tree]") {
  TempDir a, b;
  make_tree(a.path());
  make_tree(b.path());
  std::string h = hash_tree(a.path());
  CHECK(h.size() == 64);
  CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(hash_tree(a.path()) == h);
  CHECK(hash_tree(b.path()) == h);
  // Modification times are not content.
  fs::last_write_time(b / "app.py", fs::last_write_time(b / "app.py") - std::chrono::hours(1));
  CHECK(hash_tree(b.path()) == h);
  // Empty directories are not part of the digest.
  fs::create_directories(b / "empty" / "dir");
  CHECK(hash_tree(b.path()) == h);
}

TEST_CASE("hash_tree is sensitive to content, names and the exec bit", "[hash][tree]") {
  TempDir d;
  make_tree(d.path());
  const std::string base = hash_tree(d.path());

  SECTION("content") {
    write_file(d / "lib" / "util.py", "X = 2\n");
    CHECK(hash_tree(d.path()) != base);
    write_file(d / "lib" / "util.py", "X = 1\n");
    CHECK(hash_tree(d.path()) == base);
  }
  SECTION("a new file, even an empty one") {
    write_file(d / "lib" / "new.py", "");
    CHECK(hash_tree(d.path()) != base);
  }
  SECTION("a removed file") {
    fs::remove(d / "lib" / "data.bin");
    CHECK(hash_tree(d.path()) != base);
  }
  SECTION("a rename") {
    fs::rename(d / "lib" / "util.py", d / "lib" / "utils.py");
    CHECK(hash_tree(d.path()) != base);
  }
  SECTION("a move to another directory") {
    fs::create_directories(d / "pkg");
    fs::rename(d / "lib" / "util.py", d / "pkg" / "util.py");
    CHECK(hash_tree(d.path()) != base);
  }
  SECTION("the exec bit") {
    fs::permissions(d / "app.py", fs::perms::owner_exec, fs::perm_options::add);
    const std::string with_exec = hash_tree(d.path());
    CHECK(with_exec != base);
    fs::permissions(d / "app.py", fs::perms::owner_exec, fs::perm_options::remove);
    CHECK(hash_tree(d.path()) == base);
    fs::permissions(d / "bootstrap", fs::perms::owner_exec, fs::perm_options::remove);
    CHECK(hash_tree(d.path()) != base);
  }
  SECTION("other permission bits are not content") {
    fs::permissions(d / "app.py", fs::perms::group_write | fs::perms::others_read, fs::perm_options::add);
    CHECK(hash_tree(d.path()) == base);
  }
}

TEST_CASE("hash_tree keeps file boundaries apart", "[hash][tree]") {
  TempDir a, b;
  write_file(a / "ab", "c");
  write_file(b / "a", "bc");
  CHECK(hash_tree(a.path()) != hash_tree(b.path()));
  TempDir c, e;
  write_file(c / "x", "12");
  write_file(c / "y", "");
  write_file(e / "x", "1");
  write_file(e / "y", "2");
  CHECK(hash_tree(c.path()) != hash_tree(e.path()));
}

TEST_CASE("hash_tree leaves out what the skip predicate names", "[hash][tree]") {
  TempDir d;
  make_tree(d.path());
  const std::string skipped = hash_tree(d.path(), skip_pycache);
  const std::string all = hash_tree(d.path());
  CHECK(skipped == all);  // nothing to skip yet

  write_file(d / "__pycache__" / "app.cpython-312.pyc", "bytecode");
  write_file(d / "lib" / "util.cpython-312.pyc", "bytecode");
  write_file(d / "lib" / "__pycache__" / "deep" / "more.txt", "not bytecode, but under __pycache__");
  CHECK(hash_tree(d.path(), skip_pycache) == skipped);
  CHECK(hash_tree(d.path()) != all);

  // The predicate sees paths relative to the root.
  static std::vector<std::string> seen;
  seen.clear();
  hash_tree(d.path(), [](const fs::path& rel) {
    seen.push_back(rel.generic_string());
    return false;
  });
  CHECK(std::find(seen.begin(), seen.end(), "lib/util.py") != seen.end());
  for (const auto& s : seen) CHECK_FALSE(fs::path(s).is_absolute());

  // A skipped directory is not descended into.
  seen.clear();
  hash_tree(d.path(), [](const fs::path& rel) {
    seen.push_back(rel.generic_string());
    return rel == "lib";
  });
  for (const auto& s : seen) CHECK_FALSE(s.rfind("lib/", 0) == 0);
}
