#!/usr/bin/env python3
"""Benchmark of the execution core through the Lambda Invoke API, run on demand.
Prints figures side by side; asserts nothing.

  python3 bench/bench_invoke.py [--quick]

Measures, for a Python and a Node.js handler (fixtures/bench):
  * warm invocation latency p50/p99 through sluice vs the same handler called in
    a loop inside its own interpreter (the raw baseline), and the difference;
  * cold start latency vs the interpreter's own start-up plus importing the handler, and
    with Lambda's file system layout (the default) vs without it (--no-sandbox);
  * throughput with 1, 4 and 16 concurrent callers;
  * sluice's resident memory before and after 100,000 invocations.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("SLUICE_BUILD_DIR", ROOT / "build"))
SLUICE = BUILD / "sluice"
LOAD = BUILD / "sluice-load"
FIX = ROOT / "fixtures" / "bench"


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def load(port, function, concurrency=1, requests=None, duration=None, warmup=200):
    body = Path(tempfile.mkstemp()[1])
    body.write_text("{}")
    cmd = [str(LOAD), "127.0.0.1", str(port), "POST", f"/2015-03-31/functions/{function}/invocations",
           "--body", str(body), "--concurrency", str(concurrency), "--warmup", str(warmup)]
    cmd += ["--requests", str(requests)] if requests else ["--duration", str(duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    body.unlink()
    return json.loads(out)


def invoke_once(port, function):
    s = socket.create_connection(("127.0.0.1", port))
    req = (f"POST /2015-03-31/functions/{function}/invocations HTTP/1.1\r\nHost: x\r\n"
           "Content-Length: 2\r\nConnection: close\r\n\r\n{}").encode()
    t0 = time.perf_counter()
    s.sendall(req)
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    t1 = time.perf_counter()
    s.close()
    assert buf.startswith(b"HTTP/1.1 200"), buf[:200]
    return (t1 - t0) * 1000


class Server:
    def __init__(self, workdir, *args, name="serve"):
        self.ep = Path(workdir) / f"{name}.endpoints.json"
        if self.ep.exists():
            self.ep.unlink()
        self.log = open(Path(workdir) / f"{name}.log", "w")
        self.proc = subprocess.Popen([str(SLUICE), "serve", str(Path(workdir) / "sluice.yaml"), "--lambda-port", "0",
                                      "--port", "0", "--endpoints-file", str(self.ep), *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        while not self.ep.exists():
            if self.proc.poll() is not None:
                sys.exit(f"sluice serve {' '.join(args)} ended: see {self.log.name}")
            time.sleep(0.01)
        self.port = int(json.loads(self.ep.read_text())["lambda"].rsplit(":", 1)[1])

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        self.log.close()


def raw_warm(runtime, n):
    """Per-call latency of the handler called in a loop in its own interpreter."""
    if runtime == "python":
        code = (f"import sys, time, json; sys.path.insert(0, {str(FIX / 'python')!r}); import hello\n"
                f"lat = []\nfor _ in range({n}):\n    t = time.perf_counter(); json.dumps(hello.handler(json.loads('{{}}'), None));"
                " lat.append(time.perf_counter() - t)\nlat.sort(); print(json.dumps([lat[len(lat)//2]*1e6, lat[int(len(lat)*0.99)]*1e6]))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    else:
        code = (f"const h = require({str(FIX / 'node' / 'hello.js')!r}); (async () => {{ const lat = [];"
                f" for (let i = 0; i < {n}; i++) {{ const t = process.hrtime.bigint(); JSON.stringify(await h.handler(JSON.parse('{{}}'), {{}}));"
                " lat.push(Number(process.hrtime.bigint() - t) / 1000); } lat.sort((a, b) => a - b);"
                " console.log(JSON.stringify([lat[lat.length >> 1], lat[Math.floor(lat.length * 0.99)]])); })();")
        out = subprocess.run(["node", "-e", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def raw_cold(runtime, runs):
    """Interpreter start-up plus import of the handler, until it can answer (ms)."""
    times = []
    for _ in range(runs):
        if runtime == "python":
            cmd = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(FIX / 'python')!r}); import hello;"
                                         " hello.handler({}, None); print('ready', flush=True); sys.stdin.read()"]
        else:
            cmd = ["node", "-e", f"const h = require({str(FIX / 'node' / 'hello.js')!r});"
                                 " h.handler({}, {}).then(() => { console.log('ready'); process.stdin.resume(); });"]
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.PIPE, env=clean_env())
        p.stdout.readline()
        times.append((time.perf_counter() - t0) * 1000)
        p.kill()
        p.wait()
    return statistics.median(times)


def clean_env():
    # sluice starts runtimes with AWS's environment, not the developer's; measure
    # the baseline the same way (NODE_EXTRA_CA_CERTS alone costs node ~50 ms here).
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = ap.parse_args()
    n_warm = 2000 if args.quick else 20000
    n_cold = 5 if args.quick else 30
    n_mem = 10000 if args.quick else 100000
    dur = 2 if args.quick else 5
    for tool in (SLUICE, LOAD):
        if not tool.exists():
            sys.exit(f"{tool} not built: run scripts/build.sh")

    work = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    shutil.copytree(FIX, work, dirs_exist_ok=True)
    rows = []
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")

    srv = Server(work, "--idle-timeout", "600")
    try:
        for fn, rt in (("py-hello", "python"), ("node-hello", "node")):
            raw = raw_warm(rt, n_warm)
            warm = load(srv.port, fn, requests=n_warm, warmup=500)
            rows.append((f"{rt}: warm invoke p50 / p99 (us)", f"{warm['p50_us']:.0f} / {warm['p99_us']:.0f}",
                         f"raw loop {raw[0]:.1f} / {raw[1]:.1f}",
                         f"overhead p50 {warm['p50_us'] - raw[0]:.0f} us"))
        for fn, rt in (("py-hello", "python"), ("node-hello", "node")):
            for c in (1, 4, 16):
                r = load(srv.port, fn, concurrency=c, duration=dur, warmup=c * 50)
                rows.append((f"{rt}: throughput, {c} caller{'s' if c > 1 else ''}", f"{r['rps']:.0f} req/s",
                             f"p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us", f"errors {r['errors'] + r['non_2xx']}"))
        before = rss_kb(srv.proc.pid)
        load(srv.port, "py-hello", concurrency=4, requests=n_mem, warmup=0)
        after = rss_kb(srv.proc.pid)
        rows.append((f"sluice RSS before / after {n_mem} invocations", f"{before / 1024:.1f} MB / {after / 1024:.1f} MB",
                     f"growth {(after - before) / 1024:.1f} MB", ""))
    finally:
        srv.stop()

    # Cold starts: an idle timeout of 0.2 s reaps the environment between calls.
    srv = Server(work, "--idle-timeout", "0.2")
    plain = Server(work, "--idle-timeout", "0.2", "--no-sandbox", name="no-sandbox")
    try:
        # Cold start and baseline alternate, so both see the same machine (a shared
        # 2-core machine drifts by several ms between one minute and the next).
        for fn, rt in (("py-hello", "python"), ("node-hello", "node")):
            colds, bases, plains = [], [], []
            for _ in range(n_cold):
                time.sleep(0.6)
                colds.append(invoke_once(srv.port, fn))
                bases.append(raw_cold(rt, 1))
                plains.append(invoke_once(plain.port, fn))
            cold, base = statistics.median(colds), statistics.median(bases)
            paired = statistics.median(c - b for c, b in zip(colds, bases))
            rows.append((f"{rt}: cold start, median (ms)", f"{cold:.1f}", f"interpreter + import {base:.1f}",
                         f"overhead {cold - base:.1f} ms (paired median {paired:.1f} ms)"))
            sandbox_cost = statistics.median(c - p for c, p in zip(colds, plains))
            rows.append((f"{rt}: cold start without the sandbox (ms)", f"{statistics.median(plains):.1f}",
                         f"sandbox costs {sandbox_cost:.2f} ms", "(paired median)"))
    finally:
        srv.stop()
        plain.stop()
    shutil.rmtree(work, ignore_errors=True)

    w = max(len(r[0]) for r in rows)
    print()
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:<22} {r[2]:<34} {r[3]}")


if __name__ == "__main__":
    main()
