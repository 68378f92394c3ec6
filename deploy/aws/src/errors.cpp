#include "sluice/aws/errors.hpp"

#include <nlohmann/json.hpp>

#include <cctype>

#include "sluice/aws/retry.hpp"

namespace sluice::aws {
namespace {

std::string find_header(const Pairs& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

// "UnrecognizedClientException:http://internal.amazon.com/coral/..." and
// "com.amazon.coral.service#UnrecognizedClientException" both name the same code.
std::string clean_code(std::string code) {
  if (auto colon = code.find(':'); colon != std::string::npos) code.resize(colon);
  if (auto hash = code.rfind('#'); hash != std::string::npos) code.erase(0, hash + 1);
  while (!code.empty() && (code.back() == ' ' || code.back() == '\t')) code.pop_back();
  return code;
}

std::string json_string(const nlohmann::json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = j.find(k);
    if (it != j.end() && it->is_string()) return it->get<std::string>();
  }
  return {};
}

std::string what_of(int status, const std::string& code, const std::string& message, const std::string& request_id,
                    const std::string& service) {
  std::string out = service.empty() ? "" : service + ": ";
  out += code.empty() ? "HTTP " + std::to_string(status) : code;
  if (!message.empty()) out += ": " + message;
  out += " (HTTP " + std::to_string(status);
  if (!request_id.empty()) out += ", request id " + request_id;
  out += ")";
  return out;
}

// An HTML page (a proxy's or a web framework's error page), not an AWS error document.
bool looks_like_html(const std::string& body) {
  std::string head;
  for (char c : body.substr(0, 200)) head += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return head.find("<!doctype html") != std::string::npos || head.find("<html") != std::string::npos;
}

// The page's <title>, without the status number it usually starts with ("500 Internal Server
// Error" -> "Internal Server Error"); "" when it has none.
std::string html_title(const std::string& body, int status) {
  std::string lower;
  for (char c : body) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto open = lower.find("<title>");
  if (open == std::string::npos) return {};
  auto close = lower.find("</title>", open);
  if (close == std::string::npos) return {};
  std::string title = xml_unescape(std::string_view(body).substr(open + 7, close - open - 7));
  const std::string number = std::to_string(status);
  if (title.rfind(number, 0) == 0) title.erase(0, number.size());
  auto b = title.find_first_not_of(" \t\r\n"), e = title.find_last_not_of(" \t\r\n");
  title = b == std::string::npos ? std::string() : title.substr(b, e - b + 1);
  return title.size() > 100 ? title.substr(0, 100) : title;
}

}  // namespace

ServiceError::ServiceError(int status_, std::string code_, std::string message_, std::string request_id_,
                           std::string service_)
    : std::runtime_error(what_of(status_, code_, message_, request_id_, service_)),
      status(status_),
      code(std::move(code_)),
      message(std::move(message_)),
      request_id(std::move(request_id_)),
      service(std::move(service_)) {}

bool ServiceError::is_auth_error() const { return is_auth_code(code); }
bool ServiceError::is_throttling() const { return is_throttling_code(code) || status == 429; }
bool ServiceError::is_transient() const { return is_transient_status(status) || is_transient_code(code); }

std::string rejected_credentials_sentence(const ServiceError& e, const Credentials& c) {
  std::string out = "AWS refused the credentials";
  if (!c.access_key_id.empty()) out += " " + c.access_key_id;
  if (!c.source.empty()) out += " from " + c.source;
  out += " (" + e.code + (e.message.empty() ? "" : ": " + e.message) + ")";
  if (e.code == "ExpiredToken" || e.code == "ExpiredTokenException" || e.code == "RequestExpired" ||
      e.code == "TokenRefreshRequired")
    out += "; the session token has expired: get fresh credentials (aws sso login, or a new session token).";
  else if (e.code == "SignatureDoesNotMatch" || e.code == "InvalidSignatureException")
    out += "; the secret access key does not match the access key id: check AWS_SECRET_ACCESS_KEY or the profile's "
           "aws_secret_access_key.";
  else
    out += "; check the access key id and secret (and the session token, if any) in the environment or the "
           "profile.";
  return out;
}

std::string xml_unescape(std::string_view t) {
  std::string out;
  out.reserve(t.size());
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] != '&') {
      out += t[i];
      continue;
    }
    auto semi = t.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out += t[i];
      continue;
    }
    std::string_view ent = t.substr(i + 1, semi - i - 1);
    if (ent == "lt") out += '<';
    else if (ent == "gt") out += '>';
    else if (ent == "amp") out += '&';
    else if (ent == "quot") out += '"';
    else if (ent == "apos") out += '\'';
    else if (!ent.empty() && ent[0] == '#') {
      unsigned long cp = 0;
      try {
        cp = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X') ? std::stoul(std::string(ent.substr(2)), nullptr, 16)
                                                                : std::stoul(std::string(ent.substr(1)));
      } catch (...) {
        out += t[i];
        continue;
      }
      // UTF-8 encode the code point.
      if (cp < 0x80) out += static_cast<char>(cp);
      else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      }
    } else {
      out += t[i];
      continue;
    }
    i = semi;
  }
  return out;
}

