// Credentials, region and role as the AWS SDKs find them (no I/O beyond reading the two
// files; the environment is injectable for tests).
//
// Credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) unless a
// profile was given explicitly (--profile), as botocore does; then the profile (option,
// AWS_PROFILE, "default") in the shared credentials file (AWS_SHARED_CREDENTIALS_FILE,
// default ~/.aws/credentials) and the config file (AWS_CONFIG_FILE, default ~/.aws/config,
// "[profile NAME]" sections), the credentials file winning key by key. A profile with
// role_arn takes its base credentials from source_profile or credential_source =
// Environment; the caller then assumes the role (sts:AssumeRole).
// Region: option, AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else us-east-1.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "sluice/aws/client.hpp"

namespace sluice::aws {

struct Environment {
  std::function<std::optional<std::string>(const std::string&)> get;
  static Environment process();  // getenv
};

// Sections by name ("default", "profile dev", ...), keys lower-cased, values trimmed.
// Indented lines (nested settings such as "s3 =\n  addressing_style = path") are skipped.
using IniFile = std::map<std::string, std::map<std::string, std::string>>;
IniFile parse_ini(const std::string& text);

struct Settings {
  Credentials credentials;  // base credentials (before any role is assumed)
  std::string region;
  std::string profile;
  std::string role_arn;           // the profile's role_arn ("" when none)
  std::string role_session_name;  // the profile's role_session_name
  std::string external_id;
  std::string credentials_file;
  std::string config_file;
};

// Throws CredentialsError with one sentence: what was looked at, what to set.
Settings resolve_settings(const std::string& profile_option, const std::string& region_option,
                          const Environment& env);

}  // namespace sluice::aws
