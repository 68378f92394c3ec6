"""Execution environment lifecycle as on AWS: cold and warm starts, scale-out and
concurrency limits, timeouts, crashes, memory limits, freezing, idle reaping,
code changes, logs, draining and cleanup. Real processes throughout."""
import base64
import json
import os
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from conftest import processes_mentioning

PROBE = """
name: life
functions:
  probe:
    runtime: provided.al2023
    code: probe/
    timeout: 2
    memory: 128
    environment: {GREETING: hello, LANG: C.UTF-8}
  limited:
    runtime: provided.al2023
    code: probe/
    timeout: 5
    concurrency: 1
  closed:
    runtime: provided.al2023
    code: probe/
    concurrency: 0
  slow-init:
    runtime: provided.al2023
    code: probe/
    timeout: 3
    environment: {PROBE_INIT: sleep, PROBE_INIT_SLEEP: "5"}
"""

PY = """
name: py
functions:
  ticker: {runtime: python3.11, code: py/, handler: handlers.ticker, timeout: 10}
  marker: {runtime: python3.11, code: py/, handler: handlers.version}
  echo: {runtime: python3.11, code: py/, handler: handlers.echo}
  fail: {runtime: python3.11, code: py/, handler: handlers.fail}
"""

REPORT_RE = re.compile(
    r"REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<d>\d+\.\d\d) ms\tBilled Duration: (?P<b>\d+) ms\t"
    r"Memory Size: (?P<m>\d+) MB\tMax Memory Used: (?P<u>\d+) MB\t(?:Init Duration: (?P<i>\d+\.\d\d) ms\t)?"
    r"(?:Status: (?P<s>\w+)(?:\tError Type: (?P<e>[\w.]+))?)?$")


@pytest.fixture
def probe(ws):
    ws.copy_function("probe-runtime", "probe")
    ws.write_stack(PROBE)
    return ws


@pytest.fixture
def py(ws):
    ws.copy_function("python-basic", "py")
    ws.write_stack(PY)
    return ws


def tail(r):
    return base64.b64decode(r["LogResult"]).decode()


def reports(text):
    out = []
    for line in text.splitlines():
        line = re.sub(r"^\[[^\]]*\] ", "", line)
        m = REPORT_RE.match(line)
        if m:
            out.append(m.groupdict())
    return out


def test_cold_then_warm_and_the_report_lines(probe):
    s = probe.serve()
    r1 = s.invoke("probe", {"action": "sleep", "seconds": 0.05}, LogType="Tail")
    r2 = s.invoke("probe", {"action": "sleep", "seconds": 0.05}, LogType="Tail")
    assert r1["Json"]["pid"] == r2["Json"]["pid"], "the second call must reuse the warm environment"
    t1, t2 = tail(r1), tail(r2)
    rid1 = r1["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    # A cold start's tail begins with START: INIT_START is in the log, not in the LogResult
    # (AWS-recorded test_invocation_with_logs).
    assert t1.splitlines()[0] == f"START RequestId: {rid1} Version: $LATEST"
    assert "INIT_START" not in t1
    assert t2.splitlines()[0] == f"START RequestId: {r2['ResponseMetadata']['HTTPHeaders']['x-amzn-requestid']}" \
                                 " Version: $LATEST"
    assert f"END RequestId: {rid1}" in t1
    rep1, rep2 = reports(t1)[0], reports(t2)[0]
    assert rep1["id"] == rid1 and rep1["i"] is not None, "a cold start reports Init Duration"
    assert rep2["i"] is None, "a warm start does not"
    assert rep1["m"] == "128"
    # Billed: duration plus init on a cold start, duration alone when warm, rounded up.
    d1, i1, d2 = float(rep1["d"]), float(rep1["i"]), float(rep2["d"])
    assert d1 >= 50 and d1 + i1 - 0.01 <= int(rep1["b"]) <= d1 + i1 + 1.01
    assert d2 - 0.01 <= int(rep2["b"]) <= d2 + 1.01
    assert 1 <= int(rep1["u"]) <= 128
    # The console log carries the same lines, tagged with function and request id.
    s.wait_for_log(f"[probe {rid1[:8]}] REPORT RequestId: {rid1}")
    assert "[probe] INIT_START Runtime Version: provided:al2023" in s.stdout()


def test_scale_out_one_environment_per_concurrent_invocation(probe):
    s = probe.serve()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: s.invoke("probe", {"action": "sleep", "seconds": 0.6}), range(4)))
    pids = {r["Json"]["pid"] for r in results}
    assert len(pids) == 4
    # All four are warm now: four more concurrent calls start nothing new.
    with ThreadPoolExecutor(4) as pool:
        again = list(pool.map(lambda _: s.invoke("probe", {"action": "sleep", "seconds": 0.3}), range(4)))
    assert {r["Json"]["pid"] for r in again} == pids


