// A lean HTTP/1.1 load client for the benchmarks: N threads, each with one
// kept-alive connection, sending the same request back to back for a number of
// requests or a duration; prints latency percentiles and throughput as JSON.
// Kept deliberately simple (blocking sockets, Content-Length responses only) so
// that its own cost per request stays a few microseconds.
//
// usage: sluice-load HOST PORT METHOD PATH [--body FILE] [--header "K: V"]...
//                    [--concurrency N] [--requests N | --duration SECONDS] [--warmup N]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string method = "GET", path = "/";
  std::string body;
  std::vector<std::string> headers;
  int concurrency = 1;
  long requests = 0;
  double duration = 0;
  long warmup = 0;
};

int connect_to(const Options& o) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  ::inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Reads one response; returns its status, or -1 on a broken connection.
int read_response(int fd, std::string& buf) {
  std::size_t header_end;
  while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
    char tmp[65536];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return -1;
    buf.append(tmp, static_cast<std::size_t>(n));
  }
  int status = std::atoi(buf.c_str() + 9);
  std::size_t length = 0;
  for (std::size_t p = buf.find("\r\n"); p < header_end; p = buf.find("\r\n", p + 2)) {
    if (strncasecmp(buf.c_str() + p + 2, "content-length:", 15) == 0)
      length = std::strtoul(buf.c_str() + p + 17, nullptr, 10);
  }
  std::size_t total = header_end + 4 + length;
  while (buf.size() < total) {
    char tmp[65536];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return -1;
    buf.append(tmp, static_cast<std::size_t>(n));
  }
  buf.erase(0, total);
  return status;
}

struct Result {
  std::vector<double> latencies_us;
  long errors = 0;
  long non_2xx = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--body") {
      std::ifstream in(next(), std::ios::binary);
      o.body.assign(std::istreambuf_iterator<char>(in), {});
    } else if (a == "--header") {
      o.headers.push_back(next());
    } else if (a == "--concurrency") {
      o.concurrency = std::atoi(next().c_str());
    } else if (a == "--requests") {
      o.requests = std::atol(next().c_str());
    } else if (a == "--duration") {
      o.duration = std::atof(next().c_str());
    } else if (a == "--warmup") {
      o.warmup = std::atol(next().c_str());
    } else {
      pos.push_back(a);
    }
  }
  if (pos.size() != 4 || (o.requests <= 0 && o.duration <= 0)) {
    std::fprintf(stderr, "usage: sluice-load HOST PORT METHOD PATH [--body FILE] [--header 'K: V']... "
                         "[--concurrency N] (--requests N | --duration S) [--warmup N]\n");
    return 2;
  }
  o.host = pos[0];
  o.port = std::atoi(pos[1].c_str());
  o.method = pos[2];
  o.path = pos[3];

  std::string request = o.method + " " + o.path + " HTTP/1.1\r\nHost: " + o.host + ":" + std::to_string(o.port) +
                        "\r\nContent-Length: " + std::to_string(o.body.size()) + "\r\n";
  for (const auto& h : o.headers) request += h + "\r\n";
  request += "\r\n" + o.body;

  std::vector<Result> results(static_cast<std::size_t>(o.concurrency));
  std::atomic<long> remaining{o.requests};
  auto start = clock_type::now();
  auto stop_at = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.duration));
  std::vector<std::thread> threads;
  for (int t = 0; t < o.concurrency; ++t) {
    threads.emplace_back([&, t] {
      Result& r = results[static_cast<std::size_t>(t)];
      int fd = connect_to(o);
      std::string buf;
      long warm = o.warmup / o.concurrency;
      for (long i = 0; i < warm && fd >= 0; ++i) {
        if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0 || read_response(fd, buf) < 0) {
          ::close(fd);
          fd = connect_to(o);
        }
      }
      while (true) {
        if (o.requests > 0 && remaining.fetch_sub(1) <= 0) break;
        if (o.duration > 0 && clock_type::now() >= stop_at) break;
        if (fd < 0) fd = connect_to(o);
        if (fd < 0) {
          ++r.errors;
          continue;
        }
        auto t0 = clock_type::now();
        int status = -1;
        if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) >= 0) status = read_response(fd, buf);
        auto t1 = clock_type::now();
        if (status < 0) {
          ++r.errors;
          ::close(fd);
          fd = -1;
          buf.clear();
          continue;
        }
        if (status < 200 || status >= 300) ++r.non_2xx;
        r.latencies_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
      if (fd >= 0) ::close(fd);
    });
  }
  for (auto& th : threads) th.join();
  double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();

  std::vector<double> all;
  long errors = 0, non_2xx = 0;
  for (auto& r : results) {
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    errors += r.errors;
    non_2xx += r.non_2xx;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    if (all.empty()) return 0.0;
    std::size_t idx = static_cast<std::size_t>(p / 100.0 * static_cast<double>(all.size() - 1) + 0.5);
    return all[std::min(idx, all.size() - 1)];
  };
  std::printf("{\"requests\": %zu, \"errors\": %ld, \"non_2xx\": %ld, \"seconds\": %.3f, \"rps\": %.1f, "
              "\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}\n",
              all.size(), errors, non_2xx, elapsed, static_cast<double>(all.size()) / elapsed, pct(50), pct(90),
              pct(99), all.empty() ? 0.0 : all.back());
  return 0;
}
