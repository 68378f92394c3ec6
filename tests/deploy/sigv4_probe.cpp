// Test tool for the differential test against botocore: reads one JSON request per line on
// stdin, prints one JSON answer per line: the Authorization header, canonical request and
// string to sign that sluice::aws::sigv4::add_auth produces.
// In: {"method","host","path" (raw),"query":[[k,v]...],"headers":[[k,v]...],"body",
//      "unsigned_payload","service","region","access_key","secret_key","token","amz_date"}
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "sluice/aws/sigv4.hpp"

using nlohmann::json;
namespace sigv4 = sluice::aws::sigv4;

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    json in = json::parse(line);
    sigv4::SignRequest r;
    r.method = in.at("method");
    r.wire_path = sigv4::encode_path(in.at("path").get<std::string>());
    for (const auto& q : in.value("query", json::array())) r.query.emplace_back(q[0], q[1]);
    r.headers.emplace_back("host", in.at("host").get<std::string>());
    for (const auto& h : in.value("headers", json::array())) r.headers.emplace_back(h[0], h[1]);
    std::string body = in.value("body", "");
    r.body = body;
    r.unsigned_payload = in.value("unsigned_payload", false);
    r.service = in.at("service");
    r.region = in.at("region");
    sluice::aws::Credentials c{in.at("access_key"), in.at("secret_key"), in.value("token", ""), "probe"};
    auto sig = sigv4::add_auth(r, c, in.at("amz_date"));
    json out;
    out["authorization"] = sig.authorization;
    out["canonical_request"] = sig.canonical_request;
    out["string_to_sign"] = sig.string_to_sign;
    out["wire_path"] = r.wire_path;
    out["wire_query"] = sigv4::encode_query(r.query);
    std::cout << out.dump() << std::endl;
  }
}