def test_reserved_concurrency_throttles_with_aws_error(probe):
    s = probe.serve()
    c = s.client()
    errors, oks = [], []

    def one(_):
        try:
            r = c.invoke(FunctionName="limited", Payload=json.dumps({"action": "sleep", "seconds": 1}))
            oks.append(r)
        except ClientError as e:
            errors.append(e.response)

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(one, range(3)))
    assert len(oks) == 1 and len(errors) == 2
    e = errors[0]
    assert e["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert e["Error"]["Code"] == "TooManyRequestsException"
    assert e["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert e["message"] == "Rate Exceeded." and e["Type"] == "User"
    # Sequential calls never trip the limit: an environment that has answered is handed over.
    for _ in range(10):
        assert c.invoke(FunctionName="limited", Payload=b'{"action": "echo"}')["StatusCode"] == 200


def test_zero_reserved_concurrency_throttles_everything(probe):
    s = probe.serve()
    with pytest.raises(ClientError) as exc:
        s.invoke("closed", {"action": "echo"})
    assert exc.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_account_concurrency_limit(probe):
    s = probe.serve(args=["--account-concurrency", "1"])
    c = s.client()
    box = {}

    def slow():
        box["r"] = c.invoke(FunctionName="probe", Payload=json.dumps({"action": "sleep", "seconds": 1}))

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    with pytest.raises(ClientError) as exc:
        c.invoke(FunctionName="limited", Payload=b'{"action": "echo"}')
    t.join()
    assert exc.value.response["Reason"] == "ConcurrentInvocationLimitExceeded"
    assert box["r"]["StatusCode"] == 200


def test_timeout_kills_the_environment(probe):
    s = probe.serve()
    warm = s.invoke("probe", {"action": "sleep", "seconds": 0})["Json"]["pid"]
    r = s.invoke("probe", {"action": "hang"}, LogType="Tail")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"] == {"errorType": "Sandbox.Timedout",
                         "errorMessage": f"RequestId: {rid} Error: Task timed out after 2.00 seconds"}
    assert r["Body"].startswith(b'{"errorType":"Sandbox.Timedout","errorMessage":')  # AWS's key order
    log = tail(r)
    assert "Task timed out" not in log  # AWS no longer writes that line: the REPORT says Status: timeout
    rep = reports(log)[0]
    assert rep["s"] == "timeout" and float(rep["d"]) >= 2000
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{warm}") or open(f"/proc/{warm}/stat").read().split()[2] == "Z"
    r = s.invoke("probe", {"action": "sleep", "seconds": 0}, LogType="Tail")
    assert r["Json"]["pid"] != warm and reports(tail(r))[0]["i"] is not None, "re-init after a timeout"


@pytest.mark.parametrize("code,message", [(5, "Runtime exited with error: exit status 5"),
                                          (0, "Runtime exited without providing a reason")])
def test_runtime_exit_during_invocation(probe, code, message):
    s = probe.serve()
    r = s.invoke("probe", {"action": "exit", "code": code}, LogType="Tail")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"] == {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: {rid} Error: {message}"}
    assert r["Body"].startswith(b'{"errorType":"Runtime.ExitError","errorMessage":')  # AWS's key order
    log = tail(r)
    assert f"probe exiting with {code}" in log
    assert reports(log)[0]["e"] == "Runtime.ExitError"
    # A runtime that died on its first invocation used memory all the same (read as it is reaped).
    assert int(reports(log)[0]["u"]) >= 1, log
    assert s.invoke("probe", {"action": "echo"})["StatusCode"] == 200


