#!/usr/bin/env python3
"""Gateway benchmark, run on demand; prints figures side by side, asserts nothing.

  python3 bench/bench_gateway.py [--quick] [--no-peer] [--million]

* sluice and serverless-offline 13 serve the same Node.js handler
  (fixtures/bench/node/hello.js) on an HTTP API route and a REST route, each
  loaded with `wrk -t2 -c16 -d10s`: requests/s, p50, p99, and the servers'
  resident memory before and after;
* sluice's function URL of the same handler, beside its HTTP API route (no routing, no stage);
* the floor: the same handler on an HTTP API route under the cheapest Runtime API client
  (fixtures/bench/node/bootstrap, a custom runtime that only parses, calls and posts): how much
  of a proxied request is the runtime client's own work, and what sluice gives without it;
* sluice's gateway alone (a request the gateway answers itself) against a
  minimal Boost.Beast server returning the same bytes;
* a raw baseline for the proxied routes: the same handler called by a bare node:http server
  in one process (fixtures/bench/node/raw_server.js), what Node itself gives on this machine;
* with --million: sluice's resident memory across a million proxied requests;
* for sluice's proxied routes, where the time of the measured run went, from sluice's own
  log: the access-log latency (request parsed to response ready to send) and the invocation's
  REPORT Duration (event handed to the runtime to its response), p50 / p99 / p99.9 / max.
  A tail that is in both is inside the handler processes, not in the gateway.

  sluice runs with --account-throttle 1000000,500000: API Gateway's default account-level limit
  (10,000 rps) would otherwise answer part of a fast run with 429s.
  --sluice-arg ARG (repeatable) passes ARG to `sluice serve`, e.g. --sluice-arg=--no-freeze.
  --repeat N measures each proxied route N times after its warm-up and shows the medians and
  every run's p99 (on a shared 2-core machine one run's p99 says little).
  --warm S sets the warm-up before each server and route's runs (default 15 s, every server
  alike); with 16 handler processes each sees a sixteenth of the load, and V8 needs tens of
  seconds of it to optimise the runtime's code in all of them.

serverless@3 and serverless-offline@13 are installed into bench/peers on first
use (npm). Nothing here is committed from them.
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
MINIMAL = BUILD / "sluice-minimal-server"
PEERS = ROOT / "bench" / "peers"
FIX = ROOT / "fixtures" / "bench"
# The HTTP API route of a function whose runtime is the cheapest client of the Runtime API
# (fixtures/bench/node/bootstrap): what sluice gives when the handler process does nothing else.
FLOOR = "sluice, HTTP API route, floor runtime"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def tree_rss_kb(pid):
    """Resident memory of a process and its descendants."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return total


def tree_cpu_s(pid):
    """CPU seconds (user + system) of a process and of each of its descendants, by pid."""
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            out[p] = (int(fields[11]) + int(fields[12])) / hz
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def machine_busy_s():
    """CPU seconds the whole machine spent outside idle and iowait."""
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    return (sum(cpu) - cpu[3] - cpu[4]) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wrk(url, seconds, threads=2, connections=16):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout

    def lat(label):
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": lat("50%"), "p99_ms": lat("99%"), "requests": total,
            "non_2xx": int(errors.group(1)) if errors else 0}


def ensure_peers():
    if (PEERS / "node_modules" / "serverless-offline").is_dir():
        return
    print("installing serverless@3 and serverless-offline@13 into bench/peers (npm) ...", flush=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEERS, check=True)


def start_sluice(work, extra=()):
    ep = work / "endpoints.json"
    log = open(work / "sluice.log", "w")
    # The account-level throttle (AWS's default quota: 10,000 rps, burst 5,000) is raised, as an
    # account can have it raised: on a quiet machine the proxied routes pass 10,000 rps, and the
    # measurement is of the request path, not of fast 429 answers (serverless-offline throttles
    # nothing).
    proc = subprocess.Popen([str(SLUICE), "serve", str(work / "sluice.yaml"), "--port", "0", "--lambda-port", "0",
                             "--endpoints-file", str(ep), "--account-throttle", "1000000,500000", *extra],
                            stdout=log, stderr=subprocess.STDOUT)
    while not ep.exists():
        if proc.poll() is not None:
            raise RuntimeError("sluice did not start: " + (work / "sluice.log").read_text())
        time.sleep(0.05)
    endpoints = json.loads(ep.read_text())
    apis = endpoints["apis"]
    return (proc, log, apis["http"]["url"] + "/hello", apis["rest"]["url"] + "/bench/hello", apis["rest"]["url"],
            endpoints["urls"]["node-hello"] + "/hello", apis["http"]["url"] + "/floor")


