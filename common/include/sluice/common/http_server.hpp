// A small HTTP/1.1 server on Boost.Beast coroutines, shared by the Lambda
// Invoke API and the API Gateway front doors: keep-alive, pipelined requests
// answered in order, header/body limits, slow-client timeouts, graceful drain,
// and chunked (streamed) responses. Heavy header: include it from .cpp files only.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace sluice::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

struct ServerLimits {
  std::size_t header_limit = 16 * 1024;            // request line + headers
  std::uint64_t body_limit = 10 * 1024 * 1024;     // bytes
  std::chrono::milliseconds idle_timeout{60'000};  // keep-alive wait for the next request
  std::chrono::milliseconds read_timeout{30'000};  // a started request must arrive within this
  std::chrono::milliseconds write_timeout{60'000};
};

// A connection's two ends, asked of the kernel once per connection, on first use.
struct Endpoints {
  std::optional<tcp::endpoint> remote, local;
};

// What a handler uses to answer one request. Exactly one of send() or the
// chunked trio must be used; a handler that returns without answering gets a 500.
class Responder {
 public:
  // ends: the connection's cache of its endpoints. draining: the server's flag; a response
  // written once it is set closes the connection.
  // head: the request was HEAD, so the response goes without its body (its Content-Length
  // stays that of the body a GET would get, RFC 9110 §9.3.2).
  Responder(beast::tcp_stream& stream, const ServerLimits& limits, bool keep_alive, unsigned version,
            Endpoints& ends, const bool* draining = nullptr, bool head = false);

  asio::awaitable<void> send(Response res);
  asio::awaitable<void> start_chunked(Response head);  // head's body is ignored
  asio::awaitable<void> write_chunk(std::string_view data);
  asio::awaitable<void> finish_chunked();

  bool answered() const { return answered_; }
  bool failed() const { return static_cast<bool>(error_); }
  bool keep_alive() const { return keep_alive_ && !(draining_ && *draining_); }
  // Ask for the connection to close once this response is written.
  void close_after() { keep_alive_ = false; }
  // Asked of the kernel on first use only (most requests never need them).
  const tcp::endpoint& remote() const;
  const tcp::endpoint& local() const;

 private:
  beast::tcp_stream& stream_;
  const ServerLimits& limits_;
  bool keep_alive_;
  unsigned version_;
  const bool* draining_ = nullptr;
  bool head_ = false;
  bool answered_ = false;
  bool chunked_ = false;
  boost::system::error_code error_;
  Endpoints& ends_;
};

using Handler = std::function<asio::awaitable<void>(Request&, Responder&)>;
// Builds the answer to a request that never reached the handler (malformed,
// too large, too slow). status is 400, 408, 413 or 431.
using ErrorFormatter = std::function<Response(unsigned status, const std::string& message)>;
// Told about every request refused before it reached the handler (for access logs).
using RejectObserver = std::function<void(unsigned status, const std::string& message, const tcp::endpoint& remote)>;

class Server : public std::enable_shared_from_this<Server> {
 public:
  Server(asio::any_io_executor ex, std::string name, ServerLimits limits, Handler handler, ErrorFormatter errors);
  ~Server();

  // Binds and listens; throws std::runtime_error naming the address on failure.
  tcp::endpoint listen(const std::string& host, unsigned short port);
  void start();
  // Stops accepting, closes idle connections, lets in-flight requests finish
  // (their connections close afterwards); resolves when all are gone or at the deadline.
  asio::awaitable<void> drain(std::chrono::milliseconds deadline);
  std::size_t connections() const { return conns_.size(); }
  void on_reject(RejectObserver observer) { on_reject_ = std::move(observer); }
  const std::string& name() const { return name_; }

 private:
  struct Conn;
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(std::shared_ptr<Conn> conn);

  asio::any_io_executor ex_;
  std::string name_;
  ServerLimits limits_;
  Handler handler_;
  ErrorFormatter errors_;
  RejectObserver on_reject_;
  tcp::acceptor acceptor_;
  bool draining_ = false;
  std::set<std::shared_ptr<Conn>> conns_;
};

// The response's bytes in one buffer (Content-Length must already be set); with_body false
// gives the status line and headers alone (the answer to HEAD).
std::string serialize(const Response& res, bool with_body = true);

// Default formatter: {"message": "..."} as application/json.
Response json_error(unsigned status, const std::string& message);

// What a 431 says: "Request header fields too large: the request line and headers exceed N bytes".
std::string head_too_large(std::size_t limit);

// Lingering close, after an error answer to a request that may still be arriving: stop
// sending, then swallow what the client still sends for up to 500 ms (at most 2 MB), so that
// it reads the answer instead of a reset. The socket must outlive the call.
asio::awaitable<void> linger_close(tcp::socket& sock);

}  // namespace sluice::http
