"""The Python package `sluice` (the engine in process, via pybind11) and its pytest
plugin: the example project's own test suite, run as a project that is not sluice
would run it, and the package API driven directly."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, processes_mentioning

BUILD = Path(os.environ.get("SLUICE_BUILD_DIR", ROOT / "build")).resolve()
PACKAGE_DIR = BUILD / "python"
if str(PACKAGE_DIR) not in sys.path:
    sys.path.insert(0, str(PACKAGE_DIR))

sluice = pytest.importorskip("sluice", reason=f"the sluice package is not built in {PACKAGE_DIR}")

STACK = """
name: pkg
defaults: {runtime: python3.11, timeout: 5}
functions:
  echo: {code: fn/, handler: handlers.echo, aliases: {live: $LATEST}}
  fail: {code: fn/, handler: handlers.fail, async: {max_retry_attempts: 2}}
  sleepy: {code: fn/, handler: handlers.sleep}
  crash: {code: fn/, handler: handlers.exit_now}
  single: {code: fn/, handler: handlers.sleep, concurrency: 1}
  ticker: {code: fn/, handler: handlers.ticker}
apis:
  web:
    type: http
    routes:
      GET /echo: echo
"""


@pytest.fixture
def project(ws):
    ws.copy_function("python-basic", "fn")
    ws.write_stack(STACK)
    return ws


def env_with_package():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(PACKAGE_DIR), env.get("PYTHONPATH", "")] if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


# ---------------------------------------------------------------- the example project


def test_example_project_runs_its_own_tests_with_the_plugin(tmp_path):
    project = tmp_path / "example-project"
    shutil.copytree(FIXTURES / "example-project", project, ignore=shutil.ignore_patterns("__pycache__", ".sluice"))
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA"], cwd=project,
                       env=env_with_package(), capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    summary = out.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    # Every kind of test the example shows ran, none skipped.
    for name in ["test_api.py::test_add_and_read_a_note", "test_lambda.py::test_one_cold_start_then_warm",
                 "test_versions.py::test_production_alias_runs_version_one",
                 "test_versions.py::test_production_stage_through_the_api",
                 "test_errors.py::test_broken_stack_lists_every_problem", "test_events.py::test_service_events",
                 "test_schedules.py::test_schedules_fire_on_time_with_a_fixed_clock",
                 "test_lambda.py::test_lambda_client_invokes_with_boto3"]:
        assert f"PASSED tests/{name}" in out, f"{name} did not pass:\n{out}"
    assert "skipped" not in summary
    # Versions were published to the session's temporary state, not into the project.
    assert not (project / ".sluice").exists()
    # No handler process outlived the test session.
    deadline = time.time() + 5
    while time.time() < deadline and processes_mentioning(str(project)):
        time.sleep(0.05)
    assert processes_mentioning(str(project)) == []


def test_plugin_by_command_line_with_another_stack(tmp_path):
    """`-p sluice.pytest_plugin` without a conftest, `--sluice-stack` naming the file."""
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("import json\ndef handler(event, context):\n"
        "    return {'statusCode': 200, 'body': json.dumps({'stage': event['requestContext']['stage']})}\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "mine.yaml").write_text(
        "name: other\nfunctions:\n  f: {runtime: python3.11, code: ../fn/, handler: app.handler}\n"
        "apis:\n  a:\n    type: rest\n    routes: {GET /x: f}\n    stages: {dev: {}, prod: {}}\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_it.py").write_text(
        "import json, urllib.parse, urllib.request\n"
        "def test_url(api_url, sluice_app, lambda_client):\n"
        "    assert str(api_url).endswith('/dev')\n"
        "    assert isinstance(api_url, str) and api_url.endswith('/dev') and json.loads(json.dumps(api_url)) == api_url\n"
        "    assert urllib.parse.urljoin(api_url + '/', 'x') == str(api_url) + '/x'\n"
        "    body = json.loads(urllib.request.urlopen(api_url + '/x').read())\n"
        "    assert body == {'stage': 'dev'}\n"
        "    assert lambda_client.invoke(FunctionName='f', Payload=b'{\"requestContext\": {\"stage\": \"z\"}}')['StatusCode'] == 200\n"
        "    assert [r.function for r in sluice_app.records()] == ['f', 'f']\n"
        "def test_url_of_another_stage(api_url):\n"
        "    assert api_url(stage='prod').endswith('/prod')\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "sluice.pytest_plugin",
                        "--sluice-stack", "stacks/mine.yaml", "--sluice-stage", "dev", "tests"],
                       cwd=tmp_path, env=env_with_package(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 passed" in p.stdout


def test_api_url_with_several_apis_is_called_for_one(tmp_path):
    """With several APIs the fixture still sets up; called, it names one; as a string it says to."""
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n")
    (tmp_path / "sluice.yaml").write_text(
        "name: two\nfunctions:\n  f: {runtime: python3.11, code: fn/, handler: app.handler}\n"
        "apis:\n  a:\n    type: rest\n    routes: {GET /x: f}\n    stages: {dev: {}, prod: {}}\n"
        "  b:\n    type: http\n    routes: {GET /x: f}\n")
    (tmp_path / "test_it.py").write_text(
        "import pytest, urllib.request, sluice\n"
        "def test_two(api_url):\n"
        "    assert api_url('a', stage='prod').endswith('/prod')\n"
        "    assert urllib.request.urlopen(api_url('a', stage='dev') + '/x').read() == b'ok'\n"
        "    assert urllib.request.urlopen(api_url('b') + '/x').read() == b'ok'\n"
        "    with pytest.raises(sluice.SluiceError, match='has 2 APIs'):\n"
        "        f'{api_url}/x'\n"
        "    with pytest.raises(sluice.SluiceError, match='has 2 APIs'):\n"
        "        api_url + '/x'\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "sluice.pytest_plugin"],
                       cwd=tmp_path, env=env_with_package(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 passed" in p.stdout


def test_a_script_exits_cleanly_with_a_call_in_flight_on_another_thread(tmp_path):
    """A daemon thread inside app.invoke() when the script ends: the exit status is the script's
    (it was SIGABRT, 134, the thread ended by the finalizing interpreter inside C++ code)."""
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("import time\ndef slow(event, context):\n    time.sleep(5)\n"
                                            "def ok(event, context):\n    return 1\n")
    (tmp_path / "sluice.yaml").write_text(
        "name: exits\nfunctions:\n  slow: {runtime: python3.11, code: fn/, handler: app.slow, timeout: 30}\n"
        "  ok: {runtime: python3.11, code: fn/, handler: app.ok}\n")
    (tmp_path / "script.py").write_text(
        "import sys, threading, time, sluice\n"
        "app = sluice.serve('sluice.yaml', drain_timeout=1)\n"
        "threading.Thread(target=lambda: app.invoke('slow'), daemon=True).start()\n"
        "threading.Thread(target=lambda: [app.invoke('ok') for _ in range(1000)], daemon=True).start()\n"
        "time.sleep(0.5)\n"
        "sys.exit(3)\n")
    for _ in range(3):
        p = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, env=env_with_package(), capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 3 and "terminate called" not in p.stderr, (p.returncode, p.stderr[-2000:])
    assert processes_mentioning(str(tmp_path)) == []


def test_plugin_reports_a_missing_stack_clearly(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x(sluice_app):\n    pass\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "sluice.pytest_plugin"],
                       cwd=tmp_path, env=env_with_package(), capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "StackError" in p.stdout and "sluice.yaml: error: cannot read the stack file: it does not exist" in p.stdout


def test_echoed_logs_of_an_invocation_are_in_a_failing_tests_report(tmp_path):
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    print('said-by-the-handler')\n"
                                            "    return 1\n")
    (tmp_path / "sluice.yaml").write_text("name: echo\nfunctions:\n  f: {runtime: python3.11, code: fn/, "
                                          "handler: app.handler}\n")
    (tmp_path / "test_x.py").write_text("def test_x(sluice_app):\n    sluice_app.invoke('f', {})\n    assert False\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "sluice.pytest_plugin",
                        "--sluice-echo-logs", "test_x.py"],
                       cwd=tmp_path, env=env_with_package(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    # The invocation's lines were written before invoke() returned: pytest captured them for the test.
    captured = p.stdout[p.stdout.index("Captured stderr call"):]
    assert "said-by-the-handler" in captured and "REPORT RequestId: " in captured, p.stdout


# ---------------------------------------------------------------- the package API


def test_invoke_records_logs_and_cold_starts(project):
    with sluice.serve(project.path / "sluice.yaml") as app:
        first = app.invoke("echo", {"n": 1})
        second = app.invoke("echo", {"n": 2}, qualifier="live")
        assert first.ok and first.cold_start and not second.cold_start
        assert first.payload["event"] == {"n": 1} and second.payload["count"] == 2
        assert (first.executed_version, second.executed_version) == ("$LATEST", "$LATEST")
        assert first.duration_ms > 0
        assert f"REPORT RequestId: {first.request_id}" in first.log_tail
        failed = app.invoke("fail", {"why": "testing"})
        assert failed.function_error == "ValueError" and failed.payload["errorMessage"] == "something went wrong: testing"

        records = app.records()
        assert [(r.function, r.qualifier, r.version, r.cold_start, r.status) for r in records] == [
            ("echo", "", "$LATEST", True, "success"),
            ("echo", "live", "$LATEST", False, "success"),
            ("fail", "", "$LATEST", True, "function_error"),
        ]
        assert records[0].init_duration_ms > 0 and records[1].init_duration_ms is None
        assert records[2].error_type == "ValueError"
        assert records[0]["request_id"] == first.request_id  # records read as dicts too
        log = app.logs("echo")
        assert f"START RequestId: {second.request_id} Version: $LATEST" in log
        assert app.logs("echo", first.request_id).count("START") == 1
        app.clear_records()
        assert app.records() == []


def test_api_url_and_access_log(project):
    import urllib.request
    with sluice.serve(project.path / "sluice.yaml") as app:
        assert app.url() == app.url("web") == app.endpoints["apis"]["web"]["url"]  # $default stage: no prefix
        body = json.loads(urllib.request.urlopen(app.url() + "/echo?x=1").read())
        assert body["event"]["rawQueryString"] == "x=1"
        assert app.records()[-1].source == "api web/$default GET /echo"
        assert app.access_log()[-1].startswith("[api web/$default] GET /echo?x=1 -> 200")
        with pytest.raises(sluice.SluiceError, match="no API named 'nope'.*APIs: web"):
            app.url("nope")
        with pytest.raises(sluice.SluiceError, match="no stage 'prod'"):
            app.url("web", stage="prod")


def test_boto3_against_the_lambda_endpoint(project):
    import boto3
    with sluice.serve(project.path / "sluice.yaml") as app:
        client = boto3.client("lambda", endpoint_url=app.lambda_endpoint, region_name=app.region,
                              aws_access_key_id="x", aws_secret_access_key="x")
        resp = client.invoke(FunctionName="echo:live", Payload=b'{"via": "boto3"}')
        assert json.loads(resp["Payload"].read())["event"] == {"via": "boto3"}
        (record,) = app.records()
        assert (record.source, record.qualifier) == ("invoke-api", "live")


def test_calls_from_threads_run_concurrently(project):
    """Waiting calls release the GIL: four threads get four environments at once."""
    with sluice.serve(project.path / "sluice.yaml") as app:
        results = []
        threads = [threading.Thread(target=lambda: results.append(app.invoke("sleepy", {"seconds": 0.5})))
                   for _ in range(4)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert time.monotonic() - started < 1.8
        assert len({r.payload["pid"] for r in results}) == 4
        assert sum(r.cold_start for r in app.records()) == 4


def test_records_and_recording_go_by_when_an_invocation_was_made(project):
    with sluice.serve(project.path / "sluice.yaml") as app:
        app.invoke("echo", {})  # warm
        slow = threading.Thread(target=lambda: app.invoke("sleepy", {"seconds": 0.6}))
        slow.start()
        time.sleep(0.2)
        with app.recording() as rec:
            app.invoke("echo", {"inside": True})
            app.invoke_async("echo", {"async": True})
            slow.join()
        # The slow call was made before the block: not the block's, though it ended inside it.
        # The asynchronous one was made inside: the block's, once it has ended.
        deadline = time.time() + 10
        while len(rec.records()) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert [(r.function, r.invocation_type) for r in rec.records()] == [("echo", "RequestResponse"),
                                                                             ("echo", "Event")]
        # records(): oldest first by when each started, the slow one before the calls made after it.
        assert [r.function for r in app.records()] == ["echo", "sleepy", "echo", "echo"]
        started = [r.started for r in app.records()]
        assert started == sorted(started)
    # After the stop the records stay readable (a test asserts after its with block).
    assert [r.function for r in app.records()] == ["echo", "sleepy", "echo", "echo"]


def test_engine_errors_are_exceptions(project):
    with sluice.serve(project.path / "sluice.yaml") as app:
        with pytest.raises(sluice.SluiceError) as info:
            app.invoke("nope", {})
        assert info.value.code == "ResourceNotFoundException"
        with pytest.raises(sluice.SluiceError) as info:
            app.invoke("echo", "{not json")
        assert info.value.code == "InvalidRequestContentException"
        with pytest.raises(sluice.SluiceError) as info:
            app.invoke("echo", {}, qualifier="missing-alias")
        assert info.value.code == "ResourceNotFoundException"
        # A misspelt name is an error, not an empty answer that an assertion passes on.
        with pytest.raises(sluice.SluiceError, match="no function named 'ehco'; functions: .*echo"):
            app.logs("ehco")
        with pytest.raises(sluice.SluiceError, match="no schedule named 'tik'"):
            app.next_schedule_time("tik")
        assert app.logs("single") == ""  # a function that has not run yet has an empty log
        # A busy port is refused with the address.
        port = int(app.lambda_endpoint.rsplit(":", 1)[1])
        with pytest.raises(sluice.SluiceError, match=str(port)):
            sluice.serve(project.path / "sluice.yaml", lambda_port=port)
    with pytest.raises(sluice.SluiceError, match="not running"):
        app.invoke("echo", {})


def test_broken_stack_raises_stack_error_with_every_problem(project):
    bad = project.write_stack(
        "name: bad\nfunctions:\n  a: {runtime: python3.11, code: fn/, handler: handlers.echo, memory: 1}\n"
        "  b: {runtime: cobol, code: nowhere/, handler: x.y}\n", name="bad.yaml")
    with pytest.raises(sluice.StackError) as info:
        sluice.serve(bad)
    problems = info.value.problems
    assert len([p for p in problems if ": error: " in p]) >= 3, problems
    assert any("functions.a.memory" in p for p in problems)
    assert any("functions.b.runtime" in p for p in problems)
    assert any("functions.b.code" in p for p in problems)
    assert all(p.startswith(str(bad)) for p in problems if ": error: " in p)
    # The message is the whole report, as `sluice validate` prints it.
    validate = project.run("validate", str(bad))
    assert str(info.value).strip() == validate.stderr.decode().strip() or \
        str(info.value).strip() == validate.stdout.decode().strip()


def test_two_apps_in_one_process_each_see_their_own_handlers_exit(project):
    with sluice.serve(project.path / "sluice.yaml") as one, sluice.serve(project.path / "sluice.yaml") as two:
        assert one.lambda_endpoint != two.lambda_endpoint
        assert one.invoke("echo", {}).cold_start and two.invoke("echo", {}).cold_start
        crashed = one.invoke("crash", {"code": 3})
        assert crashed.function_error == "Runtime.ExitError"
        assert "exit status 3" in crashed.payload["errorMessage"]
        crashed = two.invoke("crash", {"code": 4})
        assert "exit status 4" in crashed.payload["errorMessage"]
        one.stop()
        assert not two.invoke("echo", {}).cold_start
        assert "exit status 5" in two.invoke("crash", {"code": 5}).payload["errorMessage"]  # SIGCHLD still seen
        with pytest.raises(sluice.SluiceError, match="not running"):
            one.invoke("echo", {})


def test_options_idle_timeout_and_async_retries(project):
    with sluice.serve(project.path / "sluice.yaml", idle_timeout=0.3, async_retry_delays=[0.05, 0.05]) as app:
        assert app.invoke("echo", {}).cold_start
        time.sleep(1.0)
        assert app.invoke("echo", {}).cold_start  # the idle environment was reaped
        request_id = app.invoke_async("fail", {"why": "async"})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(app.records("fail")) < 3:
            time.sleep(0.05)
        attempts = app.records("fail")
        assert [(r.request_id, r.invocation_type, r.status) for r in attempts] == [
            (request_id, "Event", "function_error")] * 3


def test_throttled_invocations_are_errors_and_records(project):
    with sluice.serve(project.path / "sluice.yaml") as app:
        outcomes = []

        def call():
            try:
                outcomes.append(app.invoke("single", {"seconds": 0.5}).ok)
            except sluice.SluiceError as e:
                outcomes.append(e.code)

        threads = [threading.Thread(target=call) for _ in range(2)]
        for t in threads:
            t.start()
            time.sleep(0.1)
        for t in threads:
            t.join()
        assert sorted(map(str, outcomes)) == ["TooManyRequestsException", "True"]
        assert sorted(r.status for r in app.records("single")) == ["success", "throttled"]
        throttled = [r for r in app.records("single") if r.status == "throttled"][0]
        assert (throttled.version, throttled.error_type) == ("", "TooManyRequestsException")


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_option(project, freeze):
    """Frozen between invocations (the default), a handler's background thread does not advance."""
    with sluice.serve(project.path / "sluice.yaml", freeze=freeze) as app:
        first = app.invoke("ticker", {"run_for": 0.1}).payload["ticks"]
        time.sleep(0.6)
        second = app.invoke("ticker", {"run_for": 0.1}).payload["ticks"]
        ran_between = second - first > 30  # 10 ms per tick: 0.1 s of invocation gives about 10
        assert ran_between == (not freeze), (first, second)


