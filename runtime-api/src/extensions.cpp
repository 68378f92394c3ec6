#include "extensions.hpp"

#include "sluice/common/util.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace sluice::runtime::ext {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

std::vector<std::filesystem::path> extension_files(const std::filesystem::path& opt_dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  if (opt_dir.empty()) return files;
  std::error_code ec;
  fs::path dir = opt_dir / "extensions";
  if (!fs::is_directory(dir, ec)) return files;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code dec;
    if (!it->is_directory(dec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> extension_environment(std::map<std::string, std::string> env) {
  for (const char* k : {"AWS_EXECUTION_ENV", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
                        "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS", "LAMBDA_RUNTIME_DIR", "LAMBDA_TASK_ROOT",
                        "PYTHONPATH", "NODE_PATH"})
    env.erase(k);
  std::vector<std::string> out;
  for (auto& [k, v] : env)
    if (!starts_with(k, "_")) out.push_back(k + "=" + v);
  return out;
}

std::string exec_error(const std::filesystem::path& path, int err) {
  std::string what = std::strerror(err);
  if (!what.empty()) what[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(what[0])));
  return "fork/exec " + path.string() + ": " + what;
}

bool looks_like_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

std::string extension_line(const std::string& name, const std::string& state, const std::vector<std::string>& events,
                           const std::string& error_type) {
  std::string line = "EXTENSION\tName: " + name + "\tState: " + state + "\tEvents: [" + join(events, ", ") + "]";
  if (!error_type.empty()) line += "\tError Type: " + error_type;
  return line;
}

std::string subscription_line(bool telemetry, const std::string& name, const std::vector<std::string>& types) {
  std::vector<std::string> shown;
  for (auto t : types) {
    if (!t.empty()) t[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(t[0])));
    shown.push_back(t);
  }
  return std::string(telemetry ? "TELEMETRY" : "LOGS") + "\tName: " + name + "\tState: Subscribed\tTypes: [" +
         join(shown, ", ") + "]";
}

std::optional<SubscriptionRequest> parse_subscription(bool telemetry, const std::string& body, std::string& problems_out) {
  json req = json::parse(body, nullptr, false);
  if (!req.is_object()) {
    problems_out = "the request body is not a JSON object";
    return std::nullopt;
  }
  std::vector<std::string> problems;
  SubscriptionRequest sub;
  sub.logs_api = !telemetry;

  std::vector<std::string> schemas = telemetry ? std::vector<std::string>{"2022-07-01", "2022-12-13", "2025-01-29"}
                                               : std::vector<std::string>{"2020-08-15", "2021-03-18"};
  if (req.contains("schemaVersion")) {
    auto& v = req["schemaVersion"];
    sub.schema = v.is_string() ? v.get<std::string>() : v.dump();
    if (std::find(schemas.begin(), schemas.end(), sub.schema) == schemas.end())
      problems.push_back("schemaVersion " + sub.schema + " is not one of " + join(schemas, ", "));
  } else if (telemetry) {
    problems.push_back("schemaVersion is required (one of " + join(schemas, ", ") + ")");
  } else {
    sub.schema = "2020-08-15";
  }

  if (!req.contains("types") || !req["types"].is_array() || req["types"].empty()) {
    problems.push_back("types should not be empty");
  } else {
    for (auto& t : req["types"]) {
      std::string name = t.is_string() ? t.get<std::string>() : t.dump();
      if (name == "platform") sub.platform = true;
      else if (name == "function") sub.function = true;
      else if (name == "extension") sub.extension = true;
      else {
        problems.push_back("types: unknown type " + name + " (allowed: platform, function, extension)");
        continue;
      }
      sub.types.push_back(name);
    }
  }

  if (req.contains("buffering") && !req["buffering"].is_null()) {
    auto& b = req["buffering"];
    auto bounded = [&](const char* key, std::int64_t lo, std::int64_t hi, std::int64_t& out) {
      if (!b.is_object() || !b.contains(key)) return;
      if (!b[key].is_number_integer() || b[key].get<std::int64_t>() < lo || b[key].get<std::int64_t>() > hi) {
        problems.push_back(std::string("buffering.") + key + " must be an integer from " + std::to_string(lo) +
                           " to " + std::to_string(hi));
        return;
      }
      out = b[key].get<std::int64_t>();
    };
    std::int64_t items = 10000, bytes = 262144, ms = 1000;
    if (!b.is_object()) problems.push_back("buffering must be an object");
    bounded("maxItems", 1000, 10000, items);
    bounded("maxBytes", 262144, 1048576, bytes);
    bounded("timeoutMs", 25, 30000, ms);
    sub.max_items = static_cast<std::size_t>(items);
    sub.max_bytes = static_cast<std::size_t>(bytes);
    sub.timeout = std::chrono::milliseconds(ms);
  }

  if (!req.contains("destination") || !req["destination"].is_object()) {
    problems.push_back("destination is required");
  } else {
    auto& d = req["destination"];
    std::string protocol = d.contains("protocol") && d["protocol"].is_string() ? d["protocol"].get<std::string>() : "";
    std::string uri = d.contains("URI") && d["URI"].is_string() ? d["URI"].get<std::string>() : "";
    if (protocol != "HTTP") {
      problems.push_back(protocol == "TCP" ? "destination.protocol TCP is not supported by sluice (use HTTP)"
                                           : "destination.protocol must be HTTP");
    } else if (!starts_with(uri, "http://")) {
      problems.push_back("destination.URI must be an http:// URI (found \"" + uri + "\")");
    } else {
      std::string rest = uri.substr(7);
      auto slash = rest.find('/');
      std::string hostport = rest.substr(0, slash);
      sub.path = slash == std::string::npos ? "/" : rest.substr(slash);
      auto colon = hostport.rfind(':');
      std::string host = hostport.substr(0, colon);
      if (host != "sandbox.localdomain" && host != "sandbox")
        problems.push_back("destination.URI host must be sandbox.localdomain (found " + host + ")");
      if (colon == std::string::npos) {
        problems.push_back("URI port is not provided");
      } else {
        auto digits = hostport.substr(colon + 1);
        int port = digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos
                       ? 0
                       : std::stoi(digits);
        if (port < 1 || port > 65535) problems.push_back("destination.URI port " + digits + " is not a valid port");
        else sub.port = static_cast<unsigned short>(port);
      }
    }
  }
  if (!problems.empty()) {
    problems_out = join(problems, "; ");
    return std::nullopt;
  }
  return sub;
}

std::string render_record(const SubscriptionRequest& s, const TeleItem& it, bool json_logs) {
  bool is_line = it.type == "function" || it.type == "extension";
  if (it.type == "function" ? !s.function : it.type == "extension" ? !s.extension : !s.platform) return {};
  auto dump = [](const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); };
  ojson out;
  out["time"] = it.time;
  out["type"] = it.type;
  if (is_line) {
    // With the JSON log format, schema 2022-12-13 and later get a JSON line as an object.
    ojson obj;
    if (!s.logs_api && s.schema != "2022-07-01" && json_logs && !it.line.empty() && it.line.front() == '{')
      obj = ojson::parse(it.line, nullptr, false);
    if (obj.is_object()) out["record"] = std::move(obj);
    else out["record"] = it.line;
    return dump(out);
  }
  if (!s.logs_api) {
    if (it.type == "platform.end" || it.type == "platform.logsSubscription") return {};
    out["record"] = it.record;
    return dump(out);
  }
  // The Logs API: no init events; start, end and report with fewer fields; runtimeDone with
  // schema 2021-03-18 only.
  const auto& r = it.record;
  if (it.type == "platform.start" || it.type == "platform.end") {
    out["record"] = {{"requestId", r.value("requestId", "")}};
  } else if (it.type == "platform.report") {
    out["record"] = {{"requestId", r.value("requestId", "")}, {"metrics", r.value("metrics", ojson::object())}};
  } else if (it.type == "platform.runtimeDone") {
    if (s.schema != "2021-03-18") return {};
    out["record"] = {{"requestId", r.value("requestId", "")}, {"status", r.value("status", "")}};
  } else if (it.type == "platform.extension" || it.type == "platform.logsSubscription" ||
             it.type == "platform.logsDropped") {
    out["record"] = r;
  } else {
    return {};
  }
  return dump(out);
}

}  // namespace sluice::runtime::ext
