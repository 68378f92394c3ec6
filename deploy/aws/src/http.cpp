// The only translation unit of deploy/aws that sees Beast and Asio. Asio's SSL part is
// compiled here (sluice_net compiles the rest): nothing else in sluice uses asio::ssl.
#include <boost/asio/ssl/impl/src.hpp>

#include "http.hpp"

#include <map>
#include <optional>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace sluice::aws::detail {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

std::string Endpoint::url() const { return (https ? "https://" : "http://") + host_header + base_path; }

Endpoint parse_endpoint(const std::string& url) {
  Endpoint e;
  std::string rest;
  if (url.starts_with("https://")) {
    e.https = true;
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    e.https = false;
    rest = url.substr(7);
  } else {
    throw std::invalid_argument("endpoint URL \"" + url + "\" must start with http:// or https://");
  }
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  e.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!e.base_path.empty() && e.base_path.back() == '/') e.base_path.pop_back();
  if (authority.empty()) throw std::invalid_argument("endpoint URL \"" + url + "\" has no host");
  std::string default_port = e.https ? "443" : "80";
  if (authority.front() == '[') {  // [::1]:port
    auto close = authority.find(']');
    if (close == std::string::npos) throw std::invalid_argument("endpoint URL \"" + url + "\" has a bad IPv6 host");
    e.host = authority.substr(1, close - 1);
    e.port = close + 1 < authority.size() && authority[close + 1] == ':' ? authority.substr(close + 2) : default_port;
  } else if (auto colon = authority.rfind(':'); colon != std::string::npos) {
    e.host = authority.substr(0, colon);
    e.port = authority.substr(colon + 1);
  } else {
    e.host = authority;
    e.port = default_port;
  }
  if (e.port.empty() || e.port.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("endpoint URL \"" + url + "\" has a bad port");
  e.host_header = authority.front() == '[' ? "[" + e.host + "]" : e.host;
  if (e.port != default_port) e.host_header += ":" + e.port;
  return e;
}

namespace {

struct Connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<ssl::stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  int uses = 0;
  beast::tcp_stream& lowest() { return plain ? *plain : tls->next_layer(); }
};

bool is_timeout(const error_code& ec) { return ec == beast::error::timeout || ec == net::error::timed_out; }

// A kept-alive connection the server closed while idle fails like this on first use.
bool is_stale(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == net::ssl::error::stream_truncated;
}

}  // namespace

struct HttpClient::Impl {
  HttpOptions options;
  net::io_context ioc;
  ssl::context ssl_ctx{ssl::context::tls_client};
  bool ssl_ready = false;
  std::map<std::string, std::unique_ptr<Connection>> pool;  // "scheme://host:port"

  explicit Impl(HttpOptions o) : options(std::move(o)) {}