def test_reload_applies_an_edit_and_keeps_serving_through_a_broken_one(project):
    with sluice.serve(project.path / "sluice.yaml", watch=False) as app:
        with pytest.raises(sluice.SluiceError):
            app.invoke("late", {})
        project.write_stack(STACK.replace("functions:\n", "functions:\n  late: {code: fn/, handler: handlers.echo}\n"))
        app.reload()
        assert app.invoke("late", {"x": 1}).payload["event"] == {"x": 1}
        project.write_stack("name: pkg\nfunctions: [oops]\n")
        with pytest.raises(sluice.StackError):
            app.reload()
        assert app.invoke("late", {}).ok
        # Without the code watcher, an explicit reload takes code edits too (a cold start).
        (project.path / "fn" / "reloaded_marker.py").write_text("MARK = 'second'\n")
        project.write_stack(STACK.replace("functions:\n", "functions:\n  late: {code: fn/, handler: handlers.echo}\n"
                                          "  mark: {code: fn/, handler: handlers.reloaded_mark}\n"))
        app.reload()
        assert app.invoke("mark", {}).payload == "second"
        (project.path / "fn" / "reloaded_marker.py").write_text("MARK = 'third'\n")
        assert app.invoke("mark", {}).payload == "second"  # no watcher: the warm environment stays
        app.reload()
        result = app.invoke("mark", {})
        assert result.payload == "third" and result.cold_start