def start_offline(work):
    svc = work / "offline"
    svc.mkdir()
    shutil.copy(FIX / "node" / "hello.js", svc / "hello.js")
    (svc / "node_modules").symlink_to(PEERS / "node_modules")
    (svc / "serverless.yml").write_text(
        "service: bench\nframeworkVersion: '3'\n"
        "provider: {name: aws, runtime: nodejs20.x, region: us-east-1}\n"
        "plugins: [serverless-offline]\n"
        "functions:\n  hello:\n    handler: hello.handler\n    events:\n"
        "      - httpApi: {method: GET, path: /http/hello}\n"
        "      - http: {method: GET, path: /rest/hello}\n")
    port, lport = free_port(), free_port()
    env = dict(os.environ, SLS_TELEMETRY_DISABLED="1", SLS_NOTIFICATIONS_MODE="off", AWS_ACCESS_KEY_ID="x",
               AWS_SECRET_ACCESS_KEY="x", AWS_REGION="us-east-1")
    env.pop("NODE_EXTRA_CA_CERTS", None)
    log = open(work / "offline.log", "w")
    proc = subprocess.Popen(["node", str(PEERS / "node_modules" / "serverless" / "bin" / "serverless.js"), "offline",
                             "--host", "127.0.0.1", "--httpPort", str(port), "--lambdaPort", str(lport),
                             "--noPrependStageInUrl"], cwd=svc, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    wait_port(port)
    return proc, log, f"http://127.0.0.1:{port}/http/hello", f"http://127.0.0.1:{port}/rest/hello"


def stop(proc, log, group=False):
    try:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    except Exception:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
    log.close()


def measure(name, pid, url, seconds, tree, warm=5, log_path=None, repeat=1):
    # Warm-up: every environment started, every JIT and heap settled (both servers get the same).
    wrk(url, warm)
    before = tree_rss_kb(pid) if tree else rss_kb(pid)
    start = log_size(log_path)
    cpu0, busy0 = tree_cpu_s(pid), machine_busy_s()
    runs = [wrk(url, seconds) for _ in range(repeat)]
    cpu1, busy1 = tree_cpu_s(pid), machine_busy_s()
    after = tree_rss_kb(pid) if tree else rss_kb(pid)
    # With --repeat, the row gives the median of each figure and keeps every run's p99.
    r = dict(runs[0])
    for key in ("rps", "p50_ms", "p99_ms"):
        r[key] = statistics.median(x[key] for x in runs)
    r["non_2xx"] = sum(x["non_2xx"] for x in runs)
    r["p99_runs"] = [x["p99_ms"] for x in runs]
    r.update(name=name, rss_before_mb=before / 1024, rss_after_mb=after / 1024)
    # Where the machine's CPU went, per request: the server process, its child processes (the
    # handler environments; a process that ended during the runs is missing), everything.
    n = max(1, sum(x["requests"] for x in runs))
    r["cpu_us"] = ((cpu1.get(pid, 0) - cpu0.get(pid, 0)) * 1e6 / n,
                   sum(v - cpu0.get(p, 0) for p, v in cpu1.items() if p != pid) * 1e6 / n,
                   (busy1 - busy0) * 1e6 / n)
    if log_path:
        time.sleep(0.3)  # let the log writer catch up
        r["inside"] = log_latencies(log_path, start)
    return r


def log_size(path):
    return path.stat().st_size if path and path.exists() else 0


def log_latencies(path, offset):
    """sluice's own view of a run: access-log latency and REPORT Duration, in ms."""
    with open(path, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    # The access log's latencies, and the answers other than 200 by status, with one log line of
    # each for the why (one pass over the lines).
    access, failed = [], {}
    for line in text.splitlines():
        m = re.search(r"-> (\d+) in ([\d.]+) ms", line)
        if not m:
            continue
        access.append(float(m.group(2)))
        if m.group(1) != "200":
            failed.setdefault(m.group(1), [0, line])[0] += 1
    access.sort()
    report = sorted(float(m) for m in re.findall(r"REPORT RequestId: \S+\tDuration: ([\d.]+) ms", text))

    def pct(v):
        if not v:
            return None
        return [v[len(v) // 2], v[int(len(v) * 0.99)], v[min(len(v) - 1, int(len(v) * 0.999))], v[-1]]
    return {"access": pct(access), "report": pct(report), "failed": failed}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3 s runs instead of 10 s")
    ap.add_argument("--no-peer", action="store_true", help="skip serverless-offline")
    ap.add_argument("--million", action="store_true", help="also check sluice's memory over a million requests")
    ap.add_argument("--sluice-arg", action="append", default=[], help="pass an argument to `sluice serve`")
    ap.add_argument("--repeat", type=int, default=1, help="measured runs per server and route (medians are shown)")
    ap.add_argument("--warm", type=int, help="warm-up seconds before each server and route's runs (default 15, --quick 2)")
    args = ap.parse_args()
    secs = 3 if args.quick else 10
    warm = args.warm if args.warm is not None else 2 if args.quick else 15
    for tool in (SLUICE, MINIMAL):
        if not tool.exists():
            sys.exit(f"{tool} not built: run scripts/build.sh")
    if not shutil.which("wrk"):
        sys.exit("wrk not installed: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="sluice-gwbench-"))
    shutil.copytree(FIX, work, dirs_exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; wrk -t2 -c16 -d{secs}s "
          f"after a {warm} s warm-up")
    rows = []

    proc, log, http_url, rest_url, rest_base, fn_url, floor_url = start_sluice(work, args.sluice_arg)
    slog = work / "sluice.log"
    try:
        rows.append(measure("sluice, HTTP API route", proc.pid, http_url, secs, tree=False, warm=warm, log_path=slog,
                            repeat=args.repeat))
        rows.append(measure("sluice, REST route", proc.pid, rest_url, secs, tree=False, warm=warm, log_path=slog,
                            repeat=args.repeat))
        rows.append(measure("sluice, function URL", proc.pid, fn_url, secs, tree=False, warm=warm, log_path=slog,
                            repeat=args.repeat))
        rows.append(measure(FLOOR, proc.pid, floor_url, secs, tree=False, warm=warm, log_path=slog,
                            repeat=args.repeat))
        # The gateway alone: a request it answers itself (no route: 403 Missing Authentication Token).
        rows.append(measure("sluice gateway alone (no-route 403)", proc.pid, rest_base + "/bench/nothing", secs,
                            tree=False, warm=warm))
        if args.million:
            before = rss_kb(proc.pid)
            done = 0
            while done < 1_000_000:
                done += wrk(http_url, 30)["requests"]
            after = rss_kb(proc.pid)
            print(f"sluice RSS across {done} proxied requests: {before / 1024:.1f} MB -> {after / 1024:.1f} MB")
    finally:
        stop(proc, log)

    # The same bytes from a minimal Beast server.
    headers = ["Content-Type: application/json", "x-amzn-ErrorType: MissingAuthenticationTokenException",
               "x-amzn-RequestId: 6c0ff9d1-7f0a-4b66-9f5e-1b9d2f0cf0a1", "x-amz-apigw-id: Xe3kFHw5oAMEbPQ=",
               "Date: Sat, 21 Nov 2026 00:00:00 GMT"]
    mproc = subprocess.Popen([str(MINIMAL), "0", "403", '{"message":"Missing Authentication Token"}', *headers],
                             stdout=subprocess.PIPE, text=True)
    mport = int(mproc.stdout.readline())
    try:
        rows.append(measure("minimal Beast server, same bytes", mproc.pid, f"http://127.0.0.1:{mport}/", secs,
                            tree=False, warm=warm))
    finally:
        mproc.send_signal(signal.SIGINT)
        mproc.wait()

    # A raw baseline for the proxied routes: the same handler called by a bare node:http server
    # in one process (no gateway, no Runtime API, no process per concurrent invocation).
    rproc = subprocess.Popen(["node", str(FIX / "node" / "raw_server.js"), str(FIX / "node" / "hello.js")],
                             stdout=subprocess.PIPE, text=True)
    rport = int(rproc.stdout.readline())
    try:
        rows.append(measure("raw baseline: node:http + same handler", rproc.pid, f"http://127.0.0.1:{rport}/hello",
                            secs, tree=False, warm=warm, repeat=args.repeat))
    finally:
        rproc.send_signal(signal.SIGINT)
        rproc.wait()

    if not args.no_peer:
        ensure_peers()
        oproc, olog, o_http, o_rest = start_offline(work)
        try:
            rows.append(measure("serverless-offline 13, HTTP API route", oproc.pid, o_http, secs, tree=True, warm=warm,
                                    repeat=args.repeat))
            rows.append(measure("serverless-offline 13, REST route", oproc.pid, o_rest, secs, tree=True, warm=warm,
                                    repeat=args.repeat))
        finally:
            stop(oproc, olog, group=True)

    print()
    print(f"{'server / route':<42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'RSS before -> after':>22} {'non-2xx':>8}")
    for r in rows:
        print(f"{r['name']:<42} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['rss_before_mb']:>9.1f} -> {r['rss_after_mb']:>6.1f} MB {r['non_2xx']:>8}")
    by = {r["name"]: r for r in rows}
    if args.repeat > 1:
        print()
        print(f"p99 of each of the {args.repeat} runs, ms:")
        for r in rows:
            print(f"  {r['name']:<42} {' / '.join(f'{x:.2f}' for x in r['p99_runs'])}")
    print()
    print("CPU per request, µs: server process / its child processes / whole machine (wrk and kernel included)")
    for r in rows:
        print(f"  {r['name']:<42} {r['cpu_us'][0]:>7.0f} / {r['cpu_us'][1]:>7.0f} / {r['cpu_us'][2]:>7.0f}")
    inside = [r for r in rows if r.get("inside")]
    if inside:
        print()
        print("sluice's own log for the same runs, ms (p50 / p99 / p99.9 / max):")
        for r in inside:
            for key, what in (("access", "gateway: request parsed -> response ready"),
                              ("report", "invocation: event handed over -> response (REPORT Duration)")):
                v = r["inside"][key]
                if v:
                    print(f"  {r['name']:<38} {what:<60} {' / '.join(f'{x:.2f}' for x in v)}")
            for status, (count, line) in sorted(r["inside"]["failed"].items()):
                print(f"  {r['name']:<38} {count} answers with status {status}, e.g.: {line.strip()}")

    def ratio(a, b, key):
        return by[a][key] / by[b][key] if a in by and b in by and by[b][key] else float("nan")

    print()
    for name, r in by.items():
        if r["non_2xx"] and name.startswith(("sluice, ", "serverless-offline", "raw baseline")):
            print(f"warning: {name}: {r['non_2xx']} answers were not 2xx, so its figures are not comparable")
    if "serverless-offline 13, HTTP API route" in by:
        for kind in ("HTTP API", "REST"):
            s, o = f"sluice, {kind} route", f"serverless-offline 13, {kind} route"
            print(f"{kind}: sluice serves {ratio(s, o, 'rps'):.1f}x the requests/s of serverless-offline; "
                  f"its p99 is {ratio(s, o, 'p99_ms'):.3f}x of serverless-offline's")
    raw = "raw baseline: node:http + same handler"
    for kind in ("HTTP API", "REST"):
        s = f"sluice, {kind} route"
        print(f"{kind}: against the raw baseline, sluice serves {ratio(s, raw, 'rps'):.2f}x its requests/s "
              f"with {ratio(s, raw, 'p99_ms'):.1f}x its p99")
    s, o = "sluice, HTTP API route", "serverless-offline 13, HTTP API route"
    print(f"floor: with the cheapest Runtime API client instead of the official-behaviour runtime, the HTTP API "
          f"route serves {ratio(FLOOR, s, 'rps'):.2f}x the requests/s, p99 {ratio(FLOOR, s, 'p99_ms'):.2f}x"
          + (f" ({ratio(FLOOR, o, 'p99_ms'):.3f}x of serverless-offline's)" if o in by else ""))
    print(f"function URL: {ratio('sluice, function URL', 'sluice, HTTP API route', 'rps'):.2f}x the HTTP API route's "
          f"requests/s, p99 {ratio('sluice, function URL', 'sluice, HTTP API route', 'p99_ms'):.2f}x")
    print(f"gateway alone: {100 * ratio('sluice gateway alone (no-route 403)', 'minimal Beast server, same bytes', 'rps'):.0f}% "
          "of the minimal server's requests/s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
