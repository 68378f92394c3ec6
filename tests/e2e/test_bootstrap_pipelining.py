"""The Python and Node.js bootstraps pipeline each buffered response (or error) with the next
GET /next: one write carries both, and the Runtime API answers the POST together with the
next event. These tests check that nothing seen by handlers or callers changed: every event
reaches the right invocation once, in order, logs stay attributed, errors, oversized
responses and callback handlers behave as before, environments freeze between invocations.
The last ones drive the bootstraps against a scripted Runtime API, to check on the wire that
the GET really follows the unanswered POST and that answers split anyhow, closed connections
and refusals are handled."""
import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT

# The bootstraps sluice runs (SLUICE_BOOTSTRAP_DIR overrides them, for sluice and for this file).
BOOTSTRAPS = Path(os.environ.get("SLUICE_BOOTSTRAP_DIR") or ROOT / "runtime-api" / "bootstraps")

STACK = """
name: pipelining
functions:
  py-seq: {runtime: python3.11, code: py/, handler: handlers.seq, memory: 256}
  py-prints: {runtime: python3.11, code: py/, handler: handlers.prints}
  py-maybe-fail: {runtime: python3.11, code: py/, handler: handlers.maybe_fail}
  py-big: {runtime: python3.11, code: py/, handler: handlers.big, memory: 512}
  py-ticker: {runtime: python3.11, code: py/, handler: handlers.ticker, timeout: 10}
  node-seq: {runtime: nodejs20.x, code: node/, handler: index.seq, memory: 256}
  node-prints: {runtime: nodejs20.x, code: node/, handler: index.prints}
  node-maybe-fail: {runtime: nodejs20.x, code: node/, handler: index.maybeFail}
  node-big: {runtime: nodejs20.x, code: node/, handler: index.big, memory: 512}
  node-timer: {runtime: nodejs20.x, code: node/, handler: index.timer}
  node-implicit: {runtime: nodejs20.x, code: node/, handler: index.implicit}
  node-never: {runtime: nodejs20.x, code: node/, handler: index.never}
  node-ticker: {runtime: nodejs20.x, code: node/, handler: index.ticker, timeout: 10}
"""

PY_HANDLERS = '''
import os
import threading
import time

count = 0
ticks = 0
ticker_thread = None


def seq(event, context):
    global count
    count += 1
    return {"n": event["n"], "count": count, "pid": os.getpid(), "id": context.aws_request_id,
            "pad": len(event.get("pad", "")), "out": "r" * event.get("out", 0)}


def prints(event, context):
    for i in range(event["lines"]):
        print("line %s-%d" % (event["n"], i))
    return {"n": event["n"]}


def maybe_fail(event, context):
    if event.get("fail"):
        raise ValueError("failure %s" % event["n"])
    return {"n": event["n"], "pid": os.getpid()}


def big(event, context):
    if event.get("fail"):
        raise ValueError("e" * event["size"])
    if event.get("size"):
        return "x" * event["size"]
    return {"n": event["n"], "pid": os.getpid()}


def ticker(event, context):
    global ticker_thread
    if ticker_thread is None:
        def run():
            global ticks
            while True:
                ticks += 1
                time.sleep(0.01)
        ticker_thread = threading.Thread(target=run, daemon=True)
        ticker_thread.start()
    time.sleep(event["run_for"])
    return {"ticks": ticks, "pid": os.getpid()}
'''

NODE_HANDLERS = r'''
let count = 0;
const fired = [];
let ticks = 0;
let interval = null;

exports.seq = async (event, context) => {
  count += 1;
  return { n: event.n, count, pid: process.pid, id: context.awsRequestId,
           pad: (event.pad || '').length, out: 'r'.repeat(event.out || 0) };
};

exports.prints = async (event) => {
  for (let i = 0; i < event.lines; i++) {
    if (i % 2) process.stdout.write(`raw ${event.n}-${i}\n`);
    else console.log(`line ${event.n}-${i}`);
  }
  return { n: event.n };
};

exports.maybeFail = async (event) => {
  if (event.fail) throw new Error(`failure ${event.n}`);
  return { n: event.n, pid: process.pid };
};

exports.big = async (event) => {
  // A thrown string: an Error this large would also put its message in the X-Ray header.
  if (event.fail) throw 'e'.repeat(event.size);
  if (event.size) return 'x'.repeat(event.size);
  return { n: event.n, pid: process.pid };
};

// A callback handler with a timer that fires after the callback.
exports.timer = (event, context, callback) => {
  if (event.report) {
    setTimeout(() => callback(null, { fired: [...fired], pid: process.pid }), 150);
    return;
  }
  context.callbackWaitsForEmptyEventLoop = event.wait;
  const result = { n: event.n, timerFired: false, pid: process.pid };
  setTimeout(() => {
    result.timerFired = true;
    fired.push(event.n);
    console.log(`timer fired ${event.n}`);
  }, event.delay);
  callback(null, result);
};

// Neither a promise nor a callback: succeeds with null once the event loop is empty.
exports.implicit = (event) => {
  setTimeout(() => console.log(`implicit done ${event.n}`), 20);
};

// A promise that never settles: Runtime.NodeJsExit once the event loop is empty.
exports.never = async (event) => {
  if (event.settle) return { n: event.n, pid: process.pid };
  await new Promise(() => {});
};

exports.ticker = async (event) => {
  if (interval === null) interval = setInterval(() => { ticks += 1; }, 10);
  await new Promise((resolve) => setTimeout(resolve, event.run_for * 1000));
  return { ticks, pid: process.pid };
};
'''


