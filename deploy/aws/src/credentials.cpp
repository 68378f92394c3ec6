#include "sluice/aws/credentials.hpp"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace sluice::aws {
namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string env_or(const Environment& env, const std::string& name) {
  auto v = env.get ? env.get(name) : std::nullopt;
  return v ? *v : std::string();
}

std::string expand_home(const std::string& path, const Environment& env) {
  if (path.starts_with("~/") || path == "~") return env_or(env, "HOME") + path.substr(1);
  return path;
}

std::optional<IniFile> read_ini(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_ini(ss.str());
}

using Section = std::map<std::string, std::string>;

struct Files {
  std::string credentials_path, config_path;
  std::optional<IniFile> credentials, config;

  // The profile's settings, config file first, then the credentials file key by key.
  std::optional<Section> profile(const std::string& name) const {
    std::optional<Section> out;
    if (config) {
      auto it = config->find(name == "default" ? "default" : "profile " + name);
      if (it == config->end() && name == "default") it = config->find("profile default");
      if (it != config->end()) out = it->second;
    }
    if (credentials) {
      auto it = credentials->find(name);
      if (it != credentials->end()) {
        if (!out) out.emplace();
        for (const auto& [k, v] : it->second) (*out)[k] = v;
      }
    }
    return out;
  }

  std::string where(const std::string& name) const {
    bool in_creds = credentials && credentials->count(name);
    return in_creds ? "shared credentials file " + credentials_path + " (profile " + name + ")"
                    : "config file " + config_path + " (profile " + name + ")";
  }
};

std::string get(const Section& s, const std::string& key) {
  auto it = s.find(key);
  return it == s.end() ? std::string() : it->second;
}

std::optional<Credentials> from_environment(const Environment& env) {
  std::string ak = env_or(env, "AWS_ACCESS_KEY_ID"), sk = env_or(env, "AWS_SECRET_ACCESS_KEY");
  if (ak.empty() && sk.empty()) return std::nullopt;
  if (ak.empty() || sk.empty())
    throw CredentialsError(std::string(ak.empty() ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") + " is set but " +
                           (ak.empty() ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") +
                           " is not: set both (and AWS_SESSION_TOKEN for temporary credentials), or unset it to "
                           "use a profile.");
  std::string token = env_or(env, "AWS_SESSION_TOKEN");
  if (token.empty()) token = env_or(env, "AWS_SECURITY_TOKEN");
  return Credentials{ak, sk, token, "environment variables"};
}

std::optional<Credentials> static_from_profile(const Files& files, const std::string& name, const Section& s) {
  std::string ak = get(s, "aws_access_key_id"), sk = get(s, "aws_secret_access_key");
  if (ak.empty() && sk.empty()) return std::nullopt;
  if (ak.empty() || sk.empty())
    throw CredentialsError("The AWS profile \"" + name + "\" in " + files.where(name) + " has " +
                           (ak.empty() ? "aws_secret_access_key but no aws_access_key_id"
                                       : "aws_access_key_id but no aws_secret_access_key") +
                           ": set both.");
  return Credentials{ak, sk, get(s, "aws_session_token"), files.where(name)};
}

void refuse_unsupported(const std::string& name, const Section& s) {
  for (const char* key : {"sso_session", "sso_start_url", "credential_process", "web_identity_token_file"}) {
    if (!get(s, key).empty())
      throw CredentialsError("The AWS profile \"" + name + "\" gets its credentials through " + key +
                             ", which sluice does not read: export them first (aws configure export-credentials "
                             "--profile " + name + " --format env) or use a profile with aws_access_key_id.");
  }
}

}  // namespace

Environment Environment::process() {
  return Environment{[](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  }};
}

IniFile parse_ini(const std::string& text) {
  IniFile out;
  std::string section;
  bool in_section = false;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == ' ' || line[0] == '\t') continue;  // blank or nested setting
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t[0] == '[') {
      auto close = t.find(']');
      section = trim(t.substr(1, close == std::string::npos ? std::string::npos : close - 1));
      // "[profile   dev]" and "[profile dev]" are the same section.
      if (section.starts_with("profile ") || section.starts_with("profile\t")) section = "profile " + trim(section.substr(8));
      in_section = true;
      out[section];
      continue;
    }
    if (!in_section) continue;
    auto eq = t.find('=');
    if (eq == std::string::npos) continue;
    std::string value = trim(t.substr(eq + 1));
    // Inline comments need a space before them, as botocore's parser expects.
    for (const char* marker : {" #", " ;", "\t#", "\t;"})
      if (auto c = value.find(marker); c != std::string::npos) value = trim(value.substr(0, c));
    out[section][lower(trim(t.substr(0, eq)))] = value;
  }
  return out;
}

