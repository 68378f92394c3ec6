// sluice/common/http_server.hpp driven over raw TCP, so that every byte the
// server sends (or does not send) is visible: keep-alive, pipelining, limits,
// timeouts, chunked responses, handler failures and graceful drain.
#include "sluice/common/http_server.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <thread>

namespace http = sluice::http;
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// ------------------------------------------------------------------ server side

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

struct Shared {
  std::atomic<int> slow_started{0};
  std::atomic<bool> first_chunk_seen{false};
};

http::Handler make_handler(std::shared_ptr<Shared> shared) {
  return [shared](http::Request& req, http::Responder& out) -> asio::awaitable<void> {
    std::string target(req.target());
    auto q = target.find('?');
    std::string path = target.substr(0, q);
    std::string query = q == std::string::npos ? "" : target.substr(q + 1);

    if (path == "/throw") throw std::runtime_error("handler exploded");
    if (path == "/silent") co_return;  // never answers
    if (path == "/slow") {
      shared->slow_started++;
      // Computed outside the co_await: GCC 12 mishandles conditional temporaries inside one.
      int ms = query.empty() ? 300 : std::stoi(query);
      co_await sleep_for(std::chrono::milliseconds(ms));
    }
    if (path == "/stream") {
      http::Response head{bhttp::status::ok, 11};
      head.set(bhttp::field::content_type, "text/plain");
      head.set("X-Stream", "yes");
      co_await out.start_chunked(std::move(head));
      co_await out.write_chunk("hello ");
      // The next chunk waits until the client has seen the first one: a server
      // that buffered the whole body would stall here (and fail the test).
      auto until = Clock::now() + 5s;
      while (!shared->first_chunk_seen && Clock::now() < until) co_await sleep_for(5ms);
      co_await out.write_chunk("");  // an empty chunk would end the body; it must be skipped
      co_await out.write_chunk("world");
      co_await out.finish_chunked();
      co_return;
    }
    http::Response res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "text/plain");
    res.set("X-Path", path);
    res.set("X-Method", std::string(req.method_string()));
    res.body() = path == "/echo" ? req.body() : "ok " + target;
    co_await out.send(std::move(res));
  };
}

struct TestServer {
  asio::io_context ioc;
  // Keeps run() going after a drain has removed every other piece of work.
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  std::shared_ptr<http::Server> server;
  unsigned short port = 0;
  std::thread thread;

  explicit TestServer(http::ServerLimits limits, http::ErrorFormatter errors = nullptr) {
    server = std::make_shared<http::Server>(ioc.get_executor(), "test", limits, make_handler(shared),
                                            std::move(errors));
    port = server->listen("127.0.0.1", 0).port();
    server->start();
    thread = std::thread([this] { ioc.run(); });
  }
  ~TestServer() {
    ioc.stop();
    thread.join();
    server.reset();
  }

  // Runs drain() on the server's thread; the future is ready when it returns.
  std::future<void> drain(std::chrono::milliseconds deadline) {
    auto done = std::make_shared<std::promise<void>>();
    auto fut = done->get_future();
    asio::co_spawn(ioc, server->drain(deadline), [done](std::exception_ptr) { done->set_value(); });
    return fut;
  }

  std::size_t connections() {
    std::promise<std::size_t> p;
    asio::post(ioc, [&] { p.set_value(server->connections()); });
    return p.get_future().get();
  }
};

http::ServerLimits fast_limits() {
  http::ServerLimits l;
  l.read_timeout = 3000ms;
  l.idle_timeout = 3000ms;
  l.write_timeout = 3000ms;
  return l;
}

// ------------------------------------------------------------------ client side