@pytest.fixture
def srv(ws):
    (ws.path / "py").mkdir()
    (ws.path / "py" / "handlers.py").write_text(PY_HANDLERS)
    (ws.path / "node").mkdir()
    (ws.path / "node" / "index.js").write_text(NODE_HANDLERS)
    ws.write_stack(STACK)
    return ws.serve()


def tail(r):
    return base64.b64decode(r["LogResult"]).decode()


def invoke(client, function, payload, **kw):
    r = client.invoke(FunctionName=function, Payload=json.dumps(payload).encode(), **kw)
    body = r["Payload"].read()
    r["Json"] = json.loads(body) if body else None
    return r


RUNTIMES = ["py", "node"]


@pytest.mark.parametrize("rt", RUNTIMES)
def test_sequential_invocations_each_get_their_own_event_and_answer(srv, rt):
    client = srv.client()
    pads = [0, 10, 70_000, 3, 200_000]
    outs = [0, 100_000, 7, 5_000, 1]
    pid = None
    for i in range(150):
        pad, out = pads[i % len(pads)], outs[i % len(outs)]
        r = invoke(client, f"{rt}-seq", {"n": i, "pad": "p" * pad, "out": out})
        assert "FunctionError" not in r, r["Json"]
        j = r["Json"]
        assert (j["n"], j["count"], j["pad"], len(j["out"])) == (i, i + 1, pad, out)
        assert j["id"] == r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
        pid = pid or j["pid"]
        assert j["pid"] == pid, "one warm environment serves them all"


@pytest.mark.parametrize("rt", RUNTIMES)
def test_concurrent_callers_never_get_another_callers_answer(srv, rt):
    def caller(k):
        client = srv.client()
        got = []
        for i in range(30):
            n = k * 1000 + i
            j = invoke(client, f"{rt}-seq", {"n": n, "pad": "q" * (i * 997 % 5000)})["Json"]
            assert j["n"] == n and j["pad"] == i * 997 % 5000
            got.append((j["pid"], j["count"]))
        return got

    with ThreadPoolExecutor(4) as pool:
        results = [x for part in pool.map(caller, range(4)) for x in part]
    per_env = {}
    for pid, c in results:
        per_env.setdefault(pid, []).append(c)
    # Each environment counted every invocation it served exactly once.
    for counts in per_env.values():
        assert sorted(counts) == list(range(1, len(counts) + 1))


@pytest.mark.parametrize("rt", RUNTIMES)
def test_printed_lines_are_all_logged_in_order_before_end(srv, rt):
    client = srv.client()
    lines = 40 if rt == "py" else 24
    for n in range(6):
        r = invoke(client, f"{rt}-prints", {"n": n, "lines": lines}, LogType="Tail")
        assert r["Json"] == {"n": n}
        log = tail(r)
        rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
        assert f"START RequestId: {rid}" in log and f"END RequestId: {rid}" in log
        body = log.split(f"START RequestId: {rid}", 1)[1].split(f"END RequestId: {rid}", 1)[0]
        # Each channel in order: Node's console.log takes Lambda's log descriptor and
        # process.stdout.write stdout, two pipes whose lines Lambda does not interleave either.
        channels = (("line", 0, 2), ("raw", 1, 2)) if rt == "node" else (("line", 0, 1),)
        for kind, first, step in channels:
            found = re.findall(rf"{kind} (\d+)-(\d+)$", body, re.M)
            assert found == [(str(n), str(i)) for i in range(first, lines, step)], body
        assert "REPORT RequestId" in log.split(f"END RequestId: {rid}", 1)[1]


