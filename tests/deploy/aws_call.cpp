// Test tool: one call through sluice::aws::Client, the outcome as one JSON object on stdout.
//   aws_call [--endpoint-url URL] [--region R] [--profile P] [--role-arn ARN]
//            [--max-attempts N] [--connect-timeout MS] [--read-timeout MS] [--ca-file F]
//            [--header NAME:VALUE]... [--query NAME=VALUE]... [--body TEXT | --body-file F]
//            [--unsigned-payload] [--repeat N] METHOD SERVICE PATH
// Exit status: 0 2xx, 2 credentials, 3 service error, 4 transport error, 5 usage.
// Retry lines go to stderr prefixed "retry: ", upload progress as "progress: SENT/TOTAL".
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sluice/aws/client.hpp"

using nlohmann::json;
namespace aws = sluice::aws;

int main(int argc, char** argv) {
  aws::ClientOptions options;
  aws::Request request;
  std::vector<std::string> positional;
  int repeat = 1;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
        return argv[++i];
      };
      if (a == "--endpoint-url") options.endpoint_url = next();
      else if (a == "--region") options.region = next();
      else if (a == "--profile") options.profile = next();
      else if (a == "--role-arn") options.role_arn = next();
      else if (a == "--ca-file") options.ca_file = next();
      else if (a == "--max-attempts") options.max_attempts = std::stoi(next());
      else if (a == "--connect-timeout") options.connect_timeout = std::chrono::milliseconds(std::stoi(next()));
      else if (a == "--read-timeout") options.read_timeout = std::chrono::milliseconds(std::stoi(next()));
      else if (a == "--repeat") repeat = std::stoi(next());
      else if (a == "--unsigned-payload") request.unsigned_payload = true;
      else if (a == "--header") {
        std::string h = next();
        auto c = h.find(':');
        request.headers.emplace_back(h.substr(0, c), c == std::string::npos ? "" : h.substr(c + 1));
      } else if (a == "--query") {
        std::string q = next();
        auto e = q.find('=');
        request.query.emplace_back(q.substr(0, e), e == std::string::npos ? "" : q.substr(e + 1));
      } else if (a == "--body") request.body = next();
      else if (a == "--body-file") {
        std::ifstream in(next(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        request.body = ss.str();
      } else positional.push_back(a);
    }
    if (positional.size() != 3) throw std::invalid_argument("expected METHOD SERVICE PATH");
  } catch (const std::exception& e) {
    std::cerr << "aws_call: " << e.what() << "\n";
    return 5;
  }
  request.method = positional[0];
  request.service = positional[1];
  request.path = positional[2];
  options.on_retry = [](const std::string& line) { std::cerr << "retry: " << line << std::endl; };
  std::size_t last_reported = 0;
  request.progress = [&](std::size_t sent, std::size_t total) {
    if (sent == total || sent - last_reported >= (1u << 20)) {
      std::cerr << "progress: " << sent << "/" << total << std::endl;
      last_reported = sent;
    }
  };
  json out;
  try {
    aws::Client client(options);
    out["region"] = client.region();
    out["credentials_source"] = client.credentials().source;
    out["access_key_id"] = client.credentials().access_key_id;
    out["endpoint"] = client.endpoint(request.service);
    aws::Response res;
    for (int i = 0; i < repeat; ++i) res = client.call(request);
    out["status"] = res.status;
    json headers = json::object();
    for (const auto& [k, v] : res.headers) headers[k] = v;
    out["headers"] = headers;
    out["body"] = res.body;
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const aws::CredentialsError& e) {
    out["error"] = "credentials";
    out["message"] = e.what();
    std::cout << out.dump() << std::endl;
    return 2;
  } catch (const aws::ServiceError& e) {
    out["error"] = "service";
    out["status"] = e.status;
    out["code"] = e.code;
    out["message"] = e.message;
    out["request_id"] = e.request_id;
    out["what"] = e.what();
    out["auth"] = e.is_auth_error();
    out["throttling"] = e.is_throttling();
    if (e.is_auth_error()) out["sentence"] = aws::rejected_credentials_sentence(e, {});
    std::cout << out.dump() << std::endl;
    return 3;
  } catch (const aws::TransportError& e) {
    out["error"] = "transport";
    out["message"] = e.what();
    std::cout << out.dump() << std::endl;
    return 4;
  } catch (const std::exception& e) {
    out["error"] = "other";
    out["message"] = e.what();
    std::cout << out.dump() << std::endl;
    return 5;
  }
}
