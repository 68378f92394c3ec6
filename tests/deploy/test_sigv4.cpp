// SigV4: every vector of AWS's test suite (tests/vectors/aws4_testsuite, path from CMake)
// and the pieces the S3 rules change.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sluice/aws/sigv4.hpp"

namespace fs = std::filesystem;
namespace sigv4 = sluice::aws::sigv4;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string chomp(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

struct ParsedRequest {
  std::string method, path;
  sluice::aws::Pairs query, headers;
  std::string body;
};

// The vectors' .req files: request line, headers (continuation lines start with blanks), an
// empty line, then the body. Paths and header values are as the vector writes them.
ParsedRequest parse_req(const std::string& text) {
  ParsedRequest r;
  std::size_t eol = text.find('\n');
  std::string first = text.substr(0, eol);
  std::size_t sp = first.find(' ');
  std::size_t http = first.rfind(" HTTP/");
  r.method = first.substr(0, sp);
  std::string target = first.substr(sp + 1, http - sp - 1);
  std::size_t q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) {
    std::string qs = target.substr(q + 1);
    std::size_t pos = 0;
    while (pos <= qs.size() && !qs.empty()) {
      std::size_t amp = qs.find('&', pos);
      if (amp == std::string::npos) amp = qs.size();
      std::string pair = qs.substr(pos, amp - pos);
      std::size_t eq = pair.find('=');
      r.query.emplace_back(sigv4::uri_decode(pair.substr(0, eq)),
                           eq == std::string::npos ? "" : sigv4::uri_decode(pair.substr(eq + 1)));
      pos = amp + 1;
    }
  }
  std::size_t pos = eol == std::string::npos ? text.size() : eol + 1;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) {
      r.body = pos < text.size() ? text.substr(pos) : "";
      break;
    }
    if ((line[0] == ' ' || line[0] == '\t') && !r.headers.empty()) {
      r.headers.back().second += "\n" + line;
      continue;
    }
    std::size_t colon = line.find(':');
    r.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  return r;
}

}  // namespace

TEST_CASE("sigv4: every vector of the AWS test suite") {
  const fs::path root = SLUICE_AWS4_TESTSUITE;
  REQUIRE(fs::is_directory(root));
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".req") continue;
    const fs::path base = entry.path().parent_path() / entry.path().stem();
    const std::string name = entry.path().stem().string();
    DYNAMIC_SECTION(name) {
      ParsedRequest r = parse_req(slurp(entry.path()));
      const std::string creq = chomp(slurp(base.string() + ".creq"));
      // get-vanilla-with-session-token: the token is in the canonical request only; the
      // signer adds it, as the SDKs do.
      const std::string token_line = "\nx-amz-security-token:";
      bool has_token_header = false;
      for (const auto& h : r.headers)
        if (h.first == "X-Amz-Security-Token") has_token_header = true;
      if (auto t = creq.find(token_line); t != std::string::npos && !has_token_header) {
        std::size_t start = t + token_line.size();
        r.headers.emplace_back("X-Amz-Security-Token", creq.substr(start, creq.find('\n', start) - start));
      }
      sigv4::Input in{r.method, r.path, r.query, r.headers, sigv4::sha256_hex(r.body), false};
      sigv4::Scope scope{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service",
                         "20150830T123600Z"};
      auto sig = sigv4::sign(in, scope);
      CHECK(sig.canonical_request == creq);
      CHECK(sig.string_to_sign == chomp(slurp(base.string() + ".sts")));
      CHECK(sig.authorization == chomp(slurp(base.string() + ".authz")));
    }
    ++checked;
  }
  CHECK(checked >= 30);
}

TEST_CASE("sigv4: encoding") {
  CHECK(sigv4::uri_encode("a b/c~d_e.f-g") == "a%20b%2Fc~d_e.f-g");
  CHECK(sigv4::uri_encode("a b/c", true) == "a%20b/c");
  CHECK(sigv4::uri_encode("\xe1\x88\xb4") == "%E1%88%B4");
  CHECK(sigv4::uri_decode("%E1%88%b4+%zz") == "\xe1\x88\xb4+%zz");
  CHECK(sigv4::encode_path("") == "/");
  CHECK(sigv4::encode_path("/2015-03-31/functions/arn:aws:lambda:x/invocations") ==
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Ax/invocations");
  CHECK(sigv4::encode_query({{"b", "2"}, {"a", ""}, {"a b", "x/y"}}) == "b=2&a=&a%20b=x%2Fy");
}

TEST_CASE("sigv4: canonical URI, S3 and the others") {
  // Everything but S3: normalised, then encoded a second time.
  CHECK(sigv4::canonical_uri("/a//b/./c/../d%3A", false) == "/a/b/d%253A");
  CHECK(sigv4::canonical_uri("", false) == "/");
  // S3: as sent.
  CHECK(sigv4::canonical_uri("/bucket//a/./b%20c", true) == "/bucket//a/./b%20c");
}

TEST_CASE("sigv4: query strings with repeated and empty keys sort by name then value") {
  CHECK(sigv4::canonical_query({{"b", "1"}, {"a", "z"}, {"a", ""}, {"a", "b"}, {"", "x"}, {"A", "1"}}) ==
        "=x&A=1&a=&a=b&a=z&b=1");
  CHECK(sigv4::canonical_query({{"k", "a b+c"}}) == "k=a%20b%2Bc");
}

TEST_CASE("sigv4: add_auth for S3 uploads and session tokens") {
  sluice::aws::Credentials c{"AKID", "SECRET", "TOKEN", "test"};
  sigv4::SignRequest r;
  r.method = "PUT";
  r.wire_path = "/bucket/key%20one";
  r.headers = {{"host", "s3.us-east-1.amazonaws.com"}, {"User-Agent", "x"}};
  r.body = "hello";
  r.unsigned_payload = true;
  r.service = "s3";
  r.region = "us-east-1";
  auto sig = sigv4::add_auth(r, c, "20240101T000000Z");
  CHECK(sig.signed_headers == "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
  CHECK(sig.canonical_request.ends_with("\nUNSIGNED-PAYLOAD"));
  CHECK(sig.canonical_request.find("\n/bucket/key%20one\n") != std::string::npos);
  bool has_auth = false;
  for (const auto& h : r.headers) has_auth = has_auth || h.first == "authorization";
  CHECK(has_auth);

  sigv4::SignRequest l;
  l.method = "GET";
  l.wire_path = "/2015-03-31/functions/";
  l.headers = {{"host", "lambda.eu-west-3.amazonaws.com"}};
  l.service = "lambda";
  l.region = "eu-west-3";
  sluice::aws::Credentials plain{"AKID", "SECRET", "", "test"};
  auto s2 = sigv4::add_auth(l, plain, "20240101T000000Z");
  CHECK(s2.signed_headers == "host;x-amz-date");
  CHECK(s2.canonical_request.ends_with("\n" + std::string(sigv4::kEmptySha256)));
  CHECK(s2.authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-3/lambda/aws4_request, "));
}
