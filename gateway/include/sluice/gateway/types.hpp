// Plain request/response values the API Gateway logic works on. No I/O, no
// Beast: the server converts to and from these at the edge.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::gateway {

struct Header {
  std::string name;  // as the client sent it (casing kept)
  std::string value;
};
using Headers = std::vector<Header>;

// One request as it reached an API, with the stage already split off.
struct Request {
  std::string method;     // as sent, e.g. "GET"
  std::string path;       // percent-decoded path below the stage, "/movies/12" ("/" at least)
  std::string raw_path;   // path as sent on the wire, stage prefix included, without the query
  std::string raw_query;  // query string as sent, without '?', possibly empty
  Headers headers;        // in order, repeated names kept
  std::string body;
  std::string source_ip;
  unsigned short local_port = 0;  // the port the client connected to (0: unknown)
  std::string protocol = "HTTP/1.1";

  // Last value of a header (case-insensitive), as API Gateway's single-value maps keep.
  std::optional<std::string> header(std::string_view name) const;
  // Every value of a header, in order.
  std::vector<std::string> header_values(std::string_view name) const;
};

struct Response {
  unsigned status = 200;
  Headers headers;
  std::string body;

  void set(std::string name, std::string value);  // replaces any header of that name (case-insensitive)
  void add(std::string name, std::string value);  // appends
  std::optional<std::string> get(std::string_view name) const;
  void remove(std::string_view name);
};

// Query string pairs, percent-decoded, '+' read as a space (as API Gateway's REST and HTTP APIs and
// function URLs do: live captures give "literalPlus=a+b" as "a b", "a%2Bb" as "a+b"), in order.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view raw_query);

}  // namespace sluice::gateway