def test_memory_limit_kills_with_out_of_memory(probe):
    s = probe.serve()
    r = s.invoke("probe", {"action": "memory", "mb": 300}, LogType="Tail")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"] == {"errorType": "Runtime.OutOfMemory",
                         "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: signal: killed"}
    rep = reports(tail(r))[0]
    assert rep["u"] == "128" and rep["s"] == "error" and rep["e"] == "Runtime.OutOfMemory"
    # A smaller allocation fits.
    assert s.invoke("probe", {"action": "memory", "mb": 40})["Json"] == {"allocated": True}


def test_frozen_between_invocations(py):
    s = py.serve()
    first = s.invoke("ticker", {"run_for": 0.3})["Json"]
    time.sleep(1.5)
    second = s.invoke("ticker", {"run_for": 0.3})["Json"]
    assert first["pid"] == second["pid"]
    advanced = second["ticks"] - first["ticks"]
    # ~30 ticks while running; 1.5 s more (~150 ticks) would mean it ran while idle.
    assert advanced < 80, f"background thread ran while frozen ({advanced} ticks)"


def test_no_freeze_flag_lets_background_work_run(py):
    s = py.serve(args=["--no-freeze"])
    first = s.invoke("ticker", {"run_for": 0.3})["Json"]
    time.sleep(2.0)
    second = s.invoke("ticker", {"run_for": 0.3})["Json"]
    # ~230 ticks if it ran all along; even a starved thread gets well past the frozen bound.
    assert second["ticks"] - first["ticks"] > 100


def test_idle_environments_are_reaped(probe):
    s = probe.serve(args=["--idle-timeout", "1"])
    pid = s.invoke("probe", {"action": "env"})["Json"]["pid"]
    deadline = time.time() + 5
    while time.time() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}")
    r = s.invoke("probe", {"action": "env"}, LogType="Tail")
    assert r["Json"]["pid"] != pid and reports(tail(r))[0]["i"] is not None


def test_editing_code_retires_latest_environments(py):
    s = py.serve()
    r1 = s.invoke("marker", {})
    assert r1["Json"]["mark"] == "original"
    (py.path / "py" / "watchlist_marker.py").write_text('MARK = "edited"\n')
    r2 = s.invoke("marker", {})
    assert r2["Json"]["mark"] == "edited"
    # Bytecode written by Python itself is not a code change.
    pid = s.invoke("echo", {})["Json"]["pid"]
    assert s.invoke("echo", {})["Json"]["pid"] == pid


def test_sigterm_drains_in_flight_then_stops_every_handler(probe):
    s = probe.serve()
    box = {}
    t = threading.Thread(target=lambda: box.update(r=s.invoke("probe", {"action": "sleep", "seconds": 1.5})))
    t.start()
    time.sleep(0.5)
    pid = None
    s.proc.send_signal(signal.SIGTERM)
    t.join()
    assert box["r"]["StatusCode"] == 200 and box["r"]["Json"]["slept"] == 1.5
    pid = box["r"]["Json"]["pid"]
    assert s.proc.wait(timeout=10) == 0
    time.sleep(0.2)
    assert not os.path.exists(f"/proc/{pid}")


def test_no_handler_outlives_sluice_killed_with_sigkill(probe):
    s = probe.serve()
    r = s.invoke("probe", {"action": "spawn_child"})["Json"]
    assert os.path.exists(f"/proc/{r['child']}")
    s.proc.kill()
    s.proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and (os.path.exists(f"/proc/{r['pid']}") or os.path.exists(f"/proc/{r['child']}")):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{r['pid']}") and not os.path.exists(f"/proc/{r['child']}")


def test_descendants_that_left_the_group_end_with_the_environment(probe):
    s = probe.serve()
    r = s.invoke("probe", {"action": "spawn_session_child"})["Json"]
    assert os.path.exists(f"/proc/{r['child']}")
    assert os.getsid(r["child"]) == r["child"]  # a session of its own: the group's signals miss it
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=10) == 0
    deadline = time.time() + 5
    while time.time() < deadline and os.path.exists(f"/proc/{r['child']}"):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{r['pid']}") and not os.path.exists(f"/proc/{r['child']}")


