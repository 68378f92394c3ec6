// deploy/aws pure logic: credentials chain (temporary files, injected environment),
// service-error parsing, the standard retry policy.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include "../test_support.hpp"
#include "sluice/aws/credentials.hpp"
#include "sluice/aws/errors.hpp"
#include "sluice/aws/retry.hpp"

namespace aws = sluice::aws;
using test_support::TempDir;

namespace {

aws::Environment env_of(std::map<std::string, std::string> vars) {
  return aws::Environment{[vars = std::move(vars)](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  }};
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const aws::CredentialsError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("credentials: environment variables, with session token") {
  TempDir home;
  auto s = aws::resolve_settings("", "", env_of({{"HOME", home.path().string()}, {"AWS_ACCESS_KEY_ID", "AK"},
                                                 {"AWS_SECRET_ACCESS_KEY", "SK"}, {"AWS_SESSION_TOKEN", "TOK"},
                                                 {"AWS_DEFAULT_REGION", "eu-west-3"}}));
  CHECK(s.credentials.access_key_id == "AK");
  CHECK(s.credentials.session_token == "TOK");
  CHECK(s.credentials.source == "environment variables");
  CHECK(s.region == "eu-west-3");
  CHECK(s.profile == "default");
}

TEST_CASE("credentials: half a key pair is an error that names the missing half") {
  TempDir home;
  auto msg = error_of([&] {
    aws::resolve_settings("", "", env_of({{"HOME", home.path().string()}, {"AWS_ACCESS_KEY_ID", "AK"}}));
  });
  CHECK(msg.find("AWS_SECRET_ACCESS_KEY is not") != std::string::npos);
}

TEST_CASE("credentials: shared files, profiles and region order") {
  TempDir home;
  auto aws_dir = home.path() / ".aws";
  write(aws_dir / "credentials",
        "# comment\n[default]\naws_access_key_id = AKDEF\naws_secret_access_key = SKDEF\n\n"
        "[dev]\naws_access_key_id=AKDEV ; inline comment\naws_secret_access_key=SKDEV\n");
  write(aws_dir / "config",
        "[default]\nregion = us-west-2\n[profile dev]\nregion = eu-central-1\ns3 =\n  addressing_style = path\n"
        "[profile cfgonly]\naws_access_key_id = AKCFG\naws_secret_access_key = SKCFG\n");
  std::map<std::string, std::string> base{{"HOME", home.path().string()}};

  auto s = aws::resolve_settings("", "", env_of(base));
  CHECK(s.credentials.access_key_id == "AKDEF");
  CHECK(s.region == "us-west-2");
  CHECK(s.credentials.source.find("shared credentials file") != std::string::npos);

  auto with_profile = base;
  with_profile["AWS_PROFILE"] = "dev";
  s = aws::resolve_settings("", "", env_of(with_profile));
  CHECK(s.credentials.access_key_id == "AKDEV");
  CHECK(s.region == "eu-central-1");

  s = aws::resolve_settings("cfgonly", "", env_of(base));
  CHECK(s.credentials.access_key_id == "AKCFG");
  CHECK(s.credentials.source.find("config file") != std::string::npos);
  CHECK(s.region == "us-east-1");

  // Region: option, AWS_REGION, AWS_DEFAULT_REGION, profile.
  auto regions = with_profile;
  regions["AWS_DEFAULT_REGION"] = "ap-south-1";
  CHECK(aws::resolve_settings("", "", env_of(regions)).region == "ap-south-1");
  regions["AWS_REGION"] = "ca-central-1";
  CHECK(aws::resolve_settings("", "", env_of(regions)).region == "ca-central-1");
  CHECK(aws::resolve_settings("", "sa-east-1", env_of(regions)).region == "sa-east-1");

  // Environment credentials beat AWS_PROFILE but not --profile.
  auto env_and_profile = with_profile;
  env_and_profile["AWS_ACCESS_KEY_ID"] = "AKENV";
  env_and_profile["AWS_SECRET_ACCESS_KEY"] = "SKENV";
  CHECK(aws::resolve_settings("", "", env_of(env_and_profile)).credentials.access_key_id == "AKENV");
  CHECK(aws::resolve_settings("dev", "", env_of(env_and_profile)).credentials.access_key_id == "AKDEV");

  // Files elsewhere.
  TempDir other;
  write(other.path() / "c", "[default]\naws_access_key_id=AKOTHER\naws_secret_access_key=S\n");
  auto moved = base;
  moved["AWS_SHARED_CREDENTIALS_FILE"] = (other.path() / "c").string();
  moved["AWS_CONFIG_FILE"] = (other.path() / "none").string();
  s = aws::resolve_settings("", "", env_of(moved));
  CHECK(s.credentials.access_key_id == "AKOTHER");
  CHECK(s.region == "us-east-1");
}

TEST_CASE("credentials: role profiles") {
  TempDir home;
  write(home.path() / ".aws" / "credentials", "[base]\naws_access_key_id = AKBASE\naws_secret_access_key = SK\n");
  write(home.path() / ".aws" / "config",
        "[profile deploy]\nrole_arn = arn:aws:iam::1:role/d\nsource_profile = base\nexternal_id = X\n"
        "[profile envrole]\nrole_arn = arn:aws:iam::1:role/e\ncredential_source = Environment\n"
        "[profile broken]\nrole_arn = arn:aws:iam::1:role/b\n"
        "[profile sso]\nsso_session = corp\n");
  std::map<std::string, std::string> base{{"HOME", home.path().string()}};
  auto s = aws::resolve_settings("deploy", "", env_of(base));
  CHECK(s.role_arn == "arn:aws:iam::1:role/d");
  CHECK(s.external_id == "X");
  CHECK(s.credentials.access_key_id == "AKBASE");

  auto with_env = base;
  with_env["AWS_ACCESS_KEY_ID"] = "AKENV";
  with_env["AWS_SECRET_ACCESS_KEY"] = "SKENV";
  s = aws::resolve_settings("envrole", "", env_of(with_env));
  CHECK(s.role_arn == "arn:aws:iam::1:role/e");
  CHECK(s.credentials.access_key_id == "AKENV");

  CHECK(error_of([&] { aws::resolve_settings("broken", "", env_of(base)); }).find("source_profile") !=
        std::string::npos);
  CHECK(error_of([&] { aws::resolve_settings("sso", "", env_of(base)); }).find("sso_session") != std::string::npos);
}

TEST_CASE("credentials: nothing found says what was looked at and what to set") {
  TempDir home;
  auto msg = error_of([&] { aws::resolve_settings("", "", env_of({{"HOME", home.path().string()}})); });
  CHECK(msg.starts_with("No AWS credentials found"));
  CHECK(msg.find("AWS_ACCESS_KEY_ID") != std::string::npos);
  CHECK(msg.find((home.path() / ".aws" / "credentials").string()) != std::string::npos);
  CHECK(msg.find("aws configure") != std::string::npos);
  auto missing = error_of([&] { aws::resolve_settings("ghost", "", env_of({{"HOME", home.path().string()}})); });
  CHECK(missing.find("profile \"ghost\"") != std::string::npos);
}

TEST_CASE("ini: sections, comments, nested settings") {
  auto ini = aws::parse_ini("top = ignored\n[a]\nK = v # c\nx=1\n  nested = no\n[profile   b ]\ny = 2\n");
  CHECK(ini["a"]["k"] == "v");
  CHECK(ini["a"]["x"] == "1");
  CHECK(ini["a"].count("nested") == 0);
  CHECK(ini["profile b"]["y"] == "2");
}

TEST_CASE("errors: JSON shapes") {
  auto e = aws::parse_service_error(404, {{"x-amzn-errortype", "ResourceNotFoundException:http://internal/"},
                                          {"x-amzn-requestid", "rid"}},
                                    R"({"Type":"User","Message":"Function not found: f"})", "lambda");
  CHECK(e.code == "ResourceNotFoundException");
  CHECK(e.message == "Function not found: f");
  CHECK(e.request_id == "rid");
  CHECK(std::string(e.what()) == "lambda: ResourceNotFoundException: Function not found: f (HTTP 404, request id rid)");

  e = aws::parse_service_error(400, {}, R"({"__type":"com.amazon.coral.service#UnrecognizedClientException",
                                           "message":"The security token included in the request is invalid."})",
                               "lambda");
  CHECK(e.code == "UnrecognizedClientException");
  CHECK(e.is_auth_error());
  e = aws::parse_service_error(429, {}, R"({"code":"TooManyRequestsException","message":"slow"})", "apigateway");
  CHECK(e.is_throttling());
  CHECK_FALSE(e.is_auth_error());
}

