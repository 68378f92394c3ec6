"""`sluice serve` as a server: the endpoints it announces and the ports it takes,
HTTP/1.1 keep-alive and pipelining, request size limits, slow and malformed
clients, the access log, code and stack edits while serving, and a graceful stop
with a request in flight. Real sockets, curl and http.client against the real
binary and real handler processes."""
import base64
import http.client
import io
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from urllib.parse import urlparse

import pytest

from conftest import BIN, Sluice

STACK = """
name: serving
defaults: {runtime: python3.11, timeout: 10}
functions:
  echo:
    code: py/
    handler: handlers.echo
    aliases: {live: {version: 1}}
  slow: {code: py/, handler: handlers.slow}
  marker: {code: py/, handler: handlers.show_marker}
apis:
  alpha:
    type: http
    routes:
      GET /items/{id}: echo
      POST /items/{id}: echo
      GET /live/{id}: echo:live
      GET /slow: slow
      GET /marker: marker
    stages:
      $default: {}
      dev: {}
%(extra)s"""

MORE_APIS = """
  beta:
    type: http
    routes:
      GET /items/{id}: echo
  fixed:
    type: http
    port: %(fixed)d
    routes:
      GET /items/{id}: echo
  legacy:
    type: rest
    routes:
      GET /ping: echo
    stages:
      dev: {}
"""

ADDED_ROUTE = "      GET /added: echo\n"


@pytest.fixture
def srv(ws):
    ws.copy_function("gateway-http-python", "py")
    ws.write_stack(STACK % {"extra": ""})
    return ws


def api_url(s, name="alpha"):
    return s.endpoints["apis"][name]["url"]


def hostport(url):
    u = urlparse(url)
    return u.hostname, u.port


