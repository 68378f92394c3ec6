"""The python3.x runtime sluice ships: context object, environment, error and
init-error shapes, logging format, layers, as AWS's Python runtime has them."""
import base64
import json
import re

import pytest

STACK = """
name: pyrt
functions:
  introspect: {runtime: python3.11, code: py/, handler: handlers.introspect, memory: 256, timeout: 7}
  fail: {runtime: python3.11, code: py/, handler: handlers.fail}
  logs: {runtime: python3.11, code: py/, handler: handlers.log_lines}
  unserializable: {runtime: python3.11, code: py/, handler: handlers.unserializable}
  big: {runtime: python3.11, code: py/, handler: handlers.big}
  no-handler: {runtime: python3.11, code: py/, handler: handlers.nope}
  import-error: {runtime: python3.11, code: py/, handler: broken_import.handler}
  with-layer:
    runtime: python3.11
    code: py/
    handler: uses_layer.handler
    layers: [layer/]
"""


@pytest.fixture
def srv(ws):
    ws.copy_function("python-basic", "py")
    (ws.path / "py" / "uses_layer.py").write_text(
        "import shared_lib\n\ndef handler(event, context):\n    return {'from_layer': shared_lib.VALUE}\n")
    (ws.path / "layer" / "python").mkdir(parents=True)
    (ws.path / "layer" / "python" / "shared_lib.py").write_text("VALUE = 'layer says hi'\n")
    ws.write_stack(STACK)
    return ws.serve()


def test_context_and_environment(srv):
    ctx = base64.b64encode(json.dumps({"custom": {"tenant": "t1"}, "env": {"platform": "test"}}).encode()).decode()
    r = srv.invoke("introspect", {}, ClientContext=ctx)
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    c, env = r["Json"]["context"], r["Json"]["env"]
    assert c["aws_request_id"] == rid
    assert c["function_name"] == "introspect" and c["function_version"] == "$LATEST"
    assert c["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:introspect"
    assert c["memory_limit_in_mb"] == "256"
    assert c["log_group_name"] == "/aws/lambda/introspect"
    assert c["log_stream_name"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert 6000 < c["remaining_ms"] <= 7000
    assert c["client_context"] == {"custom": {"tenant": "t1"}, "env": {"platform": "test"}}
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["_HANDLER"] == "handlers.introspect"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", env["_X_AMZN_TRACE_ID"])
    assert not [k for k in env if k.startswith("_SLUICE")]


def test_handler_exception_shape_and_log(srv):
    r = srv.invoke("fail", {"why": "bad input"}, LogType="Tail")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert r["FunctionError"] == "Unhandled"
    body = r["Json"]
    assert body["errorMessage"] == "something went wrong: bad input"
    assert body["errorType"] == "ValueError" and body["requestId"] == rid
    assert body["stackTrace"][0].startswith('  File "') and "in fail\n" in body["stackTrace"][0]
    assert "[ERROR] ValueError: something went wrong: bad input" in base64.b64decode(r["LogResult"]).decode()


def test_logging_format(srv):
    r = srv.invoke("logs", {}, LogType="Tail")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    log = base64.b64decode(r["LogResult"]).decode()
    assert "\nplain print line\n" in log
    assert re.search(rf"^\[INFO\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{rid}\tinfo via logging$", log, re.M)
    assert re.search(rf"^\[WARNING\]\t\S+\t{rid}\twarning via logging$", log, re.M)


def test_marshal_error(srv):
    r = srv.invoke("unserializable", {})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Runtime.MarshalError"
    assert r["Json"]["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"


def test_response_over_6mb(srv):
    r = srv.invoke("big", {"bytes": 7 * 1024 * 1024})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Function.ResponseSizeTooLarge"
    assert srv.invoke("big", {"bytes": 1024})["Body"] == b'"' + b"x" * 1024 + b'"'


def test_init_errors(srv):
    r = srv.invoke("no-handler", {})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"] == {"errorMessage": "Handler 'nope' missing on module 'handlers'",
                         "errorType": "Runtime.HandlerNotFound", "requestId": "", "stackTrace": []}
    r = srv.invoke("import-error", {})
    assert r["Json"]["errorType"] == "RuntimeError"
    assert r["Json"]["errorMessage"] == "this module fails at import time"
    assert r["Json"]["requestId"] == ""
    assert r["Json"]["stackTrace"][-1].startswith('  File "') and "broken_import.py" in r["Json"]["stackTrace"][-1]


def test_layers_are_importable_like_opt_python(srv):
    assert srv.invoke("with-layer", {})["Json"] == {"from_layer": "layer says hi"}


def test_context_log_is_one_record_even_without_the_logging_module(ws):
    # awslambdaric installs its handler on the root logger before user code runs, and
    # context.log() writes through that handler's log sink: one framed record on Lambda's
    # descriptor 62, newlines and all, whether or not the handler ever imports `logging`.
    from conftest import Sluice, wait_until

    probe = ws.copy_function("extension-probe", "probe")
    (probe / "code" / "ctxlog.py").write_text(
        "import sys\n\n"
        "def handler(event, context):\n"
        "    context.log('ctx first\\nctx second')\n"
        "    return {'logging_imported': 'logging' in sys.modules}\n")
    log = ws.path / "ext.log"
    (probe / "sluice.yaml").write_text(
        "name: ctxlog\nfunctions:\n  f:\n    runtime: python3.11\n    code: code/\n    handler: ctxlog.handler\n"
        f"    layers: [layer/]\n    environment: {{PROBE_EXT_LOG: {json.dumps(str(log))}, PROBE_EXT_SUBSCRIBE: function}}\n")
    srv = Sluice(probe)
    ws.servers.append(srv)
    srv.start()

    def records():
        if not log.exists():
            return []
        entries = [json.loads(line) for line in log.read_text().splitlines() if line]
        return [r["record"] for e in entries if e["kind"] == "telemetry" for r in e["batch"] if r["type"] == "function"]

    r = srv.invoke("f", {})
    assert r["Json"] == {"logging_imported": False}
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    wait_until(lambda: rid in srv.stdout() and "REPORT RequestId: " + rid in srv.stdout())
    srv.invoke("f", {})  # thaws the environment: the first invocation's records go out
    got = wait_until(lambda: [x for x in records() if "ctx" in str(x)] or None)
    assert got[0] == "ctx first\nctx second", got  # not "ctx first", then "ctx second"