@pytest.mark.parametrize("rt", RUNTIMES)
def test_errors_and_successes_alternate_in_one_environment(srv, rt):
    client = srv.client()
    pids = set()
    traces = set()
    for n in range(8):
        fail = n % 2 == 0
        r = invoke(client, f"{rt}-maybe-fail", {"n": n, "fail": fail})
        if fail:
            assert r["FunctionError"] == "Unhandled"
            assert r["Json"]["errorMessage"] == f"failure {n}"
            assert r["Json"]["errorType"] == ("ValueError" if rt == "py" else "Error")
            trace = r["Json"]["stackTrace" if rt == "py" else "trace"]
            traces.add(tuple(line.replace(f"failure {n}", "failure N") for line in trace))
        else:
            assert "FunctionError" not in r and r["Json"]["n"] == n
            pids.add(r["Json"]["pid"])
    assert len(pids) == 1
    # The first event came by a plain GET, the others behind a post: the handler is called
    # from the same place (in Node, the trace ends `at process.processTicksAndRejections`).
    assert len(traces) == 1, traces


def test_node_response_over_6mb_then_normal_invocations_in_the_same_environment(srv):
    client = srv.client()
    pid = invoke(client, "node-big", {"n": 0})["Json"]["pid"]
    for n in range(1, 4):
        r = invoke(client, "node-big", {"n": n, "size": 7 * 1024 * 1024, "fail": n == 2})
        assert r["FunctionError"] == "Unhandled"
        assert r["Json"] == {"errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                             "errorType": "Function.ResponseSizeTooLarge"}
        # The runtime ignored the 413 (as the official client does) and its next event came.
        r = invoke(client, "node-big", {"n": n})
        assert r["Json"] == {"n": n, "pid": pid}
    # Just under the limit: a large pipelined write.
    r = invoke(client, "node-big", {"n": 9, "size": 6_000_000})
    assert "FunctionError" not in r and len(r["Json"]) == 6_000_000
    assert invoke(client, "node-big", {"n": 10})["Json"] == {"n": 10, "pid": pid}


def test_python_response_over_6mb_then_normal_invocations(srv):
    client = srv.client()
    for n in range(3):
        r = invoke(client, "py-big", {"n": n, "size": 7 * 1024 * 1024, "fail": n == 1})
        assert r["FunctionError"] == "Unhandled"
        assert r["Json"]["errorType"] == "Function.ResponseSizeTooLarge"
        # Like the official client, the Python runtime exits after a refused post; the post was
        # not pipelined, so no event can have gone to the exiting process: the next call works.
        r = invoke(client, "py-big", {"n": n})
        assert "FunctionError" not in r and r["Json"]["n"] == n
        pid = r["Json"]["pid"]
    r = invoke(client, "py-big", {"n": 9, "size": 6_000_000})
    assert "FunctionError" not in r and len(r["Json"]) == 6_000_000
    assert invoke(client, "py-big", {"n": 10})["Json"] == {"n": 10, "pid": pid}


def test_node_callback_waits_for_the_event_loop_before_answering(srv):
    client = srv.client()
    for n in range(3):
        t0 = time.monotonic()
        r = invoke(client, "node-timer", {"n": n, "wait": True, "delay": 120}, LogType="Tail")
        elapsed = time.monotonic() - t0
        # The response is serialised when the loop is empty: after the timer.
        assert r["Json"]["n"] == n and r["Json"]["timerFired"] is True
        assert elapsed >= 0.12
        log = tail(r)
        rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
        assert log.index(f"timer fired {n}") < log.index(f"END RequestId: {rid}")


def test_node_callback_without_waiting_answers_at_once(srv):
    client = srv.client()
    pid = invoke(client, "node-timer", {"report": True})["Json"]["pid"]  # warm
    for n in range(3):
        t0 = time.monotonic()
        r = invoke(client, "node-timer", {"n": n, "wait": False, "delay": 1000})
        elapsed = time.monotonic() - t0
        assert r["Json"] == {"n": n, "timerFired": False, "pid": pid}
        assert elapsed < 1.0
    # The pending timers are not lost: they run while later invocations run (frozen meanwhile).
    deadline = time.monotonic() + 10
    while True:
        r = invoke(client, "node-timer", {"report": True})
        assert r["Json"]["pid"] == pid
        if r["Json"]["fired"] == [0, 1, 2] or time.monotonic() > deadline:
            break
    assert r["Json"]["fired"] == [0, 1, 2]


def test_node_empty_event_loop_results(srv):
    client = srv.client()
    pids = set()
    for n in range(3):
        r = invoke(client, "node-implicit", {"n": n}, LogType="Tail")
        assert "FunctionError" not in r and r["Json"] is None
        assert f"implicit done {n}" in tail(r)
        r = invoke(client, "node-never", {"n": n})
        assert r["FunctionError"] == "Unhandled" and r["Json"]["errorType"] == "Runtime.NodeJsExit"
        r = invoke(client, "node-never", {"n": n, "settle": True})
        assert r["Json"]["n"] == n
        pids.add(r["Json"]["pid"])
    assert len(pids) == 1


@pytest.mark.parametrize("rt", RUNTIMES)
def test_frozen_between_invocations(srv, rt):
    client = srv.client()
    first = invoke(client, f"{rt}-ticker", {"run_for": 0.3})["Json"]
    time.sleep(1.5)
    second = invoke(client, f"{rt}-ticker", {"run_for": 0.3})["Json"]
    assert first["pid"] == second["pid"]
    advanced = second["ticks"] - first["ticks"]
    # ~30 ticks while running; 1.5 s more (~150 ticks) would mean it ran while idle.
    assert advanced < 80, f"ran while frozen ({advanced} ticks)"


# ---------------------------------------------------------------------------------------------
# The bootstraps against a scripted Runtime API.


class ScriptedConnection:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _more(self, timeout):
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("the runtime closed the connection")
        self.buf += chunk

    def request(self, timeout=10.0):
        """(method, path, body) of the next request on this connection."""
        while b"\r\n\r\n" not in self.buf:
            self._more(timeout)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = dict((k.strip().lower(), v.strip()) for k, v in (ln.split(":", 1) for ln in lines[1:]))
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._more(timeout)
        body, self.buf = self.buf[:n], self.buf[n:]
        return method, path, body

    def quiet(self, wait):
        """True if the runtime sent nothing more and sends nothing within wait seconds."""
        if self.buf:
            return False
        try:
            self._more(wait)
        except (socket.timeout, EOFError):
            return True
        return False

    def send(self, data, piece=None):
        if piece is None:
            self.sock.sendall(data)
        else:
            for i in range(0, len(data), piece):
                self.sock.sendall(data[i:i + piece])

    def close(self):
        self.sock.close()


def accepted(close=False, chunked=False):
    body = b'{"status":"OK"}'
    head = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n" + (b"Connection: close\r\n" if close else b"")
    if chunked:
        return head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(body), body)
    return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def next_event(rid, payload, chunked=False, close=False):
    body = json.dumps(payload).encode()
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: %s\r\n"
            b"Lambda-Runtime-Deadline-Ms: %d\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:1:function:f\r\n"
            % (rid.encode(), int(time.time() * 1000) + 60000)) + (b"Connection: close\r\n" if close else b"")
    if chunked:
        return head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


