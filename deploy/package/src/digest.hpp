// SHA-256 of a zip, as hex (S3 keys) and base64 (Lambda's CodeSha256).
#pragma once
#include <string>
#include <string_view>

namespace sluice::package::detail {
std::string sha256_hex(std::string_view data);
std::string sha256_base64(std::string_view data);
}  // namespace sluice::package::detail
