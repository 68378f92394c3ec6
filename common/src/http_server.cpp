#include "sluice/common/http_server.hpp"

#include "sluice/common/log.hpp"
#include "sluice/common/util.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include <optional>

namespace sluice::http {
namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

auto logger() {
  static auto l = log::get("http");
  return l;
}
}  // namespace

Response json_error(unsigned status, const std::string& message) {
  Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = nlohmann::json{{"message", message}}.dump();
  res.prepare_payload();
  return res;
}

std::string head_too_large(std::size_t limit) {
  return "Request header fields too large: the request line and headers exceed " + std::to_string(limit) + " bytes";
}

asio::awaitable<void> linger_close(tcp::socket& sock) {
  boost::system::error_code ignored;
  sock.shutdown(tcp::socket::shutdown_send, ignored);
  // The deadline cancels the reads; the token tells a handler that runs after this call has
  // returned (the deadline fired just as the reads ended) not to touch the socket.
  auto token = std::make_shared<int>(0);
  asio::steady_timer deadline(sock.get_executor(), std::chrono::milliseconds(500));
  deadline.async_wait([&sock, alive = std::weak_ptr<int>(token)](boost::system::error_code ec) {
    boost::system::error_code none;
    if (!ec && alive.lock()) sock.cancel(none);
  });
  std::array<char, 8192> sink;
  for (int i = 0; i < 256; ++i) {
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(sink), nothrow);
    if (ec) break;
  }
  deadline.cancel();
}

Responder::Responder(beast::tcp_stream& stream, const ServerLimits& limits, bool keep_alive, unsigned version,
                     Endpoints& ends, const bool* draining, bool head)
    : stream_(stream),
      limits_(limits),
      keep_alive_(keep_alive),
      version_(version),
      draining_(draining),
      head_(head),
      ends_(ends) {}

const tcp::endpoint& Responder::remote() const {
  if (!ends_.remote) {
    boost::system::error_code ec;
    ends_.remote = stream_.socket().remote_endpoint(ec);
  }
  return *ends_.remote;
}

const tcp::endpoint& Responder::local() const {
  if (!ends_.local) {
    boost::system::error_code ec;
    ends_.local = stream_.socket().local_endpoint(ec);
  }
  return *ends_.local;
}

// One contiguous buffer per response: Beast's serializer walks a buffer per
// header field, which costs more than copying a few hundred bytes once.
std::string serialize(const Response& res, bool with_body) {
  std::string out;
  out.reserve(256 + res.body().size());
  out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(res.result_int());
  out.push_back(' ');
  out += res.reason();
  out += "\r\n";
  for (const auto& f : res) {
    out += f.name_string();
    out += ": ";
    out += f.value();
    out += "\r\n";
  }
  out += "\r\n";
  if (with_body) out += res.body();
  return out;
}

// A request head's framing that cannot be served: status and why (nullopt: fine).
static std::optional<std::pair<unsigned, std::string>> framing_problem(const bhttp::request_header<>& head) {
  auto te = head.find(bhttp::field::transfer_encoding);
  if (te != head.end()) {
    std::vector<std::string> codings;
    for (const auto& f : head) {
      if (f.name() != bhttp::field::transfer_encoding) continue;
      for (const auto& c : split(std::string(f.value()), ','))
        if (auto t = to_lower(trim(c)); !t.empty()) codings.push_back(t);
    }
    if (codings.empty() || codings.back() != "chunked")
      return std::make_pair(400u, "Malformed HTTP request: Transfer-Encoding '" + std::string(te->value()) +
                                      "' does not end in chunked, so the body's length is unknown");
    if (codings.size() > 1)
      return std::make_pair(501u, "Transfer-Encoding '" + std::string(te->value()) +
                                      "' is not supported: only chunked is (send the body without other codings)");
  }
  if (head.version() == 11) {
    auto hosts = head.count(bhttp::field::host);
    if (hosts != 1)
      return std::make_pair(400u, std::string("Malformed HTTP request: an HTTP/1.1 request needs exactly one Host "
                                              "header, this one has ") + std::to_string(hosts));
  }
  return std::nullopt;
}

asio::awaitable<void> Responder::send(Response res) {
  if (answered_) co_return;
  answered_ = true;
  res.version(version_);
  res.keep_alive(keep_alive());
  if (!res.has_content_length() && !res.chunked()) res.prepare_payload();
  stream_.expires_after(limits_.write_timeout);
  if (res.chunked()) {
    if (head_) {
      bhttp::response<bhttp::empty_body> h{res.result(), version_};
      for (const auto& f : res) h.insert(f.name_string(), f.value());
      bhttp::response_serializer<bhttp::empty_body> sr{h};
      auto [ec, n] = co_await bhttp::async_write_header(stream_, sr, nothrow);
      error_ = ec;
      co_return;
    }
    auto [ec, n] = co_await bhttp::async_write(stream_, res, nothrow);
    error_ = ec;
    co_return;
  }
  std::string bytes = serialize(res, !head_);
  auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(bytes), nothrow);
  error_ = ec;
}