def test_handlers_inherit_none_of_sluices_sockets(probe):
    s = probe.serve()
    s.invoke("probe", {"action": "echo"})  # another environment's Runtime API listener exists too
    r = s.invoke("limited", {"action": "fds"})["Json"]
    # One socket: the runtime's own connection to its Runtime API. None of sluice's listeners
    # (the Invoke API, the other environment's Runtime API) or client connections.
    assert len(r["sockets"]) == 1, r["fds"]
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A":  # LISTEN
                    listening.add(cols[9])
    assert not listening & set(r["sockets"]), r["fds"]


def test_a_handler_flooding_stdout_loses_nothing_and_blocks_no_one(probe):
    s = probe.serve()
    box = {}
    t = threading.Thread(target=lambda: box.update(r=s.invoke("probe", {"action": "flood", "lines": 200000})))
    t.start()
    # Meanwhile other work is served.
    started = time.time()
    assert s.invoke("limited", {"action": "echo"})["StatusCode"] == 200
    assert time.time() - started < 10
    t.join()
    assert box["r"]["Json"] == {"flooded": 200000}
    rid = box["r"]["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    s.wait_for_log(f"REPORT RequestId: {rid}", timeout=30)
    out = s.stdout()
    assert out.count("x" * 199 + "\n") == 200000


def test_environment_variables_as_aws_sets_them(probe):
    s = probe.serve()
    r = s.invoke("probe", {"action": "env"})["Json"]
    env = r["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "probe"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/probe"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    # Lambda's paths: the code is on /var/task (sluice's sandbox), the working directory too.
    assert env["LAMBDA_TASK_ROOT"] == "/var/task" and r["cwd"] == "/var/task" and env["PWD"] == "/var/task"
    assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert env["TZ"] == ":UTC" and env["_HANDLER"] == ""
    assert env["GREETING"] == "hello"
    assert env["LANG"] == "C.UTF-8", "customer values override unreserved platform defaults"
    assert "AWS_EXECUTION_ENV" not in env, "custom runtimes get no AWS_EXECUTION_ENV"
    assert not [k for k in env if k.startswith("_SLUICE")]


def test_each_environment_has_its_own_runtime_api_endpoint(probe):
    s = probe.serve()
    with ThreadPoolExecutor(3) as pool:
        rs = list(pool.map(lambda _: s.invoke("probe", {"action": "sleep", "seconds": 0.5}), range(3)))
    assert len({r["Json"]["pid"] for r in rs}) == 3
    apis = {r["Json"]["api"] for r in rs}
    assert len(apis) == 3 and all(a.startswith("127.0.0.1:") for a in apis)


def test_async_event_is_retried_twice_with_the_same_request_id(py):
    s = py.serve(args=["--async-retry-delays", "0.2,0.3"])
    r = s.invoke("fail", {"why": "async"}, InvocationType="Event")
    assert r["StatusCode"] == 202 and r["Body"] == b""
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    deadline = time.time() + 15
    while time.time() < deadline and s.stdout().count(f"END RequestId: {rid}") < 3:
        time.sleep(0.1)
    time.sleep(0.8)
    assert s.stdout().count(f"START RequestId: {rid} Version: $LATEST") == 3
    assert "discarded after 3 attempts" in s.stderr()


def test_async_success_runs_once(py):
    s = py.serve(args=["--async-retry-delays", "0.1,0.1"])
    r = s.invoke("echo", {"n": 1}, InvocationType="Event")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    s.wait_for_log(f"END RequestId: {rid}")
    time.sleep(0.5)
    assert s.stdout().count(f"START RequestId: {rid}") == 1


def test_init_timeout(probe):
    s = probe.serve(args=["--init-timeout", "1"])
    r = s.invoke("slow-init", {})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Sandbox.Timedout"
    assert r["Json"]["errorMessage"].endswith("Task timed out after 3.00 seconds")
    s.wait_for_log("Phase: init\tStatus: timeout")


def test_missing_bootstrap_is_an_invalid_entrypoint(probe):
    s = probe.serve()
    (probe.path / "probe" / "bootstrap").unlink()
    r = s.invoke("probe", {"action": "echo"})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Runtime.InvalidEntrypoint"
    assert r["Json"]["errorMessage"].endswith("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]")