def test_stop_leaves_no_handler_process(project):
    app = sluice.serve(project.path / "sluice.yaml")
    for _ in range(3):
        threading.Thread(target=app.invoke, args=("sleepy", {"seconds": 0.2})).start()
    app.invoke("echo", {})
    assert processes_mentioning(str(project.path))
    app.stop()
    app.stop()  # idempotent
    assert not app.running
    deadline = time.time() + 5
    while time.time() < deadline and processes_mentioning(str(project.path)):
        time.sleep(0.05)
    assert processes_mentioning(str(project.path)) == []


def test_ctrl_c_interrupts_a_waiting_call(project):
    script = project.path / "interrupt.py"
    script.write_text(
        "import sys, time, sluice\n"
        "app = sluice.serve(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    app.invoke('sleepy', {'seconds': 4})\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    started = time.monotonic()\n"
        "    app.stop()\n"
        "    print('stopped in %.1f s' % (time.monotonic() - started), flush=True)\n")
    proc = subprocess.Popen([sys.executable, str(script), str(project.path / "sluice.yaml")], env=env_with_package(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.startswith("interrupted"), out + err
    assert time.monotonic() - started < 8


def test_no_handler_outlives_a_killed_interpreter(project):
    script = project.path / "killed.py"
    script.write_text(
        "import sys, threading, time, sluice\n"
        "app = sluice.serve(sys.argv[1])\n"
        "app.invoke('echo', {})\n"  # a warm, frozen environment
        "threading.Thread(target=app.invoke, args=('sleepy', {'seconds': 30}), daemon=True).start()\n"
        "time.sleep(0.5)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script), str(project.path / "sluice.yaml")], env=env_with_package(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert len(processes_mentioning(str(project.path / "fn"))) >= 2
    proc.kill()
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and processes_mentioning(str(project.path / "fn")):
        time.sleep(0.05)
    assert processes_mentioning(str(project.path / "fn")) == []


def test_generate_event_and_kinds():
    kinds = {(k["source"], k["kind"]) for k in sluice.event_kinds()}
    assert {("sqs", "receive-message"), ("apigateway", "aws-proxy"), ("eventbridge", "scheduled-event")} <= kinds
    ev = sluice.generate_event("apigateway", "aws-proxy", method="PUT", path="/a", header={"x-k": "v"},
                               query={"q": "1"})
    assert ev["httpMethod"] == "PUT" and ev["headers"]["x-k"] == "v" and ev["queryStringParameters"] == {"q": "1"}
    assert sluice.generate_event("sqs", "receive-message", sets={"body": "b"})["Records"][0]["body"] == "b"
    with pytest.raises(ValueError, match="unknown key 'nope'"):
        sluice.generate_event("sqs", "receive-message", nope=1)


def test_a_wrong_interpreter_path_is_refused(project):
    with pytest.raises(ValueError, match="the interpreter given for python3.11, /nonexistent/python, does not exist"):
        sluice.serve(project.path / "sluice.yaml", interpreters={"python3.11": "/nonexistent/python"})


def test_out_of_range_options_are_refused_as_the_cli_refuses_them(project):
    # account_concurrency=0 used to be taken, and every invocation was then throttled
    # (TooManyRequestsException); a NaN duration became an undefined conversion.
    stack = project.path / "sluice.yaml"
    for bad in (0, -1, 100001):
        with pytest.raises(ValueError, match="account_concurrency must be from 1 to 100000"):
            sluice.serve(stack, account_concurrency=bad)
    with pytest.raises(ValueError, match="must be a finite number"):
        sluice.serve(stack, idle_timeout=float("nan"))
    with pytest.raises(ValueError, match="must be a finite number"):
        sluice.serve(stack, init_timeout=-1)
    for bad in ((0, 5), (10, 0), (float("inf"), 5)):
        with pytest.raises(ValueError, match=r"account_throttle is \(rate, burst\)"):
            sluice.serve(stack, account_throttle=bad)


def test_a_misspelt_function_name_raises_instead_of_matching_nothing(project):
    with sluice.serve(project.path / "sluice.yaml") as app:
        with app.recording() as rec:
            pass
        for call in (lambda: app.records("nope"), lambda: app.destinations("nope", wait=0),
                     lambda: rec.records("nope"), lambda: app.logs("nope")):
            with pytest.raises(sluice.SluiceError, match="no function named 'nope'; functions: "):
                call()
        known = sorted(app._engine.functions())[0]
        assert app.records(known) == [] and app.destinations(known, wait=0) == []
