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


def test_usage(ws):
    p = ws.run()
    assert p.returncode == 2 and b"usage:" in p.stderr
    p = ws.run("frobnicate")
    assert p.returncode == 2 and b"unknown command" in p.stderr
    p = ws.run("--help")
    assert p.returncode == 0 and b"sluice serve" in p.stdout