TEST_CASE("errors: XML shapes (S3, IAM/STS) and empty bodies") {
  auto e = aws::parse_service_error(404, {{"x-amz-request-id", "S3RID"}},
                                    "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key &lt;k&gt; "
                                    "does not exist</Message><Key>k</Key><RequestId>S3RID</RequestId></Error>",
                                    "s3");
  CHECK(e.code == "NoSuchKey");
  CHECK(e.message == "The key <k> does not exist");
  CHECK(e.request_id == "S3RID");
  e = aws::parse_service_error(403, {},
                               "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender"
                               "</Type><Code>ExpiredToken</Code><Message>The security token included in the request "
                               "is expired</Message></Error><RequestId>r-1</RequestId></ErrorResponse>",
                               "sts");
  CHECK(e.code == "ExpiredToken");
  CHECK(e.request_id == "r-1");
  CHECK(e.is_auth_error());
  CHECK(aws::rejected_credentials_sentence(e, {"AKID", "", "", "environment variables"})
            .find("session token has expired") != std::string::npos);
  e = aws::parse_service_error(404, {}, "", "s3");
  CHECK(e.code == "404");
  e = aws::parse_service_error(503, {}, "<Error><Code>SlowDown</Code></Error>", "s3");
  CHECK(e.is_throttling());
  CHECK(e.is_transient());
  CHECK(aws::xml_text("<A><Code attr=\"1\">x&amp;y&#233;</Code></A>", "Code") == "x&y\xc3\xa9");
  CHECK(aws::xml_text("<CodeX>no</CodeX>", "Code").empty());
}

