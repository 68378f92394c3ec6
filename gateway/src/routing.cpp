// Route matching as API Gateway does it (reference §4.4).
//
// REST APIs route on a resource tree: every route "GET /a/{b}/c" also creates
// the resources /a and /a/{b}, each segment prefers a static child over a
// {param} child over a {proxy+} child, and only once the resource is chosen is
// the method looked at (an explicit method, else ANY). A resource that exists
// but has no such method still answers 403, like an unknown path. Walking the
// tree depth-first in that preference order finds the same resource as taking
// the matching template whose per-segment ranks (static 0, param 1, greedy 2)
// are lexicographically smallest, which is what match() computes.
//
// HTTP APIs choose among routes instead: routes without a greedy variable that
// match path and method first, then greedy routes, then $default; within a
// group the most specific path wins, then an explicit method over ANY.
#include "sluice/gateway/routing.hpp"

#include <optional>

namespace sluice::gateway {
namespace {

constexpr int rank_static = 0, rank_param = 1, rank_greedy = 2;

bool is_param(std::string_view seg) { return seg.size() >= 3 && seg.front() == '{' && seg.back() == '}'; }
bool is_greedy(std::string_view seg) { return is_param(seg) && seg[seg.size() - 2] == '+'; }
std::string_view param_name(std::string_view seg) {
  return is_greedy(seg) ? seg.substr(1, seg.size() - 3) : seg.substr(1, seg.size() - 2);
}

// "/movies/{id}" -> {"movies", "{id}"}; "/" and "" -> {}.
std::vector<std::string> template_segments(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

// Request path segments. Leading slashes are dropped; inner empty segments are
// kept (a greedy variable keeps "a//b" as is). REST ignores trailing slashes;
// HTTP APIs keep one trailing empty segment so that "/handler/" reaches
// "/handler/{proxy+}" with an empty proxy, as AWS does.
std::vector<std::string_view> request_segments(std::string_view path, bool keep_trailing_empty) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  bool trailing = false;
  while (!path.empty() && path.back() == '/') {
    path.remove_suffix(1);
    trailing = true;
  }
  std::vector<std::string_view> out;
  if (!path.empty()) {
    std::size_t i = 0;
    while (true) {
      auto j = path.find('/', i);
      if (j == std::string_view::npos) {
        out.push_back(path.substr(i));
        break;
      }
      out.push_back(path.substr(i, j - i));
      i = j + 1;
    }
  }
  if (keep_trailing_empty && trailing && !out.empty()) out.emplace_back();
  return out;
}

struct TemplateMatch {
  std::vector<int> ranks;
  std::map<std::string, std::string> params;
};

// Matches the first n template segments against the whole request path.
// greedy_may_be_empty: the greedy variable may take a single empty segment.
std::optional<TemplateMatch> match_template(const std::vector<std::string>& tpl, std::size_t n,
                                            const std::vector<std::string_view>& segs, bool greedy_may_be_empty,
                                            bool want_params) {
  TemplateMatch m;
  m.ranks.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& t = tpl[i];
    if (is_greedy(t)) {
      if (i + 1 != n || i >= segs.size()) return std::nullopt;  // greedy only last, needs something below
      std::size_t first = i;
      std::string rest;  // the remaining segments joined back, inner "//" kept
      for (std::size_t k = first; k < segs.size(); ++k) {
        if (k > first) rest.push_back('/');
        rest.append(segs[k]);
      }
      if (rest.empty() && !(greedy_may_be_empty && segs.size() == first + 1)) return std::nullopt;
      m.ranks.push_back(rank_greedy);
      if (want_params) m.params.emplace(std::string(param_name(t)), std::move(rest));
      return m;
    }
    if (i >= segs.size()) return std::nullopt;
    const std::string_view s = segs[i];
    if (s.empty()) return std::nullopt;
    if (is_param(t)) {
      m.ranks.push_back(rank_param);
      if (want_params) m.params.emplace(std::string(param_name(t)), std::string(s));
    } else {
      if (t != s) return std::nullopt;
      m.ranks.push_back(rank_static);
    }
  }
  // Without a greedy variable the counts must agree; a trailing empty segment
  // (HTTP APIs keep one) does not count against a non-greedy route.
  std::size_t need = segs.size();
  if (need > 0 && segs.back().empty()) --need;
  if (n != need) return std::nullopt;
  return m;
}

bool any_covers(std::string_view method) {
  // REST ANY = DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT.
  return method == "GET" || method == "POST" || method == "PUT" || method == "DELETE" || method == "PATCH" ||
         method == "HEAD" || method == "OPTIONS";
}

std::string route_key_of(const stack::RouteSpec& r) {
  if (!r.key.empty()) return r.key;
  return r.method + " " + r.path;
}

std::string join_template(const std::vector<std::string>& tpl, std::size_t n) {
  if (n == 0) return "/";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back('/');
    out.append(tpl[i]);
  }
  return out;
}

