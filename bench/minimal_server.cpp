// The smallest reasonable Boost.Beast server: one thread, coroutine per
// connection, keep-alive, answering every request with the same fixed
// response. The gateway benchmark compares sluice's gateway against it.
//
// usage: sluice-minimal-server PORT STATUS BODY [HEADER: VALUE]...
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

struct Fixed {
  unsigned status;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

asio::awaitable<void> serve(tcp::socket sock, const Fixed& fixed) {
  boost::beast::tcp_stream stream(std::move(sock));
  boost::beast::flat_buffer buf;
  while (true) {
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(stream, buf, req, nothrow);
    if (ec) break;
    http::response<http::string_body> res{static_cast<http::status>(fixed.status), req.version()};
    for (const auto& [k, v] : fixed.headers) res.set(k, v);
    res.body() = fixed.body;
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(stream, res, nothrow);
    if (wec || !req.keep_alive()) break;
  }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, const Fixed& fixed) {
  while (true) {
    auto [ec, sock] = co_await acceptor.async_accept(nothrow);
    if (ec) break;
    sock.set_option(tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), serve(std::move(sock), fixed), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: sluice-minimal-server PORT STATUS BODY [HEADER: VALUE]...\n");
    return 2;
  }
  Fixed fixed{static_cast<unsigned>(std::atoi(argv[2])), argv[3], {}};
  for (int i = 4; i < argc; ++i) {
    std::string h = argv[i];
    auto colon = h.find(':');
    if (colon == std::string::npos) continue;
    std::string value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    fixed.headers.emplace_back(h.substr(0, colon), value);
  }
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(std::atoi(argv[1]))});
  std::printf("%u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { ioc.stop(); });
  asio::co_spawn(ioc, listen(acceptor, fixed), asio::detached);
  ioc.run();
}