  // Runs one asynchronous operation to completion on the private io_context.
  template <class Start>
  error_code run(Start&& start) {
    error_code result = net::error::would_block;
    start([&result](error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  void prepare_ssl() {
    if (ssl_ready) return;
    ssl_ctx.set_verify_mode(ssl::verify_peer);
    error_code ec;
    if (!options.ca_file.empty()) {
      ssl_ctx.load_verify_file(options.ca_file, ec);
      if (ec)
        throw TransportFailure("cannot read the CA bundle " + options.ca_file + " (AWS_CA_BUNDLE): " + ec.message(),
                               false, false);
    } else {
      // OpenSSL's default paths honour SSL_CERT_FILE and SSL_CERT_DIR.
      ssl_ctx.set_default_verify_paths(ec);
      if (ec) throw TransportFailure("cannot load the system's trusted certificates: " + ec.message(), false, false);
    }
    ssl_ready = true;
  }

  std::unique_ptr<Connection> connect(const Endpoint& ep) {
    const std::string where = ep.host + ":" + ep.port;
    tcp::resolver resolver(ioc);
    tcp::resolver::results_type results;
    error_code ec = net::error::would_block;
    resolver.async_resolve(ep.host, ep.port, [&](error_code e, tcp::resolver::results_type r) {
      ec = e;
      results = std::move(r);
    });
    ioc.restart();
    ioc.run_for(options.connect_timeout);
    if (ec == net::error::would_block) {
      resolver.cancel();
      ioc.restart();
      ioc.run();
      throw TransportFailure("resolving " + ep.host + " timed out", true, true);
    }
    if (ec) throw TransportFailure("cannot resolve " + ep.host + ": " + ec.message(), false, true);

    auto c = std::make_unique<Connection>();
    if (ep.https) {
      prepare_ssl();
      c->tls = std::make_unique<ssl::stream<beast::tcp_stream>>(ioc, ssl_ctx);
    } else {
      c->plain = std::make_unique<beast::tcp_stream>(ioc);
    }
    beast::tcp_stream& s = c->lowest();
    s.expires_after(options.connect_timeout);
    ec = run([&](auto handler) { s.async_connect(results, std::move(handler)); });
    if (is_timeout(ec))
      throw TransportFailure("connecting to " + where + " timed out after " +
                                 std::to_string(options.connect_timeout.count()) + " ms",
                             true, true);
    if (ec) throw TransportFailure("cannot connect to " + where + ": " + ec.message(), false, true);
    s.socket().set_option(tcp::no_delay(true), ec);

    if (c->tls) {
      SSL* native = c->tls->native_handle();
      // SNI, and the certificate must name the host (or IP address) we asked for.
      if (!SSL_set_tlsext_host_name(native, ep.host.c_str()))
        throw TransportFailure("cannot set the TLS server name " + ep.host, false, false);
      c->tls->set_verify_callback(ssl::host_name_verification(ep.host));
      s.expires_after(options.connect_timeout);
      ec = run([&](auto handler) { c->tls->async_handshake(ssl::stream_base::client, std::move(handler)); });
      if (ec) {
        long verify = SSL_get_verify_result(native);
        if (is_timeout(ec)) throw TransportFailure("TLS handshake with " + where + " timed out", true, true);
        if (verify != X509_V_OK)
          throw TransportFailure("TLS certificate verification failed for " + where + ": " +
                                     X509_verify_cert_error_string(verify) +
                                     " (to trust a private CA, set AWS_CA_BUNDLE to its PEM file)",
                                 false, false);
        throw TransportFailure("TLS handshake with " + where + " failed: " + ec.message(), false, false);
      }
    }
    return c;
  }

  template <class Stream>
  error_code exchange(Connection& c, Stream& stream, const std::string& method, const std::string& target,
                      const Endpoint& ep, const Pairs& headers, const std::string& body,
                      const std::function<void(std::size_t, std::size_t)>& progress, Response& out, bool& any_read) {
    beast::tcp_stream& lowest = c.lowest();
    http::request<http::empty_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, ep.host_header);
    for (const auto& [k, v] : headers) req.insert(k, v);
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
      req.set(http::field::content_length, std::to_string(body.size()));
    http::request_serializer<http::empty_body> sr(req);
    lowest.expires_after(options.read_timeout);
    error_code ec = run([&](auto handler) { http::async_write_header(stream, sr, std::move(handler)); });
    if (ec) return ec;
    // The body goes out in slices so an upload can report progress.
    constexpr std::size_t kSlice = 256 * 1024;
    std::size_t sent = 0;
    if (progress && !body.empty()) progress(0, body.size());
    while (sent < body.size()) {
      std::size_t n = std::min(kSlice, body.size() - sent);
      lowest.expires_after(options.read_timeout);
      ec = run([&](auto handler) { net::async_write(stream, net::buffer(body.data() + sent, n), std::move(handler)); });
      if (ec) return ec;
      sent += n;
      if (progress) progress(sent, body.size());
    }

    http::response_parser<http::string_body> parser;
    parser.body_limit(std::uint64_t(1) << 32);
    parser.header_limit(64 * 1024);
    if (method == "HEAD") parser.skip(true);
    lowest.expires_after(options.read_timeout);
    ec = run([&](auto handler) { http::async_read(stream, c.buffer, parser, std::move(handler)); });
    any_read = parser.got_some();
    if (ec) return ec;
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    out.body = std::move(res.body());
    if (!res.keep_alive()) c.uses = -1;  // the server will close it
    return {};
  }
};

HttpClient::HttpClient(HttpOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
HttpClient::~HttpClient() = default;

Response HttpClient::send(const Endpoint& ep, const std::string& method, const std::string& target,
                          const Pairs& headers, const std::string& body,
                          const std::function<void(std::size_t, std::size_t)>& progress) {
  const std::string key = (ep.https ? "https://" : "http://") + ep.host + ":" + ep.port;
  for (int round = 0; round < 2; ++round) {
    auto& slot = impl_->pool[key];
    bool reused = slot != nullptr;
    if (!slot) slot = impl_->connect(ep);
    Connection& c = *slot;
    Response out;
    bool any_read = false;
    error_code ec = c.tls ? impl_->exchange(c, *c.tls, method, target, ep, headers, body, progress, out, any_read)
                          : impl_->exchange(c, *c.plain, method, target, ep, headers, body, progress, out, any_read);
    if (!ec) {
      ++c.uses;
      if (c.uses <= 0) impl_->pool.erase(key);
      return out;
    }
    impl_->pool.erase(key);
    // A reused connection the server had already closed: once more on a fresh one.
    if (reused && !any_read && is_stale(ec)) continue;
    const std::string where = ep.host + ":" + ep.port;
    if (is_timeout(ec))
      throw TransportFailure(method + " " + ep.url() + " timed out: no answer within " +
                                 std::to_string(impl_->options.read_timeout.count()) + " ms",
                             true, true);
    throw TransportFailure(method + " " + ep.url() + " failed: " + ec.message(), false, true);
  }
  throw TransportFailure("connection to " + ep.url() + " kept closing", false, true);
}

}  // namespace sluice::aws::detail
