"""The command line: invoke, publish, validate, serve's own failures."""
import json
import re
import socket

STACK = """
name: cli
functions:
  echo: {runtime: python3.11, code: py/, handler: handlers.echo}
  fail: {runtime: python3.11, code: py/, handler: handlers.fail}
"""


def prepare(ws):
    ws.copy_function("python-basic", "py")
    ws.write_stack(STACK)


def test_invoke_prints_the_payload_and_logs_separately(ws):
    prepare(ws)
    (ws.path / "event.json").write_text('{"from": "file"}')
    p = ws.run("invoke", "echo", "--event", "event.json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["event"] == {"from": "file"}
    err = p.stderr.decode()
    assert re.search(r"^START RequestId: [0-9a-f-]{36} Version: \$LATEST$", err, re.M)
    assert re.search(r"^END RequestId: ", err, re.M)
    assert re.search(r"^REPORT RequestId: .*\tInit Duration: ", err, re.M)


def test_a_runtime_stopped_after_answering_reports_a_clean_invocation(ws):
    # A custom runtime that answers, then takes its time before its next /next. An in-process
    # `trigger` has its answer and stops the environment meanwhile; `invoke` waits for the end
    # of the invocation (the next /next). Both invocations succeeded, so neither REPORT carries
    # an error status (the trigger's used to say Runtime.ExitError).
    rt = ws.path / "slow"
    rt.mkdir()
    (rt / "bootstrap").write_text(
        "#!/bin/bash\n"
        "api=http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation\n"
        "while true; do\n"
        "  id=$(curl -sS -D - -o /dev/null $api/next | grep -Fi Lambda-Runtime-Aws-Request-Id | tr -d '[:space:]' | cut -d: -f2)\n"
        "  curl -sS $api/$id/response -d '{\"ok\": true}' > /dev/null\n"
        "  sleep 3\n"
        "done\n")
    (rt / "bootstrap").chmod(0o755)
    ws.write_stack("name: cli\nfunctions:\n  slow: {runtime: provided.al2023, code: slow/, handler: x}\n"
                   "schedules:\n  nightly: {function: slow, expression: \"rate(1 day)\"}\n")
    for args in (("trigger", "schedule", "nightly"), ("invoke", "slow")):
        p = ws.run(*args, timeout=60)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout) == {"ok": True}
        report = [line for line in p.stderr.decode().splitlines() if line.startswith("REPORT RequestId:")]
        assert len(report) == 1, p.stderr
        assert "Status:" not in report[0] and "Error Type" not in report[0], (args, report[0])


def test_invoke_reads_stdin_and_fails_with_status_1_on_function_error(ws):
    prepare(ws)
    p = ws.run("invoke", "fail", "--event", "-", input=b'{"why": "stdin"}')
    assert p.returncode == 1
    body = json.loads(p.stdout)
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "something went wrong: stdin"
    p = ws.run("invoke", "echo", "--event", "-", input=b"")
    assert p.returncode == 0 and json.loads(p.stdout)["event"] == {}


def test_invoke_errors_before_running(ws):
    prepare(ws)
    p = ws.run("invoke", "nope")
    assert p.returncode == 2 and b"ResourceNotFoundException" in p.stderr
    p = ws.run("invoke", "echo", "--event", "-", input=b"{not json")
    assert p.returncode == 2 and b"InvalidRequestContentException" in p.stderr
    p = ws.run("invoke", "echo", "--event", "missing.json")
    assert p.returncode == 2 and b"cannot read the event file" in p.stderr
    p = ws.run("invoke", "echo", "--event", str(ws.path))
    assert p.returncode == 2 and b"is a directory" in p.stderr
    # An interpreter path that is wrong is refused up front, naming it (it fell back silently to
    # a misleading "no interpreter on PATH" answer).
    p = ws.run("invoke", "echo", "--interpreter", "python3.11=/nonexistent/python")
    assert p.returncode == 2, p.stderr
    assert b"the interpreter given for python3.11, /nonexistent/python, does not exist" in p.stderr
    p = ws.run("invoke", "echo", "--interpreter", f"python3.11={ws.path}")
    assert p.returncode == 2 and b"is not a file" in p.stderr