SCRIPTED_PY = '''
def handler(event, context):
    print("handling", event["n"])
    if event.get("fail"):
        raise ValueError("failed %s" % event["n"])
    if event.get("size"):
        return "x" * event["size"]
    return {"n": event["n"], "id": context.aws_request_id}
'''

SCRIPTED_NODE = '''
exports.handler = async (event, context) => {
  console.log("handling", event.n);
  if (event.fail) throw new Error("failed " + event.n);
  if (event.size) return "x".repeat(event.size);
  return { n: event.n, id: context.awsRequestId };
};
'''


@pytest.mark.parametrize("rt", RUNTIMES)
def test_scripted_runtime_api_pipelined_exchanges(tmp_path, rt):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(15)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
           "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % listener.getsockname()[1], "_HANDLER": "index.handler",
           "LAMBDA_TASK_ROOT": str(tmp_path), "AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_REGION": "us-east-1",
           "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/f", "AWS_LAMBDA_LOG_STREAM_NAME": "s"}
    if rt == "py":
        (tmp_path / "index.py").write_text(SCRIPTED_PY)
        env["AWS_EXECUTION_ENV"] = "AWS_Lambda_python3.11"
        cmd = [sys.executable, str(BOOTSTRAPS / "python" / "bootstrap.py")]
    else:
        (tmp_path / "index.js").write_text(SCRIPTED_NODE)
        env["AWS_EXECUTION_ENV"] = "AWS_Lambda_nodejs20.x"
        cmd = ["node", str(BOOTSTRAPS / "node" / "bootstrap.js")]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read().decode()), daemon=True)
    reader.start()

    def expect_post(c, rid, what="response"):
        method, path, body = c.request()
        assert (method, path) == ("POST", f"/2018-06-01/runtime/invocation/{rid}/{what}"), (method, path, body[:200])
        return body

    def expect_next(c, timeout=10.0):
        method, path, _ = c.request(timeout)
        assert (method, path) == ("GET", "/2018-06-01/runtime/invocation/next")

    try:
        c = ScriptedConnection(listener.accept()[0])
        expect_next(c)
        c.send(next_event("r1", {"n": 1}))
        assert json.loads(expect_post(c, "r1")) == {"n": 1, "id": "r1"}
        # The GET comes while the POST is still unanswered: it was pipelined.
        expect_next(c)
        # The 202 and the next event in one segment.
        c.send(accepted() + next_event("r2", {"n": 2}))
        assert json.loads(expect_post(c, "r2")) == {"n": 2, "id": "r2"}
        expect_next(c)
        # Byte by byte.
        c.send(accepted() + next_event("r3", {"n": 3}), piece=1)
        assert json.loads(expect_post(c, "r3")) == {"n": 3, "id": "r3"}
        expect_next(c)
        # Both chunked, 5 bytes at a time; the handler fails: /error is pipelined the same way.
        c.send(accepted(chunked=True) + next_event("r4", {"n": 4, "fail": True}, chunked=True), piece=5)
        assert json.loads(expect_post(c, "r4", "error"))["errorMessage"] == "failed 4"
        expect_next(c)
        # The 202 closes the connection: the GET is sent again on a new one.
        c.send(accepted(close=True))
        c.close()
        c = ScriptedConnection(listener.accept()[0])
        expect_next(c)
        c.send(next_event("r5", {"n": 5}))
        assert json.loads(expect_post(c, "r5")) == {"n": 5, "id": "r5"}
        expect_next(c)
        # The 202 arrives, then the connection breaks before the event: GET again.
        c.send(accepted())
        time.sleep(0.2)
        c.close()
        c = ScriptedConnection(listener.accept()[0])
        expect_next(c)
        c.send(next_event("r6", {"n": 6}))
        assert json.loads(expect_post(c, "r6")) == {"n": 6, "id": "r6"}
        expect_next(c)
        # The connection breaks with neither answer: the POST and the GET are sent again.
        c.close()
        c = ScriptedConnection(listener.accept()[0])
        assert json.loads(expect_post(c, "r6")) == {"n": 6, "id": "r6"}
        expect_next(c)
        # An event that closes its connection: the answer and the GET go on a new one, which
        # breaks after the 202: GET again.
        c.send(accepted() + next_event("r6b", {"n": 6.5}, close=True))
        c.close()
        c = ScriptedConnection(listener.accept()[0])
        assert json.loads(expect_post(c, "r6b")) == {"n": 6.5, "id": "r6b"}
        expect_next(c)
        c.send(accepted())
        time.sleep(0.2)
        c.close()
        c = ScriptedConnection(listener.accept()[0])
        expect_next(c)
        # A large event and a large response.
        c.send(next_event("r7", {"n": 7, "size": 3_000_000, "pad": "p" * 200_000}))
        assert expect_post(c, "r7") == b'"' + b"x" * 3_000_000 + b'"'
        expect_next(c)
        # A response over 6 MB, refused.
        c.send(accepted() + next_event("r8", {"n": 8, "size": 7 * 1024 * 1024}))
        assert len(expect_post(c, "r8")) == 7 * 1024 * 1024 + 2
        refused = b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        if rt == "py":
            # Sent alone: the refusal ends the process, as with the official client, and no
            # other event was asked for.
            assert c.quiet(0.5)
            c.send(refused)
            assert proc.wait(15) == 1
            reader.join(5)
            assert "Failed to post invocation response: HTTP 413" in out[0]
        else:
            # Ignored, as the official client does.
            expect_next(c)
            c.send(refused + next_event("r9", {"n": 9}))
            assert json.loads(expect_post(c, "r9")) == {"n": 9, "id": "r9"}
            expect_next(c)
            c.send(accepted() + b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nbye")
            assert proc.wait(15) == 1
            reader.join(5)
            assert "answered HTTP 500: bye" in out[0]
        handled = re.findall(r"handling ([\d.]+)", out[0])
        expected = [str(n) for n in range(1, 10 if rt == "node" else 9)]
        expected.insert(6, "6.5")
        assert handled == expected, out[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
