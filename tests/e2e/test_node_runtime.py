"""The nodejs runtimes sluice ships: CommonJS and ES modules, async and callback
handlers, context, error and init-error shapes, console format, streaming."""
import base64
import json
import re
import time

import pytest

STACK = """
name: nodert
functions:
  introspect: {runtime: nodejs20.x, code: node/, handler: index.introspect, memory: 256, timeout: 5}
  echo: {runtime: nodejs20.x, code: node/, handler: index.echo}
  callback: {runtime: nodejs20.x, code: node/, handler: index.callback}
  fail: {runtime: nodejs20.x, code: node/, handler: index.fail}
  logs: {runtime: nodejs20.x, code: node/, handler: index.logs}
  esm: {runtime: nodejs20.x, code: esm/, handler: app.handler}
  missing-handler: {runtime: nodejs20.x, code: node/, handler: index.nothere}
  missing-module: {runtime: nodejs20.x, code: node/, handler: nomodule.handler}
  syntax: {runtime: nodejs20.x, code: node/, handler: syntax.handler}
  stream: {runtime: nodejs20.x, code: node/, handler: streaming.handler}
  gc: {runtime: nodejs20.x, code: node/, handler: gc.handler}
  esm-in-js: {runtime: nodejs20.x, code: node/, handler: exported.handler}
  burst: {runtime: nodejs20.x, code: node/, handler: burst.handler}
  late-throw: {runtime: nodejs20.x, code: node/, handler: late.throws}
  callback-24: {runtime: nodejs24.x, code: node/, handler: styles.callback}
  entry: {runtime: nodejs20.x, code: node/, handler: styles.entry}
  async-3-24: {runtime: nodejs24.x, code: node/, handler: styles.asyncThree}
  async-24: {runtime: nodejs24.x, code: node/, handler: styles.asyncTwo}
  callback-22: {runtime: nodejs22.x, code: node/, handler: styles.callback}
  late-reject: {runtime: nodejs20.x, code: node/, handler: late.rejects}
  stream-stall: {runtime: nodejs20.x, code: node/, handler: streaming.stalls, timeout: 1}
"""


@pytest.fixture
def srv(ws):
    ws.copy_function("node-basic", "node")
    ws.copy_function("node-esm", "esm")
    (ws.path / "node" / "nomodule.js").write_text("const dep = require('package-that-is-not-installed');\nexports.handler = async () => dep;\n")
    (ws.path / "node" / "syntax.js").write_text("exports.handler = async () => { return {;\n")
    (ws.path / "node" / "gc.js").write_text(
        "exports.handler = async () => {\n"
        "  const before = typeof gc; let junk = []; for (let i = 0; i < 1e5; i++) junk.push({ i }); junk = null;\n"
        "  const r = gc();\n"
        "  return { before, after: typeof globalThis.gc, result: r === undefined ? 'undefined' : typeof r };\n"
        "};\n")
    (ws.path / "node" / "burst.js").write_text(
        "exports.handler = async (event) => {\n"
        "  for (let i = 0; i < event.n; i++) console.log(`line ${i} ` + 'x'.repeat(400));\n"
        "  return 'done';\n"
        "};\n")
    (ws.path / "node" / "late.js").write_text(
        "exports.throws = async () => { setTimeout(() => { throw new Error('late'); }, 100); return 'ok'; };\n"
        "exports.rejects = async () => { setTimeout(() => Promise.reject(new Error('late')), 100); return 'ok'; };\n")
    (ws.path / "node" / "styles.js").write_text(
        "exports.callback = (event, context, callback) => callback(null, 'callback');\n"
        "exports.asyncThree = async (event, context, callback) => 'async with three';\n"
        "exports.asyncTwo = async (event, context) => 'async';\n"
        "exports.entry = async () => ({ main: typeof require.main, argv1: process.argv[1] });\n")
    (ws.path / "node" / "exported.js").write_text("export const handler = async () => 'loaded';\n")
    (ws.path / "node" / "streaming.js").write_text(
        "exports.handler = awslambda.streamifyResponse(async (event, stream) => {\n"
        "  stream.setContentType('text/plain');\n"
        "  for (const part of ['a;', 'b;', 'c']) { stream.write(part); await new Promise(r => setTimeout(r, 15)); }\n"
        "  stream.end();\n"
        "});\n"
        "exports.stalls = awslambda.streamifyResponse(async (event, stream) => {\n"
        "  stream.write('first');\n"
        "  await new Promise(r => setTimeout(r, 5000));\n"
        "  stream.end();\n"
        "});\n")
    ws.write_stack(STACK)
    return ws.serve()


