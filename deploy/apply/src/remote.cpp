#include "remote.hpp"

#include "sluice/common/util.hpp"

#include <cstdlib>
#include <cstdio>

namespace sluice::deploy {

namespace {

bool trace_enabled() {
  static const bool on = std::getenv("SLUICE_DEPLOY_TRACE") != nullptr;
  return on;
}

void trace(const aws::Request& r, int status) {
  if (!trace_enabled()) return;
  std::string q;
  for (const auto& [k, v] : r.query) q += (q.empty() ? "?" : "&") + k + "=" + v;
  for (const auto& [k, v] : r.headers)
    if (k == "x-amz-target") q += " " + v;
  std::fprintf(stderr, "  [trace] %s %s %s%s -> %d\n", r.service.c_str(), r.method.c_str(), r.path.c_str(), q.c_str(),
               status);
}

aws::Response send(aws::Client& c, const aws::Request& r) {
  try {
    auto resp = c.call(r);
    trace(r, resp.status);
    return resp;
  } catch (const aws::ServiceError& e) {
    trace(r, e.status);
    throw;
  }
}

}  // namespace

bool is_not_found(const aws::ServiceError& e) {
  return e.status == 404 || e.code == "ResourceNotFoundException" || e.code == "NotFoundException" ||
         e.code == "NoSuchEntity" || e.code == "NoSuchKey" || e.code == "NoSuchBucket";
}

json Remote::call(const std::string& method, const std::string& service, const std::string& path, const json& body,
                  const aws::Pairs& query) {
  aws::Request r;
  r.method = method;
  r.service = service;
  r.path = path;
  r.query = query;
  if (!body.is_null()) {
    r.body = body.dump();
    r.headers.emplace_back("content-type", "application/json");
  }
  if (method != "GET" && method != "HEAD") ++mutations_;
  auto resp = send(c_, r);
  if (resp.body.empty()) return json::object();
  auto parsed = json::parse(resp.body, nullptr, false);
  if (parsed.is_discarded()) return json::object();
  return parsed;
}

std::optional<json> Remote::get(const std::string& service, const std::string& path, const aws::Pairs& query) {
  try {
    return call("GET", service, path, nullptr, query);
  } catch (const aws::ServiceError& e) {
    if (is_not_found(e)) return std::nullopt;
    throw;
  }
}

json Remote::target(const std::string& service, const std::string& target_prefix, const std::string& action,
                    const json& body) {
  aws::Request r;
  r.method = "POST";
  r.service = service;
  r.path = "/";
  r.body = body.is_null() ? "{}" : body.dump();
  r.headers.emplace_back("content-type", "application/x-amz-json-1.1");
  r.headers.emplace_back("x-amz-target", target_prefix + "." + action);
  if (!starts_with(action, "Describe") && !starts_with(action, "List")) ++mutations_;
  auto resp = send(c_, r);
  if (resp.body.empty()) return json::object();
  auto parsed = json::parse(resp.body, nullptr, false);
  return parsed.is_discarded() ? json::object() : parsed;
}

std::string Remote::query(const std::string& service, const std::string& action, const std::string& version,
                          const aws::Pairs& params) {
  aws::Request r;
  r.method = "POST";
  r.service = service;
  r.path = "/";
  std::string body = "Action=" + url_encode(action) + "&Version=" + url_encode(version);
  for (const auto& [k, v] : params) body += "&" + url_encode(k) + "=" + url_encode(v);
  r.body = body;
  r.headers.emplace_back("content-type", "application/x-www-form-urlencoded; charset=utf-8");
  // Query APIs are all POST; only the action says whether it changes anything.
  if (!starts_with(action, "Get") && !starts_with(action, "List")) ++mutations_;
  return send(c_, r).body;
}

bool Remote::s3_head_exists(const std::string& path) {
  aws::Request r;
  r.method = "HEAD";
  r.service = "s3";
  r.path = path;
  try {
    send(c_, r);
    return true;
  } catch (const aws::ServiceError& e) {
    if (is_not_found(e)) return false;
    throw;
  }
}

bool Remote::bucket_exists(const std::string& bucket) { return s3_head_exists("/" + bucket); }

void Remote::create_bucket(const std::string& bucket, const std::string& region) {
  aws::Request r;
  r.method = "PUT";
  r.service = "s3";
  r.path = "/" + bucket;
  if (region != "us-east-1") {
    r.body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>" +
             region + "</LocationConstraint></CreateBucketConfiguration>";
    r.headers.emplace_back("content-type", "application/xml");
  }
  ++mutations_;
  send(c_, r);
}

bool Remote::object_exists(const std::string& bucket, const std::string& key) {
  return s3_head_exists("/" + bucket + "/" + key);
}

std::optional<std::string> Remote::get_object(const std::string& bucket, const std::string& key) {
  auto found = get_object_and_etag(bucket, key);
  if (!found) return std::nullopt;
  return std::move(found->first);
}

std::optional<std::pair<std::string, std::string>> Remote::get_object_and_etag(const std::string& bucket,
                                                                               const std::string& key) {
  aws::Request r;
  r.method = "GET";
  r.service = "s3";
  r.path = "/" + bucket + "/" + key;
  try {
    auto res = send(c_, r);
    return std::make_pair(res.body, res.header("etag"));
  } catch (const aws::ServiceError& e) {
    if (is_not_found(e)) return std::nullopt;
    throw;
  }
}

bool Remote::put_object(const std::string& bucket, const std::string& key, const std::string& body,
                        const std::string& content_type, bool if_none_match,
                        std::function<void(std::size_t, std::size_t)> progress) {
  aws::Request r;
  r.method = "PUT";
  r.service = "s3";
  r.path = "/" + bucket + "/" + key;
  r.body = body;
  r.unsigned_payload = true;
  r.headers.emplace_back("content-type", content_type);
  if (if_none_match) r.headers.emplace_back("if-none-match", "*");
  r.progress = std::move(progress);
  ++mutations_;
  try {
    send(c_, r);
    return true;
  } catch (const aws::ServiceError& e) {
    if (if_none_match && (e.status == 412 || e.code == "PreconditionFailed" || e.status == 409)) return false;
    throw;
  }
}

bool Remote::delete_object_if_match(const std::string& bucket, const std::string& key, const std::string& etag) {
  aws::Request r;
  r.method = "DELETE";
  r.service = "s3";
  r.path = "/" + bucket + "/" + key;
  r.headers.emplace_back("if-match", etag);
  ++mutations_;
  try {
    send(c_, r);
    return true;
  } catch (const aws::ServiceError& e) {
    if (e.status == 412 || e.code == "PreconditionFailed" || e.status == 409 || is_not_found(e)) return false;
    throw;
  }
}

void Remote::delete_object(const std::string& bucket, const std::string& key) {
  aws::Request r;
  r.method = "DELETE";
  r.service = "s3";
  r.path = "/" + bucket + "/" + key;
  ++mutations_;
  try {
    send(c_, r);
  } catch (const aws::ServiceError& e) {
    if (!is_not_found(e)) throw;
  }
}

std::vector<std::string> Remote::list_keys(const std::string& bucket, const std::string& prefix) {
  std::vector<std::string> keys;
  std::string token;
  for (;;) {
    aws::Request r;
    r.method = "GET";
    r.service = "s3";
    r.path = "/" + bucket;
    r.query = {{"list-type", "2"}, {"prefix", prefix}};
    if (!token.empty()) r.query.emplace_back("continuation-token", token);
    std::string xml;
    try {
      xml = send(c_, r).body;
    } catch (const aws::ServiceError& e) {
      if (is_not_found(e)) return keys;
      throw;
    }
    for (auto& k : xml_all(xml, "Key")) keys.push_back(xml_unescape(k));
    if (xml_text(xml, "IsTruncated") != "true") break;
    token = xml_unescape(xml_text(xml, "NextContinuationToken"));
    if (token.empty()) break;
  }
  return keys;
}

std::vector<std::string> xml_all(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  std::size_t pos = 0;
  for (;;) {
    auto b = xml.find(open, pos);
    if (b == std::string::npos) break;
    b += open.size();
    auto e = xml.find(close, b);
    if (e == std::string::npos) break;
    out.push_back(xml.substr(b, e - b));
    pos = e + close.size();
  }
  return out;
}

std::string xml_text(const std::string& xml, const std::string& tag) {
  auto all = xml_all(xml, tag);
  return all.empty() ? std::string() : xml_unescape(all.front());
}

std::string xml_unescape(std::string s) {
  static const std::pair<const char*, const char*> entities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&#39;", "'"}, {"&amp;", "&"}};
  for (const auto& [from, to] : entities) {
    std::string f = from;
    for (std::size_t p = 0; (p = s.find(f, p)) != std::string::npos; p += std::string(to).size())
      s.replace(p, f.size(), to);
  }
  return s;
}

}  // namespace sluice::deploy
