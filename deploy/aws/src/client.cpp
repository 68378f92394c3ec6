#include "sluice/aws/client.hpp"

#include <random>
#include <thread>

#include "http.hpp"
#include "sluice/aws/credentials.hpp"
#include "sluice/aws/errors.hpp"
#include "sluice/aws/retry.hpp"
#include "sluice/aws/sigv4.hpp"

namespace sluice::aws {

std::string Response::header(const std::string& lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return {};
}

namespace {

std::string env_value(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// IAM is global: one endpoint, signed for us-east-1 (aws partition).
std::string signing_region(const std::string& service, const std::string& region) {
  return service == "iam" ? "us-east-1" : region;
}

std::string to_form(const Pairs& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += sigv4::uri_encode(k) + '=' + sigv4::uri_encode(v);
  }
  return out;
}

}  // namespace

struct Client::Impl {
  ClientOptions options;
  Settings settings;
  Credentials credentials;
  std::optional<detail::Endpoint> custom_endpoint;
  detail::HttpClient http;
  RetryPolicy retry;

  explicit Impl(ClientOptions o)
      : options(std::move(o)),
        settings(resolve_settings(options.profile, options.region, Environment::process())),
        credentials(settings.credentials),
        http(detail::HttpOptions{options.connect_timeout, options.read_timeout,
                                 options.ca_file.empty() ? env_value("AWS_CA_BUNDLE") : options.ca_file}),
        retry(options.max_attempts) {
    // A malformed URL throws std::invalid_argument naming it.
    if (options.endpoint_url && !options.endpoint_url->empty()) custom_endpoint = detail::parse_endpoint(*options.endpoint_url);
  }

  detail::Endpoint endpoint_for(const std::string& service) const {
    if (custom_endpoint) return *custom_endpoint;
    const std::string& r = settings.region;
    const std::string suffix = r.starts_with("cn-") ? ".amazonaws.com.cn" : ".amazonaws.com";
    if (service == "iam") return detail::parse_endpoint("https://iam.amazonaws.com");
    // S3: path-style addressing (https://s3.REGION.amazonaws.com/BUCKET/KEY), which every
    // bucket name and moto accept alike.
    return detail::parse_endpoint("https://" + service + "." + r + suffix);
  }

  Response send_once(const Request& req, const detail::Endpoint& ep) {
    sigv4::SignRequest s;
    s.method = req.method;
    s.wire_path = ep.base_path + sigv4::encode_path(req.path);
    s.query = req.query;
    s.headers = req.headers;
    s.headers.emplace_back("host", ep.host_header);
    s.body = req.body;
    s.unsigned_payload = req.unsigned_payload;
    s.service = req.service;
    s.region = signing_region(req.service, settings.region);
    sigv4::add_auth(s, credentials, sigv4::amz_date(std::chrono::system_clock::now()));
    // Host goes out from the transport; user-agent is not signed.
    std::erase_if(s.headers, [](const auto& h) { return h.first == "host"; });
    s.headers.emplace_back("user-agent", "sluice/0.1 (deploy)");
    std::string target = s.wire_path;
    if (!req.query.empty()) target += "?" + sigv4::encode_query(req.query);
    return http.send(ep, req.method, target, s.headers, req.body, req.progress);
  }

  Response call(const Request& req) {
    const detail::Endpoint ep = endpoint_for(req.service);
    int last_cost = 0;
    for (int attempt = 1;; ++attempt) {
      RetryPolicy::Failure failure;
      std::string reason;
      try {
        Response res = send_once(req, ep);
        if (res.status >= 200 && res.status < 300) {
          retry.on_success(last_cost);
          return res;
        }
        ServiceError err = parse_service_error(res.status, res.headers, res.body, req.service);
        if (err.is_throttling()) failure = RetryPolicy::Failure::throttling;
        else if (err.is_transient()) failure = RetryPolicy::Failure::transient;
        else throw err;
        if (!retry.acquire(attempt, failure, last_cost)) throw err;
        // A service error by its code; an answer without one (a proxy's or a web server's
        // page) by its status line.
        if (err.code == std::to_string(err.status))
          reason = "HTTP " + err.code + (err.message.empty() ? "" : " " + err.message);
        else
          reason = err.code + (err.message.empty() ? "" : " (" + err.message + ")") + ", HTTP " +
                   std::to_string(err.status);
      } catch (const detail::TransportFailure& e) {
        if (!e.retryable) throw;
        failure = e.timeout ? RetryPolicy::Failure::timeout : RetryPolicy::Failure::transient;
        if (!retry.acquire(attempt, failure, last_cost)) {
          if (attempt > 1)
            throw detail::TransportFailure(std::string(e.what()) + " (after " + std::to_string(attempt) + " attempts)",
                                           e.timeout, false);
          throw;
        }
        reason = e.what();
      }
      auto wait = retry.delay(attempt, failure);
      if (options.on_retry)
        options.on_retry(req.service + " " + req.method + " " + req.path + ": " + reason + "; retrying in " +
                         std::to_string(wait.count()) + " ms (attempt " + std::to_string(attempt + 1) + " of " +
                         std::to_string(retry.max_attempts()) + ")");
      std::this_thread::sleep_for(wait);
    }
  }

  // sts:AssumeRole (query API, XML answer) with the credentials resolved so far.
  void assume_role(const std::string& role_arn) {
    std::string session = settings.role_session_name;
    if (session.empty()) session = "sluice-deploy-" + std::to_string(std::random_device{}() % 1000000);
    Pairs params = {{"Action", "AssumeRole"},
                    {"Version", "2011-06-15"},
                    {"RoleArn", role_arn},
                    {"RoleSessionName", session}};
    if (!settings.external_id.empty()) params.emplace_back("ExternalId", settings.external_id);
    Request req;
    req.method = "POST";
    req.service = "sts";
    req.path = "/";
    req.headers = {{"content-type", "application/x-www-form-urlencoded; charset=utf-8"}};
    req.body = to_form(params);
    Response res;
    try {
      res = call(req);
    } catch (const ServiceError& e) {
      throw CredentialsError("Assuming the role " + role_arn + " with the credentials from " + credentials.source +
                             " failed: " + e.code + (e.message.empty() ? "" : ": " + e.message) + ".");
    }
    Credentials assumed;
    assumed.access_key_id = xml_text(res.body, "AccessKeyId");
    assumed.secret_access_key = xml_text(res.body, "SecretAccessKey");
    assumed.session_token = xml_text(res.body, "SessionToken");
    assumed.source = "role " + role_arn + " (assumed with " + credentials.source + ")";
    if (assumed.access_key_id.empty() || assumed.secret_access_key.empty())
      throw CredentialsError("Assuming the role " + role_arn + " returned no credentials (unexpected STS answer).");
    credentials = std::move(assumed);
  }
};

Client::Client(ClientOptions options) : impl_(new Impl(std::move(options))) {
  try {
    std::string role = impl_->options.role_arn.empty() ? impl_->settings.role_arn : impl_->options.role_arn;
    if (!role.empty()) impl_->assume_role(role);
  } catch (...) {
    delete impl_;
    throw;
  }
}

Client::~Client() { delete impl_; }

Response Client::call(const Request& request) { return impl_->call(request); }
const std::string& Client::region() const { return impl_->settings.region; }
const Credentials& Client::credentials() const { return impl_->credentials; }
std::string Client::endpoint(const std::string& service) const { return impl_->endpoint_for(service).url(); }

}  // namespace sluice::aws
