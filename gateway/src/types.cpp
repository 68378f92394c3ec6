#include "sluice/gateway/types.hpp"

#include "sluice/common/util.hpp"

namespace sluice::gateway {

std::optional<std::string> Request::header(std::string_view name) const {
  std::optional<std::string> out;
  for (const auto& h : headers)
    if (iequals(h.name, name)) out = h.value;
  return out;
}

std::vector<std::string> Request::header_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& h : headers)
    if (iequals(h.name, name)) out.push_back(h.value);
  return out;
}

void Response::set(std::string name, std::string value) {
  remove(name);
  headers.push_back({std::move(name), std::move(value)});
}

void Response::add(std::string name, std::string value) { headers.push_back({std::move(name), std::move(value)}); }

std::optional<std::string> Response::get(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return h.value;
  return std::nullopt;
}

void Response::remove(std::string_view name) {
  std::erase_if(headers, [&](const Header& h) { return iequals(h.name, name); });
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> out;
  if (raw_query.empty()) return out;
  for (const auto& part : split(raw_query, '&')) {
    if (part.empty()) continue;
    auto eq = part.find('=');
    if (eq == std::string::npos) out.emplace_back(url_decode(part, true), "");
    else out.emplace_back(url_decode(part.substr(0, eq), true), url_decode(part.substr(eq + 1), true));
  }
  return out;
}

}  // namespace sluice::gateway