std::string xml_text(std::string_view xml, std::string_view tag) {
  const std::string open = "<" + std::string(tag);
  const std::string close = "</" + std::string(tag) + ">";
  std::size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    std::size_t after = pos + open.size();
    if (after < xml.size() && (xml[after] == '>' || xml[after] == ' ')) {
      std::size_t gt = xml.find('>', after);
      if (gt == std::string_view::npos) return {};
      if (xml[gt - 1] == '/') return {};  // <Tag/>
      std::size_t end = xml.find(close, gt + 1);
      if (end == std::string_view::npos) return {};
      std::string_view inner = xml.substr(gt + 1, end - gt - 1);
      if (inner.starts_with("<![CDATA[") && inner.ends_with("]]>")) return std::string(inner.substr(9, inner.size() - 12));
      return xml_unescape(inner);
    }
    pos = after;
  }
  return {};
}

ServiceError parse_service_error(int status, const Pairs& headers, const std::string& body, const std::string& service) {
  std::string code = clean_code(find_header(headers, "x-amzn-errortype"));
  std::string message;
  std::string request_id = find_header(headers, "x-amzn-requestid");
  if (request_id.empty()) request_id = find_header(headers, "x-amz-request-id");

  std::size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && body[first] == '{') {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object()) {
      if (code.empty()) code = clean_code(json_string(j, {"__type", "code", "Code"}));
      message = json_string(j, {"message", "Message", "errorMessage"});
      // API Gateway v2 and a few others nest it.
      if (message.empty() && j.contains("Error") && j["Error"].is_object()) {
        message = json_string(j["Error"], {"Message", "message"});
        if (code.empty()) code = clean_code(json_string(j["Error"], {"Code", "code"}));
      }
    }
  } else if (first != std::string::npos && body[first] == '<') {
    // <Error><Code/><Message/><RequestId/></Error> (S3) or
    // <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse> (IAM, STS).
    std::string xml_code = xml_text(body, "Code");
    if (code.empty()) code = xml_code;
    message = xml_text(body, "Message");
    if (request_id.empty()) request_id = xml_text(body, "RequestId");
  }
  if (code.empty()) {
    // No body to tell (HEAD requests, proxies): the status, as botocore reports it.
    code = std::to_string(status);
    if (message.empty() && first != std::string::npos) {
      if (looks_like_html(body)) message = html_title(body, status);  // a web server's error page
      else if (body.size() < 300) message = body.substr(first);
    }
  }
  return ServiceError(status, std::move(code), std::move(message), std::move(request_id), service);
}

}  // namespace sluice::aws