def get(url, path, headers=None, timeout=30):
    conn = http.client.HTTPConnection(*hostport(url), timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def raw(url, data, timeout=10):
    """Sends bytes on a new connection; returns everything received until the server closes it."""
    s = socket.create_connection(hostport(url), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return buf
            buf += chunk
    finally:
        s.close()


class _Unclosable(io.BytesIO):
    def close(self):
        pass


class _Replay:
    def __init__(self, data):
        self.fp = _Unclosable(data)

    def makefile(self, *args, **kw):
        return self.fp


def parse_responses(data):
    """Every HTTP response in data, in order: (status, headers, body)."""
    sock = _Replay(data)
    out = []
    while sock.fp.tell() < len(data):
        r = http.client.HTTPResponse(sock)
        r.begin()
        out.append((r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()))
    return out


def wait_for_count(s, text, n, timeout=10, stream="stdout"):
    read = s.stdout if stream == "stdout" else s.stderr
    deadline = time.time() + timeout
    while time.time() < deadline:
        if read().count(text) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} did not appear {n} times:\n{read()[-4000:]}")


# ---------------------------------------------------------------------- endpoints and ports


class SluiceOnPorts(Sluice):
    """`sluice serve --port BASE`: the harness's own start() asks for ephemeral ports."""

    def __init__(self, workdir, base_port):
        super().__init__(workdir)
        self.base_port = base_port

    def start(self, timeout=20):
        cmd = [str(BIN), "serve", str(self.workdir / self.stack), "--lambda-port", "0", "--port",
               str(self.base_port), "--endpoints-file", str(self.endpoints_file)]
        self._out = open(self.out_path, "ab")
        self._err = open(self.err_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=self._out, stderr=self._err, env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.endpoints_file.exists():
                self.endpoints = json.loads(self.endpoints_file.read_text())
                return self
            if self.proc.poll() is not None:
                return None
            time.sleep(0.02)
        raise RuntimeError("sluice did not write its endpoints file in time:\n" + self.stderr())


def free_ports(count):
    """count consecutive free ports and one more apart, below the kernel's ephemeral range."""
    for _ in range(100):
        base = random.randrange(20000, 32000 - count - 10)
        wanted = list(range(base, base + count)) + [base + count + 5]
        socks = []
        try:
            for p in wanted:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return wanted
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


def test_endpoints_file_the_printed_line_and_ports(srv):
    for attempt in range(5):
        ports = free_ports(3)
        base, fixed = ports[0], ports[-1]
        srv.write_stack(STACK % {"extra": MORE_APIS % {"fixed": fixed}})
        s = SluiceOnPorts(srv.path, base)
        srv.servers.append(s)
        if s.start():
            break
        s.stop()  # a port was taken in the meantime: another set
    else:
        pytest.fail("sluice could not start on free ports:\n" + s.stderr())

    lam = s.endpoints["lambda"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", lam)
    assert s.endpoints == {
        "lambda": lam,
        "apis": {
            "alpha": {"type": "http", "url": f"http://127.0.0.1:{base}", "stages": ["$default", "dev"]},
            "beta": {"type": "http", "url": f"http://127.0.0.1:{base + 1}", "stages": ["$default"]},
            "fixed": {"type": "http", "url": f"http://127.0.0.1:{fixed}", "stages": ["$default"]},
            "legacy": {"type": "rest", "url": f"http://127.0.0.1:{base + 2}", "stages": ["dev"]},
        },
    }
    # The same, on one line, first thing on stdout.
    assert json.loads(s.stdout().splitlines()[0]) == s.endpoints
    # Every HTTP API answers on its port; the Lambda API on its own.
    for name in ("alpha", "beta", "fixed"):
        status, body = get(api_url(s, name), "/items/1")
        assert status == 200, (name, body)
        assert json.loads(body)["event"]["rawPath"] == "/items/1"
    assert s.invoke("echo", {"k": 1})["Json"]["event"] == {"k": 1}


# ---------------------------------------------------------------------- connections


def test_keep_alive_with_curl_and_http_client(srv):
    s = srv.serve()
    url = api_url(s)
    # curl with two URLs: the second transfer reuses the first one's connection.
    out = subprocess.run(["curl", "-s", "-w", "%{http_code} %{num_connects} %{local_port}\\n",
                          url + "/items/1", "-o", "/dev/null", url + "/items/2", "-o", "/dev/null"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    (c1, n1, p1), (c2, n2, p2) = [line.split() for line in out.stdout.splitlines()]
    assert (c1, c2) == ("200", "200")
    assert (n1, n2) == ("1", "0"), "curl had to open a second connection"
    assert p1 == p2

    # http.client: several requests on one connection, none of them closing it.
    conn = http.client.HTTPConnection(*hostport(url), timeout=30)
    conn.connect()
    sock, local = conn.sock, conn.sock.getsockname()
    pids = set()
    for i in range(4):
        method, body = ("POST", b'{"n": %d}' % i) if i % 2 else ("GET", None)
        conn.request(method, f"/items/{i}", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = json.loads(r.read())
        assert r.status == 200
        assert (r.getheader("Connection") or "").lower() != "close"
        assert data["event"]["pathParameters"] == {"id": str(i)}
        pids.add(data["pid"])
        assert conn.sock is sock and sock.getsockname() == local, "the connection was not kept"
    conn.close()
    assert len(pids) == 1, "sequential requests reuse the warm environment"

    # HTTP/1.0 without keep-alive: answered, then closed.
    data = raw(url, b"GET /items/9 HTTP/1.0\r\nHost: x\r\n\r\n")
    (status, headers, body), = parse_responses(data)
    assert data.startswith(b"HTTP/1.0 200 ")
    assert json.loads(body)["event"]["rawPath"] == "/items/9"
    # Connection: close on HTTP/1.1 is honoured.
    data = raw(url, b"GET /items/8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    (status, headers, body), = parse_responses(data)
    assert status == 200 and headers["connection"].lower() == "close"


def test_pipelined_requests_are_answered_in_order(srv):
    s = srv.serve()
    url = api_url(s)
    # The first is slow; the ones behind it must still come back after it, in order.
    reqs = (b"GET /slow?seconds=0.4 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /items/2 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /items/3 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /items/4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    responses = parse_responses(raw(url, reqs, timeout=30))
    assert [r[0] for r in responses] == [200, 200, 200, 200]
    bodies = [json.loads(r[2]) for r in responses]
    assert bodies[0]["slept"] == 0.4
    assert [b["event"]["rawPath"] for b in bodies[1:]] == ["/items/2", "/items/3", "/items/4"]
    assert bodies[2]["event"]["body"] == "hello"
    ids = [r[1]["apigw-requestid"] for r in responses]
    assert len(set(ids)) == 4
    assert [b["event"]["requestContext"]["requestId"] for b in bodies[1:]] == ids[1:]


HEAD_API = """
  gamma:
    type: http
    routes:
      ANY /any/{id}: echo
"""


def test_a_head_request_gets_the_headers_without_a_body(srv):
    # RFC 9110 9.3.2: the answer to HEAD has the headers a GET would get, its Content-Length
    # included, and no body; a body sent anyway would be read as the next pipelined response.
    srv.write_stack(STACK % {"extra": HEAD_API + MORE_APIS % {"fixed": free_ports(1)[0]}})
    s = srv.serve()
    # An answer from the function, the gateway's 404, a REST API's 403 (GET routes no HEAD
    # there) and 502 (the echo handler's plain result is no proxy response).
    for url, head, get_path, statuses in ((api_url(s, "gamma"), "/any/7", "/any/8", (200, 200)),
                                          (api_url(s, "alpha"), "/nowhere", "/items/9", (404, 200)),
                                          (api_url(s, "legacy"), "/dev/ping", "/dev/ping", (403, 502))):
        data = raw(url, b"HEAD " + head.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET " + get_path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                   timeout=30)
        first_end = data.index(b"\r\n\r\n") + 4
        head_lines = data[:first_end].decode().split("\r\n")
        assert head_lines[0].startswith(f"HTTP/1.1 {statuses[0]} "), head_lines
        length = next(int(h.split(":", 1)[1]) for h in head_lines if h.lower().startswith("content-length:"))
        assert length > 0, head_lines
        # What follows the HEAD answer's headers is the next response, not a body.
        assert data[first_end:].startswith(b"HTTP/1.1 %d " % statuses[1]), (url, data[first_end:first_end + 80])
        rest = parse_responses(data[first_end:])
        assert [r[0] for r in rest] == [statuses[1]]
    # What a client library makes of it: the same status and length as for GET.
    conn = http.client.HTTPConnection(*hostport(api_url(s, "gamma")), timeout=30)
    conn.request("HEAD", "/any/7")
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"")
    assert int(r.headers["Content-Length"]) > 0
    conn.request("GET", "/any/7")
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["event"]["rawPath"] == "/any/7"
    conn.close()


def test_request_size_limits_and_malformed_requests(srv, tmp_path):
    s = srv.serve()
    url = api_url(s)
    # A body over 10 MB: 413 as soon as its Content-Length is read, and the connection closed.
    data = raw(url, b"POST /items/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Length: 10485761\r\n\r\n" + b"x" * 65536)
    (status, headers, body), = parse_responses(data)
    assert status == 413
    assert headers["content-type"] == "application/json" and "message" in json.loads(body)
    assert headers["connection"].lower() == "close"
    # The same with curl sending a real 11 MB file.
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1024) * (11 * 1024))
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", f"@{big}",
                          "-H", "Content-Type: application/octet-stream", url + "/items/1"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout == "413", (out.stdout, out.stderr)
    # A body well within the limit goes through whole (binary: base64 in the event).
    payload = os.urandom(1024) * 1024
    conn = http.client.HTTPConnection(*hostport(url), timeout=60)
    conn.request("POST", "/items/1", body=payload, headers={"Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    ev = json.loads(r.read())["event"]
    conn.close()
    assert r.status == 200 and ev["isBase64Encoded"] is True
    assert base64.b64decode(ev["body"]) == payload

    # Request line and headers: up to 10,240 bytes, then 431.
    status, body = get(url, "/items/1", headers={"X-Big": "a" * 9000})
    assert status == 200
    (status, headers, body), = parse_responses(raw(url, b"GET /items/1 HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                                   b"a" * 10300 + b"\r\n\r\n"))
    assert status == 431 and headers["content-type"] == "application/json"
    assert "message" in json.loads(body)

    # Malformed HTTP: 400, then the connection is closed.
    for junk in (b"GARBAGE\r\n\r\n", b"GET /items/1 HTTP/1.1\r\nHost x\r\n\r\n",
                 b"GET /items/1 HTTP/9.9\r\nHost: x\r\n\r\n",
                 b"POST /items/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"):
        (status, headers, body), = parse_responses(raw(url, junk))
        assert status == 400, junk
        assert headers["content-type"] == "application/json" and json.loads(body)["message"], junk
    # Through all of it, sluice keeps serving.
    assert get(url, "/items/1")[0] == 200


def test_framing_that_would_smuggle_a_request_is_refused(srv):
    s = srv.serve()
    url = api_url(s)
    # A Transfer-Encoding that does not end in chunked leaves the body's length unknown: its bytes
    # must not be served as a second request (RFC 9112 §6.3), so 400 and the connection closed.
    smuggle = (b"POST /items/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
               b"GET /items/2?smuggled=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    answers = parse_responses(raw(url, smuggle))
    assert [a[0] for a in answers] == [400]
    assert "Transfer-Encoding 'gzip'" in json.loads(answers[0][2])["message"]
    assert answers[0][1]["connection"].lower() == "close"
    # Another coding before chunked is not one sluice can undo: 501, nothing invoked.
    answers = parse_responses(raw(url, b"POST /items/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
                                       b"\r\n3\r\nabc\r\n0\r\n\r\n"))
    assert [a[0] for a in answers] == [501]
    # The same on the Lambda Invoke API.
    lam = s.endpoints["lambda"]
    answers = parse_responses(raw(lam, b"POST /2015-03-31/functions/echo/invocations HTTP/1.1\r\nHost: x\r\n"
                                       b"Transfer-Encoding: gzip\r\n\r\n{\"body\":\"lost\"}"))
    assert [a[0] for a in answers] == [400]
    # HTTP/1.1 names exactly one Host; HTTP/1.0 needs none.
    for head in (b"GET /items/1 HTTP/1.1\r\n\r\n", b"GET /items/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"):
        (status, headers, body), = parse_responses(raw(url, head))
        assert status == 400 and "Host" in json.loads(body)["message"], head
    (status, headers, body), = parse_responses(raw(url, b"GET /items/1 HTTP/1.0\r\n\r\n"))
    assert status == 200
    # Plain chunked bodies still arrive whole; only the first request above was ever invoked.
    (status, headers, body), = parse_responses(raw(url, b"POST /items/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                                   b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                                                   b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"))
    assert status == 200 and json.loads(body)["event"]["body"] == "abcde"
    assert not [l for l in access_lines(s) if "smuggled" in l]
    # The absolute form (as proxies send it) reaches the same route (RFC 9112 §3.2.2).
    (status, headers, body), = parse_responses(raw(url, b"GET http://example.com/items/7?x=1 HTTP/1.1\r\n"
                                                   b"Host: example.com\r\nConnection: close\r\n\r\n"))
    ev = json.loads(body)["event"]
    assert status == 200 and ev["rawPath"] == "/items/7" and ev["rawQueryString"] == "x=1"
    assert ev["headers"]["host"] == "example.com"


def test_expect_100_continue_is_answered(srv, tmp_path):
    # Clients that ask before sending a body (curl does for bodies over 1 MB) get "100 Continue"
    # at once: without it curl waits a second and then sends anyway.
    s = srv.serve()
    url = api_url(s)
    with socket.create_connection(hostport(url), timeout=10) as c:
        c.sendall(b"POST /items/5 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = c.recv(4096)  # times out (the test fails) if nothing comes before the body
            assert chunk, interim
            interim += chunk
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
        c.sendall(b"hello")
        rest = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            rest += chunk
    (status, _, body), = parse_responses(rest)
    assert status == 200 and json.loads(body)["event"]["body"] == "hello"
    # A body over the limit is refused instead of invited.
    (status, _, _), = parse_responses(raw(url, b"POST /items/5 HTTP/1.1\r\nHost: x\r\nContent-Length: 10485761\r\n"
                                               b"Expect: 100-continue\r\n\r\n"))
    assert status == 413
    # curl with a 2 MB body, as a user would send it.
    body = tmp_path / "two-mb.txt"
    body.write_bytes(b"a" * (2 * 1024 * 1024))
    out = subprocess.run(["curl", "-sv", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", f"@{body}",
                          "-H", "Content-Type: text/plain", url + "/items/6"], capture_output=True, text=True, timeout=60)
    assert out.stdout == "200", out.stderr
    assert "> Expect: 100-continue" in out.stderr and "< HTTP/1.1 100 Continue" in out.stderr, out.stderr


def test_slow_clients_are_timed_out(srv):
    s = srv.serve(args=["--client-timeout", "1"])
    url = api_url(s)
    # Half a request: 408 once the client timeout passes, then the connection is closed.
    t0 = time.monotonic()
    data = raw(url, b"GET /items/1 HTTP/1.1\r\nHost: x\r\n", timeout=15)
    elapsed = time.monotonic() - t0
    (status, headers, body), = parse_responses(data)
    assert status == 408
    assert headers["connection"].lower() == "close" and "message" in json.loads(body)
    assert 0.9 <= elapsed < 14
    # Half a body: the same.
    data = raw(url, b"POST /items/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part", timeout=15)
    assert parse_responses(data)[0][0] == 408
    # An idle keep-alive connection is closed without an answer.
    sock = socket.create_connection(hostport(url), timeout=15)
    sock.sendall(b"GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf or len(parse_responses_safe(buf)) < 1:
        buf += sock.recv(65536)
    rest = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    sock.close()
    assert rest == b"", "nothing more is sent on an idle connection"
    # A client that sends its request promptly is served as usual.
    assert get(url, "/items/1")[0] == 200


def parse_responses_safe(buf):
    try:
        return parse_responses(buf)
    except Exception:
        return []


# ---------------------------------------------------------------------- access log


LOG_LINE = re.compile(r"^\[api (?P<api>[^/\]]+)/(?P<stage>[^\]]+)\] (?P<method>[A-Z]+) (?P<path>\S+) -> "
                      r"(?P<status>\d{3}) in (?P<ms>\d+\.\d\d) ms"
                      r"(?: \((?P<function>[^:)]+):(?P<version>[^,)]+), (?P<start>cold|warm)\))?"
                      r"(?: \[(?P<note>[^\]]*)\])?$")


def access_lines(s):
    return [m.groupdict() for m in map(LOG_LINE.match, s.stdout().splitlines()) if m]


def test_one_access_log_line_per_request(srv):
    pub = srv.run("publish", "echo", "--stack", "sluice.yaml")
    assert pub.returncode == 0, pub.stderr
    assert json.loads(pub.stdout)["Version"] == "1"
    s = srv.serve()
    url = api_url(s)
    requests = [("/items/1?x=1", 200), ("/items/2", 200), ("/dev/items/3", 200), ("/live/4", 200),
                ("/nothing", 404)]
    for path, status in requests:
        assert get(url, path)[0] == status, path
    wait_for_count(s, "[api alpha/", len(requests))
    lines = access_lines(s)
    assert len(lines) == len(requests), s.stdout()
    for line in lines:
        assert float(line["ms"]) >= 0
        assert line["api"] == "alpha"
    strip = lambda d: {k: v for k, v in d.items() if k not in ("ms", "api")}
    assert strip(lines[0]) == {"stage": "$default", "method": "GET", "path": "/items/1?x=1", "status": "200",
                               "function": "echo", "version": "$LATEST", "start": "cold", "note": None}
    assert strip(lines[1]) == {"stage": "$default", "method": "GET", "path": "/items/2", "status": "200",
                               "function": "echo", "version": "$LATEST", "start": "warm", "note": None}
    assert strip(lines[2]) == {"stage": "dev", "method": "GET", "path": "/dev/items/3", "status": "200",
                               "function": "echo", "version": "$LATEST", "start": "warm", "note": None}
    # Through the alias: the version that ran, in an environment of its own.
    assert strip(lines[3]) == {"stage": "$default", "method": "GET", "path": "/live/4", "status": "200",
                               "function": "echo", "version": "1", "start": "cold", "note": None}
    assert strip(lines[4]) == {"stage": "$default", "method": "GET", "path": "/nothing", "status": "404",
                               "function": None, "version": None, "start": None, "note": "no route"}
    # The access lines are on stdout, with the function logs; sluice's own messages on stderr.
    assert "[api " not in s.stderr()


# ---------------------------------------------------------------------- edits while serving


def test_editing_handler_code_takes_effect_on_the_next_request(srv):
    s = srv.serve()
    url = api_url(s)
    status, body = get(url, "/marker")
    first = json.loads(body)
    assert status == 200 and first["marker"] == "one"
    assert json.loads(get(url, "/marker")[1])["pid"] == first["pid"]
    (srv.path / "py" / "marker.py").write_text('VALUE = "two"\n')
    status, body = get(url, "/marker")
    second = json.loads(body)
    assert status == 200 and second["marker"] == "two"
    assert second["pid"] != first["pid"], "the $LATEST environment with the old code was retired"


def write_atomically(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_stack_reload(srv):
    s = srv.serve()
    url = api_url(s)
    stack = srv.path / "sluice.yaml"
    assert get(url, "/added")[0] == 404
    # Add a route: reloaded without a restart, the new route answers.
    pid = s.proc.pid
    write_atomically(stack, (STACK % {"extra": ""}).replace("      GET /marker: marker\n",
                                                             "      GET /marker: marker\n" + ADDED_ROUTE))
    # sluice's own messages go to stderr, the functions' logs and the access log to stdout.
    wait_for_count(s, "[sluice serve] info: reloaded sluice.yaml", 1, stream="stderr")
    assert "reloaded" not in s.stdout()
    status, body = get(url, "/added")
    assert status == 200, body
    assert json.loads(body)["event"]["routeKey"] == "GET /added"
    assert s.proc.pid == pid and s.proc.poll() is None

    # An invalid edit: the running stack stays, the validation report is printed.
    broken = (STACK % {"extra": ""}).replace("      GET /marker: marker\n",
                                             "      GET /marker: marker\n" + ADDED_ROUTE +
                                             "      GET /broken: no-such-function\n")
    broken = broken.replace("  slow: {code: py/", "  slow: {tiemout: 5, code: py/")
    write_atomically(stack, broken)
    wait_for_count(s, "changed but is not valid; still serving the previous version", 1, stream="stderr")
    out = s.stderr()
    report = out[out.index("changed but is not valid"):]
    assert "no-such-function" in report
    assert "tiemout" in report and "timeout" in report, "the report names the nearest valid key"
    assert re.search(r"sluice\.yaml:\d+", report), "the report names file and line"
    assert s.stderr().count("reloaded sluice.yaml") == 1
    assert get(url, "/added")[0] == 200, "the previous stack keeps serving"
    assert get(url, "/broken")[0] == 404
    assert get(url, "/items/1")[0] == 200
    assert s.proc.poll() is None

    # Fixed again: reloaded once more, the route of the invalid edit is gone with it.
    write_atomically(stack, STACK % {"extra": ""})
    wait_for_count(s, "reloaded sluice.yaml", 2, stream="stderr")
    assert get(url, "/added")[0] == 404
    assert get(url, "/items/1")[0] == 200

    # An edit whose port cannot be had (here the Lambda port, taken by sluice itself; a port of
    # another program alike): nothing is applied, the API keeps its port and keeps serving.
    lambda_port = urlparse(s.endpoints["lambda"]).port
    endpoints_before = s.endpoints_file.read_text()
    write_atomically(stack, (STACK % {"extra": ""}).replace("  alpha:\n    type: http\n",
                                                             f"  alpha:\n    type: http\n    port: {lambda_port}\n"))
    wait_for_count(s, "changed but cannot be applied; still serving the previous version", 1, stream="stderr")
    assert f"API alpha: port {lambda_port} is already one of sluice's listeners" in s.stderr()
    assert s.stderr().count("reloaded sluice.yaml") == 2
    assert get(url, "/items/1")[0] == 200
    assert s.endpoints_file.read_text() == endpoints_before
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        taken = busy.getsockname()[1]
        write_atomically(stack, (STACK % {"extra": ""}).replace("  alpha:\n    type: http\n",
                                                                 f"  alpha:\n    type: http\n    port: {taken}\n"))
        wait_for_count(s, "changed but cannot be applied", 2, stream="stderr")
        assert f"API alpha: cannot listen on 127.0.0.1:{taken}" in s.stderr()
        assert get(url, "/items/1")[0] == 200
    finally:
        busy.close()


# ---------------------------------------------------------------------- stopping


def test_sigterm_lets_an_api_request_in_flight_finish(srv):
    s = srv.serve()
    url = api_url(s)
    box = {}

    def slow_call():
        try:
            box["r"] = get(url, "/slow?seconds=1.5", timeout=30)
        except Exception as e:  # noqa: BLE001 - reported below
            box["e"] = e

    t = threading.Thread(target=slow_call)
    t.start()
    s.wait_for_log("] START RequestId")  # the invocation has started
    s.proc.send_signal(signal.SIGTERM)
    t.join(timeout=30)
    assert "e" not in box, box.get("e")
    status, body = box["r"]
    assert status == 200
    result = json.loads(body)
    assert result["slept"] == 1.5
    assert s.proc.wait(timeout=30) == 0
    deadline = time.time() + 5
    while os.path.exists(f"/proc/{result['pid']}") and time.time() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{result['pid']}"), "the handler process outlived sluice"
    assert "GET /slow?seconds=1.5 -> 200" in s.stdout()
    # No new connections once draining started and sluice is gone.
    with pytest.raises(OSError):
        socket.create_connection(hostport(url), timeout=2).close()


def test_requests_still_running_at_the_drain_timeout_get_an_answer(srv):
    # Past --drain-timeout the handlers are stopped: the callers in flight get the error
    # answer (the API's 500, the Invoke API's Runtime.ExitError), not a dropped connection.
    s = srv.serve(args=("--drain-timeout", "1"))
    box = {}

    def api_call():
        try:
            box["api"] = get(api_url(s), "/slow?seconds=20", timeout=60)
        except Exception as e:  # noqa: BLE001 - reported below
            box["api_e"] = e

    def invoke_call():
        try:
            box["invoke"] = s.invoke("slow", {"queryStringParameters": {"seconds": "20"}})
        except Exception as e:  # noqa: BLE001 - reported below
            box["invoke_e"] = e

    threads = [threading.Thread(target=api_call), threading.Thread(target=invoke_call)]
    for t in threads:
        t.start()
    wait_for_count(s, "] START RequestId", 2)
    s.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=60)
    assert "api_e" not in box and "invoke_e" not in box, box
    assert box["api"] == (500, b'{"message":"Internal Server Error"}')
    assert box["invoke"]["FunctionError"] == "Unhandled" and box["invoke"]["Json"]["errorType"] == "Runtime.ExitError"
    assert s.proc.wait(timeout=30) == 0