TEST_CASE("errors: a web server's HTML error page is its title, not the page") {
  auto e = aws::parse_service_error(500, {{"content-type", "text/html; charset=utf-8"}},
                                    "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
                                    "<h1>Internal Server Error</h1>\n<p>The server encountered an internal error.</p>\n",
                                    "apigateway");
  CHECK(e.code == "500");
  CHECK(e.message == "Internal Server Error");
  CHECK(e.is_transient());
  e = aws::parse_service_error(502, {}, "<HTML><BODY>Bad gateway &amp; more</BODY></HTML>", "lambda");
  CHECK(e.code == "502");
  CHECK(e.message.empty());
  e = aws::parse_service_error(503, {}, "Service Unavailable", "lambda");
  CHECK(e.message == "Service Unavailable");  // short plain text stays as it is
}

TEST_CASE("retry: attempts, quota and backoff bounds") {
  aws::RetryPolicy p(3, [] { return 0.999; });
  int last = 0;
  CHECK(p.acquire(1, aws::RetryPolicy::Failure::transient, last));
  CHECK(p.tokens() == 495);
  CHECK(p.acquire(2, aws::RetryPolicy::Failure::timeout, last));
  CHECK(p.tokens() == 485);
  CHECK(last == 10);
  CHECK_FALSE(p.acquire(3, aws::RetryPolicy::Failure::transient, last));  // max attempts
  p.on_success(last);
  CHECK(p.tokens() == 495);
  p.on_success(0);
  p.on_success(0);
  CHECK(p.tokens() == 497);
  for (int i = 0; i < 10; ++i) p.on_success(0);
  CHECK(p.tokens() == 500);  // never above the initial quota

  // Backoff: rand * min(base * 2^(attempt-1), 20 s).
  CHECK(p.delay(1, aws::RetryPolicy::Failure::transient).count() == 99);
  CHECK(p.delay(2, aws::RetryPolicy::Failure::transient).count() == 199);
  CHECK(p.delay(1, aws::RetryPolicy::Failure::throttling).count() == 499);
  CHECK(p.delay(3, aws::RetryPolicy::Failure::throttling).count() == 1998);
  CHECK(p.delay(30, aws::RetryPolicy::Failure::throttling).count() == 19980);
  aws::RetryPolicy zero(3, [] { return 0.0; });
  CHECK(zero.delay(5, aws::RetryPolicy::Failure::throttling).count() == 0);

  // The quota runs out: 100 retries of 5 tokens, then none.
  aws::RetryPolicy q(1000, [] { return 0.5; });
  int granted = 0;
  for (int i = 0; i < 200; ++i)
    if (q.acquire(1, aws::RetryPolicy::Failure::throttling, last)) ++granted;
  CHECK(granted == 100);
  CHECK(q.tokens() == 0);

  // Random jitter stays within the bounds.
  aws::RetryPolicy r(3);
  for (int i = 0; i < 200; ++i) {
    auto d = r.delay(2, aws::RetryPolicy::Failure::transient).count();
    CHECK((d >= 0 && d <= 200));
  }
}

TEST_CASE("retry: classification") {
  CHECK(aws::is_throttling_code("Throttling"));
  CHECK(aws::is_throttling_code("RequestLimitExceeded"));
  CHECK(aws::is_throttling_code("SlowDown"));
  CHECK_FALSE(aws::is_throttling_code("AccessDenied"));
  CHECK(aws::is_transient_status(502));
  CHECK_FALSE(aws::is_transient_status(501));
  CHECK(aws::is_auth_code("InvalidAccessKeyId"));
  CHECK(aws::is_auth_code("SignatureDoesNotMatch"));
  CHECK_FALSE(aws::is_auth_code("AccessDenied"));
}