def test_context_and_environment(srv):
    r = srv.invoke("introspect", {})
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    c, env = r["Json"]["context"], r["Json"]["env"]
    assert c["awsRequestId"] == rid
    assert c["functionName"] == "introspect" and c["functionVersion"] == "$LATEST"
    assert c["invokedFunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:introspect"
    assert c["memoryLimitInMB"] == "256"
    assert c["logGroupName"] == "/aws/lambda/introspect" and c["logStreamName"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert 4000 < c["remainingMs"] <= 5000
    assert c["callbackWaitsForEmptyEventLoop"] is True
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert env["NODE_PATH"] == ("/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:"
                                "/var/runtime/node_modules:/var/runtime:/var/task")
    assert not [k for k in env if k.startswith("_SLUICE")]


def test_warm_state_async_callback_and_esm(srv):
    a = srv.invoke("echo", {"n": 1})["Json"]
    b = srv.invoke("echo", {"n": 2})["Json"]
    assert (a["count"], b["count"]) == (1, 2) and a["pid"] == b["pid"]
    assert srv.invoke("callback", {"x": 1})["Json"] == {"style": "callback", "event": {"x": 1}}
    r = srv.invoke("esm", {"y": 2})
    assert r["Json"]["module"] == "esm" and r["Json"]["event"] == {"y": 2}


def test_handler_error_shape_and_log(srv):
    r = srv.invoke("fail", {"why": "bad"}, LogType="Tail")
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Error"
    assert r["Json"]["errorMessage"] == "something went wrong: bad"
    assert r["Json"]["trace"][0] == "Error: something went wrong: bad"
    log = base64.b64decode(r["LogResult"]).decode()
    assert re.search(r"\tERROR\tInvoke Error \t\{\"errorType\":\"Error\",\"errorMessage\":\"something went wrong: bad\"", log)


def test_console_format(srv):
    r = srv.invoke("logs", {}, LogType="Tail")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    log = base64.b64decode(r["LogResult"]).decode()
    assert re.search(rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{rid}\tINFO\tlog line {{ a: 1 }}$", log, re.M)
    assert re.search(rf"\t{rid}\tERROR\terror line$", log, re.M)
    assert re.search(rf"\t{rid}\tWARN\twarn line$", log, re.M)


def test_console_lines_all_come_before_the_end_of_their_invocation(srv):
    # console.* write each record to Lambda's log descriptor synchronously (as AWS's runtime
    # does), so 2 MB of them are all in the log when the invocation ends, before its END line.
    n = 5000
    r = srv.invoke("burst", {"n": n})
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    srv.wait_for_log(f"REPORT RequestId: {rid}")
    before, after = srv.stdout().split(f"END RequestId: {rid}", 1)
    seen = [l for l in before.splitlines() if f"\t{rid}\tINFO\tline " in l]
    assert len(seen) == n and seen[-1].endswith(f"line {n - 1} " + "x" * 400)
    assert f"\t{rid}\tINFO\tline " not in after


@pytest.mark.parametrize("name,status", [("late-throw", 129), ("late-reject", 128)])
def test_an_error_left_by_the_last_invocation_fails_the_next(srv, name, status):
    # The timer fires when the environment thaws for the second invocation: the official
    # runtime reports it (a blocking post), exits, and the second invocation fails with the
    # exit; its handler never runs.
    first = srv.invoke(name, {})
    assert first["Json"] == "ok"
    time.sleep(0.3)
    second = srv.invoke(name, {}, LogType="Tail")
    assert second.get("FunctionError") == "Unhandled", second["Body"]
    assert second["Json"]["errorType"] == "Runtime.ExitError"
    assert second["Json"]["errorMessage"].endswith(f"Runtime exited with error: exit status {status}")
    third = srv.invoke(name, {})
    assert third["Json"] == "ok"  # a new environment


def test_the_runtime_starts_from_an_es_module_as_on_lambda(srv):
    # AWS's entry is /var/runtime/index.mjs: CommonJS user code finds no require.main there.
    assert srv.invoke("entry", {})["Json"] == {"main": "undefined", "argv1": "/var/runtime/index.mjs"}


def test_nodejs24_refuses_callback_handlers_at_init(srv):
    # Lambda's nodejs24.x runtime fails the init of a handler declaring three parameters, async
    # or not, with Runtime.CallbackHandlerDeprecated (message and logged record as recorded in
    # open-telemetry/opentelemetry-js-contrib#3251 and arithmetric/aws-lambda-ses-forwarder#154).
    for name in ("callback-24", "async-3-24"):
        r = srv.invoke(name, {}, LogType="Tail")
        assert r.get("FunctionError") == "Unhandled", r["Body"]
        assert r["Json"]["errorType"] == "Runtime.CallbackHandlerDeprecated"
        assert r["Json"]["errorMessage"].startswith(
            "ERROR: AWS Lambda has removed support for callback-based function handlers starting with Node.js 24.")
        assert r["Json"]["trace"][0].startswith("Runtime.CallbackHandlerDeprecated: ERROR: AWS Lambda has removed")
        srv.wait_for_log("\tERROR\tInit Error \t")
        logged = re.search(r"\tundefined\tERROR\tInit Error \t(\{.*\})$", srv.stdout(), re.M)
        assert logged and list(json.loads(logged.group(1)))[:3] == ["errorType", "errorMessage", "name"]
    assert srv.invoke("async-24", {})["Json"] == "async"
    # Node.js 22 still runs them, with a warning.
    r = srv.invoke("callback-22", {}, LogType="Tail")
    assert r["Json"] == "callback"
    assert "AWS Lambda plans to remove support for callback-based function handlers" in base64.b64decode(
        r["LogResult"]).decode()


def test_init_errors(srv):
    r = srv.invoke("missing-handler", {})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Runtime.HandlerNotFound"
    assert r["Json"]["errorMessage"] == "index.nothere is undefined or not exported"
    r = srv.invoke("missing-module", {})
    assert r["Json"]["errorType"] == "Runtime.ImportModuleError"
    assert r["Json"]["errorMessage"].startswith("Error: Cannot find module 'package-that-is-not-installed'")
    r = srv.invoke("syntax", {})
    assert r["Json"]["errorType"] == "Runtime.UserCodeSyntaxError"


def test_gc_and_module_flags(srv):
    # AWS starts node with --expose-gc; sluice leaves that V8 flag out (it would make node
    # recompile its built-in modules on every cold start) and the bootstrap provides gc().
    r = srv.invoke("gc", {})
    assert "FunctionError" not in r, r["Body"]
    assert r["Json"] == {"before": "function", "after": "function", "result": "undefined"}
    # The module switches AWS passes are still in effect: `export` in a .js file of a
    # CommonJS package fails as on AWS instead of loading.
    r = srv.invoke("esm-in-js", {})
    assert r.get("FunctionError") == "Unhandled"
    assert r["Json"]["errorType"] == "Runtime.UserCodeSyntaxError"
    assert "Unexpected token 'export'" in r["Json"]["errorMessage"]


def test_streaming_response(srv):
    r = srv.client().invoke_with_response_stream(FunctionName="stream", Payload=b"{}")
    events = list(r["EventStream"])
    chunks = [e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e]
    assert b"".join(chunks) == b"a;b;c" and len(chunks) >= 2
    assert events[-1] == {"InvokeComplete": {}}
    assert srv.invoke("stream", {})["Body"] == b"a;b;c"


def test_a_stream_cut_by_the_timeout_lasts_until_the_timeout(srv):
    r = srv.client().invoke_with_response_stream(FunctionName="stream-stall", Payload=b"{}")
    events = list(r["EventStream"])
    assert events[0]["PayloadChunk"]["Payload"] == b"first"
    assert events[-1]["InvokeComplete"]["ErrorCode"] == "Sandbox.Timedout"
    # The REPORT counts the whole second the function ran, not the moment its stream began.
    srv.wait_for_log("Status: timeout")
    report = next(l for l in srv.stdout().splitlines() if l.startswith("[stream-stall ") and "REPORT" in l)
    assert float(report.split("Duration: ")[1].split(" ms")[0]) >= 999, report


def test_handler_modules_that_require_finds_as_aws_does(ws):
    # AWS's runtime client loads FILE of "FILE.export" as the path itself when it exists (a folder
    # with index.js is required as such), then FILE.js / .mjs / .cjs, and last as
    # require.resolve(FILE, {paths: [task root, handler folder]}): a package in node_modules or in
    # a layer's nodejs/node_modules. None of these may be refused when the stack is loaded.
    code = ws.path / "code"
    (code / "lib").mkdir(parents=True)
    (code / "lib" / "index.js").write_text("exports.handler = async () => 'folder index';\n")
    (code / "node_modules" / "inpkg").mkdir(parents=True)
    (code / "node_modules" / "inpkg" / "package.json").write_text('{"name": "inpkg", "main": "main.js"}\n')
    (code / "node_modules" / "inpkg" / "main.js").write_text("exports.handler = async () => 'package main';\n")
    (code / "src" / "node_modules").mkdir(parents=True)
    (code / "src" / "node_modules" / "near.js").write_text("exports.handler = async () => 'nearest node_modules';\n")
    (ws.path / "layer" / "nodejs" / "node_modules" / "layerpkg").mkdir(parents=True)
    (ws.path / "layer" / "nodejs" / "node_modules" / "layerpkg" / "index.js").write_text(
        "exports.handler = async () => 'layer package';\n")
    (code / "empty").mkdir()
    ws.write_stack(
        "name: resolve\nfunctions:\n"
        "  folder: {runtime: nodejs20.x, code: code/, handler: lib.handler}\n"
        "  package: {runtime: nodejs20.x, code: code/, handler: inpkg.handler}\n"
        "  nearest: {runtime: nodejs20.x, code: code/, handler: src/near.handler}\n"
        "  layer: {runtime: nodejs20.x, code: code/, handler: layerpkg.handler, layers: [layer/]}\n"
        "  empty-folder: {runtime: nodejs20.x, code: code/, handler: empty.handler}\n")
    srv = ws.serve()
    for name, expected in (("folder", "folder index"), ("package", "package main"),
                           ("nearest", "nearest node_modules"), ("layer", "layer package")):
        assert srv.invoke(name, {})["Json"] == expected, name
    # A folder require() cannot load is AWS's init error, not a refused stack.
    r = srv.invoke("empty-folder", {})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Runtime.ImportModuleError"
    assert r["Json"]["errorMessage"].startswith("Error: Cannot find module '/var/task/empty'")

    # Nothing at all that require() could find is still refused, naming what was looked for.
    ws.write_stack("name: resolve\nfunctions:\n  nothing: {runtime: nodejs20.x, code: code/, handler: nope.handler}\n",
                   name="bad.yaml")
    out = ws.run("validate", "bad.yaml")
    assert out.returncode != 0
    assert b'handler "nope.handler" needs nope.js, nope.mjs or nope.cjs in the code directory' in out.stderr


def test_export_names_are_looked_up_as_property_names(ws):
    # AWS's client walks "FILE.a.b" as module["a"]["b"]: a hyphenated or non-ASCII export is
    # served, and one that is not there is the init error Runtime.HandlerNotFound, not a
    # refused stack. A Python handler may be a non-ASCII identifier (PEP 3131).
    code = ws.path / "code"
    code.mkdir()
    (code / "index.js").write_text(
        "exports['my-handler'] = async () => 'hyphen';\n"
        "exports['größe'] = async () => 'non-ascii';\n"
        "exports.group = {'inner-one': async () => 'nested'};\n")
    (code / "app.py").write_text("def größe(event, context):\n    return 'python non-ascii'\n")
    ws.write_stack(
        "name: exports\nfunctions:\n"
        "  hyphen: {runtime: nodejs20.x, code: code/, handler: index.my-handler}\n"
        "  unicode: {runtime: nodejs20.x, code: code/, handler: index.größe}\n"
        "  nested: {runtime: nodejs20.x, code: code/, handler: index.group.inner-one}\n"
        "  absent: {runtime: nodejs20.x, code: code/, handler: index.not-there}\n"
        "  py: {runtime: python3.11, code: code/, handler: app.größe}\n")
    srv = ws.serve()
    for name, expected in (("hyphen", "hyphen"), ("unicode", "non-ascii"), ("nested", "nested"),
                           ("py", "python non-ascii")):
        assert srv.invoke(name, {})["Json"] == expected, name
    r = srv.invoke("absent", {})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Runtime.HandlerNotFound"
    assert r["Json"]["errorMessage"] == "index.not-there is undefined or not exported"
