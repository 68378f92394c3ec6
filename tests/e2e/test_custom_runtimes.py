"""provided.al2023 functions running unmodified official clients: the bash + curl
runtime from AWS's custom runtime tutorial, and AWS's Node.js runtime interface
client (aws-lambda-ric 3.x) as the function's own bootstrap."""
import base64
import json

import pytest

from conftest import NODE_MODULES


@pytest.fixture
def bash_srv(ws):
    ws.copy_function("bash-runtime", "bashfn")
    ws.write_stack("""
name: tutorial
functions:
  tutorial:
    runtime: provided.al2023
    code: bashfn/
    handler: function.handler
  descriptors:
    runtime: provided.al2023
    code: bashfn/
    handler: descriptors.handler
""")
    return ws.serve()


def test_bash_curl_runtime_from_the_aws_tutorial(bash_srv):
    r = bash_srv.invoke("tutorial", {"hello": "bash"}, LogType="Tail")
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    assert r["Json"] == {"echo": {"hello": "bash"}, "shell": "bash"}
    # The handler writes the event to stderr, which is part of the log.
    assert '{"hello": "bash"}' in base64.b64decode(r["LogResult"]).decode()
    again = bash_srv.invoke("tutorial", {"n": 2})
    assert again["Json"]["echo"] == {"n": 2}


def test_a_custom_runtime_gets_no_log_descriptor(bash_srv):
    # Lambda hands its framed log descriptor to managed runtimes only: the recorded environments
    # of provided.al2 / provided.al2023 have no _LAMBDA_TELEMETRY_LOG_FD (java's and dotnet's do).
    assert bash_srv.invoke("descriptors", {})["Json"] == {"fd62": "closed", "variable": "unset"}


@pytest.fixture
def ric_srv(ws):
    assert (NODE_MODULES / "aws-lambda-ric").is_dir(), "run scripts/setup.sh (npm ci in tests/node)"
    ws.copy_function("ric-node", "ric")
    env = f"{{SLUICE_TEST_NODE_MODULES: {NODE_MODULES}}}"
    ws.write_stack(f"""
name: ric
functions:
  ok: {{runtime: provided.al2023, code: ric/, handler: index.handler, environment: {env}}}
  fail: {{runtime: provided.al2023, code: ric/, handler: index.fail, environment: {env}}}
  stream: {{runtime: provided.al2023, code: ric/, handler: index.stream, environment: {env}}}
  stream-fail: {{runtime: provided.al2023, code: ric/, handler: index.streamFail, environment: {env}}}
  missing: {{runtime: provided.al2023, code: ric/, handler: nothere.handler, environment: {env}}}
""")
    return ws.serve()


def test_official_node_ric_success_and_warm_reuse(ric_srv):
    r = ric_srv.invoke("ok", {"x": 1}, LogType="Tail")
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert r["Json"] == {"ric": True, "event": {"x": 1}, "requestId": rid, "fn": "ok"}
    r2 = ric_srv.invoke("ok", {"x": 2}, LogType="Tail")
    assert "Init Duration" in base64.b64decode(r["LogResult"]).decode()
    assert "Init Duration" not in base64.b64decode(r2["LogResult"]).decode()


def test_official_node_ric_handler_error(ric_srv):
    r = ric_srv.invoke("fail", {})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Error" and r["Json"]["errorMessage"] == "ric handler failed"
    assert r["Json"]["trace"][0] == "Error: ric handler failed"


def test_official_node_ric_init_error_reaches_the_caller(ric_srv):
    r = ric_srv.invoke("missing", {})
    assert r["FunctionError"] == "Unhandled"
    assert r["Json"]["errorType"] == "Runtime.ImportModuleError"
    assert "Cannot find module 'nothere'" in r["Json"]["errorMessage"]
    ric_srv.wait_for_log("Status: error\tError Type: Runtime.ImportModuleError")


def test_official_node_ric_streaming(ric_srv):
    c = ric_srv.client()
    r = c.invoke_with_response_stream(FunctionName="stream", Payload=b"{}")
    events = list(r["EventStream"])
    chunks = [e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e]
    assert b"".join(chunks) == b"chunk-0;chunk-1;chunk-2;"
    assert len(chunks) >= 2, "chunks arrive as the function writes them"
    assert events[-1] == {"InvokeComplete": {}}
    assert ric_srv.invoke("stream", {})["Body"] == b"chunk-0;chunk-1;chunk-2;"


def test_official_node_ric_mid_stream_error(ric_srv):
    c = ric_srv.client()
    r = c.invoke_with_response_stream(FunctionName="stream-fail", Payload=b"{}")
    events = list(r["EventStream"])
    assert b"".join(e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e) == b"partial;"
    done = events[-1]["InvokeComplete"]
    assert done["ErrorCode"] == "Error"
    assert json.loads(done["ErrorDetails"])["errorMessage"] == "stream broke"