class Client {
 public:
  explicit Client(unsigned short port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    connect_errno_ = connected_ ? 0 : errno;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  int connect_errno() const { return connect_errno_; }

  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  // Reads more bytes into buf_. 1: got data, 0: orderly EOF, -1: error (reset), -2: timed out.
  int fill(std::chrono::milliseconds limit) {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(limit.count()));
    if (r == 0) return -2;
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<std::size_t>(n));
      return 1;
    }
    if (n == 0) return 0;
    last_errno_ = errno;
    return -1;
  }

  struct Response {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    bool chunked = false;
    std::string header(const std::string& n) const {
      auto it = headers.find(n);
      return it == headers.end() ? "" : it->second;
    }
  };

  // One complete response, or nullopt when the connection ended or the time ran out first.
  std::optional<Response> read_response(std::chrono::milliseconds limit = 3000ms) {
    auto until = Clock::now() + limit;
    auto left = [&] {
      return std::max(std::chrono::milliseconds(0),
                      std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()));
    };
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (fill(left()) != 1) return std::nullopt;
    Response r;
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    std::size_t pos = head.find("\r\n");
    std::string status_line = head.substr(0, pos);
    if (status_line.rfind("HTTP/1.", 0) != 0) return std::nullopt;
    r.status = std::stoi(status_line.substr(9, 3));
    while (pos != std::string::npos) {
      std::size_t next = head.find("\r\n", pos + 2);
      std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        r.headers[name] = value;
      }
      pos = next;
    }
    if (r.header("transfer-encoding") == "chunked") {
      r.chunked = true;
      while (true) {
        std::size_t eol;
        while ((eol = buf_.find("\r\n")) == std::string::npos)
          if (fill(left()) != 1) return std::nullopt;
        std::size_t size = std::stoul(buf_.substr(0, eol), nullptr, 16);
        while (buf_.size() < eol + 2 + size + 2)
          if (fill(left()) != 1) return std::nullopt;
        r.body += buf_.substr(eol + 2, size);
        buf_.erase(0, eol + 2 + size + 2);
        if (size == 0) break;
      }
    } else {
      std::size_t len = r.headers.count("content-length") ? std::stoul(r.header("content-length")) : 0;
      while (buf_.size() < len)
        if (fill(left()) != 1) return std::nullopt;
      r.body = buf_.substr(0, len);
      buf_.erase(0, len);
    }
    return r;
  }

  // Waits for the server to close: 0 orderly EOF, -1 reset, -2 still open after the limit.
  // Any bytes that arrive meanwhile are kept in pending().
  int wait_close(std::chrono::milliseconds limit) {
    auto until = Clock::now() + limit;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0) return -2;
      int r = fill(left);
      if (r != 1) return r;
    }
  }
  const std::string& pending() const { return buf_; }
  int last_errno() const { return last_errno_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  int connect_errno_ = 0;
  int last_errno_ = 0;
  std::string buf_;
};

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra + "\r\n";
}

std::string post(const std::string& target, const std::string& body) {
  return "POST " + target + " HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

std::string message_of(const Client::Response& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("message") ? j["message"].get<std::string>() : "<no message: " + r.body + ">";
}

}  // namespace

TEST_CASE("http: one connection serves several requests (keep-alive)", "[http]") {
  TestServer s(fast_limits());
  Client c(s.port);
  REQUIRE(c.connected());
  for (int i = 0; i < 3; ++i) {
    REQUIRE(c.send(get("/n" + std::to_string(i))));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "ok /n" + std::to_string(i));
    CHECK(r->header("connection") != "close");
  }
  REQUIRE(c.send(post("/echo", "payload")));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->body == "payload");
  CHECK(r->header("x-method") == "POST");
  CHECK(s.connections() == 1);
}

TEST_CASE("http: Connection: close and HTTP/1.0 end the connection after the response", "[http]") {
  TestServer s(fast_limits());
  {
    Client c(s.port);
    REQUIRE(c.send(get("/a", "Connection: close\r\n")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->header("connection") == "close");
    CHECK(c.wait_close(2000ms) == 0);
  }
  {
    Client c(s.port);
    REQUIRE(c.send("GET /b HTTP/1.0\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "ok /b");
    CHECK(c.wait_close(2000ms) == 0);
  }
}

TEST_CASE("http: pipelined requests are answered in order", "[http]") {
  TestServer s(fast_limits());
  Client c(s.port);
  // The first one is slow: a server answering as handlers finish would reorder them.
  REQUIRE(c.send(get("/slow?150") + post("/echo", "second") + get("/third") + post("/echo", "fourth")));
  std::vector<std::string> bodies;
  for (int i = 0; i < 4; ++i) {
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    bodies.push_back(r->body);
  }
  CHECK(bodies == std::vector<std::string>{"ok /slow?150", "second", "ok /third", "fourth"});
}

TEST_CASE("http: a chunked request body is accepted", "[http]") {
  TestServer s(fast_limits());
  Client c(s.port);
  REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->body == "hello world");
}

TEST_CASE("http: a body over the limit gets 413, and the client can read it", "[http][limits]") {
  auto limits = fast_limits();
  limits.body_limit = 1024;
  TestServer s(limits);

  SECTION("declared by Content-Length") {
    Client c(s.port);
    // The client keeps sending its whole body, as curl does; without a
    // lingering close it would see a reset instead of the answer.
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n"));
    c.send(std::string(200000, 'x'));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 413);
    CHECK(r->header("connection") == "close");
    CHECK(r->header("content-type") == "application/json");
    CHECK(message_of(*r) == "Request body too large: the limit is 1024 bytes");
    CHECK(c.wait_close(3000ms) == 0);
  }
  SECTION("discovered in a chunked body") {
    Client c(s.port);
    std::string chunk(800, 'y');
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
    c.send("320\r\n" + chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 413);
    CHECK(c.wait_close(3000ms) == 0);
  }
  SECTION("exactly at the limit is fine") {
    Client c(s.port);
    REQUIRE(c.send(post("/echo", std::string(1024, 'z'))));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.size() == 1024);
  }
}