Settings resolve_settings(const std::string& profile_option, const std::string& region_option,
                          const Environment& env) {
  Settings out;
  std::string home = env_or(env, "HOME");
  Files files;
  files.credentials_path = env_or(env, "AWS_SHARED_CREDENTIALS_FILE");
  if (files.credentials_path.empty()) files.credentials_path = home + "/.aws/credentials";
  files.config_path = env_or(env, "AWS_CONFIG_FILE");
  if (files.config_path.empty()) files.config_path = home + "/.aws/config";
  files.credentials_path = expand_home(files.credentials_path, env);
  files.config_path = expand_home(files.config_path, env);
  files.credentials = read_ini(files.credentials_path);
  files.config = read_ini(files.config_path);
  out.credentials_file = files.credentials_path;
  out.config_file = files.config_path;

  const bool explicit_profile = !profile_option.empty();
  out.profile = profile_option;
  if (out.profile.empty()) out.profile = env_or(env, "AWS_PROFILE");
  if (out.profile.empty()) out.profile = env_or(env, "AWS_DEFAULT_PROFILE");
  if (out.profile.empty()) out.profile = "default";
  const std::optional<Section> profile = files.profile(out.profile);

  // Region first: it does not depend on where the credentials come from.
  out.region = region_option;
  if (out.region.empty()) out.region = env_or(env, "AWS_REGION");
  if (out.region.empty()) out.region = env_or(env, "AWS_DEFAULT_REGION");
  if (out.region.empty() && profile) out.region = get(*profile, "region");
  if (out.region.empty()) out.region = "us-east-1";

  // An explicitly named profile must exist, whatever else could supply credentials.
  if (!profile && out.profile != "default" && (explicit_profile || !env_or(env, "AWS_PROFILE").empty()))
    throw CredentialsError("The AWS profile \"" + out.profile + "\" was found neither in " + files.credentials_path +
                           " nor in " + files.config_path + " (as [profile " + out.profile +
                           "]): create it with `aws configure --profile " + out.profile +
                           "` or choose another with --profile / AWS_PROFILE.");

  if (!explicit_profile) {
    if (auto c = from_environment(env)) {
      out.credentials = *c;
      return out;
    }
  }

  if (profile) {
    refuse_unsupported(out.profile, *profile);
    std::string role_arn = get(*profile, "role_arn");
    if (!role_arn.empty()) {
      out.role_arn = role_arn;
      out.role_session_name = get(*profile, "role_session_name");
      out.external_id = get(*profile, "external_id");
      std::string source = get(*profile, "source_profile");
      std::string credential_source = get(*profile, "credential_source");
      if (!source.empty()) {
        auto sp = files.profile(source);
        if (!sp)
          throw CredentialsError("The AWS profile \"" + out.profile + "\" names source_profile \"" + source +
                                 "\", which is in neither " + files.credentials_path + " nor " + files.config_path +
                                 ".");
        auto c = static_from_profile(files, source, *sp);
        if (!c)
          throw CredentialsError("The AWS profile \"" + source + "\" (source_profile of \"" + out.profile +
                                 "\") has no aws_access_key_id / aws_secret_access_key in " + files.credentials_path +
                                 " or " + files.config_path + ".");
        out.credentials = *c;
        return out;
      }
      if (credential_source == "Environment") {
        auto c = from_environment(env);
        if (!c)
          throw CredentialsError("The AWS profile \"" + out.profile +
                                 "\" takes its credentials from the environment (credential_source = Environment) "
                                 "but AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set.");
        out.credentials = *c;
        return out;
      }
      throw CredentialsError("The AWS profile \"" + out.profile + "\" has role_arn but neither source_profile nor " +
                             "credential_source = Environment" +
                             (credential_source.empty() ? "" : " (credential_source " + credential_source +
                                                                   " is not supported by sluice)") +
                             ": add a source_profile with access keys.");
    }
    if (auto c = static_from_profile(files, out.profile, *profile)) {
      out.credentials = *c;
      return out;
    }
  }

  throw CredentialsError(
      "No AWS credentials found: looked at AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY" +
      std::string(explicit_profile ? " (skipped: --profile was given)" : "") + " and at profile \"" + out.profile +
      "\" in " + files.credentials_path + (files.credentials ? "" : " (missing)") + " and " + files.config_path +
      (files.config ? "" : " (missing)") +
      "; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws configure`, or pass --profile.");
}

}  // namespace sluice::aws
