"""Local-only settings of serve and invoke: `--env-vars` (SAM CLI's env-vars file) and a
function started under a debugger (`--debug-port`, `--debug-function`, `--debug-args`).
Real sluice, real Node.js and Python processes; the debuggers are driven by the protocols
VS Code speaks: the Chrome DevTools Protocol to `node --inspect-brk`, the Debug Adapter
Protocol to debugpy."""
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port
from debuggers import CdpClient, DapClient

JS_APP = r'''
exports.handler = async (event) => {
  const seen = event.rawPath || event.k;
  return { statusCode: 200, body: JSON.stringify({ seen, table: process.env.TABLE, stage: process.env.STAGE,
                                                  extra: process.env.EXTRA ?? null }) };
};
'''

PY_APP = r'''
import os, sys, time

def handler(event, context):
    seen = event.get("k")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"seen": seen, "dev_mode": sys.flags.dev_mode, "table": os.environ.get("TABLE"),
            "stage": os.environ.get("STAGE"), "pid": os.getpid()}
'''

DEBIAN_PYTHON = "/usr/bin/python3"


def debian_debugpy():
    try:
        out = subprocess.run([DEBIAN_PYTHON, "-c", "import debugpy, sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture
def project(ws):
    (ws.path / "js").mkdir()
    (ws.path / "js" / "app.js").write_text(JS_APP)
    (ws.path / "py").mkdir()
    (ws.path / "py" / "app.py").write_text(PY_APP)
    v = f"3.{sys.version_info[1]}"
    ws.write_stack(f"""name: debugging
functions:
  js:
    runtime: nodejs20.x
    handler: app.handler
    code: js/
    timeout: 1
    environment: {{TABLE: prod-table, STAGE: prod}}
  other:
    runtime: nodejs20.x
    handler: app.handler
    code: js/
    environment: {{TABLE: other-table, STAGE: prod}}
  py:
    runtime: python{v}
    handler: app.handler
    code: py/
    timeout: 1
    environment: {{TABLE: prod-table}}
  py-plain:
    runtime: python{v}
    handler: app.handler
    code: py/
    timeout: 1
apis:
  web:
    type: http
    routes:
      GET /js/{{x}}: js
    stages:
      $default: {{}}
""")
    return ws


def get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, json.loads(r.read())


def in_thread(fn, *args):
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except Exception as e:  # noqa: BLE001 - reported by the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


# ----------------------------------------------------------------------------- --env-vars

def test_env_vars_file_overrides_declared_variables(project):
    env = project.path / "env.json"
    env.write_text(json.dumps({"Parameters": {"STAGE": "local", "NOPE": 1},
                               "js": {"TABLE": "local-table", "EXTRA": "x"}, "ghost": {"A": "b"}}))
    srv = project.serve(args=["--env-vars", str(env)])
    r = json.loads(srv.invoke("js", {"k": 1})["Json"]["body"])
    # The function's own entry wins over Parameters; an undeclared variable is not added.
    assert r == {"seen": 1, "table": "local-table", "stage": "local", "extra": None}
    r = json.loads(srv.invoke("other", {"k": 2})["Json"]["body"])
    assert r["table"] == "other-table" and r["stage"] == "local"
    # A variable nobody declares is not invented.
    assert srv.invoke("py-plain", {"k": 3})["Json"]["stage"] is None
    err = srv.stderr()
    assert "env-vars: ghost is not a function of the stack" in err
    assert "env-vars: js.EXTRA is ignored: the stack does not declare EXTRA in js's environment" in err
    assert "env-vars: Parameters.NOPE is ignored: no function of the stack declares NOPE" in err

    # sluice invoke reads the same file.
    out = project.run("invoke", "js", "--env-vars", str(env), "--stack", str(project.path / "sluice.yaml"),
                      input=b"{}")
    assert out.returncode == 0, out.stderr
    assert json.loads(json.loads(out.stdout)["body"])["table"] == "local-table"


def test_env_vars_file_errors_say_what_and_where(project):
    bad = project.path / "bad.json"
    bad.write_text('{"js": {"TABLE": "x",}\n}')
    out = project.run("invoke", "js", "--env-vars", str(bad), input=b"{}")
    assert out.returncode == 2
    assert f"{bad}: not valid JSON: parse error at line 1, column" in out.stderr.decode()
    bad.write_text('{"js": {"TABLE": {"nested": true}}}')
    out = project.run("serve", "--port", "0", "--lambda-port", "0", "--env-vars", str(bad))
    assert out.returncode == 2
    assert f"{bad}: js.TABLE must be a string, a number or a boolean, not object" in out.stderr.decode()
    out = project.run("invoke", "js", "--env-vars", str(project.path / "missing.json"))
    assert out.returncode == 2 and "cannot read the env-vars file" in out.stderr.decode()


def test_python_package_env_vars(project):
    import sluice

    with sluice.serve(project.path / "sluice.yaml", env_vars={"Parameters": {"TABLE": "from-dict"}}) as app:
        assert app.invoke("py", {"k": 1}).payload["table"] == "from-dict"
    with pytest.raises(ValueError, match=r"env_vars: js.TABLE must be a string"):
        sluice.serve(project.path / "sluice.yaml", env_vars={"js": {"TABLE": [1]}})


# ----------------------------------------------------------------------------- debuggers

def inspector_target(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                targets = json.loads(r.read())
            if targets:
                return targets[0]
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no inspector on port {port}")


def pause_in(cdp, suffix, timeout=20):
    """Resumes past every pause until one in a file ending with suffix; returns that pause."""
    while True:
        ev = cdp.wait_event("Debugger.paused", timeout)["params"]
        frame = ev["callFrames"][0]
        if (frame["url"] or cdp.script_url(frame["location"]["scriptId"])).endswith(suffix):
            return frame
        cdp.call("Debugger.resume")


def test_node_function_under_the_inspector(project):
    port = free_port()
    srv = project.serve(args=["--debug-port", str(port), "--debug-function", "js"])
    assert f"debugging js: its runtime starts under the Node.js inspector on 127.0.0.1:{port}" in srv.stderr()
    url = srv.endpoints["apis"]["web"]["url"]
    first, first_box = in_thread(get, url + "/js/first")
    target = inspector_target(port)
    # The code is where Lambda has it, so VS Code's remoteRoot /var/task (as with SAM CLI) maps it.
    assert target["url"] == "file:///var/runtime/bootstrap.js"
    time.sleep(0.3)
    assert first.is_alive(), "the runtime must wait for the debugger (--inspect-brk)"

    cdp = CdpClient(target["webSocketDebuggerUrl"])
    try:
        cdp.call("Runtime.enable")
        cdp.call("Debugger.enable")
        bp = cdp.call("Debugger.setBreakpointByUrl", url="file:///var/task/app.js", lineNumber=2)
        cdp.call("Runtime.runIfWaitingForDebugger")
        frame = pause_in(cdp, "/var/task/app.js")
        assert frame["location"]["lineNumber"] == 2
        # A second call while the first is held: it waits for the one environment (the port).
        second, second_box = in_thread(get, url + "/js/second")
        # Held past the function's 1 s timeout and beyond: nothing times out while debugging.
        time.sleep(1.5)
        assert first.is_alive() and second.is_alive()
        seen = cdp.call("Debugger.evaluateOnCallFrame", callFrameId=frame["callFrameId"], expression="event.rawPath")
        assert seen["result"]["value"] == "/js/first"
        cdp.call("Debugger.resume")
        first.join(20)
        assert first_box.get("value") == (200, {"seen": "/js/first", "table": "prod-table", "stage": "prod",
                                                "extra": None}), first_box
        # The second call runs in the same environment and stops at the same breakpoint.
        frame = pause_in(cdp, "/var/task/app.js")
        seen = cdp.call("Debugger.evaluateOnCallFrame", callFrameId=frame["callFrameId"], expression="event.rawPath")
        assert seen["result"]["value"] == "/js/second"
        cdp.call("Debugger.removeBreakpoint", breakpointId=bp["breakpointId"])
        cdp.call("Debugger.resume")
        second.join(20)
        assert second_box.get("value", (None,))[0] == 200, second_box
    finally:
        cdp.close()
    # A function not being debugged keeps its timeout, freeze and its own environments.
    assert srv.invoke("other", {"k": 1})["StatusCode"] == 200
    log = srv.stdout()
    assert log.count("[js] INIT_START") == 1, log
    assert "Debugger listening on ws://127.0.0.1:%d/" % port in log


@pytest.mark.skipif(not debian_debugpy(), reason="Debian's python3-debugpy is not installed (scripts/setup.sh)")
def test_python_function_under_debugpy(project):
    version = debian_debugpy()
    text = (project.path / "sluice.yaml").read_text().replace(f"python3.{sys.version_info[1]}", f"python{version}")
    project.write_stack(text)
    port = free_port()
    srv = project.serve(args=["--debug-port", str(port), "--debug-function", "py",
                              "--interpreter", f"python{version}={DEBIAN_PYTHON}"])
    assert f"debugging py: its runtime starts under debugpy on 127.0.0.1:{port}" in srv.stderr()
    call, box = in_thread(srv.invoke, "py", {"k": "held", "sleep": 0})
    deadline = time.time() + 20
    dap = None
    while dap is None:
        try:
            dap = DapClient("127.0.0.1", port)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    try:
        dap.request("initialize", adapterID="debugpy", clientID="sluice-tests", pathFormat="path",
                    linesStartAt1=True, columnsStartAt1=True)
        attach = dap.send("attach", justMyCode=True)
        dap.wait_event("initialized")
        bps = dap.request("setBreakpoints", source={"path": "/var/task/app.py"}, breakpoints=[{"line": 6}])
        assert bps["breakpoints"][0]["verified"], bps
        dap.request("configurationDone")
        dap.response(attach)
        stopped = dap.wait_event("stopped", timeout=30)["body"]
        assert stopped["reason"] == "breakpoint"
        frames = dap.request("stackTrace", threadId=stopped["threadId"])["stackFrames"]
        assert frames[0]["source"]["path"] == "/var/task/app.py" and frames[0]["line"] == 6
        time.sleep(1.5)  # past the function's 1 s timeout
        assert call.is_alive()
        value = dap.request("evaluate", expression="seen", frameId=frames[0]["id"], context="watch")
        assert value["result"] == "'held'"
        dap.request("continue", threadId=stopped["threadId"])
        call.join(20)
        r = box["value"]
        assert r["StatusCode"] == 200 and "FunctionError" not in r, r
        assert r["Json"]["seen"] == "held"
    finally:
        dap.close()


def test_debug_args_and_timeouts_lifted(project):
    # --debug-args replaces the debugger flags: here a plain interpreter flag, no debugger.
    srv = project.serve(args=["--debug-args", "-X dev", "--debug-function", "py"])
    r = srv.invoke("py", {"k": 1, "sleep": 1.5})
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r
    assert r["Json"]["dev_mode"] is True
    # The same code without debugging: flags as usual and the 1 s timeout applies.
    r = srv.invoke("py-plain", {"k": 1, "sleep": 1.5})
    assert r.get("FunctionError") == "Unhandled" and r["Json"]["errorType"] == "Sandbox.Timedout", r


def test_debug_options_refused_clearly(project):
    (project.path / "custom").mkdir()
    boot = project.path / "custom" / "bootstrap"
    boot.write_text("#!/bin/sh\nexit 0\n")
    boot.chmod(0o755)
    text = (project.path / "sluice.yaml").read_text().replace("apis:", """  custom:
    runtime: provided.al2023
    handler: x
    code: custom/
apis:""")
    project.write_stack(text)
    out = project.run("serve", "--port", "0", "--lambda-port", "0", "--debug-port", "9")
    assert out.returncode == 2
    assert "a debugger port belongs to one function: name it with --debug-function" in out.stderr.decode()
    out = project.run("invoke", "custom", "--debug-port", str(free_port()))
    assert out.returncode == 2
    assert "custom uses a custom runtime (provided.al2023)" in out.stderr.decode()
    assert "--debug-args" in out.stderr.decode()
    out = project.run("invoke", "nosuch", "--debug-port", str(free_port()))
    assert out.returncode == 2 and "--debug-function: no function named" in out.stderr.decode()
    out = project.run("invoke", "js", "--debug-args", "'unclosed")
    assert out.returncode == 2 and "--debug-args has an unclosed ' quote" in out.stderr.decode()
