// Schedules on the command line: the clock options of `serve` (the engine runs the
// scheduler and its admin route, see sluice/app/schedules.hpp) and
// `sluice trigger schedule NAME [STACK]`, against a running serve or in process.
#include "schedules.hpp"

#include "sluice/app/schedules.hpp"

#include "sluice/common/util.hpp"
#include "sluice/gateway/invoke_api.hpp"
#include "sluice/lambda/console_log.hpp"
#include "sluice/lambda/scheduler.hpp"

#include <arpa/inet.h>
#include <signal.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace sluice::cli {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using json = nlohmann::json;

lambda::ScheduleClock clock_options(const Args& a) {
  lambda::ScheduleClock c;
  if (auto t = a.get("schedule-clock")) {
    auto parsed = stack::parse_iso_utc(*t);
    if (!parsed)
      throw std::runtime_error("--schedule-clock expects a UTC time such as 2030-01-01T08:59:00Z, got " + sluice::quoted(*t));
    c.start = std::chrono::system_clock::time_point(*parsed);
  }
  if (auto s = a.get("schedule-speed")) {
    char* end = nullptr;
    double v = std::strtod(s->c_str(), &end);
    if (s->empty() || *end != '\0' || !std::isfinite(v) || v < 0 || v > 1e6)
      throw std::runtime_error("--schedule-speed expects a number from 0 (a stopped clock) to 1000000, got " +
                               sluice::quoted(*s));
    c.speed = v;
  }
  return c;
}

namespace {

struct Url {
  std::string host;
  std::string port;
};

Url parse_endpoint(const std::string& url) {
  std::string rest = url;
  if (starts_with(rest, "http://")) rest = rest.substr(7);
  else if (rest.find("://") != std::string::npos)
    throw std::runtime_error("--endpoint expects http://HOST:PORT (the Lambda endpoint serve prints), got " +
                             sluice::quoted(url));
  rest = rest.substr(0, rest.find('/'));
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size())
    throw std::runtime_error("--endpoint expects http://HOST:PORT, got " + sluice::quoted(url));
  return {rest.substr(0, colon), rest.substr(colon + 1)};
}

// One blocking POST; returns the status and body. Throws with a clear message when unreachable.
std::pair<int, std::string> post(const Url& u, const std::string& path) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &res) != 0 || !res)
    throw std::runtime_error("cannot resolve " + u.host);
  int fd = -1;
  for (addrinfo* p = res; p; p = p->ai_next) {
    fd = ::socket(p->ai_family, p->ai_socktype, p->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, p->ai_addr, p->ai_addrlen) == 0) break;
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    throw std::runtime_error("no sluice serve is answering on http://" + u.host + ":" + u.port +
                             " (is it running? leave out --endpoint to fire the schedule in process)");
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + u.host + ":" + u.port +
                    "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  for (std::size_t off = 0; off < req.size();) {
    ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error("the connection to http://" + u.host + ":" + u.port + " broke");
    }
    off += static_cast<std::size_t>(n);
  }
  std::string in;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  auto head_end = in.find("\r\n\r\n");
  if (!starts_with(in, "HTTP/1.1 ") || head_end == std::string::npos)
    throw std::runtime_error("http://" + u.host + ":" + u.port + " did not answer like sluice serve");
  int status = std::atoi(in.c_str() + 9);
  std::string head = to_lower(in.substr(0, head_end));
  std::string body = in.substr(head_end + 4);
  if (head.find("transfer-encoding: chunked") != std::string::npos) {
    std::string plain;
    std::size_t pos = 0;
    for (;;) {
      auto eol = body.find("\r\n", pos);
      if (eol == std::string::npos) break;
      std::size_t len = std::strtoul(body.substr(pos, eol - pos).c_str(), nullptr, 16);
      if (len == 0) break;
      plain += body.substr(eol + 2, len);
      pos = eol + 2 + len + 2;
    }
    body = plain;
  }
  return {status, body};
}

// The file's JSON; nullopt when it cannot be read, a discarded value when it is not JSON.
std::optional<json> read_json_file(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str(), nullptr, false);
}

std::string endpoint_from_file(const fs::path& file) {
  auto read = read_json_file(file);
  if (!read) throw std::runtime_error("cannot read the endpoints file " + sluice::quoted(file.string()));
  const json& j = *read;
  if (j.is_discarded() || !j.contains("lambda") || !j["lambda"].is_string())
    throw std::runtime_error("the endpoints file " + sluice::quoted(file.string()) +
                             " has no \"lambda\" URL (it is the file `sluice serve --endpoints-file` writes)");
  return j["lambda"].get<std::string>();
}

fs::path serve_marker(const fs::path& state_dir) { return state_dir / "serve.json"; }

// The Lambda URL of a running serve of this stack, from its marker; nullopt when there is no
// marker, it names another stack, or its process is gone (a serve killed with SIGKILL).
std::optional<std::pair<long, std::string>> running_serve(const fs::path& state_dir, const fs::path& stack) {
  json j = read_json_file(serve_marker(state_dir)).value_or(json());
  if (j.is_discarded() || !j.is_object() || !j.contains("pid") || !j.contains("lambda") || !j.contains("stack") ||
      !j["pid"].is_number_integer() || !j["lambda"].is_string() || !j["stack"].is_string())
    return std::nullopt;
  long pid = j["pid"].get<long>();
  if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM)) return std::nullopt;
  std::error_code ec;
  if (!fs::equivalent(fs::path(j["stack"].get<std::string>()), stack, ec)) return std::nullopt;
  return std::make_pair(pid, j["lambda"].get<std::string>());
}