TEST_CASE("http: oversized headers get 431", "[http][limits]") {
  auto limits = fast_limits();
  limits.header_limit = 2048;
  TestServer s(limits);
  Client c(s.port);
  REQUIRE(c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'h') + "\r\n\r\n"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 431);
  CHECK(r->header("connection") == "close");
  CHECK(message_of(*r) ==
        "Request header fields too large: the request line and headers exceed 2048 bytes");
  CHECK(c.wait_close(3000ms) == 0);
}

TEST_CASE("http: malformed requests get 400", "[http][errors]") {
  TestServer s(fast_limits());
  for (std::string bad : {"THIS IS NOT HTTP\r\n\r\n", "GET / HTTP/9.1\r\nHost: x\r\n\r\n",
                          "GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
                          "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"}) {
    INFO(bad);
    Client c(s.port);
    REQUIRE(c.send(bad));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(r->header("connection") == "close");
    CHECK(message_of(*r).rfind("Malformed HTTP request: ", 0) == 0);
    CHECK(c.wait_close(3000ms) == 0);
  }
}

TEST_CASE("http: a message cut short by the client gets 400", "[http][errors]") {
  TestServer s(fast_limits());
  Client c(s.port);
  REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-part"));
  c.shutdown_write();
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(message_of(*r) == "Truncated request: the connection was closed before the whole message arrived");
  CHECK(c.wait_close(3000ms) == 0);
}

TEST_CASE("http: a client that closes between requests is not answered", "[http][errors]") {
  TestServer s(fast_limits());
  Client c(s.port);
  REQUIRE(c.send(get("/one")));
  REQUIRE(c.read_response());
  c.shutdown_write();
  CHECK(c.wait_close(3000ms) == 0);
  CHECK(c.pending().empty());
}

TEST_CASE("http: a request that stalls past read_timeout gets 408", "[http][timeouts]") {
  auto limits = fast_limits();
  limits.read_timeout = 200ms;
  TestServer s(limits);

  SECTION("in the headers") {
    Client c(s.port);
    auto t0 = Clock::now();
    REQUIRE(c.send("GET / HTTP/1.1\r\nHost: x\r\n"));  // no blank line: the headers never end
    auto r = c.read_response(3000ms);
    auto waited = Clock::now() - t0;
    REQUIRE(r);
    CHECK(r->status == 408);
    CHECK(r->header("connection") == "close");
    CHECK(message_of(*r) == "Request timed out: the whole request did not arrive within 200 ms");
    CHECK(waited >= 180ms);
    CHECK(waited < 2000ms);
    CHECK(c.wait_close(3000ms) == 0);
  }
  SECTION("in the body") {
    Client c(s.port);
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
    auto r = c.read_response(3000ms);
    REQUIRE(r);
    CHECK(r->status == 408);
    CHECK(c.wait_close(3000ms) == 0);
  }
  SECTION("a connection that never sends anything is closed without an answer") {
    Client c(s.port);
    auto t0 = Clock::now();
    CHECK(c.wait_close(3000ms) == 0);
    CHECK(c.pending().empty());
    CHECK(Clock::now() - t0 >= 180ms);
  }
}

TEST_CASE("http: idle keep-alive connections are closed after idle_timeout", "[http][timeouts]") {
  auto limits = fast_limits();
  limits.idle_timeout = 250ms;
  TestServer s(limits);
  Client c(s.port);
  REQUIRE(c.send(get("/first")));
  REQUIRE(c.read_response());
  auto t0 = Clock::now();
  CHECK(c.wait_close(3000ms) == 0);
  auto waited = Clock::now() - t0;
  CHECK(waited >= 200ms);
  CHECK(waited < 2000ms);
  CHECK(c.pending().empty());  // closed silently: no 408 for a connection at rest

  // An active connection is not cut: requests inside the idle window keep it alive.
  Client d(s.port);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(d.send(get("/again")));
    REQUIRE(d.read_response());
    std::this_thread::sleep_for(100ms);
  }
}