bool same_template(const std::vector<std::string>& a, std::size_t an, const std::vector<std::string>& b) {
  if (an != b.size()) return false;
  for (std::size_t i = 0; i < an; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

}  // namespace

Router::Router(const stack::ApiSpec& api) : type_(api.type) {
  entries_.reserve(api.routes.size());
  for (const auto& r : api.routes) {
    if (r.key == "$default" || (r.method.empty() && r.path.empty())) {
      if (type_ == stack::ApiType::http && !default_route_) default_route_ = &r;
      continue;
    }
    entries_.push_back(Entry{&r, template_segments(r.path)});
  }
}

RouteMatch Router::match(std::string_view method, std::string_view path) const {
  RouteMatch out;
  const bool http = type_ == stack::ApiType::http;
  const auto segs = request_segments(path, http);

  if (!http) {
    // Choose the resource first (explicit resources and the ones routes imply).
    const Entry* best_entry = nullptr;
    std::size_t best_len = 0;
    std::vector<int> best_ranks;
    for (const auto& e : entries_) {
      for (std::size_t n = 1; n <= e.segments.size(); ++n) {
        if (n < e.segments.size() && is_greedy(e.segments[n - 1])) break;
        auto m = match_template(e.segments, n, segs, false, false);
        if (!m) continue;
        if (!best_entry || m->ranks < best_ranks) {
          best_entry = &e;
          best_len = n;
          best_ranks = std::move(m->ranks);
        }
      }
    }
    const bool root = segs.empty();
    if (!best_entry && !root) return out;  // no resource: 403 Missing Authentication Token

    // Methods of that resource.
    const Entry* exact = nullptr;
    const Entry* any = nullptr;
    for (const auto& e : entries_) {
      bool same = root ? e.segments.empty() : same_template(best_entry->segments, best_len, e.segments);
      if (!same) continue;
      if (e.route->method == method && !exact) exact = &e;
      if (e.route->method == "ANY" && any_covers(method) && !any) any = &e;
    }
    const Entry* chosen = exact ? exact : any;
    out.resource_path = root ? std::string("/") : join_template(best_entry->segments, best_len);
    if (!chosen) {
      out.path_found = true;  // AWS answers 403 Missing Authentication Token either way
      return out;
    }
    out.route = chosen->route;
    out.route_key = route_key_of(*chosen->route);
    if (auto m = match_template(chosen->segments, chosen->segments.size(), segs, false, true))
      out.path_parameters = std::move(m->params);
    return out;
  }

  // HTTP API: full matches, then greedy routes, then $default.
  const Entry* best[2] = {nullptr, nullptr};
  std::vector<int> best_ranks[2];
  int best_method[2] = {2, 2};
  for (const auto& e : entries_) {
    int method_rank;
    if (e.route->method == method) method_rank = 0;
    else if (e.route->method == "ANY") method_rank = 1;
    else continue;
    auto m = match_template(e.segments, e.segments.size(), segs, true, false);
    if (!m) continue;
    int group = (!m->ranks.empty() && m->ranks.back() == rank_greedy) ? 1 : 0;
    if (!best[group] || m->ranks < best_ranks[group] ||
        (m->ranks == best_ranks[group] && method_rank < best_method[group])) {
      best[group] = &e;
      best_ranks[group] = std::move(m->ranks);
      best_method[group] = method_rank;
    }
  }
  const Entry* chosen = best[0] ? best[0] : best[1];
  if (chosen) {
    out.route = chosen->route;
    out.route_key = route_key_of(*chosen->route);
    out.resource_path = chosen->route->path;
    out.path_found = true;
    if (auto m = match_template(chosen->segments, chosen->segments.size(), segs, true, true))
      out.path_parameters = std::move(m->params);
    return out;
  }
  if (default_route_) {
    out.route = default_route_;
    out.route_key = "$default";
    out.resource_path = "";
    out.path_found = true;
  }
  return out;
}

}  // namespace sluice::gateway