int print_result(const std::string& payload, bool function_error) {
  std::fwrite(payload.data(), 1, payload.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  return function_error ? 1 : 0;
}

}  // namespace

void write_serve_marker(const fs::path& state_dir, const fs::path& stack, const std::string& lambda_url) {
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  fs::path tmp = state_dir / ("serve.json." + std::to_string(::getpid()));
  {
    std::ofstream out(tmp);
    if (!out) return;  // a read-only project: trigger then needs --endpoint
    out << json{{"pid", ::getpid()}, {"stack", fs::absolute(stack).string()}, {"lambda", lambda_url}}.dump() << "\n";
  }
  fs::rename(tmp, serve_marker(state_dir), ec);
  if (ec) fs::remove(tmp, ec);
}

void remove_serve_marker(const fs::path& state_dir) {
  json j = read_json_file(serve_marker(state_dir)).value_or(json());
  if (j.is_discarded() || !j.is_object() || j.value("pid", 0L) != static_cast<long>(::getpid())) return;
  std::error_code ec;
  fs::remove(serve_marker(state_dir), ec);
}

int cmd_trigger(const Args& a) {
  const char* usage = "usage: sluice trigger schedule NAME [STACK] [--endpoint URL | --endpoints-file F | --in-process] "
                      "[--json] [--schedule-clock TIME]";
  if (a.has("help")) {
    std::printf("%s\n\nFires one schedule of the stack now and prints the function's answer.\n"
                "With --endpoint (the Lambda URL `sluice serve` prints) or --endpoints-file, or when a\n"
                "`sluice serve` of the same stack is running (it leaves its address in .sluice/serve.json),\n"
                "that serve fires it (POST /sluice/schedules/NAME/trigger). Otherwise, or with --in-process,\n"
                "it runs in process as `sluice invoke` does (the function's log on stderr), the event's\n"
                "time taken from --schedule-clock when given. --json prints the whole firing record.\n",
                usage);
    return 0;
  }
  if (a.positionals.size() < 2 || a.positionals[0] != "schedule" || a.positionals.size() > 3) {
    std::fprintf(stderr, "sluice trigger: %s\n", usage);
    return 2;
  }
  const std::string& name = a.positionals[1];
  std::optional<std::string> endpoint = a.get("endpoint");
  if (!endpoint && a.get("endpoints-file")) endpoint = endpoint_from_file(*a.get("endpoints-file"));
  fs::path file = a.positionals.size() == 3 ? fs::path(a.positionals[2])
                  : a.get("stack")         ? fs::path(*a.get("stack"))
                                           : default_stack_path();
  if (!endpoint && !a.has("in-process")) {
    // A serve of this stack that is running now fires it, as with --endpoint.
    fs::path state_dir = a.get("state-dir") ? fs::absolute(*a.get("state-dir")) : fs::absolute(file).parent_path() / ".sluice";
    if (auto running = running_serve(state_dir, fs::absolute(file))) {
      std::fprintf(stderr, "sluice trigger: through the sluice serve running this stack (pid %ld, %s)\n", running->first,
                   running->second.c_str());
      endpoint = running->second;
    }
  }
  if (endpoint) {
    auto [status, body] = post(parse_endpoint(*endpoint), "/sluice/schedules/" + url_encode(name) + "/trigger");
    json j = json::parse(body, nullptr, false);
    if (status != 200 || j.is_discarded()) {
      std::string msg = !j.is_discarded() && j.contains("message") && j["message"].is_string()
                            ? j["message"].get<std::string>()
                            : body;
      std::fprintf(stderr, "sluice trigger: %s (HTTP %d)\n", msg.c_str(), status);
      return 2;
    }
    if (a.has("json")) return print_result(j.dump(2), j["functionError"].is_string());
    return print_result(j.value("payload", ""), j["functionError"].is_string());
  }

  auto st = load_stack(file);
  if (!st) return 2;
  if (!st->schedules.count(name)) {
    std::vector<std::string> names;
    for (const auto& [n, s] : st->schedules) names.push_back(n);
    std::string near = nearest(name, names);
    std::fprintf(stderr, "sluice trigger: no schedule named %s in %s%s%s\n", sluice::quoted(name).c_str(),
                 file.string().c_str(), near.empty() ? "" : ("; did you mean " + sluice::quoted(near) + "?").c_str(),
                 names.empty() ? " (it has no schedules)" : ("; schedules: " + join(names, ", ")).c_str());
    return 2;
  }
  auto opts = service_options(a, *st);
  opts.watch_code = false;
  asio::io_context ioc;
  auto sink = std::make_shared<lambda::ConsoleLogSink>(stderr, lambda::ConsoleLogSink::Style::raw);
  lambda::LambdaService service(ioc.get_executor(), *st, opts, sink);
  lambda::Scheduler scheduler(ioc.get_executor(), service, *st, clock_options(a));
  int rc = 0;
  lambda::Firing result;
  scheduler.fire(name, [&](const lambda::Firing& f) {
    result = f;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          co_await service.shutdown(std::chrono::seconds(5));
          ioc.stop();
        },
        asio::detached);
  });
  ioc.run();
  sink->flush();
  if (!result.error.empty()) {
    std::fprintf(stderr, "sluice trigger: %s\n", result.error.c_str());
    return 2;
  }
  if (a.has("json")) rc = print_result(json::parse(app::firing_json(result)).dump(2), result.function_error);
  else rc = print_result(result.payload, result.function_error);
  return rc;
}

}  // namespace sluice::cli