TEST_CASE("http: chunked responses stream as the handler writes", "[http][chunked]") {
  TestServer s(fast_limits());
  Client c(s.port);
  REQUIRE(c.send(get("/stream")));

  // The head and the first chunk arrive while the handler is still waiting.
  std::string seen;
  auto until = Clock::now() + 3s;
  while (seen.find("hello ") == std::string::npos && Clock::now() < until) {
    if (c.fill(100ms) == 1) seen = c.pending();
  }
  REQUIRE(seen.find("hello ") != std::string::npos);
  CHECK(seen.find("world") == std::string::npos);
  s.shared->first_chunk_seen = true;

  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->chunked);
  CHECK(r->body == "hello world");
  CHECK(r->header("content-type") == "text/plain");
  CHECK(r->header("x-stream") == "yes");
  CHECK(r->headers.count("content-length") == 0);

  // The connection is still usable afterwards.
  REQUIRE(c.send(get("/after")));
  auto r2 = c.read_response();
  REQUIRE(r2);
  CHECK(r2->body == "ok /after");
}

TEST_CASE("http: a handler that throws or does not answer gets 500", "[http][errors]") {
  TestServer s(fast_limits());
  Client c(s.port);
  for (const char* target : {"/throw", "/silent"}) {
    INFO(target);
    REQUIRE(c.send(get(target)));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 500);
    CHECK(message_of(*r) == "Internal server error");
  }
  // The connection survives the failed handler.
  REQUIRE(c.send(get("/fine")));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("http: a custom error formatter shapes the error answers", "[http][errors]") {
  auto limits = fast_limits();
  limits.body_limit = 10;
  TestServer s(limits, [](unsigned status, const std::string& message) {
    http::Response res{static_cast<bhttp::status>(status), 11};
    res.set("X-Error", "custom");
    res.body() = "E" + std::to_string(status) + ": " + message;
    return res;
  });
  Client c(s.port);
  REQUIRE(c.send(post("/echo", "more than ten bytes")));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 413);
  CHECK(r->header("x-error") == "custom");
  CHECK(r->body == "E413: Request body too large: the limit is 10 bytes");
  CHECK(r->header("connection") == "close");
}

TEST_CASE("http: drain closes idle connections and lets in-flight requests finish", "[http][drain]") {
  TestServer s(fast_limits());
  Client idle(s.port);
  REQUIRE(idle.send(get("/warm")));
  REQUIRE(idle.read_response());

  Client busy(s.port);
  REQUIRE(busy.send(get("/slow?400")));
  auto until = Clock::now() + 3s;
  while (s.shared->slow_started == 0 && Clock::now() < until) std::this_thread::sleep_for(2ms);
  REQUIRE(s.shared->slow_started == 1);

  auto t0 = Clock::now();
  auto drained = s.drain(5000ms);

  // The idle connection goes at once, without an answer.
  CHECK(idle.wait_close(1000ms) == 0);
  CHECK(idle.pending().empty());
  CHECK(Clock::now() - t0 < 350ms);

  // No new connections are accepted.
  {
    std::this_thread::sleep_for(20ms);
    Client late(s.port);
    bool refused = !late.connected() || late.wait_close(1000ms) != -2;
    CHECK(refused);
  }

  // The slow request still gets its whole answer, then the connection closes.
  auto r = busy.read_response(3000ms);
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "ok /slow?400");
  CHECK(busy.wait_close(2000ms) == 0);

  REQUIRE(drained.wait_for(3s) == std::future_status::ready);
  CHECK(Clock::now() - t0 >= 300ms);
  CHECK(s.connections() == 0);
}

TEST_CASE("http: drain gives up on handlers at its deadline", "[http][drain]") {
  TestServer s(fast_limits());
  Client busy(s.port);
  REQUIRE(busy.send(get("/slow?3000")));
  auto until = Clock::now() + 3s;
  while (s.shared->slow_started == 0 && Clock::now() < until) std::this_thread::sleep_for(2ms);
  REQUIRE(s.shared->slow_started == 1);
  auto t0 = Clock::now();
  auto drained = s.drain(200ms);
  REQUIRE(drained.wait_for(2s) == std::future_status::ready);
  CHECK(Clock::now() - t0 < 1000ms);
  // The connection was closed under the handler.
  CHECK(busy.wait_close(2000ms) != -2);
}

TEST_CASE("http: listen reports a busy port", "[http]") {
  TestServer s(fast_limits());
  asio::io_context other;
  auto second = std::make_shared<http::Server>(other.get_executor(), "second", fast_limits(),
                                               make_handler(std::make_shared<Shared>()), nullptr);
  try {
    second->listen("127.0.0.1", s.port);
    FAIL("listening twice on one port succeeded");
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    CHECK(what.find("second: cannot listen on 127.0.0.1:" + std::to_string(s.port)) == 0);
  }
  CHECK_THROWS_WITH(second->listen("not-an-address", 0),
                    Catch::Matchers::StartsWith("second: invalid listen address not-an-address"));
}