asio::awaitable<void> Responder::start_chunked(Response head) {
  if (answered_) co_return;
  answered_ = true;
  chunked_ = true;
  bhttp::response<bhttp::empty_body> h{head.result(), version_};
  for (const auto& f : head) h.insert(f.name_string(), f.value());
  h.keep_alive(keep_alive());
  h.chunked(true);
  bhttp::response_serializer<bhttp::empty_body> sr{h};
  stream_.expires_after(limits_.write_timeout);
  auto [ec, n] = co_await bhttp::async_write_header(stream_, sr, nothrow);
  error_ = ec;
}

asio::awaitable<void> Responder::write_chunk(std::string_view data) {
  if (!chunked_ || error_ || data.empty() || head_) co_return;
  stream_.expires_after(limits_.write_timeout);
  auto [ec, n] = co_await asio::async_write(stream_, bhttp::make_chunk(asio::buffer(data.data(), data.size())),
                                            nothrow);
  error_ = ec;
}

asio::awaitable<void> Responder::finish_chunked() {
  if (!chunked_ || error_ || head_) co_return;
  stream_.expires_after(limits_.write_timeout);
  auto [ec, n] = co_await asio::async_write(stream_, bhttp::make_chunk_last(), nothrow);
  error_ = ec;
}

struct Server::Conn {
  explicit Conn(tcp::socket s) : stream(std::move(s)), read_deadline(stream.get_executor()) {}
  beast::tcp_stream stream;
  // tcp_stream's own timeout closes the socket, which would leave no way to
  // answer 408; this deadline only cancels the pending read.
  asio::steady_timer read_deadline;
  std::uint64_t read_round = 0;
  bool read_timed_out = false;
  bool busy = false;
  Endpoints ends;
};

Server::Server(asio::any_io_executor ex, std::string name, ServerLimits limits, Handler handler,
               ErrorFormatter errors)
    : ex_(ex),
      name_(std::move(name)),
      limits_(limits),
      handler_(std::move(handler)),
      errors_(errors ? std::move(errors) : ErrorFormatter(json_error)),
      acceptor_(ex) {}

Server::~Server() = default;

tcp::endpoint Server::listen(const std::string& host, unsigned short port) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error(name_ + ": invalid listen address " + host + ": " + ec.message());
  tcp::endpoint ep{addr, port};
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error(name_ + ": cannot listen on " + host + ":" + std::to_string(port) + ": " +
                             ec.message());
  return acceptor_.local_endpoint();
}

void Server::start() {
  asio::co_spawn(ex_, [self = shared_from_this()] { return self->accept_loop(); }, asio::detached);
}

asio::awaitable<void> Server::accept_loop() {
  while (!draining_) {
    auto [ec, sock] = co_await acceptor_.async_accept(nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || draining_) break;
      // Out of descriptors and the like: back off instead of spinning.
      logger()->warn("{}: accept failed: {}", name_, ec.message());
      asio::steady_timer t(ex_, std::chrono::milliseconds(50));
      co_await t.async_wait(nothrow);
      continue;
    }
    sock.set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<Conn>(std::move(sock));
    conns_.insert(conn);
    asio::co_spawn(ex_, serve(conn), asio::detached);
  }
}