def test_invoke_without_a_name_runs_a_one_function_stack(ws):
    # As `sam local invoke` with no logical id: a stack of one function needs no name; with
    # several, the refusal lists them.
    prepare(ws)
    p = ws.run("invoke", "--event", "-", input=b'{"n": 1}')
    assert p.returncode == 2 and b"2 functions (echo, fail)" in p.stderr, p.stderr
    ws.write_stack("name: cli\nfunctions:\n  echo: {runtime: python3.11, code: py/, handler: handlers.echo}\n")
    p = ws.run("invoke", "--event", "-", input=b'{"n": 1}')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["event"] == {"n": 1}
    assert re.search(r"^START RequestId: [0-9a-f-]{36} Version: \$LATEST$", p.stderr.decode(), re.M)


def test_publish_and_invoke_a_version(ws):
    prepare(ws)
    p = ws.run("publish", "echo", "--description", "first")
    assert p.returncode == 0 and json.loads(p.stdout)["Version"] == "1"
    p = ws.run("invoke", "echo:1")
    assert p.returncode == 0 and json.loads(p.stdout)["count"] == 1
    assert b"Version: 1" in p.stderr
    p = ws.run("publish", "nope")
    assert p.returncode == 2 and b"no function named" in p.stderr


def test_validate(ws):
    prepare(ws)
    p = ws.run("validate")
    assert p.returncode == 0 and b"valid" in p.stdout
    ws.write_stack("name: cli\nfunctions:\n  echo: {runtime: python3.11, code: py/, handler: handlers.echo, timout: 3}\n",
                   name="broken.yaml")
    p = ws.run("validate", "broken.yaml")
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "functions.echo" in err and "timout" in err and "timeout" in err and ":3:" in err


def test_serve_refuses_a_broken_stack_and_a_busy_port(ws):
    prepare(ws)
    ws.write_stack("name: cli\nfunctions:\n  echo: {runtime: cobol, code: py/}\n", name="broken.yaml")
    p = ws.run("serve", "broken.yaml", "--lambda-port", "0", timeout=20)
    assert p.returncode == 1 and b"runtime" in p.stderr
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    p = ws.run("serve", "--lambda-port", str(port), timeout=20)
    blocker.close()
    assert p.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}".encode() in p.stderr
    # An endpoints file that could never be written is refused before anything starts.
    p = ws.run("serve", "--lambda-port", "0", "--port", "0", "--endpoints-file", "/nonexistent/dir/ep.json", timeout=20)
    assert p.returncode == 2 and b'the directory "/nonexistent/dir" does not exist' in p.stderr
    assert b"Ctrl-C to stop" not in p.stderr


def test_usage(ws):
    p = ws.run()
    assert p.returncode == 2 and b"usage:" in p.stderr
    p = ws.run("frobnicate")
    assert p.returncode == 2 and b"unknown command" in p.stderr
    p = ws.run("--help")
    assert p.returncode == 0 and b"sluice serve" in p.stdout
    # An option the command does not take, or an argument too many, is refused, never ignored.
    p = ws.run("invoke", "echo", "--evnt", "e.json")
    assert p.returncode == 2 and b"unknown option --evnt; did you mean --event?" in p.stderr
    p = ws.run("validate", "a.yaml", "b.yaml")
    assert p.returncode == 2 and b'unexpected argument "b.yaml"' in p.stderr
    p = ws.run("serve", "--bogus-flag")
    assert p.returncode == 2 and b"unknown option --bogus-flag" in p.stderr
    p = ws.run("publish", "echo", "--no-freeze")  # a serve/invoke option, not publish's
    assert p.returncode == 2 and b"unknown option --no-freeze" in p.stderr
