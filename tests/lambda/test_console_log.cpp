// sluice/lambda/console_log.hpp: where Lambda log lines are written, and the
// back-pressure it exerts on environments.
#include "sluice/lambda/console_log.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <memory>

using namespace sluice;
using lambda::ConsoleLogSink;
using runtime::LogLine;

namespace {

struct TmpFile {
  std::FILE* f = std::tmpfile();
  TmpFile() { REQUIRE(f); }
  ~TmpFile() { std::fclose(f); }
  std::string contents() const {
    std::string out;
    char buf[4096];
    off_t off = 0;
    ssize_t n;
    while ((n = ::pread(::fileno(f), buf, sizeof buf, off)) > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      off += n;
    }
    return out;
  }
};

constexpr std::string_view rid = "8476a536-e9f4-41e8-9739-2dfe598c3fcd";

LogLine line(std::string_view text, std::string_view version = "$LATEST", std::string_view request_id = rid,
             bool platform = false) {
  return LogLine{"orders", version, request_id, text, platform};
}

}  // namespace

TEST_CASE("tagged style prefixes each line with the function and request", "[console_log]") {
  TmpFile out;
  ConsoleLogSink sink(out.f, ConsoleLogSink::Style::tagged);
  sink.write(line("hello"));
  sink.write(line("START RequestId: x Version: $LATEST", "$LATEST", rid, true));
  sink.write(line("outside an invocation", "$LATEST", ""));
  sink.write(line("from version 3", "3"));
  sink.write(line("no request, version 3", "3", ""));
  sink.write(line(""));
  sink.flush();
  CHECK(out.contents() ==
        "[orders 8476a536] hello\n"
        "[orders 8476a536] START RequestId: x Version: $LATEST\n"
        "[orders] outside an invocation\n"
        "[orders:3 8476a536] from version 3\n"
        "[orders:3] no request, version 3\n"
        "[orders 8476a536] \n");
}

TEST_CASE("raw style writes the lines as AWS logs them", "[console_log]") {
  TmpFile out;
  ConsoleLogSink sink(out.f, ConsoleLogSink::Style::raw);
  sink.write(line("hello"));
  sink.write(line("from version 3", "3"));
  sink.write(line("REPORT RequestId: x\tDuration: 1.00 ms\t", "$LATEST", rid, true));
  sink.flush();
  CHECK(out.contents() == "hello\nfrom version 3\nREPORT RequestId: x\tDuration: 1.00 ms\t\n");
}

TEST_CASE("a record holding several lines joined by \\r becomes several lines", "[console_log]") {
  const std::string_view traceback =
      "[ERROR] KeyError: 'id'\rTraceback (most recent call last):\r  File \"/var/task/app.py\", line 3";
  SECTION("tagged: every line gets the prefix") {
    TmpFile out;
    ConsoleLogSink sink(out.f, ConsoleLogSink::Style::tagged);
    sink.write(line(traceback, "7"));
    sink.flush();
    CHECK(out.contents() ==
          "[orders:7 8476a536] [ERROR] KeyError: 'id'\n"
          "[orders:7 8476a536] Traceback (most recent call last):\n"
          "[orders:7 8476a536]   File \"/var/task/app.py\", line 3\n");
  }
  SECTION("raw") {
    TmpFile out;
    ConsoleLogSink sink(out.f, ConsoleLogSink::Style::raw);
    sink.write(line(traceback));
    sink.write(line("a\r\rb"));
    sink.flush();
    CHECK(out.contents() ==
          "[ERROR] KeyError: 'id'\nTraceback (most recent call last):\n  File \"/var/task/app.py\", line 3\n"
          "a\n\nb\n");
  }
}

TEST_CASE("write_text goes out in order with the log lines", "[console_log]") {
  TmpFile out;
  ConsoleLogSink sink(out.f, ConsoleLogSink::Style::tagged);
  sink.write(line("one"));
  sink.write_text("GET /movies 200");
  sink.write(line("two"));
  sink.flush();
  CHECK(out.contents() == "[orders 8476a536] one\nGET /movies 200\n[orders 8476a536] two\n");
}

TEST_CASE("many lines keep their order; destruction writes what is queued", "[console_log]") {
  TmpFile out;
  std::string expected;
  {
    ConsoleLogSink sink(out.f, ConsoleLogSink::Style::raw);
    for (int i = 0; i < 5000; ++i) {
      std::string text = "line " + std::to_string(i);
      sink.write(line(text));
      expected += text + "\n";
    }
  }  // no flush(): the destructor drains the queue
  CHECK(out.contents() == expected);
}

TEST_CASE("accepting() is false while the queue is over its bound", "[console_log]") {
  TmpFile out;
  ConsoleLogSink sink(out.f, ConsoleLogSink::Style::raw, 16);
  CHECK(sink.accepting());
  // Holding the FILE's lock stalls the writer thread, as a slow terminal would.
  ::flockfile(out.f);
  sink.write(line("a line longer than sixteen bytes"));
  CHECK_FALSE(sink.accepting());
  sink.write(line("more"));
  CHECK_FALSE(sink.accepting());
  ::funlockfile(out.f);
  sink.flush();
  CHECK(sink.accepting());
  CHECK(out.contents() == "a line longer than sixteen bytes\nmore\n");

  // Under the bound, it keeps accepting.
  ::flockfile(out.f);
  sink.write(line("short"));  // 6 bytes with the newline
  CHECK(sink.accepting());
  ::funlockfile(out.f);
  sink.flush();
}
