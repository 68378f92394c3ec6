// Thin helpers over aws::Client for the services deploy talks to: JSON REST (Lambda,
// API Gateway v1/v2), query APIs with XML answers (IAM, STS), and S3.
#pragma once

#include "sluice/aws/client.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace sluice::deploy {

using json = nlohmann::json;

class Remote {
 public:
  explicit Remote(aws::Client& client) : c_(client) {}

  // JSON REST call; an empty body is sent as no body. Returns the parsed answer ({} if empty).
  json call(const std::string& method, const std::string& service, const std::string& path,
            const json& body = nullptr, const aws::Pairs& query = {});
  // Same, nullopt on 404 (the resource does not exist).
  std::optional<json> get(const std::string& service, const std::string& path, const aws::Pairs& query = {});

  // JSON 1.1 API (EventBridge): POST / with X-Amz-Target PREFIX.ACTION; the parsed answer.
  // Describe* and List* actions do not count as mutations.
  json target(const std::string& service, const std::string& target_prefix, const std::string& action,
              const json& body);

  // Query API (IAM, STS): Action + params in a form body; the XML answer.
  std::string query(const std::string& service, const std::string& action, const std::string& version,
                    const aws::Pairs& params = {});

  // S3, path-style.
  bool bucket_exists(const std::string& bucket);
  void create_bucket(const std::string& bucket, const std::string& region);
  bool object_exists(const std::string& bucket, const std::string& key);
  std::optional<std::string> get_object(const std::string& bucket, const std::string& key);
  // The object and its ETag ("" when S3 gives none).
  std::optional<std::pair<std::string, std::string>> get_object_and_etag(const std::string& bucket,
                                                                         const std::string& key);
  // if_none_match: create only (If-None-Match: *); returns false when it already existed.
  bool put_object(const std::string& bucket, const std::string& key, const std::string& body,
                  const std::string& content_type, bool if_none_match = false,
                  std::function<void(std::size_t, std::size_t)> progress = {});
  void delete_object(const std::string& bucket, const std::string& key);
  // Deletes the object only while its ETag is `etag` (If-Match); false when it changed or went.
  bool delete_object_if_match(const std::string& bucket, const std::string& key, const std::string& etag);
  std::vector<std::string> list_keys(const std::string& bucket, const std::string& prefix);

  aws::Client& client() { return c_; }
  // Mutating calls made so far (tests and the summary read it).
  int mutations() const { return mutations_; }

 private:
  bool s3_head_exists(const std::string& path);  // HEAD: 2xx true, 404 false, else throws
  aws::Client& c_;
  int mutations_ = 0;
};

// First <tag>...</tag> text in an XML document ("" when absent); all of them.
std::string xml_text(const std::string& xml, const std::string& tag);
std::vector<std::string> xml_all(const std::string& xml, const std::string& tag);
std::string xml_unescape(std::string s);

bool is_not_found(const aws::ServiceError& e);

}  // namespace sluice::deploy