asio::awaitable<void> Server::serve(std::shared_ptr<Conn> conn) {
  auto self = shared_from_this();
  auto& stream = conn->stream;
  beast::flat_buffer buffer;
  std::size_t handled = 0;

  auto reject = [&](unsigned status, std::string message) -> asio::awaitable<void> {
    Response res = errors_(status, message);
    if (res.find(bhttp::field::date) == res.end()) res.set(bhttp::field::date, http_date());
    if (on_reject_) {
      boost::system::error_code ignored;
      on_reject_(status, message, stream.socket().remote_endpoint(ignored));
    }
    res.keep_alive(false);
    res.prepare_payload();
    stream.expires_after(limits_.write_timeout);
    co_await bhttp::async_write(stream, res, nothrow);
    stream.expires_never();
    co_await linger_close(stream.socket());
  };

  auto arm_read_deadline = [&](std::chrono::milliseconds d) {
    std::uint64_t round = ++conn->read_round;
    conn->read_timed_out = false;
    conn->read_deadline.expires_after(d);
    conn->read_deadline.async_wait([conn, round](boost::system::error_code ec) {
      if (ec || conn->read_round != round) return;
      conn->read_timed_out = true;
      boost::system::error_code ignored;
      conn->stream.socket().cancel(ignored);
    });
  };
  auto disarm_read_deadline = [&] {
    ++conn->read_round;
    conn->read_deadline.cancel();
  };

  while (!draining_) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits_.header_limit));
    parser.body_limit(limits_.body_limit);

    conn->busy = false;
    stream.expires_never();
    arm_read_deadline(handled == 0 ? limits_.read_timeout : limits_.idle_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, nothrow);
    if (!ec) {
      // What Beast lets through and HTTP/1.1 does not (RFC 9112 §3.2, §6.1, §6.3): a request
      // whose Transfer-Encoding does not end in chunked has no knowable length (its bytes would
      // be read as the next request), and a coding other than chunked is not one this server
      // can undo; an HTTP/1.1 request names exactly one Host.
      if (auto problem = framing_problem(parser.get())) {
        disarm_read_deadline();
        co_await reject(problem->first, std::move(problem->second));
        break;
      }
    }
    if (!ec && !parser.is_done()) {
      conn->busy = true;
      // A client that waits for "100 Continue" before sending its body (curl does for bodies
      // over 1 MB, for up to a second) gets it at once, unless the body has started anyway.
      // A body over the limit never gets here: its Content-Length is refused with the head.
      if (parser.get().version() == 11 && buffer.size() == 0 &&
          iequals(parser.get()[bhttp::field::expect], "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        stream.expires_after(limits_.write_timeout);
        auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(kContinue), nothrow);
        stream.expires_never();
        if (wec) break;
      }
      arm_read_deadline(limits_.read_timeout);
      auto [ec2, n2] = co_await bhttp::async_read(stream, buffer, parser, nothrow);
      ec = ec2;
    }
    bool timed_out = conn->read_timed_out;
    disarm_read_deadline();
    if (ec && timed_out) ec = beast::error::timeout;
    if (ec) {
      bool started = parser.got_some() || buffer.size() > 0;
      if (ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
          ec == asio::error::operation_aborted || (!started && ec == beast::error::timeout)) {
        break;
      }
      std::string why;
      unsigned status = 400;
      if (ec == bhttp::error::header_limit) {
        status = 431;
        why = head_too_large(limits_.header_limit);
      } else if (ec == bhttp::error::body_limit) {
        status = 413;
        why = "Request body too large: the limit is " + std::to_string(limits_.body_limit) + " bytes";
      } else if (ec == beast::error::timeout) {
        status = 408;
        why = "Request timed out: the whole request did not arrive within " +
              std::to_string(limits_.read_timeout.count()) + " ms";
      } else if (ec == bhttp::error::partial_message) {
        why = "Truncated request: the connection was closed before the whole message arrived";
      } else {
        why = "Malformed HTTP request: " + ec.message();
      }
      co_await reject(status, std::move(why));
      break;
    }

    conn->busy = true;
    Request req = parser.release();
    // The absolute form (GET http://host/path HTTP/1.1, as proxies send) names the same resource
    // as its path (RFC 9112 §3.2.2: a server must accept it); its authority replaces Host.
    if (auto t = std::string(req.target()); starts_with(to_lower(t.substr(0, 8)), "http://") ||
                                            starts_with(to_lower(t.substr(0, 8)), "https://")) {
      auto after = t.find("://") + 3;
      auto slash = t.find_first_of("/?", after);
      std::string authority = t.substr(after, slash == std::string::npos ? std::string::npos : slash - after);
      std::string rest = slash == std::string::npos ? "/" : t.substr(slash);
      if (rest.front() == '?') rest.insert(0, "/");
      req.target(rest);
      if (!authority.empty()) req.set(bhttp::field::host, authority);
    }
    Responder responder(stream, limits_, req.keep_alive() && !draining_, req.version(), conn->ends, &draining_,
                        req.method() == bhttp::verb::head);
    try {
      co_await handler_(req, responder);
    } catch (const std::exception& e) {
      logger()->error("{}: handler failed on {} {}: {}", name_, std::string(req.method_string()),
                      std::string(req.target()), e.what());
    }
    if (!responder.answered()) {
      Response fallback = errors_(500, "Internal server error");
      co_await responder.send(std::move(fallback));
    }
    ++handled;
    if (responder.failed() || !responder.keep_alive()) break;
  }

  disarm_read_deadline();
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.socket().close(ignored);
  conns_.erase(conn);
}

asio::awaitable<void> Server::drain(std::chrono::milliseconds deadline) {
  draining_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto& c : conns_)
    if (!c->busy) c->stream.socket().cancel(ignored);
  auto until = std::chrono::steady_clock::now() + deadline;
  asio::steady_timer t(ex_);
  while (!conns_.empty() && std::chrono::steady_clock::now() < until) {
    for (auto& c : conns_)
      if (!c->busy) c->stream.socket().cancel(ignored);
    t.expires_after(std::chrono::milliseconds(10));
    co_await t.async_wait(nothrow);
  }
  for (auto& c : conns_) c->stream.socket().close(ignored);
}

}  // namespace sluice::http
