#include <catch2/catch.hpp>

#include "sluice/package/package.hpp"

using namespace sluice::package;

namespace {
Archive sized(std::uint64_t unzipped, std::size_t zipped = 100) {
  Archive a;
  a.unzipped_size = unzipped;
  a.bytes.assign(zipped, 'z');
  return a;
}
constexpr std::uint64_t MB = 1024 * 1024;
}  // namespace

TEST_CASE("format_mb: MiB with one decimal") {
  CHECK(format_mb(0) == "0.0 MB");
  CHECK(format_mb(250 * MB) == "250.0 MB");
  CHECK(format_mb(static_cast<std::uint64_t>(262.4 * MB)) == "262.4 MB");
  CHECK(format_mb(MB / 2) == "0.5 MB");
}

TEST_CASE("check_limits: 250 MB unzipped, code and layers together") {
  const Archive code = sized(200 * MB);
  const Archive l1 = sized(40 * MB), l2 = sized(static_cast<std::uint64_t>(22.4 * MB)), small = sized(10 * MB);
  CHECK_NOTHROW(check_limits("movies-list", code, {}));
  CHECK_NOTHROW(check_limits("movies-list", code, {&small, &l1}));  // exactly 250 MB is allowed
  CHECK_THROWS_AS(check_limits("movies-list", code, {&l1, &l2}), LimitError);
  CHECK_THROWS_WITH(check_limits("movies-list", code, {&l1, &l2}),
                    "function movies-list: 262.4 MB unzipped with its 2 layers; Lambda allows 250 MB");
  const Archive big_layer = sized(60 * MB);
  CHECK_THROWS_WITH(check_limits("one", code, {&big_layer}),
                    "function one: 260.0 MB unzipped with its 1 layer; Lambda allows 250 MB");
  CHECK_THROWS_WITH(check_limits("big", sized(300 * MB), {}), "function big: 300.0 MB unzipped; Lambda allows 250 MB");
  // One byte over prints as 250.0 MB: the bytes say why it is refused.
  CHECK_THROWS_WITH(check_limits("edge", sized(kUnzippedLimit + 1), {}),
                    "function edge: 250.0 MB (262144001 bytes) unzipped; Lambda allows 250 MB");
}

TEST_CASE("check_limits: at most 5 layers") {
  const Archive code = sized(MB), layer = sized(MB);
  CHECK_NOTHROW(check_limits("f", code, {&layer, &layer, &layer, &layer, &layer}));
  CHECK_THROWS_WITH(check_limits("f", code, {&layer, &layer, &layer, &layer, &layer, &layer}),
                    "function f: 6 layers; Lambda allows 5");
}

TEST_CASE("50 MB zipped is not an error: it means an upload through S3") {
  const Archive big = sized(200 * MB, kDirectUploadLimit + 1);
  const Archive fits = sized(200 * MB, kDirectUploadLimit);
  CHECK(needs_s3(big));
  CHECK_FALSE(needs_s3(fits));
  CHECK_NOTHROW(check_limits("f", big, {}));
}
