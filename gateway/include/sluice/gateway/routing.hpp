// Route matching with API Gateway's precedence (reference §4.4):
//   REST: resource tree; static segment > {param} > {proxy+}; a method > ANY;
//         a trailing slash is ignored.
//   HTTP: exact route+method (static beats {param}) > greedy {proxy+} with the
//         method > ANY > $default.
#pragma once

#include "sluice/stack/model.hpp"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::gateway {

struct RouteMatch {
  const stack::RouteSpec* route = nullptr;             // nullptr: nothing matched
  std::map<std::string, std::string> path_parameters;  // decoded values; {proxy+} gets the rest of the path
  std::string resource_path;  // REST: "/movies/{id}"; HTTP: the route's path, "" for $default
  std::string route_key;      // HTTP: "GET /movies/{id}" or "$default"; REST: "GET /movies/{id}"
  bool path_found = false;    // a resource matched the path but no method did (REST answers 403 either way)
};

class Router {
 public:
  explicit Router(const stack::ApiSpec& api);
  // path is the decoded path below the stage ("/movies/12").
  RouteMatch match(std::string_view method, std::string_view path) const;

 private:
  stack::ApiType type_;
  struct Entry {
    const stack::RouteSpec* route;
    std::vector<std::string> segments;  // "movies", "{id}", "{proxy+}"
  };
  std::vector<Entry> entries_;
  const stack::RouteSpec* default_route_ = nullptr;
};

}  // namespace sluice::gateway
